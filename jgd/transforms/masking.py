"""Apply a transform to part of the params only: ``masked``, with optax's
``MaskedState`` and ``MaskedNode``.

The mask is a tree of bools shaped like the params (or a prefix of them) or a
callable ``params -> such a tree``. Leaves under ``False`` reach the inner
transform as ``MaskedNode()`` (an empty node: no leaves, no state) and come
out unchanged. lars, lamb and adafactor build their weight-decay and
trust-ratio masks with it, as optax composes them; partitioning.py builds on
its pieces (``prefix_of`` lays a mask or label tree over the params by key
path when node types differ, as a dict over a flax nnx ``State``).
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

import jax
import numpy as np

from jgd.base import Static, Transform, is_transform, owner_name, register, static_field

__all__ = ["MaskedNode", "MaskedState", "masked"]


class MaskedState(NamedTuple):
    """The inner transform's state, over the masked-in leaves (optax's)."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands for a masked-out leaf or subtree: a node without children, so
    ``jax.tree.map`` passes over it (optax's)."""


class StaticTree:
    """A tree of hashable Python leaves held as static configuration.

    A dict is not hashable, and jit hashes a value's static fields when the
    value is an argument (jgd.train passes the optimizer so); this compares and
    hashes by the tree's structure and its leaves. ``check(path, leaf)``
    returns the leaf to keep or raises.
    """

    __slots__ = ("key", "tree")

    def __init__(self, tree: Any, check: Callable[[Any, Any], Any]):
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        kept = tuple(check(path, leaf) for path, leaf in leaves)
        self.tree = jax.tree.unflatten(treedef, kept)
        self.key = (type(self), treedef, kept)

    def __eq__(self, other):
        return isinstance(other, StaticTree) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return repr(self.tree)


class StaticMask(StaticTree):
    """A tree of Python bools held as static configuration (``StaticTree``)."""

    __slots__ = ()

    def __init__(self, tree: Any, name: str, arg: str):
        what = (
            f"{name}: {arg} must be a tree of bools (shaped like the params or a "
            "prefix of them) or a callable params -> such a tree; got"
        )

        def check(path, m):
            if isinstance(m, (bool, np.bool_)) or (
                isinstance(m, (np.ndarray, jax.Array))
                and not isinstance(m, jax.core.Tracer)
                and m.shape == ()
                and m.dtype == bool
            ):
                return bool(m)
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(f"{what} {m!r} ({type(m).__name__}) at {where}.")

        super().__init__(tree, check)
        if not self.key[2]:
            raise TypeError(f"{what} {tree!r}.")


def is_function(x: Any) -> bool:
    """A callable that is not a tree of labels: an equinox module of bools or
    strings is callable too (its ``__call__``), but it holds them as leaves;
    a function or ``functools.partial`` is its own leaf, and a
    ``jax.tree_util.Partial`` holds its arguments."""
    if not callable(x):
        return False
    leaves = jax.tree.leaves(x)
    return (
        not leaves
        or leaves[0] is x
        or not all(isinstance(leaf, (bool, np.bool_, str, int)) for leaf in leaves)
    )


def static_mask(owner: Any, arg: str, mask: Any) -> Any:
    """``mask`` as static configuration: a callable as it is, a tree of bools
    as a ``StaticMask``; anything else is a TypeError naming ``arg``."""
    if isinstance(mask, StaticMask) or is_function(mask):
        return mask
    return StaticMask(mask, owner_name(owner), arg)


def is_placeholder(params: Any) -> bool:
    """Whether ``params`` is the placeholder ``optax.tree_utils.tree_map_params``
    passes to ``init`` (looked up, never imported: jgd does not import optax)."""
    module = sys.modules.get("optax.tree_utils._state_utils")
    cls = getattr(module, "_ParamsPlaceholder", None)
    return isinstance(cls, type) and isinstance(params, cls)


def key_name(key: Any) -> Any:
    """The name or index inside one entry of a jax key path (a dict key, a
    sequence index, an attribute name), so paths compare across node types."""
    for field in ("key", "idx", "name"):
        if hasattr(key, field):
            return getattr(key, field)
    return str(key)


def is_variable(x: Any) -> bool:
    """A flax nnx ``Variable`` (looked up, never imported): a leaf for key
    paths, so ``State`` trees with and without them (nnx.Optimizer's init and
    update) give the same paths."""
    cls = getattr(sys.modules.get("flax.nnx"), "Variable", None)
    return isinstance(cls, type) and isinstance(x, cls)


def _unwrap_variable(x: Any) -> Any:
    if is_variable(x):
        inner = jax.tree.leaves(x)
        return inner[0] if len(inner) == 1 else x
    return x


def prefix_of(name: str, arg: str, prefix: Any, tree: Any, tree_arg: str) -> Any:
    """``prefix`` as a tree that ``jax.tree.map(f, it, tree)`` accepts.

    A structural prefix of ``tree`` is returned as it is (optax's semantics,
    states equal optax's). Otherwise ``prefix`` is matched by key paths, node
    types aside (a dict of labels over a flax nnx ``State`` or an equinox
    module): every leaf of ``tree`` takes the value of the ``prefix`` leaf at
    the longest path above it, giving a tree shaped like ``tree``. A leaf with
    nothing above it, or a ``prefix`` leaf with nothing under it, is a
    TypeError naming the first such path on both sides.
    """
    try:
        jax.tree.map(lambda *_: None, prefix, tree)
        return prefix
    except (TypeError, ValueError):
        pass
    norm = lambda path: tuple(key_name(k) for k in path)
    labels = jax.tree_util.tree_flatten_with_path(prefix, is_leaf=is_variable)[0]
    by_path = {norm(path): (path, _unwrap_variable(v)) for path, v in labels}
    # MaskedNode is a leaf here: a label over a masked-out subtree is used.
    leaves, treedef = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=lambda x: isinstance(x, MaskedNode) or is_variable(x)
    )
    values, used = [], set()
    for path, _ in leaves:
        key = norm(path)
        hit = next(
            (key[:i] for i in range(len(key), -1, -1) if key[:i] in by_path), None
        )
        if hit is None:
            near = _nearest(key, [norm(p) for p, _ in labels])
            other = jax.tree_util.keystr(labels[near][0]) if near is not None else None
            _mismatch(name, arg, tree_arg, jax.tree_util.keystr(path), other)
        used.add(hit)
        values.append(by_path[hit][1])
    for key, (path, _) in by_path.items():
        if key not in used:
            near = _nearest(key, [norm(p) for p, _ in leaves])
            other = jax.tree_util.keystr(leaves[near][0]) if near is not None else None
            _mismatch(name, arg, tree_arg, other, jax.tree_util.keystr(path))
    return jax.tree.unflatten(treedef, values)


def _nearest(key: tuple, keys: list[tuple]) -> int | None:
    """The index of the one of ``keys`` sharing the longest start with
    ``key``, then the most alike next key (a typo's fix), then the first;
    None when ``keys`` is empty."""

    def score(i):
        other, n = keys[i], 0
        while n < min(len(key), len(other)) and key[n] == other[n]:
            n += 1
        alike = 0.0
        if n < min(len(key), len(other)):
            alike = difflib.SequenceMatcher(None, str(key[n]), str(other[n])).ratio()
        return (n, alike, -i)

    return max(range(len(keys)), key=score, default=None)


def _mismatch(
    name: str, arg: str, tree_arg: str, at_tree: Any, at_arg: Any
) -> NoReturn:
    show = lambda p: "<nothing>" if p is None else (p or "<root>")
    raise TypeError(
        f"{name}: {arg} must be a tree shaped like the {tree_arg} or a prefix of "
        f"them; first difference: {tree_arg} has {show(at_tree)}, {arg} has "
        f"{show(at_arg)}."
    )


def mask_tree(owner: Any, arg: str, mask: Any, tree: Any, tree_arg: str) -> Any:
    """The tree ``mask`` (a ``StaticTree`` or a callable) gives for ``tree``,
    laid over it by ``prefix_of``; ``arg`` names ``mask`` in errors."""
    value = mask.tree if isinstance(mask, StaticTree) else mask(tree)
    return prefix_of(owner_name(owner), arg, value, tree, tree_arg)


def _mask_pytree(tree: Any, mask_tree: Any) -> Any:
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)


def masked_init(inner: Any, mask_tree: Any, params: Any) -> MaskedState:
    """``masked``'s init with the mask tree already laid over ``params``."""
    return MaskedState(inner_state=inner.init(_mask_pytree(params, mask_tree)))


def masked_update(
    inner: Any,
    mask_tree: Any,
    updates: Any,
    state: MaskedState,
    params: Any,
    extra_args: dict,
    mask_compatible_extra_args: bool = False,
) -> tuple[Any, MaskedState]:
    """``masked``'s update with the mask tree already laid over ``updates``."""
    if mask_compatible_extra_args:
        # Any: jax's PyTreeDef stub has no __eq__ that mypy can see.
        structure: Any = jax.tree.structure(updates)
        extra_args = {
            k: _mask_pytree(v, mask_tree) if jax.tree.structure(v) == structure else v
            for k, v in extra_args.items()
        }
    masked_params = None if params is None else _mask_pytree(params, mask_tree)
    new, inner_state = inner.update(
        _mask_pytree(updates, mask_tree),
        state.inner_state,
        masked_params,
        **extra_args,
    )
    updates = jax.tree.map(lambda m, n, o: n if m else o, mask_tree, new, updates)
    return updates, MaskedState(inner_state=inner_state)


@register
class Masked(Transform):
    """Apply ``inner`` where ``mask`` is True; pass the other updates through.

    Update:
        u = inner(g)    where mask is True (inner sees MaskedNode() elsewhere)
        u = g           where mask is False

    Args:
        inner: a jgd or optax transform.
        mask: a tree of bools shaped like the params or a prefix of them (a
            single ``True`` covers everything), or a callable returning one;
            called on the params in ``init`` and on the updates in ``update``,
            as optax does. Static: a new mask means a new trace. A prefix
            whose node types differ from the params' (a dict over a flax nnx
            ``State`` or an equinox module) is matched by key path.
        mask_compatible_extra_args: also mask every extra keyword argument
            whose tree has the updates' structure (static, keyword-only).

    Only the masked-in leaves have inner state: ``MaskedState(inner_state)``.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> from jgd.transforms.masking import masked
        >>> tx = masked(jgd.scale(-1.0), {"w": True, "b": False})
        >>> g = {"w": jnp.array([2.0]), "b": jnp.array([2.0])}
        >>> tx.update(g, tx.init(g))[0]
        {'b': Array([2.], dtype=float32), 'w': Array([-2.], dtype=float32)}

    Raises:
        TypeError: a mask that is not a prefix of the params (by structure
            or by key path), naming the first differing path on both sides.

    Matches: optax.masked(inner, mask, mask_compatible_extra_args=), with its
    special case for ``optax.tree_utils.tree_map_params``' placeholder;
    optax raises on a prefix whose node types differ from the params'.
    """

    inner: Any
    mask: Any = static_field()
    mask_compatible_extra_args: bool = static_field(default=False, kw_only=True)

    _api = "jgd.masked"

    def __post_init__(self):
        inner = self.inner
        if not isinstance(inner, (Transform, Static)):
            if not is_transform(inner):
                raise TypeError(
                    f"{owner_name(self)}: inner must be a transform with init and "
                    f"update (jgd or optax); got {inner!r} ({type(inner).__name__})."
                )
            object.__setattr__(self, "inner", Static(inner))
        object.__setattr__(self, "mask", static_mask(self, "mask", self.mask))
        super().__post_init__()

    def init(self, params: Any) -> Any:
        # optax.tree_map_params calls init with a placeholder for the params;
        # as optax.masked, pass it down whole so it marks the inner state.
        if is_placeholder(params):
            return MaskedState(inner_state=self.inner.init(params))
        return masked_init(
            self.inner, mask_tree(self, "mask", self.mask, params, "params"), params
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        return masked_update(
            self.inner,
            mask_tree(self, "mask", self.mask, updates, "updates"),
            updates,
            state,
            params,
            extra_args,
            self.mask_compatible_extra_args,
        )


masked = Masked
