"""float16 safety for the element-wise adaptive transforms (``adaptive``,
``adam_family``, ``adan_lion_adadelta``): a float16 leaf's moments are kept in
float32 (``_moment_like``), its gradient is computed on in float32 (``_up``)
and the update is rounded back to float16, saturating at its largest finite
value (``_down``). In float16 ``eps = 1e-8`` is 0 and ``g**2`` under- or overflows,
so optax gives NaN or inf (optax issue #1754). Other dtypes pass unchanged,
so their numbers stay optax's bit for bit.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

_F16 = jnp.dtype(jnp.float16)


def _moment_like(params: Any, fill: Any = 0.0, dtype: Any = None) -> Any:
    """A moment per leaf: in ``dtype`` if given, float32 for float16 leaves,
    else the leaf's dtype."""

    def one(x):
        dt = dtype
        if dt is None and jnp.result_type(x) == _F16:
            dt = jnp.float32
        return jnp.full_like(x, fill, dtype=dt)

    return jax.tree.map(one, params)


def _up(x: jax.Array) -> jax.Array:
    """A float16 leaf in float32 (other dtypes unchanged)."""
    return x.astype(jnp.float32) if x.dtype == _F16 else x


def _down(u: jax.Array, dtype: Any) -> jax.Array:
    """The update back in float16 where the gradient was float16, saturating
    at float16's largest finite value rather than overflowing to inf."""
    if dtype != _F16:
        return u
    top = float(jnp.finfo(_F16).max)
    return jnp.clip(u, -top, top).astype(_F16)
