"""Argument checks and small numerics shared by the loss modules.

Checks look at shapes and dtypes, never at values, so they cost nothing under
``jit``. ``scalar`` keeps Python hyperparameters weak-typed (optax's rounding,
bf16 stays bf16); ``pow2_scale`` is the exact rescaling that keeps norms of
huge or tiny vectors finite.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp


def floating(name: str, arg: str, x: Any) -> jax.Array:
    """``x`` as a jax array, which must have a floating dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name}: {arg} must be a floating-point array; got dtype {x.dtype}. "
            f"Cast it first, e.g. {arg}.astype(jnp.float32)."
        )
    return x


def integer(name: str, arg: str, x: Any, hint: str = "") -> jax.Array:
    """``x`` as a jax array, which must have an integer dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{name}: {arg} must be an integer array of class indices; got dtype "
            f"{x.dtype}.{hint}"
        )
    return x


def same_shape(name: str, a_name: str, a: jax.Array, b_name: str, b: jax.Array) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name}: {a_name} and {b_name} must have the same shape; got "
            f"{a_name} {a.shape} and {b_name} {b.shape}. Nothing is broadcast: "
            "reshape one of them (e.g. y.reshape(-1) or y[:, None])."
        )


def like(name: str, arg: str, x: Any, ref: jax.Array) -> jax.Array:
    """``x`` as an array cast to ``ref``'s dtype (numbers and booleans only)."""
    x = jnp.asarray(x)
    if not (jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_):
        raise TypeError(f"{name}: {arg} must be a numeric array; got dtype {x.dtype}.")
    return x.astype(ref.dtype)


def paired(
    name: str, a_name: str, a: Any, b_name: str, b: Any
) -> tuple[jax.Array, jax.Array]:
    """``a`` (floating) and ``b`` cast to its dtype, of the same shape."""
    a = floating(name, a_name, a)
    b = like(name, b_name, b, a)
    same_shape(name, a_name, a, b_name, b)
    return a, b


def rank(name: str, arg: str, x: jax.Array, ndim: int, shape: str) -> None:
    if x.ndim != ndim:
        raise ValueError(
            f"{name}: {arg} must have rank {ndim}, {shape}; got shape {x.shape}."
        )


def axes(
    name: str, axis: Any, ndim: int, allow_none: bool, arg: str = "logits"
) -> tuple[int, ...]:
    """``axis`` (an int, a tuple of ints, or None for all axes when
    ``allow_none``) as a tuple of axes in ``[0, ndim)``, in the order given."""
    if axis is None and allow_none:
        return tuple(range(ndim))
    kinds = "an integer or a tuple of integers" + (" or None" if allow_none else "")
    items = axis if isinstance(axis, tuple) else (axis,)
    for a in items:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(
                f"{name}: axis must be {kinds}; got {axis!r} ({type(axis).__name__})."
            )
        if not -ndim <= int(a) < ndim:
            raise ValueError(
                f"{name}: axis must be in [{-ndim}, {ndim}) for {arg} of rank "
                f"{ndim}; got {axis}."
            )
    out = tuple(int(a) % ndim for a in items)
    if not out or len(set(out)) != len(out):
        raise ValueError(
            f"{name}: axis must name at least one axis, each once; got {axis!r}."
        )
    return out


def mask(
    name: str, where: Any, shape: tuple, axes: tuple[int, ...], arg: str = "logits"
) -> jax.Array:
    """``where`` as a boolean array of ``shape``, given either with ``shape``
    or with ``shape`` without ``axes`` (one flag per example), as in optax."""
    w = jnp.asarray(where)
    if w.dtype != jnp.bool_:
        raise TypeError(
            f"{name}: where must be a boolean array; got dtype {w.dtype}. "
            "Compare first, e.g. where=mask > 0."
        )
    reduced = tuple(d for i, d in enumerate(shape) if i not in axes)
    if w.shape == reduced:
        w = jnp.expand_dims(w, axes)
    elif w.shape != shape:
        raise ValueError(
            f"{name}: where must have the {arg}' shape {shape} or the {arg}' "
            f"shape without axis {axes}, {reduced}; got where {w.shape}."
        )
    return jnp.broadcast_to(w, shape)


def scalar(x: Any, dtype: Any) -> Any:
    """A hyperparameter for arithmetic with arrays of ``dtype``.

    Python and NumPy numbers become Python numbers, which jax treats as weakly
    typed: the expression keeps the array's dtype (bf16 stays bf16) and
    ``1.0 - alpha`` is rounded once, as in optax. Arrays (traced ones too) are
    cast to ``dtype`` so strict promotion passes.
    """
    if isinstance(x, numbers.Number) and not isinstance(x, bool):
        if isinstance(x, numbers.Integral):
            return int(x)
        if isinstance(x, numbers.Real):
            return float(x)
    return jnp.asarray(x).astype(dtype)


def pow2_scale(x: jax.Array, axis: tuple[int, ...]) -> jax.Array:
    """A power of two ``s`` per slice along ``axis`` (kept as size-1 axes) with
    ``max|x * s|`` in [0.5, 1).

    Multiplying by a power of two is exact, so a norm computed from ``x * s``
    and divided by ``s`` has the same bits as the direct one whenever that
    one neither overflows nor underflows, and stays finite when it would.
    ``s`` is built from the exponent bits of ``max|x|`` (a handful of integer
    operations, where ``frexp``/``ldexp`` take dozens), clipped so that ``s``
    and ``1 / s`` are normal numbers (a zero slice gets the largest such s).
    """
    big = jnp.max(jnp.abs(x), axis=axis, keepdims=True, initial=0.0)
    info = jnp.finfo(x.dtype)
    uint = {8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32, 64: jnp.uint64}[info.bits]
    exponent_bits = info.bits - 1 - info.nmant
    bias = 2 ** (exponent_bits - 1) - 1
    raw = jax.lax.bitcast_convert_type(jax.lax.stop_gradient(big), uint)
    biased = ((raw >> info.nmant) & (2**exponent_bits - 1)).astype(jnp.int32)
    # max|x| = m * 2**(biased - bias), m in [1, 2): s = 2**-(biased - bias + 1).
    s_biased = jnp.clip(2 * bias - 1 - biased, 1, 2 * bias)
    return jax.lax.bitcast_convert_type(s_biased.astype(uint) << info.nmant, x.dtype)


def errors(name: str, predictions: Any, targets: Any) -> jax.Array:
    """``predictions - targets`` (or ``predictions`` when targets is None)."""
    p = floating(name, "predictions", predictions)
    if targets is None:
        return p
    t = like(name, "targets", targets, p)
    same_shape(name, "predictions", p, "targets", t)
    return p - t


def unit(
    x: jax.Array, eps: jax.Array, axes: tuple[int, ...], w: jax.Array | None
) -> jax.Array:
    """``x / sqrt(max(|x|**2, eps))`` per slice, with ``|x|**2`` formed from
    ``x`` scaled by a power of two: the same bits as the direct formula
    unless that one overflows (vectors of 1e20 in float32) or underflows."""
    if w is not None:
        x = jnp.where(w, x, 0.0)  # masked entries, even inf or nan, count for 0
    s = pow2_scale(x, axes)
    xs = x * s
    n2s = jnp.sum(jnp.square(xs), axis=axes, keepdims=True)
    inv = 1.0 / s
    small = n2s * inv * inv < eps  # the squared norm, inf if it overflows
    # Each branch sees safe values where the other is taken, so no inf or nan
    # from the branch not taken reaches the gradient.
    clipped = x / jnp.sqrt(jnp.where(small, eps, 1.0))
    normed = xs / jnp.sqrt(jnp.where(small, 1.0, n2s))
    return jnp.where(small, clipped, normed)


def class_scores(
    name: str, scores: Any, labels: Any, hint: str = ""
) -> tuple[jax.Array, jax.Array]:
    """Checked ``(scores [..., K], labels [...])`` of an integer-label loss."""
    s = floating(name, "scores", scores)
    y = integer(name, "labels", labels, hint)
    if s.ndim < 1 or y.shape != s.shape[:-1]:
        raise ValueError(
            f"{name}: labels must have the scores' shape without the last axis, "
            f"{s.shape[:-1]}; got labels {y.shape} for scores {s.shape}."
        )
    return s, y
