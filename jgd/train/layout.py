"""How a ``TrainState`` stores the params: the two layouts behind one interface.

``Layout`` packs the small leaves into 1-D buckets (keyed by dtype, sharding
and the weight-decay labels the optimizer needs) and keeps the big or sharded
ones resident as themselves; ``PerLeaf`` stores the user's tree as it is.
``make_layout`` chooses, and refuses with a clear error what it cannot store
correctly. ``needs_leaves`` names the first transform of an optimizer that
needs leaf boundaries (those run on ``PerLeaf``). See ``README.md`` here.
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
from jax.sharding import NamedSharding, PartitionSpec, SingleDeviceSharding

from jgd.base import Chain, Static, Transform, is_transform
from jgd.optimizers import Optimizer
from jgd.transforms import AddDecayedWeights

__all__ = [
    "PACK_BELOW",
    "PACK_MIN_LEAVES",
    "PACK_MIN_SIZE",
    "Bucket",
    "Layout",
    "PerLeaf",
    "Slot",
    "make_layout",
    "needs_leaves",
]

# Leaves with fewer elements than this are packed into buckets; bigger ones
# stay resident. Measured on real models (benchmarks/README.md, "layout").
PACK_BELOW = 1 << 14
# With flat=None, packing also needs many small leaves or a model big enough
# that its step outlasts packing's fixed cost (tens of microseconds a step);
# measured in benchmarks/small_models.py.
PACK_MIN_LEAVES = 64
PACK_MIN_SIZE = 1 << 18


class Bucket(NamedTuple):
    """One contiguous buffer: its key in the stored dict, dtype, number of
    elements, the labels its leaves share and its (replicated) sharding."""

    name: str
    dtype: np.dtype
    size: int
    labels: tuple[bool, ...]
    sharding: Any = None


class Slot(NamedTuple):
    """Where one user leaf lives: the stored key (a bucket's name, or the
    leaf's own key when resident), offset and size in that bucket, shape."""

    bucket: str
    offset: int
    size: int
    shape: tuple[int, ...]
    packed: bool = True


def _placed(sharding: Any) -> Any:
    """The sharding a state leaf must keep, or None where any placement does
    (one device: jit's own choice is right)."""
    return None if isinstance(sharding, SingleDeviceSharding) else sharding


def _pin(x: jax.Array, sharding: Any) -> jax.Array:
    """Inside a step: constrain ``x`` to ``sharding``. Explicit mesh axes
    already carry it in the type (and refuse the constraint)."""
    if sharding is None or not isinstance(sharding, NamedSharding):
        return x
    if jax.sharding.AxisType.Explicit in sharding.mesh.axis_types:
        return x
    return jax.lax.with_sharding_constraint(x, sharding)


def _put(x: Any, sharding: Any) -> Any:
    return x if sharding is None else jax.device_put(x, sharding)


class _Storage:
    """What the step needs from a layout (both kinds implement it)."""

    _zip: Callable[[Callable, Any], Any]  # each kind defines it

    def is_stored(self, x: Any) -> bool:
        """True for a tree in the stored form (params, or a moment)."""
        raise NotImplementedError

    def _map_stored(self, fn: Callable, tree: Any) -> Any:
        """``fn`` on every stored-form subtree of ``tree`` (the params, each
        moment of the optimizer state); other leaves as they are."""
        return jax.tree.map(
            lambda x: fn(x) if self.is_stored(x) else x, tree, is_leaf=self.is_stored
        )

    def pin(self, tree: Any) -> Any:
        """Inside a step: every stored-form subtree keeps the params'
        shardings."""
        return self._map_stored(lambda x: self._zip(_pin, x), tree)

    def place(self, tree: Any) -> Any:
        """Outside a step: put every stored-form subtree on the params'
        shardings."""
        return self._map_stored(lambda x: self._zip(_put, x), tree)


@dataclasses.dataclass(frozen=True, eq=True)
class PerLeaf(_Storage):
    """The user's tree stored as it is: one buffer per leaf (``flat=False``,
    and optimizers that need leaf boundaries)."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    shardings: tuple[Any, ...]

    def __hash__(self) -> int:  # hashed on every step call: once is enough
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.treedef, self.shapes, self.shardings))
            object.__setattr__(self, "_hash", cached)
        return cached

    def store(self, leaves: Sequence[jax.Array]) -> Any:
        return self.treedef.unflatten(list(leaves))

    def view(self, stored: Any, offsets: Any = ()) -> Any:
        return stored

    def gather(self, grads: Any, like: Any) -> Any:
        """The gradient tree in the stored form: as it is."""
        return grads

    def optimizer(self, opt: Any) -> Any:
        return opt

    def offsets(self) -> tuple:
        return ()

    def to_user(self, stored: Any) -> Any:
        return jax.tree.map(jnp.copy, stored)

    def is_stored(self, x: Any) -> bool:
        leaves, treedef = jax.tree.flatten(x)
        return (
            treedef == self.treedef
            and all(_is_float(a) for a in leaves)
            and tuple(np.shape(a) for a in leaves) == self.shapes
        )

    def _zip(self, fn: Callable, x: Any) -> Any:
        leaves = jax.tree.leaves(x)
        return self.treedef.unflatten(
            [fn(a, s) for a, s in zip(leaves, self.shardings, strict=True)]
        )


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(getattr(x, "dtype", np.float64), jnp.floating)


@dataclasses.dataclass(frozen=True)
class Layout(_Storage):
    """Small leaves packed into buckets, the rest resident (static, hashable).

    ``slots[i]`` places leaf ``i`` of ``treedef``: in a bucket at an offset,
    or resident under its own key (``packed=False``). The stored params are a
    dict from bucket names and resident keys to arrays; the optimizer runs on
    that dict. ``masks`` counts the optimizer's weight-decay masks, whose
    per-leaf values (labels) split the buckets.
    """

    treedef: Any
    buckets: tuple[Bucket, ...]
    slots: tuple[Slot, ...]
    masks: int = 0
    labels: tuple[tuple[str, tuple[bool, ...]], ...] = ()
    shardings: tuple[tuple[str, Any], ...] = ()

    def __hash__(self) -> int:
        # Hashed on every step call (the offsets cache) and by the jits that
        # take a layout as a static argument: hash it once.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(
                (self.treedef, self.buckets, self.slots, self.masks, self.shardings)
            )
            object.__setattr__(self, "_hash", cached)
        return cached

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.buckets)

    @functools.cached_property
    def keys(self) -> frozenset[str]:
        """Every key of the stored dict: buckets and resident leaves."""
        return frozenset(self.names) | {s.bucket for s in self.slots if not s.packed}

    @functools.cached_property
    def _packed(self) -> tuple[Slot, ...]:
        return tuple(s for s in self.slots if s.packed)

    def group(self, leaves: Sequence[jax.Array]) -> dict[str, list[jax.Array]]:
        """The leaves (in ``treedef`` order) as each stored key's list: a
        bucket's flattened leaves, or a resident leaf alone and unchanged."""
        parts: dict[str, list] = {b.name: [] for b in self.buckets}
        for slot, x in zip(self.slots, leaves, strict=True):
            if not slot.packed:
                parts[slot.bucket] = [x]
            else:
                parts[slot.bucket].append(x if jnp.ndim(x) == 1 else jnp.ravel(x))
        return parts

    def pack(self, leaves: Sequence[jax.Array]) -> dict[str, jax.Array]:
        """The leaves (in ``treedef`` order) in the stored form."""
        dtypes = {b.name: b.dtype for b in self.buckets}
        return {
            k: (jnp.concatenate(xs).astype(dtypes[k]) if k in dtypes else xs[0])
            for k, xs in self.group(leaves).items()
        }

    store = pack

    def gather(self, grads: Any, like: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """The gradient tree in the stored form, each bucket's leaves
        concatenated in the dtype of ``like`` (the stored params)."""
        return {
            k: (jnp.concatenate(xs) if len(xs) > 1 else xs[0]).astype(like[k].dtype)
            for k, xs in self.group(jax.tree.leaves(grads)).items()
        }

    def unpack(self, buffers: dict[str, jax.Array], offsets: Any = None) -> Any:
        """The user's pytree: resident leaves as they are, packed ones sliced
        out of their bucket and reshaped.

        Inside a compiled program pass ``offsets()`` as arguments of that
        program: a leaf is then cut at a runtime offset, so XLA compiles one
        kernel per distinct leaf computation rather than one per leaf (each
        constant slice makes a unique kernel). None uses constants.
        """
        if offsets is None:
            offsets = [s.offset for s in self._packed]
        it = iter(offsets)
        leaves = []
        for s in self.slots:
            if not s.packed:
                leaves.append(buffers[s.bucket])
                continue
            x = jax.lax.dynamic_slice(
                buffers[s.bucket], (next(it),), (s.size,), allow_negative_indices=False
            )
            leaves.append(x if s.shape == (s.size,) else x.reshape(s.shape))
        return self.treedef.unflatten(leaves)

    view = unpack

    def offsets(self) -> tuple[jax.Array, ...]:
        """The packed leaves' offsets as a compiled step takes them: one int32
        scalar each (cached per layout)."""
        return _offsets(self)

    def optimizer(self, opt: Any) -> Any:
        """``opt`` acting on the stored dict: each weight-decay mask over the
        params becomes the same mask over the stored keys."""
        count = iter(range(self.masks))
        labels = dict(self.labels)

        def swap(node):
            i = next(count, None)
            if i is None:
                raise TypeError(_MASKS_CHANGED)
            return node.replace(mask={k: v[i] for k, v in labels.items()})

        flat_opt = _rewrite_masked_decays(opt, swap)
        if next(count, None) is not None:
            raise TypeError(_MASKS_CHANGED)
        return flat_opt

    def to_user(self, stored: dict[str, jax.Array]) -> Any:
        return _unpack_jit(self, stored, self.offsets())

    def is_stored(self, x: Any) -> bool:
        return type(x) is dict and x.keys() == self.keys

    def _zip(self, fn: Callable, x: dict[str, jax.Array]) -> dict[str, jax.Array]:
        shardings = dict(self.shardings)
        return {k: fn(v, shardings.get(k)) for k, v in x.items()}


_MASKS_CHANGED = (
    "jgd.train.make_step: the state's optimizer has a different number of "
    "weight-decay masks than the one its layout was made for; start again with "
    "jgd.train.init(params, opt)."
)


@functools.lru_cache(maxsize=64)
def _offsets(layout: Layout) -> tuple[jax.Array, ...]:
    return tuple(jnp.asarray(s.offset, jnp.int32) for s in layout.slots if s.packed)


_unpack_jit = jax.jit(Layout.unpack, static_argnums=0)


# --------------------------------------------------------------------------
# Which optimizers a packed layout computes exactly.
# --------------------------------------------------------------------------

# optax transforms whose math is element-wise or a global sum, so they give
# the same numbers on buckets (matched by their update function's name).
_OPTAX_ELEMENTWISE = frozenset(
    [
        "identity",
        "scale",
        "scale_by_learning_rate",
        "scale_by_schedule",
        "trace",
        "ema",
        "clip",
        "clip_by_global_norm",
        "scale_by_adam",
        "scale_by_adamax",
        "scale_by_amsgrad",
        "scale_by_rms",
        "scale_by_stddev",
        "scale_by_rss",
        "scale_by_belief",
        "scale_by_yogi",
        "scale_by_lion",
        "scale_by_sign",
        "scale_by_radam",
        "zero_nans",
        "keep_params_nonnegative",
        "add_decayed_weights",
    ]
)


def _foreign_name(tx: Any) -> str:
    fn = getattr(tx, "update", None)
    return getattr(fn, "__qualname__", type(tx).__name__).split(".<locals>")[0]


def _flat(items: Any) -> list:
    if isinstance(items, (list, tuple)):
        return [x for item in items for x in _flat(item)]
    return [items]


def needs_leaves(opt: Any) -> str | None:
    """The name of the first transform in ``opt`` that needs leaf boundaries
    (per-leaf norms or trust ratios, factored moments, masks or labels over
    the user's tree, an optax transform jgd cannot see into), or None when
    ``opt`` computes the same numbers on packed buckets."""
    if isinstance(opt, Optimizer):
        return needs_leaves(opt.recipe())
    if isinstance(opt, Chain):
        return next(filter(None, map(needs_leaves, opt.transforms)), None)
    if isinstance(opt, Transform):
        if type(opt).packable:
            return None
        # A wrapper whose own math is element-wise or global (a step count,
        # an accumulator) packs exactly when the transforms it wraps do.
        inner = [getattr(opt, f) for f in getattr(type(opt), "packable_inner", ())]
        if inner:
            return next(filter(None, map(needs_leaves, _flat(inner))), None)
        return type(opt).__name__
    value = opt.value if isinstance(opt, Static) else opt
    if is_transform(value):
        name = _foreign_name(value)
        return None if name in _OPTAX_ELEMENTWISE else f"{name} (optax)"
    return type(value).__name__


# --------------------------------------------------------------------------
# Weight-decay masks: the labels that split buckets.
# --------------------------------------------------------------------------


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


def _masked_decays(opt: Any) -> list[AddDecayedWeights]:
    found: list[AddDecayedWeights] = []
    _rewrite_masked_decays(opt, lambda n: found.append(n) or n)  # type: ignore[func-returns-value]
    return found


class _ElementwiseMask(ValueError):
    pass


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
    labels = []
    for path, m in jax.tree_util.tree_flatten_with_path(per_leaf)[0]:
        if np.ndim(m) != 0 or isinstance(m, jax.core.Tracer):
            raise _ElementwiseMask(
                f"{name}: with flat=True a weight-decay mask needs one concrete bool "
                f"per params leaf; got {m!r} at {jax.tree_util.keystr(path)}. Use "
                "flat=False (or the default) for element-wise masks."
            )
        labels.append(bool(m))
    return labels


def leaf_labels(name: str, opt: Any, params: Any) -> list[tuple[bool, ...]]:
    """Per params leaf, its value under each of ``opt``'s weight-decay masks."""
    per_node = [_decay_labels(name, n, params) for n in _masked_decays(opt)]
    return [
        tuple(ls[i] for ls in per_node) for i in range(len(jax.tree.leaves(params)))
    ]


# --------------------------------------------------------------------------
# Choosing a layout.
# --------------------------------------------------------------------------


def _bucket_sharding(sharding: Any) -> Any:
    """The sharding of a bucket holding a leaf placed by ``sharding``, or
    False when the leaf must stay resident (split across devices)."""
    if isinstance(sharding, SingleDeviceSharding):
        return sharding
    if isinstance(sharding, NamedSharding) and sharding.is_fully_replicated:
        return NamedSharding(sharding.mesh, PartitionSpec(), sharding.memory_kind)  # type: ignore[call-arg]
    return False


def _resident_key(path: Any) -> str:
    return "leaf" + (jax.tree_util.keystr(path) or "[]")


def _worth_packing(arrays: list, pack_below: int) -> bool:
    small = sum(1 for a in arrays if a.size < pack_below)
    return small >= PACK_MIN_LEAVES or sum(a.size for a in arrays) >= PACK_MIN_SIZE


def make_layout(
    name: str, arrays: list, treedef: Any, opt: Any, flat: bool | None, pack_below: int
) -> Layout | PerLeaf:
    """The layout for ``arrays`` (``treedef``'s leaves) under ``opt``.

    ``flat=False`` stores leaf by leaf. ``None`` packs unless ``opt`` needs
    leaf boundaries; ``True`` packs, and refuses such an ``opt``.
    """
    shardings = tuple(getattr(a, "sharding", None) for a in arrays)
    per_leaf = PerLeaf(
        treedef, tuple(a.shape for a in arrays), tuple(map(_placed, shardings))
    )
    if flat is False:
        return per_leaf
    culprit = needs_leaves(opt)
    if culprit is not None:
        if flat:
            raise ValueError(
                f"{name}: {culprit} needs leaf boundaries, which flat=True packs "
                "away; its numbers would differ. Use flat=False, or leave flat "
                "unset to store such optimizers leaf by leaf."
            )
        return per_leaf
    params = treedef.unflatten(arrays)
    try:
        labels = leaf_labels(name, opt, params)
    except _ElementwiseMask:
        if flat:
            raise
        return per_leaf
    if flat is None and not _worth_packing(arrays, pack_below):
        return per_leaf
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    keys: dict[tuple, list[int]] = {}
    resident: list[int] = []
    for i, x in enumerate(arrays):
        where = _bucket_sharding(shardings[i])
        if x.size >= pack_below or where is False:
            resident.append(i)
        else:
            keys.setdefault((np.dtype(x.dtype), labels[i], where), []).append(i)
    slots: list[Any] = [None] * len(arrays)
    buckets: list[Any] = []
    placed: list[Any] = []
    by_key: list[Any] = []
    for n, ((dtype, lab, where), members) in enumerate(keys.items()):
        bname = dtype.name
        if lab:
            bname += "/mask=" + "".join("1" if b else "0" for b in lab)
        if any(b.name == bname for b in buckets):  # same dtype+labels, other devices
            bname += f"/{n}"
        offset = 0
        for i in members:
            size = math.prod(arrays[i].shape)
            slots[i] = Slot(bname, offset, size, tuple(arrays[i].shape))
            offset += size
        buckets.append(Bucket(bname, dtype, offset, lab, _placed(where)))
        placed.append((bname, _placed(where)))
        by_key.append((bname, lab))
    for i in resident:
        key = _resident_key(paths[i])
        slots[i] = Slot(key, 0, arrays[i].size, tuple(arrays[i].shape), packed=False)
        placed.append((key, _placed(shardings[i])))
        by_key.append((key, labels[i]))
    n_masks = len(labels[0]) if labels else len(_masked_decays(opt))
    return Layout(
        treedef,
        tuple(buckets),
        tuple(slots),
        n_masks,
        tuple(by_key),
        tuple((k, s) for k, s in placed if s is not None),
    )
