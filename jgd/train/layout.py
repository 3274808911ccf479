"""Flat-resident storage: how a params pytree is packed into buckets.

Holds ``Layout`` (static and hashable: each leaf's bucket, offset and shape,
with ``pack`` and ``unpack``), its ``Bucket`` and ``Slot`` records,
``make_layout`` (buckets keyed by dtype and by the per-leaf labels an
optimizer needs: one bool per weight-decay mask) and ``flat_optimizer`` (the
optimizer rewritten to act on buckets: each mask over the params becomes a
mask over the buckets).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd import kernels
from jgd.optimizers import Optimizer
from jgd.transforms import AddDecayedWeights

__all__ = ["Bucket", "Layout", "Slot", "flat_optimizer", "make_layout"]


class Bucket(NamedTuple):
    """One contiguous buffer: its name (the key in ``stored_params``), dtype,
    number of elements, and the labels its leaves share."""

    name: str
    dtype: np.dtype
    size: int
    labels: tuple[bool, ...]


class Slot(NamedTuple):
    """Where one user leaf lives: bucket name, offset, size and shape."""

    bucket: str
    offset: int
    size: int
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a params pytree is packed into buckets (static, hashable).

    ``slots[i]`` places leaf ``i`` of ``treedef``; ``buckets`` are keyed by
    (dtype, labels) in the order their first leaf appears, where the labels
    say, for each of the optimizer's ``masks`` weight-decay masks, whether the
    bucket's leaves are decayed. A transform that needs leaf boundaries inside
    a bucket reads them from ``slots``.
    """

    treedef: Any
    buckets: tuple[Bucket, ...]
    slots: tuple[Slot, ...]
    masks: int = 0

    def __hash__(self) -> int:
        # Hashed on every step call (the offsets cache) and by every jit that
        # takes a layout as a static argument; with thousands of slots that
        # is 0.3 ms a time. The layout is immutable: hash it once.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.treedef, self.buckets, self.slots, self.masks))
            object.__setattr__(self, "_hash", cached)
        return cached

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.buckets)

    def group(self, leaves: Sequence[jax.Array]) -> dict[str, list[jax.Array]]:
        """The leaves (in ``treedef`` order), flattened, as each bucket's list."""
        parts: dict[str, list] = {b.name: [] for b in self.buckets}
        for slot, x in zip(self.slots, leaves, strict=True):
            parts[slot.bucket].append(x if jnp.ndim(x) == 1 else jnp.reshape(x, (-1,)))
        return parts

    def pack(self, leaves: Sequence[jax.Array]) -> dict[str, jax.Array]:
        """The leaves (in ``treedef`` order) concatenated into buckets."""
        parts = self.group(leaves)
        return {
            b.name: jnp.concatenate(parts[b.name]).astype(b.dtype) for b in self.buckets
        }

    def unpack(self, buffers: dict[str, jax.Array], offsets: Any = None) -> Any:
        """The user's pytree, each leaf sliced out of its bucket and reshaped.

        The leaves keep the buffers' dtype, so an optimizer state held in
        another dtype (``mu_dtype``) unpacks too. Inside a compiled program,
        pass ``offsets()`` as an argument of that program: each leaf is then
        cut at a runtime offset, so XLA compiles one kernel per distinct leaf
        computation instead of one per leaf (a constant offset makes every
        slice, and every kernel it fuses into, unique: about 10 ms of
        compile time each on CPU, and out of memory in LLVM at thousands).
        ``offsets`` is one int32 array, which ``jgd.kernels.unstack`` hands
        out as a scalar per leaf, or a sequence of int32 scalars.
        """
        if offsets is None:
            offsets = [s.offset for s in self.slots]
        elif not isinstance(offsets, (tuple, list)):
            offsets = kernels.unstack(offsets)
        leaves = []
        for s, o in zip(self.slots, offsets, strict=True):
            x = jax.lax.dynamic_slice(
                buffers[s.bucket], (o,), (s.size,), allow_negative_indices=False
            )
            leaves.append(x if s.shape == (s.size,) else x.reshape(s.shape))
        return self.treedef.unflatten(leaves)

    def offsets(self) -> Any:
        """Each leaf's offset, as a compiled step takes them (cached per
        layout): one int32 array where ``jgd.kernels`` can hand them out
        (one argument of the program), else a tuple of int32 scalars."""
        return _offsets(self, bool(self.slots) and kernels.ready())

    def is_buffers(self, x: Any) -> bool:
        """True for a dict of this layout's buckets (params, or a moment)."""
        return (
            type(x) is dict
            and x.keys() == set(self.names)
            and all(np.shape(x[b.name]) == (b.size,) for b in self.buckets)
        )


@functools.lru_cache(maxsize=64)
def _offsets(layout: Layout, as_array: bool) -> Any:
    if as_array:
        return jnp.asarray([s.offset for s in layout.slots], jnp.int32)
    return tuple(jnp.asarray(s.offset, jnp.int32) for s in layout.slots)


_unpack_jit = jax.jit(Layout.unpack, static_argnums=0)
pack_now = jax.jit(Layout.pack, static_argnums=0)  # outside a step: one program


def unpack_now(layout: Layout, buffers: dict[str, jax.Array]) -> Any:
    """Unpack outside a step: fresh arrays, compiled once per layout."""
    return _unpack_jit(layout, buffers, layout.offsets())


def _find_masked_decays(opt: Any) -> list[AddDecayedWeights]:
    found: list[AddDecayedWeights] = []

    def visit(node):
        found.append(node)
        return node

    _rewrite_masked_decays(opt, visit)
    return found


def _rewrite_masked_decays(opt: Any, fn: Callable) -> Any:
    """``opt`` with every ``AddDecayedWeights`` that has a mask replaced by
    ``fn(node)``, in a fixed order. jgd optimizers are expanded into their
    ``recipe()`` (their state is the recipe's state, so nothing changes)."""

    def is_node(x):
        return isinstance(x, (AddDecayedWeights, Optimizer))

    def go(x):
        if isinstance(x, Optimizer):
            return _rewrite_masked_decays(x.recipe(), fn)
        if isinstance(x, AddDecayedWeights) and x.mask is not None:
            return fn(x)
        return x

    return jax.tree.map(go, opt, is_leaf=is_node)


def _decay_labels(name: str, node: AddDecayedWeights, params: Any) -> list[bool]:
    """One bool per params leaf: is it decayed by this masked node?"""
    mask = node.mask(params) if callable(node.mask) else node.mask
    try:
        per_leaf = jax.tree.map(
            lambda m, sub: jax.tree.map(lambda _: m, sub), mask, params
        )
    except (ValueError, TypeError) as e:
        raise TypeError(
            f"{name}: the weight-decay mask must be a tree of bools shaped like the "
            f"params tree (or a prefix of it); got {jax.tree.structure(mask)} for "
            f"params {jax.tree.structure(params)}."
        ) from e
    paths = jax.tree_util.tree_flatten_with_path(per_leaf)[0]
    labels = []
    for path, m in paths:
        if np.ndim(m) != 0 or isinstance(m, jax.core.Tracer):
            raise ValueError(
                f"{name}: with flat=True a weight-decay mask needs one concrete bool "
                f"per params leaf; got {m!r} at {jax.tree_util.keystr(path)}. Use "
                "flat=False for element-wise masks."
            )
        labels.append(bool(m))
    return labels


def make_layout(name: str, leaves: list, treedef: Any, opt: Any) -> Layout:
    """The layout of ``treedef``'s ``leaves`` for ``opt``: one bucket per
    dtype and combination of weight-decay mask values (errors name ``name``)."""
    params = treedef.unflatten(leaves)
    per_node = [_decay_labels(name, n, params) for n in _find_masked_decays(opt)]
    keys: dict[tuple, list[int]] = {}
    for i, x in enumerate(leaves):
        key = (np.dtype(x.dtype), tuple(labels[i] for labels in per_node))
        keys.setdefault(key, []).append(i)
    buckets, slots = [], [None] * len(leaves)
    for (dtype, labels), members in keys.items():
        bname = dtype.name
        if labels:
            bname += "/mask=" + "".join("1" if b else "0" for b in labels)
        offset = 0
        for i in members:
            size = math.prod(leaves[i].shape)
            slots[i] = Slot(bname, offset, size, tuple(leaves[i].shape))
            offset += size
        buckets.append(Bucket(bname, dtype, offset, labels))
    return Layout(treedef, tuple(buckets), tuple(slots), len(per_node))


def flat_optimizer(opt: Any, layout: Layout) -> Any:
    """``opt`` acting on ``layout``'s buckets: each weight-decay mask over the
    params becomes the same mask over the buckets (one bool per bucket)."""
    count = iter(range(layout.masks))

    def swap(node):
        i = next(count, None)
        if i is None:
            raise TypeError(
                "jgd.train.make_step: the optimizer has more weight-decay masks than "
                "the one given to jgd.train.init; pass the same optimizer to both."
            )
        return node.replace(mask={b.name: b.labels[i] for b in layout.buckets})

    flat_opt = _rewrite_masked_decays(opt, swap)
    if next(count, None) is not None:
        raise TypeError(
            "jgd.train.make_step: the optimizer has fewer weight-decay masks than "
            "the one given to jgd.train.init; pass the same optimizer to both."
        )
    return flat_opt
