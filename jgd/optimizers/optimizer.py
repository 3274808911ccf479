"""``Optimizer``: the base of every jgd optimizer, a named recipe of transforms.

An optimizer is a value: a frozen dataclass whose fields are optax's
arguments, printable (``print(jgd.adam(1e-3))``), a pytree whose numeric
hyperparameters are leaves, and a transform whose ``init``/``update`` run the
chain that ``recipe()`` returns. Its state is exactly the chain's state, so it
equals optax's.
"""

from __future__ import annotations

from typing import Any

from jgd.base import Chain, Transform, api_name

__all__ = ["Optimizer"]


class Optimizer(Transform):
    """An optimizer: a named, printable recipe of transforms."""

    def recipe(self) -> Chain:
        """The chain of building blocks this optimizer is."""
        raise NotImplementedError

    def check(self):
        with api_name(self._api):  # build once so bad arguments fail now
            self.recipe()

    def init(self, params: Any) -> Any:
        with api_name(self._api):
            return self.recipe().init(params)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        with api_name(self._api):
            return self.recipe().update(updates, state, params, **extra_args)
