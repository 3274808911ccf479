"""Each group of params through its own transform: ``partition`` (alias
``multi_transform``), ``freeze`` and ``selective_transform``, with optax's
``PartitionState`` (alias ``MultiTransformState``).

Labels and freeze masks are trees shaped like the params or a prefix of them
(a label on a subtree covers every leaf under it; matched by key path when
node types differ, as a dict over a flax nnx ``State``), or callables of the
params. Each group runs ``masked``: leaves outside it reach its transform as
``MaskedNode()`` and hold no state there. ``jgd.groups`` (grouping.py) builds
the labels from path rules and runs them through ``partition_init``/``_update``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax

from jgd.base import Static, Transform, is_transform, owner_name, register, static_field
from jgd.transforms.elementwise import SetToZero
from jgd.transforms.masking import (
    MaskedState,
    StaticTree,
    is_function,
    is_placeholder,
    mask_tree,
    masked_init,
    masked_update,
    static_mask,
)

__all__ = [
    "MultiTransformState",
    "PartitionState",
    "freeze",
    "multi_transform",
    "partition",
    "selective_transform",
]


class PartitionState(NamedTuple):
    """One ``MaskedState`` per label: that group's transform state over its
    own leaves (optax's ``PartitionState``)."""

    inner_states: Any  # Mapping[label, MaskedState]


MultiTransformState = PartitionState  # optax's older name, the same class


def as_transform(owner: Any, arg: str, tx: Any) -> Any:
    """``tx`` as a child of a jgd value: a jgd transform as it is (its
    hyperparameters stay leaves), an optax one wrapped in ``Static``."""
    if isinstance(tx, (Transform, Static)):
        return tx
    if is_transform(tx):
        return Static(tx)
    raise TypeError(
        f"{owner_name(owner)}: {arg} must be a transform with init and update "
        f"(jgd or optax); got {tx!r} ({type(tx).__name__})."
    )


class StaticLabels(StaticTree):
    """A tree of hashable labels held as static configuration."""

    __slots__ = ()

    def __init__(self, tree: Any, name: str, arg: str):
        def check(path, label):
            try:
                hash(label)
            except TypeError:
                where = jax.tree_util.keystr(path) or "<root>"
                raise TypeError(
                    f"{name}: {arg} must be a tree of hashable labels (keys of "
                    "transforms) shaped like the params or a prefix of them, or a "
                    f"callable params -> such a tree; got {label!r} "
                    f"({type(label).__name__}) at {where}."
                ) from None
            return label

        super().__init__(tree, check)


def _check_labels(owner: Any, labels: Any, transforms: Mapping) -> None:
    unknown = set(jax.tree.leaves(labels)) - set(transforms)
    if unknown:
        raise ValueError(
            f"{owner_name(owner)}: every label in param_labels must be a key of "
            f"transforms {list(transforms)}; got {sorted(unknown, key=repr)}."
        )


def partition_init(transforms: Mapping, labels: Any, params: Any) -> PartitionState:
    """``partition``'s init with ``labels`` already laid over ``params``."""
    if is_placeholder(params):
        # optax.tree_utils.tree_map_params' placeholder, passed down whole
        # (masking.Masked.init does the same).
        return PartitionState(
            {g: MaskedState(tx.init(params)) for g, tx in transforms.items()}
        )
    return PartitionState(
        {g: masked_init(tx, _group(labels, g), params) for g, tx in transforms.items()}
    )


def partition_update(
    transforms: Mapping,
    labels: Any,
    updates: Any,
    state: Any,
    params: Any,
    extra_args: dict,
    mask_compatible_extra_args: bool = False,
) -> tuple[Any, PartitionState]:
    """``partition``'s update with ``labels`` already laid over ``updates``."""
    new = {}
    for g, tx in transforms.items():
        updates, new[g] = masked_update(
            tx,
            _group(labels, g),
            updates,
            state.inner_states[g],
            params,
            extra_args,
            mask_compatible_extra_args,
        )
    return updates, PartitionState(new)


def _group(labels: Any, group: Any) -> Any:
    return jax.tree.map(lambda label: bool(label == group), labels)


def check_partition_state(owner: Any, state: Any, transforms: Mapping) -> None:
    inner = getattr(state, "inner_states", None)
    if not isinstance(inner, Mapping) or set(inner) != set(transforms):
        raise TypeError(
            f"{owner_name(owner)}: state must be the PartitionState init returned, "
            f"with one entry per label {list(transforms)}; got {type(state).__name__}"
            f"{'' if inner is None else f' with labels {list(inner)}'}."
        )


@register
class Partition(Transform):
    """Run each group of params through its own transform, chosen by label.

    Update (per label k, the leaves labelled k):
        u[k] = transforms[k](g[k])     (each as masked(transforms[k], labels == k))

    Args:
        transforms: a mapping label -> transform (jgd or optax). jgd
            transforms are pytree children: their hyperparameters stay leaves.
        param_labels: a tree of labels shaped like the params or a prefix of
            them (a label on a subtree covers every leaf under it), or a
            callable returning one, called on the params in ``init`` and on the
            updates in ``update``. Every label must be a key of
            ``transforms``. A prefix whose node types differ from the params'
            (a dict over a flax nnx ``State`` or an equinox module) is matched
            by key path. Static: new labels mean a new trace.
        mask_compatible_extra_args: also mask every extra keyword argument
            shaped like the updates (static, keyword-only, default False).

    State: ``PartitionState({label: MaskedState(inner_state)})``; a group's
    state covers its own leaves only (``MaskedNode()`` elsewhere).

    Raises:
        TypeError: a label tree that is not a prefix of the params, naming the
            first differing path on both sides.
        ValueError: a label that is not a key of ``transforms``.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.partition({"a": jgd.sgd(0.1), "b": jgd.sgd(1.0)}, {"w": "a", "b": "b"})
        >>> g = {"w": jnp.array([1.0]), "b": jnp.array([1.0])}
        >>> tx.update(g, tx.init(g))[0]
        {'b': Array([-1.], dtype=float32), 'w': Array([-0.1], dtype=float32)}

    Matches: optax.partition(transforms, param_labels, mask_compatible_extra_args=)
    (and optax.multi_transform, the same function); optax raises on a prefix
    whose node types differ from the params'.
    """

    transforms: Any
    param_labels: Any = static_field()
    mask_compatible_extra_args: bool = static_field(default=False, kw_only=True)

    _api = "jgd.partition"

    def __post_init__(self):
        name = owner_name(self)
        if not isinstance(self.transforms, Mapping) or not self.transforms:
            raise TypeError(
                f"{name}: transforms must be a non-empty mapping from labels to "
                f"transforms; got {self.transforms!r}."
            )
        transforms = {
            k: as_transform(self, f"transforms[{k!r}]", t)
            for k, t in self.transforms.items()
        }
        try:
            sorted(transforms)  # a dict's keys are sorted when it is flattened
        except TypeError:
            raise TypeError(
                f"{name}: the labels (keys of transforms) must be comparable with "
                f"each other, as jax sorts a dict's keys; got {list(transforms)}."
            ) from None
        object.__setattr__(self, "transforms", transforms)
        labels = self.param_labels
        if not (is_function(labels) or isinstance(labels, StaticTree)):
            labels = StaticLabels(labels, name, "param_labels")
            _check_labels(self, labels.tree, transforms)
        object.__setattr__(self, "param_labels", labels)
        super().__post_init__()

    def _labels(self, tree: Any, tree_arg: str) -> Any:
        labels = mask_tree(self, "param_labels", self.param_labels, tree, tree_arg)
        _check_labels(self, labels, self.transforms)
        return labels

    def init(self, params: Any) -> Any:
        if is_placeholder(params):
            return partition_init(self.transforms, None, params)
        return partition_init(self.transforms, self._labels(params, "params"), params)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        check_partition_state(self, state, self.transforms)
        return partition_update(
            self.transforms,
            self._labels(updates, "updates"),
            updates,
            state,
            params,
            extra_args,
            self.mask_compatible_extra_args,
        )


partition = Partition
multi_transform = Partition  # optax's older name, the same function


@register
class Freeze(Transform):
    """Zero the updates where ``mask`` is True, holding those params constant.

    Update:
        u = 0     where mask is True
        u = g     where mask is False

    Args:
        mask: a bool, a tree of bools shaped like the params or a prefix of
            them, or a callable params -> such a tree (static). The default
            ``True`` freezes everything it is given: ``jgd.freeze()`` under
            a rule of ``jgd.groups`` or a label of ``partition`` freezes that
            group, which then keeps no state.

    State: ``MaskedState(EmptyState())``: no leaves, whatever the mask.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.freeze({"a": True, "b": False})
        >>> g = {"a": jnp.array([1.0]), "b": jnp.array([2.0])}
        >>> tx.update(g, tx.init(g))[0]
        {'a': Array([0.], dtype=float32), 'b': Array([2.], dtype=float32)}

    Matches: optax.freeze(mask) (``masked(set_to_zero(), mask)``), which has no
    default mask.
    """

    mask: Any = static_field(default=True)

    _api = "jgd.freeze"

    def __post_init__(self):
        object.__setattr__(self, "mask", static_mask(self, "mask", self.mask))
        super().__post_init__()

    def init(self, params: Any) -> Any:
        if is_placeholder(params):
            return MaskedState(SetToZero().init(params))
        return masked_init(
            SetToZero(), mask_tree(self, "mask", self.mask, params, "params"), params
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        mask = mask_tree(self, "mask", self.mask, updates, "updates")
        return masked_update(SetToZero(), mask, updates, state, params, extra_args)


freeze = Freeze


@register
class SelectiveTransform(Transform):
    """Run ``optimizer`` on the params ``freeze_mask`` leaves trainable; zero
    the updates of the frozen ones, which keep no optimizer state.

    Update:
        u = optimizer(g)     where freeze_mask is False
        u = 0                where freeze_mask is True

    Args:
        optimizer: a jgd or optax transform (its hyperparameters stay leaves).
        freeze_mask: keyword-only, required: a bool, a tree of bools shaped like
            the params or a prefix of them, or (beyond optax) a callable
            params -> such a tree. True marks a frozen leaf. Static.

    State: ``PartitionState({"freeze": MaskedState(EmptyState()), "train":
    MaskedState(optimizer state over the trainable leaves)})``.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.selective_transform(jgd.sgd(0.5), freeze_mask={"a": True, "b": False})
        >>> g = {"a": jnp.array([1.0]), "b": jnp.array([2.0])}
        >>> tx.update(g, tx.init(g))[0]
        {'a': Array([0.], dtype=float32), 'b': Array([-1.], dtype=float32)}

    Matches: optax.selective_transform(optimizer, freeze_mask=) (a partition
    into "train" and "freeze"); optax takes a callable freeze_mask for True.
    """

    optimizer: Any
    freeze_mask: Any = static_field(kw_only=True)

    _api = "jgd.selective_transform"

    def __post_init__(self):
        object.__setattr__(
            self, "optimizer", as_transform(self, "optimizer", self.optimizer)
        )
        mask = static_mask(self, "freeze_mask", self.freeze_mask)
        object.__setattr__(self, "freeze_mask", mask)
        super().__post_init__()

    def _transforms(self) -> dict:
        return {"train": self.optimizer, "freeze": SetToZero()}

    def _labels(self, tree: Any, tree_arg: str) -> Any:
        mask = mask_tree(self, "freeze_mask", self.freeze_mask, tree, tree_arg)
        return jax.tree.map(lambda m: "freeze" if m else "train", mask)

    def init(self, params: Any) -> Any:
        labels = None if is_placeholder(params) else self._labels(params, "params")
        return partition_init(self._transforms(), labels, params)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        transforms = self._transforms()
        check_partition_state(self, state, transforms)
        labels = self._labels(updates, "updates")
        return partition_update(transforms, labels, updates, state, params, extra_args)


selective_transform = SelectiveTransform
