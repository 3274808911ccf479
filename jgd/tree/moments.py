"""optax.tree's moment updates: ``update_moment`` (an exponential moving
average of ``g**order``), ``update_moment_per_elem_norm`` (of ``|g|**order``,
real for complex ``g``), ``update_infinity_moment`` (Adamax's max) and
``bias_correction`` (``m / (1 - decay**t)``). A ``None`` update leaf gives a
``None`` moment, as in optax.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jgd.tree.core import correction

__all__ = [
    "bias_correction",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
]


def _is_none(x: Any) -> bool:
    return x is None


def update_moment(updates: Any, moments: Any, decay: Any, order: Any) -> Any:
    """The exponential moving average of the ``order``-th power of updates.

    Update:
        m = (1 - decay) * g**order + decay * m

    Matches: optax.tree.update_moment(updates, moments, decay, order).
    """
    return jax.tree.map(
        lambda g, m: None if g is None else (1 - decay) * (g**order) + decay * m,
        updates,
        moments,
        is_leaf=_is_none,
    )


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
    """The exponentially weighted infinity norm of updates (Adamax).

    Update:
        m = max(|g| + eps, decay * m)

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    2015, Algorithm 2.

    Matches: optax.tree.update_infinity_moment(updates, moments, decay, eps).
    """
    return jax.tree.map(
        lambda g, m: None if g is None else jnp.maximum(jnp.abs(g) + eps, decay * m),
        updates,
        moments,
        is_leaf=_is_none,
    )


def _elem_norm(g: jax.Array, order: Any) -> jax.Array:
    """``|g|**order``; for complex ``g``, ``(conj(g) * g).real ** (order / 2)``."""
    if jnp.isrealobj(g):
        return g**order
    half = order / 2
    # An integer exponent stays an int: JAX lowers int and float powers apart.
    if half.is_integer():
        half = int(half)
    return (g.conj() * g).real ** half


def update_moment_per_elem_norm(
    updates: Any, moments: Any, decay: Any, order: Any
) -> Any:
    """The exponential moving average of ``|g|**order``, element-wise: real
    even for complex updates.

    Update:
        m = (1 - decay) * |g|**order + decay * m

    Matches: optax.tree.update_moment_per_elem_norm(updates, moments, decay,
    order).
    """
    return jax.tree.map(
        lambda g, m: (
            None if g is None else (1 - decay) * _elem_norm(g, order) + decay * m
        ),
        updates,
        moments,
        is_leaf=_is_none,
    )


def bias_correction(moments: Any, decay: Any, count: jax.Array) -> Any:
    """``m / (1 - decay**count)`` for every leaf ``m`` of ``moments``.

    The power is taken once, in the default float dtype (``correction``), so
    bf16 moments do not round ``decay**count`` to 1; the division runs in each
    moment's dtype.

    Matches: optax.tree.bias_correction(moment, decay, count), bit for bit.
    """
    bc = correction(decay, count)
    return jax.tree.map(lambda m: m / bc.astype(m.dtype), moments)
