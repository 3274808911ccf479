"""optax.tree's dtype tools: ``cast`` (every leaf to one dtype), ``cast_like``
(to another tree's dtypes) and ``dtype`` (the tree's dtype, with a rule for
mixed dtypes).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["cast", "cast_like", "dtype"]

_HANDLERS = (None, "promote", "highest", "lowest")


def cast(tree: Any, dtype: Any) -> Any:
    """Cast every leaf to ``dtype``; ``None`` leaves the tree as it is.

    Matches: optax.tree.cast(tree, dtype).
    """
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: x.astype(dtype), tree)


def cast_like(tree: Any, other_tree: Any) -> Any:
    """Cast each leaf of ``tree`` to the dtype of ``other_tree``'s leaf at the
    same place (a leaf of ``other_tree`` without a dtype leaves it as is).

    Matches: optax.tree.cast_like(tree, other_tree).
    """
    return jax.tree.map(
        lambda t, o: jnp.asarray(t, o.dtype) if hasattr(o, "dtype") else t,
        tree,
        other_tree,
    )


def _promote(a: Any, b: Any) -> Any:
    # Standard promotion whatever the caller's setting (strict has no lattice).
    with jax.numpy_dtype_promotion("standard"):
        return jnp.promote_types(a, b)


def _order(handler: str):
    """The lower or higher of two dtypes, where one promotes to the other."""

    def pick(a: Any, b: Any) -> Any:
        common = _promote(a, b)
        if common not in (a, b):
            raise ValueError(
                f"jgd.tree.dtype: neither {a} nor {b} promotes to the other, so the "
                f"tree has no {handler} dtype; use mixed_dtype_handler='promote' "
                f"(here {common})."
            )
        high = common
        low = b if high == a else a
        return high if handler == "highest" else low

    return pick


def dtype(tree: Any, mixed_dtype_handler: str | None = None) -> Any:
    """The dtype of a tree's leaves.

    Args:
        tree: a pytree; an empty one has the default float dtype (float32, or
            float64 under x64).
        mixed_dtype_handler: what to do when leaves differ in dtype: None
            (default) raises; ``'promote'`` gives their common dtype under
            standard promotion; ``'highest'`` / ``'lowest'`` the one that all
            others promote to / that promotes to all others.

    Raises:
        ValueError: for mixed dtypes without a handler (naming each leaf that
            differs), dtypes that ``'highest'``/``'lowest'`` cannot order (int32
            and uint32), or another handler.

    Matches: optax.tree.dtype(tree, mixed_dtype_handler).
    """
    if mixed_dtype_handler not in _HANDLERS:
        raise ValueError(
            "jgd.tree.dtype: mixed_dtype_handler must be None, 'promote', "
            f"'highest' or 'lowest'; got {mixed_dtype_handler!r}."
        )
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(leaves).dtype
    dtypes = [jnp.asarray(x).dtype for x in leaves]
    if mixed_dtype_handler is None:
        first = dtypes[0]
        paths = [p for p, _ in jax.tree_util.tree_leaves_with_path(tree)]
        other = [
            f"{d} at {jax.tree_util.keystr(p)}"
            for p, d in zip(paths, dtypes)
            if d != first
        ]
        if other:
            raise ValueError(
                f"jgd.tree.dtype: the leaves have more than one dtype: {first} at "
                f"{jax.tree_util.keystr(paths[0]) or '<root>'}, then "
                f"{', '.join(other)}; pass mixed_dtype_handler='promote', "
                "'highest' or 'lowest'."
            )
        return first
    if mixed_dtype_handler == "promote":
        return functools.reduce(_promote, dtypes)
    return functools.reduce(_order(mixed_dtype_handler), dtypes)
