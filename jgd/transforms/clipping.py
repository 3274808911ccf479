"""Clipping beyond ``clip``/``clip_by_global_norm``, under optax 0.2.8's names.

Holds ``clip_by_block_rms`` (each leaf to a largest rms), ``adaptive_grad_clip``
(each unit to a fraction of its param's norm, as NFNets) and the function
``per_example_global_norm_clip`` (differential privacy's per-example clip and
sum). All need each leaf's shape, so none runs on jgd.train's packed buckets.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_number,
    empty_state,
    owner_name,
    register,
    static_field,
)
from jgd.transforms.elementwise import _abs_sq, _needs_params, _sq_norm

__all__ = [
    "adaptive_grad_clip",
    "clip_by_block_rms",
    "per_example_global_norm_clip",
]


@register
class ClipByBlockRms(Transform):
    """Scale each leaf (a "block") down so its root-mean-square is at most
    ``threshold``.

    Update (per leaf):
        rms = sqrt(mean(|g|**2))
        u = g / max(1, rms / threshold)

    Args:
        threshold: the largest rms, > 0.

    Matches: optax.clip_by_block_rms(threshold).
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
            rms = jnp.sqrt(jnp.mean(_abs_sq(g)))
            denom = jnp.maximum(
                tree.coef(1, rms.dtype), rms / tree.coef(self.threshold, rms.dtype)
            )
            return g / denom.astype(g.dtype)

        return jax.tree.map(f, updates), state


clip_by_block_rms = ClipByBlockRms


def _unitwise_norm(owner: Any, x: jax.Array, axis: Any) -> jax.Array:
    """The l2 norm of each unit of ``x``, broadcast to ``x``'s shape (optax's
    ``unitwise_norm``: by rank when ``axis`` is None)."""
    if axis is not None:
        sq = jnp.sum(_abs_sq(x), axis=axis, keepdims=True)
    elif jnp.squeeze(x).ndim <= 1:  # scalars and vectors, (1, n) included
        sq = jnp.sum(_abs_sq(x), keepdims=True)
    elif x.ndim in (2, 3):  # linear layers (in, out), multi-head (in, h, out)
        sq = jnp.sum(_abs_sq(x), axis=0, keepdims=True)
    elif x.ndim == 4:  # convolutions HWIO
        sq = jnp.sum(_abs_sq(x), axis=(0, 1, 2), keepdims=True)
    elif x.ndim == 5:  # 3-D convolutions DHWIO
        sq = jnp.sum(_abs_sq(x), axis=(0, 1, 2, 3), keepdims=True)
    else:
        raise ValueError(
            f"{owner_name(owner)}: a leaf of shape {x.shape} has no default "
            "units (ranks 0 to 5 have); pass axis= (the axes to take norms over)."
        )
    return jnp.broadcast_to(jnp.sqrt(sq), x.shape)


@register
class AdaptiveGradClip(Transform):
    """Clip each unit's update to ``clipping`` times its param's norm
    (adaptive gradient clipping, AGC).

    A unit is a slice of a leaf: the whole leaf for scalars and vectors, a
    column (over axis 0) for matrices and 3-D leaves, an output channel (over
    the first 3 or 4 axes) for 4-D and 5-D kernels, or the slices over
    ``axis`` when given.

    Update (per unit):
        limit = clipping * max(||p||, eps)
        u = g                                  (||g|| < limit)
        u = g * limit / max(||g||, 1e-6)       (otherwise)

    Args:
        clipping: the largest ratio of update norm to param norm, >= 0.
        eps: >= 0, default 1e-3: the smallest param norm (so zero-initialised
            params can move).
        axis: None (units by rank, as above), or an int or tuple of ints, the
            axes each norm is taken over (static).

    Raises:
        ValueError: when ``update`` gets no ``params``, or, with ``axis=None``,
            a leaf of rank above 5.

    References: Brock, De, Smith & Simonyan, "High-Performance Large-Scale
    Image Recognition Without Normalization", 2021, Section 4.1.

    Matches: optax.adaptive_grad_clip(clipping, eps, axis).
    """

    clipping: Scalar
    eps: Scalar = 1e-3
    axis: int | tuple[int, ...] | None = static_field(default=None)

    _api = "jgd.adaptive_grad_clip"

    def check(self):
        check_number(self, "clipping", self.clipping, 0)
        check_number(self, "eps", self.eps, 0)
        axis = self.axis
        if isinstance(axis, list):
            axis = tuple(axis)
            object.__setattr__(self, "axis", axis)
        ints = axis if isinstance(axis, tuple) else (axis,)
        if axis is not None and not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in ints
        ):
            raise TypeError(
                f"{owner_name(self)}: axis must be None, an int or a tuple of "
                f"ints; got {self.axis!r}."
            )

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "it clips relative to the params' norms")
        tree.check_same_structure(self, updates, params, "params")

        def f(g, p):
            g_norm = _unitwise_norm(self, g, self.axis)
            p_norm = _unitwise_norm(self, p, self.axis)
            g_norm, p_norm = tree.promote(g_norm, p_norm)
            dt = p_norm.dtype
            limit = tree.coef(self.clipping, dt) * jnp.maximum(
                p_norm, tree.coef(self.eps, dt)
            )
            # optax's div_eps: only guards a division by zero.
            ratio = limit / jnp.maximum(g_norm, tree.coef(1e-6, dt))
            g2, ratio = tree.promote(g, ratio)
            return jnp.where(g_norm < limit, g2, g2 * ratio).astype(g.dtype)

        return jax.tree.map(f, updates, params), state


adaptive_grad_clip = AdaptiveGradClip


_PER_EXAMPLE = "jgd.per_example_global_norm_clip"


def per_example_global_norm_clip(
    grads: Any, l2_norm_clip: Scalar
) -> tuple[Any, jax.Array]:
    """Clip each example's gradient to a global l2 norm, then sum over the batch.

    Every leaf of ``grads`` holds per-example gradients along axis 0 (the same
    batch size everywhere). Example ``i``'s norm is taken over all leaves.

    Update:
        n_i = sqrt(sum over leaves of sum(|g[i]|**2))
        m_i = min(l2_norm_clip / n_i, 1)      (1 where that is NaN: 0 / 0)
        sum_g = sum_i m_i * g[i]
        num_clipped = #{i : m_i < 1}

    Args:
        grads: a pytree of per-example gradients (axis 0 the batch).
        l2_norm_clip: the largest norm per example, >= 0 (``inf``: no clipping).

    Returns:
        ``(sum_g, num_clipped)``: the clipped sum, shaped like one example, and
        the number of examples clipped.

    Raises:
        ValueError: when a leaf has no batch axis or batch sizes differ.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> g = [jnp.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])]
        >>> jgd.per_example_global_norm_clip(g, 2.5)
        ([Array([1.5, 3. ], dtype=float32)], Array(1, dtype=int32))

    References: Abadi et al., "Deep Learning with Differential Privacy",
    2016, Algorithm 1 (clip gradient).

    Matches: optax.per_example_global_norm_clip(grads, l2_norm_clip), with
    jgd's error message; a floating-point gradient keeps its dtype (optax
    sums a bf16 gradient in float32).
    """
    _check_clip(l2_norm_clip)
    leaves = jax.tree.leaves(grads)
    shapes = [tuple(np.shape(x)) for x in leaves]
    sizes = {s[0] if s else None for s in shapes}
    if not leaves or len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"{_PER_EXAMPLE}: every leaf of grads must have the batch axis first, "
            f"of one size for all; got shapes {shapes}."
        )
    norms = jax.vmap(lambda t: jnp.sqrt(_sq_norm(t)))(grads)
    ratio = tree.coef(l2_norm_clip, norms.dtype) / norms
    m = jnp.nan_to_num(jnp.minimum(ratio, jnp.ones_like(ratio)), nan=1.0)
    num_clipped = jnp.sum(m < 1)

    def clipped_sum(g):
        dt = g.dtype if jnp.issubdtype(g.dtype, jnp.inexact) else m.dtype
        return jnp.tensordot(m.astype(dt), g.astype(dt), axes=1)

    return jax.tree.map(clipped_sum, grads), num_clipped


def _check_clip(value: Any) -> None:
    """``l2_norm_clip`` >= 0, where +inf (no clipping) is allowed."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if float(value) == math.inf:
            return
        if not float(value) >= 0:  # also NaN
            raise ValueError(
                f"{_PER_EXAMPLE}: l2_norm_clip must be >= 0 (inf: no clipping); "
                f"got {value!r}."
            )
        return
    check_number(_PER_EXAMPLE, "l2_norm_clip", value, 0)
