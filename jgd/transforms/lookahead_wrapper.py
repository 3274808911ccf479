"""Lookahead (Zhang et al., 2019): ``lookahead``, with optax 0.2.8's
``LookaheadParams`` and ``LookaheadState``, that also works on plain params.

optax's lookahead needs the caller to carry ``LookaheadParams(fast, slow)``
as its params (optax issue #1429). jgd's takes either. Given
``LookaheadParams`` it gives optax's updates and numbers; given the plain
params at ``init``, it keeps the slow params in its state
(``LookaheadState.slow``) and returns plain updates, so it drops into a hand
loop, a ``chain`` or ``jgd.train`` as any optimizer does.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import Scalar, Transform, check_int, check_number, register, static_field
from jgd.transforms.combine import as_inner

__all__ = ["LookaheadParams", "LookaheadState", "lookahead"]


class LookaheadState(NamedTuple):
    """The fast optimizer's state, the fast steps since the last sync, and
    (jgd's addition, ``None`` when ``init`` was given ``LookaheadParams``)
    the slow params."""

    fast_state: Any
    steps_since_sync: jax.Array
    slow: Any = None


class LookaheadParams(NamedTuple):
    """A pair of fast params (take gradients here) and slow params (evaluate
    these), optax's; ``apply_updates`` adds lookahead's updates to both."""

    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params: Any) -> LookaheadParams:
        """Fast and slow params both ``params``."""
        return cls(slow=params, fast=params)


def _is_lookahead_params(params: Any) -> bool:
    """jgd's ``LookaheadParams``, or optax's (looked up, never imported)."""
    if isinstance(params, LookaheadParams):
        return True
    cls = getattr(sys.modules.get("optax"), "LookaheadParams", None)
    return isinstance(cls, type) and isinstance(params, cls)


def _integer(x: Any) -> Any:
    """An integer scalar array as a Python int (so it passes ``check_int``)."""
    if isinstance(x, (np.ndarray, jax.Array)) and x.shape == ():
        return int(x) if jnp.issubdtype(x.dtype, jnp.integer) else x
    return x


def _owned(x: Any) -> jax.Array:
    # A copy, so that a donating step never gets one buffer twice (the params
    # and the slow params), and strongly typed, so its type never changes.
    return jnp.array(x, dtype=jnp.result_type(x))


@register
class Lookahead(Transform):
    """Take ``sync_period`` steps with ``fast_optimizer``, then move the slow
    params part of the way to the fast ones and restart the fast ones there.

    Update (x the fast params, k = sync_period, a = slow_step_size, n =
    steps_since_sync):
        u, fast_state = fast_optimizer(g, fast_state, x)
        sync = (n == k - 1)
        d = x + u - slow                  (the fast step's landing, from slow)
        slow = slow + a * d               if sync
        u = u - (1 - a) * d               if sync   (so x + u = the new slow)
        fast_state = fast_optimizer.init(x)   if sync and reset_state
        n = (n + 1) mod k

    With ``LookaheadParams(fast, slow)`` as params (optax's way), ``update``
    returns ``LookaheadParams`` of updates for both. With plain params at
    ``init`` (jgd's addition, see optax issue #1429), the params are the fast
    ones, the slow ones live in ``state.slow`` (evaluate with those: a nested
    state's is ``jgd.tree.get(opt_state, "slow")``), and ``update`` returns
    plain updates. Extra keyword arguments of ``update`` go to the fast
    optimizer.

    Args:
        fast_optimizer: a jgd or optax optimizer, run on the fast params.
        sync_period: fast steps between syncs, an integer >= 1 (a leaf).
        slow_step_size: the slow params' step a, in [0, 1].
        reset_state: re-initialise the fast optimizer's state at every sync
            (default False); static.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.lookahead(jgd.sgd(0.5), sync_period=2, slow_step_size=0.5)
        >>> x = jnp.array([4.0])
        >>> state = opt.init(x)  # plain params: the slow ones are in the state
        >>> for _ in range(2):
        ...     u, state = opt.update(x, state, x)  # the gradient of x**2 / 2
        ...     x = jgd.apply_updates(x, u)
        >>> x, state.slow
        (Array([2.5], dtype=float32), Array([2.5], dtype=float32))

    References: Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps
    forward, 1 step back", 2019, Algorithm 1.

    Matches: optax.lookahead(fast_optimizer, sync_period, slow_step_size,
    reset_state) given LookaheadParams (the same updates; the state has the
    extra field ``slow``, None). Plain params are jgd's addition; the reset
    is a ``where`` (optax's blend turns an inf in the old state into NaN);
    bad ``sync_period``/``slow_step_size`` raise.
    """

    fast_optimizer: Any
    sync_period: Any
    slow_step_size: Scalar
    reset_state: bool = static_field(default=False)

    _api = "jgd.lookahead"

    def __post_init__(self):
        fast = as_inner(self, "fast_optimizer", self.fast_optimizer)
        object.__setattr__(self, "fast_optimizer", fast)
        super().__post_init__()

    def check(self):
        if not isinstance(self.sync_period, jax.core.Tracer):
            check_int(self, "sync_period", _integer(self.sync_period), 1)
        check_number(self, "slow_step_size", self.slow_step_size, 0, 1)

    def init(self, params: Any) -> Any:
        count = jnp.zeros([], jnp.int32)
        if _is_lookahead_params(params):
            return LookaheadState(self.fast_optimizer.init(params.fast), count)
        slow = jax.tree.map(_owned, params)
        return LookaheadState(self.fast_optimizer.init(params), count, slow)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        pair = _is_lookahead_params(params)
        if params is None:
            raise ValueError(
                "jgd.lookahead: params are required: call update(updates, state, "
                "params), with the params init was given."
            )
        if pair:
            fast, slow = params.fast, params.slow
        elif state.slow is None:
            raise TypeError(
                "jgd.lookahead: init was given LookaheadParams, so update needs "
                "them too (params=LookaheadParams(fast, slow)); got a plain tree. "
                "Or give init the plain params: the slow ones then live in the state."
            )
        else:
            fast, slow = params, state.slow
        tree.check_same_structure(
            self, updates, fast, "params.fast" if pair else "params"
        )
        tree.check_same_structure(self, updates, slow, "slow params")
        u, fast_state = self.fast_optimizer.update(
            updates, state.fast_state, fast, **extra_args
        )
        sync = state.steps_since_sync == self.sync_period - 1
        a = self.slow_step_size
        to_slow = jnp.where(sync, a, 0.0)
        back = jnp.where(sync, 1 - a, 0.0)

        def landing(x, g, s):  # d = x + u - slow, in the widest dtype
            x, g, s = tree.promote(x, g, s)
            return x + g - s

        d = jax.tree.map(landing, fast, u, slow)
        slow_u = jax.tree.map(lambda d: tree.coef(to_slow, d.dtype) * d, d)
        fast_u = jax.tree.map(
            lambda g, d: (g.astype(d.dtype) - tree.coef(back, d.dtype) * d).astype(
                g.dtype
            ),
            u,
            d,
        )
        if self.reset_state:
            fresh = self.fast_optimizer.init(fast)
            fast_state = jax.tree.map(
                lambda old, new: jnp.where(sync, new, old), fast_state, fresh
            )
        steps = jnp.asarray((state.steps_since_sync + 1) % self.sync_period, jnp.int32)
        new_slow = None
        if state.slow is not None:
            new_slow = jax.tree.map(
                lambda s, v: jnp.add(*tree.promote(s, v)).astype(s.dtype), slow, slow_u
            )
        new_state = LookaheadState(fast_state, steps, new_slow)
        if pair:
            return type(params)(fast=fast_u, slow=slow_u), new_state
        return fast_u, new_state


lookahead = Lookahead
