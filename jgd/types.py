"""optax's type names, for annotations and hand-built transforms.

``ScalarOrSchedule`` (the same typing object as optax's), ``Scalar``,
``Params``, ``Updates``, ``OptState``, the ``Transform*Fn`` protocols and
``GradientTransformation``/``GradientTransformationExtraArgs``: at run time
optax's two NamedTuples, to a type checker the classes jgd's ``Transform``
derives from. ``jgd.base`` re-exports all of them. Imports nothing from jgd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Union

import jax

__all__ = [
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "OptState",
    "Params",
    "Scalar",
    "ScalarOrSchedule",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
]


# What a learning rate may be: the same typing object as optax.ScalarOrSchedule
# (equal and of equal hash), built without importing optax, so code that reads
# inspect.signature(opt).parameters["learning_rate"].annotation, as optax's own
# tests do, sees that jgd's optimizers take schedules.
ScalarOrSchedule = Union[  # noqa: UP007 (optax's object is a typing.Union)
    float, jax.Array, Callable[[jax.typing.ArrayLike], jax.typing.ArrayLike]
]


# A numeric hyperparameter: a Python float (kept as given) or an array, a
# tracer under jit.
Scalar = Union[float, jax.Array]  # noqa: UP007 (kept alike ScalarOrSchedule)

# optax's names for the trees a transform sees, for user annotations. optax
# spells them as a recursive union of arrays, iterables and mappings; Any
# also takes what jgd optimizes besides (flax nnx State, equinox modules).
Params = Any
Updates = Any
OptState = Any


# --------------------------------------------------------------------------
# optax's GradientTransformation, for code that builds its own transforms.
# --------------------------------------------------------------------------


class TransformInitFn(Protocol):
    """The type of ``init``: ``init(params) -> state``. Matches: optax's."""

    def __call__(self, params: Params) -> OptState: ...


class TransformUpdateFn(Protocol):
    """The type of ``update``: ``update(updates, state, params=None) ->
    (updates, state)``. Matches: optax's."""

    def __call__(
        self, updates: Updates, state: OptState, params: Params | None = None
    ) -> tuple[Updates, OptState]: ...


class TransformUpdateExtraArgsFn(Protocol):
    """The type of an ``update`` that takes keyword arguments besides (``value=``
    for a line search), ignoring those it does not use. Matches: optax's."""

    def __call__(
        self,
        updates: Updates,
        state: OptState,
        params: Params | None = None,
        **extra_args: Any,
    ) -> tuple[Updates, OptState]: ...


if TYPE_CHECKING:
    # What a type checker sees: optax's two classes with init and update as
    # methods, from which jgd's Transform derives, so that a jgd optimizer
    # checks as a GradientTransformation where optax code annotates one. At
    # run time (below) they are NamedTuples, and Transform is not one.
    class GradientTransformation:
        def __init__(self, init: TransformInitFn, update: TransformUpdateFn): ...
        def init(self, params: Params) -> OptState: ...
        def update(
            self, updates: Updates, state: OptState, params: Params | None = None
        ) -> tuple[Updates, OptState]: ...

    class GradientTransformationExtraArgs(GradientTransformation):
        def __init__(
            self, init: TransformInitFn, update: TransformUpdateExtraArgsFn
        ): ...
        def update(
            self,
            updates: Updates,
            state: OptState,
            params: Params | None = None,
            **extra_args: Any,
        ) -> tuple[Updates, OptState]: ...

    _TransformType = GradientTransformationExtraArgs
else:

    class GradientTransformation(NamedTuple):
        """A transform made of two functions: ``init`` and ``update``.

        For code that builds its own transform as optax's users do,
        ``GradientTransformation(init_fn, update_fn)``: the pair works wherever a
        transform goes (``jgd.chain``, every jgd wrapper, ``jgd.train``, and
        optax's own combinators), carried as static configuration as an optax
        transform is. Hyperparameters captured in the functions are constants of
        the compiled program, not leaves.

        jgd's own optimizers and transforms are not instances of this class:
        they are frozen dataclasses with the same ``init``/``update`` protocol
        (their hyperparameters are pytree leaves), so ``isinstance(jgd.adam(1e-3),
        jgd.GradientTransformation)`` is False, as it is for
        ``optax.GradientTransformation``. Type checkers accept them where this
        type is annotated (``def make() -> jgd.GradientTransformation``).

        Example:
            >>> import jgd, jax.numpy as jnp
            >>> def init_fn(params):
            ...     return ()
            >>> def update_fn(updates, state, params=None):
            ...     return {k: 2.0 * g for k, g in updates.items()}, state
            >>> double = jgd.GradientTransformation(init_fn, update_fn)
            >>> tx = jgd.chain(double, jgd.sgd(0.1))
            >>> tx.update({"w": jnp.array(1.0)}, tx.init({"w": jnp.array(0.0)}))[0]
            {'w': Array(-0.2, dtype=float32)}

        Matches: optax.GradientTransformation(init, update), a different class:
        optax's ``isinstance`` checks (``optax.with_extra_args_support``) do not
        know it.
        """

        init: TransformInitFn
        update: TransformUpdateFn

    class GradientTransformationExtraArgs(GradientTransformation):
        """A ``GradientTransformation`` whose ``update`` takes extra keyword
        arguments (``update(updates, state, params=None, **extra_args)``).

        jgd passes extra arguments on to any ``update`` that takes ``**kwargs``,
        whichever class holds it. Matches: optax.GradientTransformationExtraArgs;
        inside ``optax.chain`` extra arguments reach only optax's own class.
        """

        update: TransformUpdateExtraArgsFn

    _TransformType = object
