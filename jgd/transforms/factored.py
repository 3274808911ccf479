"""Adafactor's blocks: ``scale_by_factored_rms`` (factored second moments,
``FactoredState``) and two private pieces of adafactor (optax's
``clip_by_block_rms`` and ``ema`` without debiasing), with the per-leaf helpers
``jgd.transforms.per_leaf`` shares; that module re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_dtype,
    check_int,
    check_number,
    empty_state,
    owner_name,
    register,
    static_field,
)

__all__ = [
    "FactoredState",
    "scale_by_factored_rms",
]


# --------------------------------------------------------------------------
# Helpers shared with per_leaf.py.
# --------------------------------------------------------------------------


def _count0() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def _need_params(owner: Any, params: Any, why: str) -> None:
    if params is None:
        raise ValueError(
            f"{owner_name(owner)}: update needs params ({why}); call "
            "update(grads, state, params)."
        )


def _unzip(like: Any, out: Any, n: int) -> tuple[Any, ...]:
    """Split ``out``, a tree shaped like ``like`` holding an ``n``-tuple at
    each leaf, into ``n`` trees."""
    outer: Any = jax.tree.structure(like)  # jax's stub lacks flatten_up_to
    per_leaf = outer.flatten_up_to(out)
    return tuple(outer.unflatten([o[i] for o in per_leaf]) for i in range(n))


def _times(u: jax.Array, s: jax.Array) -> jax.Array:
    """``u * s`` for a per-leaf scalar ``s``, in the wider dtype."""
    u, s = tree.promote(u, s)
    return u * s


# --------------------------------------------------------------------------
# Adafactor: factored second moments, and its two private helpers.
# --------------------------------------------------------------------------


class FactoredState(NamedTuple):
    """Adafactor's step count and row, column or full second moments
    (optax's): a leaf uses ``v_row``/``v_col`` when factored, else ``v``; the
    unused ones hold ``zeros((1,))``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    v_row: Any
    v_col: Any
    v: Any


def _decay_rate_pow(i: ArrayLike, exponent: ArrayLike = 0.8) -> jax.Array:
    """Adafactor's second-moment decay ``1 - (i + 1)**(-exponent)``, in
    float32 as optax computes it (also under x64)."""
    t = jnp.array(i + 1, jnp.float32)  # type: ignore[operator]
    return 1.0 - t ** jnp.asarray(-exponent, jnp.float32)  # type: ignore[operator]


def _factored_dims(shape, factored, min_dim_size_to_factor):
    """The two largest axes ``(d1, d0)`` to factor over, or None when the
    leaf is kept whole (fewer than 2 axes, or the second largest is small)."""
    if not factored or len(shape) < 2:
        return None
    sorted_dims = np.argsort(shape)  # optax's tie-breaking, for the same axes
    if shape[sorted_dims[-2]] < min_dim_size_to_factor:
        return None
    return int(sorted_dims[-2]), int(sorted_dims[-1])


def _mix(decay: jax.Array, v: jax.Array, x: jax.Array) -> jax.Array:
    """``decay * v + (1 - decay) * x`` (decay is float32), each product in
    the wider of its two dtypes and then the sum, as optax's standard
    promotion computes it (a real ``x`` is multiplied before it turns
    complex)."""
    a = jnp.multiply(*tree.promote(decay, v))
    b = jnp.multiply(*tree.promote(1.0 - decay, x))
    return jnp.add(*tree.promote(a, b))


@register
class ScaleByFactoredRms(Transform):
    """Divide updates by a factored estimate of their root mean square
    (Adafactor's second moment, with a step-dependent decay).

    Per leaf with two axes of size >= ``min_dim_size_to_factor`` (rows ``d1``,
    columns ``d0``: the two largest axes), else over the whole leaf:

    Update (i = t - 1 - step_offset):
        b = decay_rate_fn(i, decay_rate)      (default 1 - (i + 1)**-decay_rate)
        g2 = |g|**2 + epsilon
        v_row = b * v_row + (1 - b) * mean(g2, axis=d0)      (factored)
        v_col = b * v_col + (1 - b) * mean(g2, axis=d1)
        u = g * (v_row / mean(v_row))**-0.5 * v_col**-0.5
        v = b * v + (1 - b) * g2                             (not factored)
        u = g * v**-0.5

    Args:
        factored: factor leaves with two large axes (static), default True.
        decay_rate: the decay's exponent, >= 0, default 0.8.
        step_offset: steps to subtract (fine-tuning restarts the decay),
            >= 0, default 0.
        min_dim_size_to_factor: the size both factored axes need, an int
            >= 0 (static), default 128.
        epsilon: added to the squares, >= 0, default 1e-30.
        decay_rate_fn: ``(i, decay_rate) -> decay`` (static), default the
            power schedule above, computed in float32 as in optax.

    Raises:
        ValueError: when ``update`` gets no ``params`` (their shapes and
        dtypes decide the factoring, as in optax).

    References: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with
    Sublinear Memory Cost", 2018, Algorithm 4 and section 7.2.

    Matches: optax.scale_by_factored_rms(factored, decay_rate, step_offset,
    min_dim_size_to_factor, epsilon, decay_rate_fn).
    """

    factored: bool = static_field(default=True)
    decay_rate: Scalar = 0.8
    step_offset: Scalar = 0
    min_dim_size_to_factor: int = static_field(default=128)
    epsilon: Scalar = 1e-30
    decay_rate_fn: Callable[[Any, Any], Any] = static_field(default=_decay_rate_pow)

    _api = "jgd.scale_by_factored_rms"

    def check(self):
        check_number(self, "decay_rate", self.decay_rate, 0)
        check_number(self, "step_offset", self.step_offset, 0)
        check_int(self, "min_dim_size_to_factor", self.min_dim_size_to_factor)
        check_number(self, "epsilon", self.epsilon, 0)
        if not callable(self.decay_rate_fn):
            raise TypeError(
                f"{owner_name(self)}: decay_rate_fn must be a callable "
                f"(step, decay_rate) -> decay; got {self.decay_rate_fn!r}."
            )

    def _dims(self, shape):
        return _factored_dims(shape, self.factored, self.min_dim_size_to_factor)

    def init(self, params: Any) -> Any:
        def one(p):
            return jnp.zeros((1,), p.dtype)

        def without(p, axis):
            return jnp.zeros(np.delete(p.shape, axis).tolist(), p.dtype)

        def row(p):  # the rows' statistics: the column axis d0 removed
            dims = self._dims(p.shape)
            return one(p) if dims is None else without(p, dims[1])

        def col(p):
            dims = self._dims(p.shape)
            return one(p) if dims is None else without(p, dims[0])

        def full(p):
            return jnp.zeros_like(p) if self._dims(p.shape) is None else one(p)

        return FactoredState(
            count=_count0(),
            v_row=jax.tree.map(row, params),
            v_col=jax.tree.map(col, params),
            v=jax.tree.map(full, params),
        )

    def _step_index(self, count: jax.Array) -> jax.Array:
        """``count - step_offset``: int32 for an integer offset, as optax."""
        off = jnp.asarray(self.step_offset)
        if jnp.issubdtype(off.dtype, jnp.integer):
            return count - off.astype(count.dtype)
        fdt = tree.default_float()
        return count.astype(fdt) - off.astype(fdt)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _need_params(self, params, "their shapes decide the factoring")
        tree.check_same_structure(self, updates, params, "params")
        decay = self.decay_rate_fn(self._step_index(state.count), self.decay_rate)
        eps = self.epsilon

        def f(g, v_row, v_col, v, p):
            dt = p.dtype
            g2 = tree.abs_sq(g)
            g2 = g2 + tree.coef(eps, g2.dtype)
            dims = self._dims(p.shape)
            if dims is None:
                v = _mix(decay, v, g2).astype(dt)
                return (_times(g, v**-0.5), v_row, v_col, v)
            d1, d0 = dims
            v_row = _mix(decay, v_row, jnp.mean(g2, axis=d0)).astype(dt)
            v_col = _mix(decay, v_col, jnp.mean(g2, axis=d1)).astype(dt)
            row_mean = jnp.mean(v_row, axis=d1 - 1 if d1 > d0 else d1, keepdims=True)
            row_factor = jnp.expand_dims((v_row / row_mean) ** -0.5, d0)
            col_factor = jnp.expand_dims(v_col**-0.5, d1)
            return (_times(_times(g, row_factor), col_factor), v_row, v_col, v)

        out = jax.tree.map(f, updates, state.v_row, state.v_col, state.v, params)
        u, v_row, v_col, v = _unzip(updates, out, 4)
        new = FactoredState(
            count=tree.safe_increment(state.count), v_row=v_row, v_col=v_col, v=v
        )
        return u, new


scale_by_factored_rms = ScaleByFactoredRms


@register
class _ClipByBlockRms(Transform):
    """Clip each leaf's update to root mean square ``threshold`` (adafactor's
    update clipping).

    Update (per leaf):
        u = g / max(1, sqrt(mean(|g|**2)) / threshold)

    Matches: optax.clip_by_block_rms(threshold). Private here until
    jgd.transforms.clipping has its own.
    """

    threshold: Scalar

    _api = "jgd.clip_by_block_rms"

    def check(self):
        check_number(self, "threshold", self.threshold, 0, lo_open=True)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        def f(g):
            rms = jnp.sqrt(jnp.mean(tree.abs_sq(g)))
            denom = jnp.maximum(1.0, rms / tree.coef(self.threshold, rms.dtype))
            g, denom = tree.promote(g, denom)
            return g / denom

        return jax.tree.map(f, updates), state


class _EmaState(NamedTuple):
    """Step count and moving average (fields of optax's ``EmaState``)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    ema: Any


@register
class _Ema(Transform):
    """An exponential moving average of the updates, not debiased
    (adafactor's momentum).

    Update:
        ema = (1 - decay) * g + decay * ema
        u = ema

    Matches: optax.ema(decay, debias=False, accumulator_dtype). Private here
    until jgd.transforms.elementwise has its own.
    """

    decay: Scalar
    accumulator_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.ema"

    def check(self):
        check_number(self, "decay", self.decay, 0, 1)
        object.__setattr__(
            self,
            "accumulator_dtype",
            check_dtype(self, "accumulator_dtype", self.accumulator_dtype),
        )

    def init(self, params: Any) -> Any:
        return _EmaState(
            count=_count0(), ema=tree.zeros_like(params, dtype=self.accumulator_dtype)
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.ema, "state")
        d = self.decay

        def f(g, m):
            # Each product in its own dtype, as optax's weakly typed Python
            # decay gives (a float32 accumulator's decay * m stays float32).
            return jnp.add(
                *tree.promote(tree.coef(1 - d, g.dtype) * g, tree.coef(d, m.dtype) * m)
            )

        new = jax.tree.map(f, updates, state.ema)
        count = tree.safe_increment(state.count)
        return new, _EmaState(count=count, ema=tree.cast(new, self.accumulator_dtype))
