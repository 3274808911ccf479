"""optax.tree's randomness: ``split_key_like`` (one key per leaf),
``random_like`` (a random tree shaped like another) and
``unwrap_random_key_data`` (typed keys to their raw data, for comparisons).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["random_like", "split_key_like", "unwrap_random_key_data"]


def split_key_like(rng_key: Any, target_tree: Any) -> Any:
    """``rng_key`` split into one key per leaf of ``target_tree``, as a tree
    of the same structure.

    Matches: optax.tree.split_key_like(rng_key, target_tree).
    """
    treedef: Any = jax.tree.structure(target_tree)  # jax's stub lacks num_leaves
    keys = jax.random.split(rng_key, treedef.num_leaves)
    return jax.tree.unflatten(treedef, keys)


def _without_sharding(sampler: Callable[..., Any]) -> Callable[..., Any]:
    """``sampler`` taking (and ignoring) ``out_sharding=``."""

    def draw(key: Any, shape: Any, dtype: Any, *, out_sharding: Any) -> Any:
        return sampler(key, shape, dtype)

    return draw


def random_like(
    rng_key: Any,
    target_tree: Any,
    sampler: Callable[..., Any] = jax.random.normal,
    dtype: Any = None,
) -> Any:
    """A tree shaped like ``target_tree`` with leaves drawn by ``sampler``.

    Args:
        rng_key: a PRNG key, split once per leaf (``split_key_like``).
        target_tree: a pytree of arrays, whose shapes (and shardings) the
            random leaves take.
        sampler: ``sampler(key, shape, dtype)`` (optionally with
            ``out_sharding=``), default ``jax.random.normal``.
        dtype: the dtype to sample; default each leaf's own.

    Matches: optax.tree.random_like(rng_key, target_tree, sampler, dtype).
    """
    keys = split_key_like(rng_key, target_tree)
    draw = sampler
    if "out_sharding" not in inspect.signature(sampler).parameters:
        draw = _without_sharding(sampler)
    return jax.tree.map(
        lambda leaf, key: draw(
            key,
            leaf.shape,
            dtype or leaf.dtype,
            out_sharding=jax.typeof(leaf).sharding,
        ),
        target_tree,
        keys,
    )


def unwrap_random_key_data(input_tree: Any) -> Any:
    """Every typed PRNG key leaf replaced by its raw data
    (``jax.random.key_data``), so that trees with keys compare as numbers.

    Matches: optax.tree.unwrap_random_key_data(input_tree).
    """

    def unwrap(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(
            x.dtype, jax.dtypes.prng_key
        ):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(unwrap, input_tree)
