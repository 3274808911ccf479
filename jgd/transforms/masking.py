"""Apply a transform to part of the params only: ``masked``, with optax's
``MaskedState`` and ``MaskedNode``.

The mask is a tree of bools shaped like the params (or a prefix of them) or a
callable ``params -> such a tree``. Leaves under ``False`` reach the inner
transform as ``MaskedNode()`` (an empty node: no leaves, no state) and come
out unchanged. lars, lamb and adafactor build their weight-decay and
trust-ratio masks with it, as optax composes them.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

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


class StaticMask:
    """A tree of Python bools held as static configuration.

    A dict is not hashable, and jit hashes a value's static fields when the
    value is an argument (jgd.train passes the optimizer so); this compares and
    hashes by the tree's structure and its bools.
    """

    __slots__ = ("key", "tree")

    def __init__(self, tree: Any, name: str, arg: str):
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        bools = []
        for path, m in leaves:
            if isinstance(m, (bool, np.bool_)) or (
                isinstance(m, (np.ndarray, jax.Array))
                and not isinstance(m, jax.core.Tracer)
                and m.shape == ()
                and m.dtype == bool
            ):
                bools.append(bool(m))
                continue
            where = jax.tree_util.keystr(path) or "<root>"
            raise TypeError(
                f"{name}: {arg} must be a tree of bools (shaped like the params or "
                "a prefix of them) or a callable params -> such a tree; got "
                f"{m!r} ({type(m).__name__}) at {where}."
            )
        if not bools:
            raise TypeError(
                f"{name}: {arg} must be a tree of bools (shaped like the params or "
                f"a prefix of them) or a callable params -> such a tree; got {tree!r}."
            )
        self.tree = jax.tree.unflatten(treedef, bools)
        self.key = (treedef, tuple(bools))

    def __eq__(self, other):
        return isinstance(other, StaticMask) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return repr(self.tree)


def static_mask(owner: Any, arg: str, mask: Any) -> Any:
    """``mask`` as static configuration: a callable as it is, a tree of bools
    as a ``StaticMask``; anything else is a TypeError naming ``arg``."""
    if isinstance(mask, StaticMask) or callable(mask):
        return mask
    return StaticMask(mask, owner_name(owner), arg)


def _is_placeholder(params: Any) -> bool:
    """Whether ``params`` is the placeholder ``optax.tree_utils.tree_map_params``
    passes to ``init`` (looked up, never imported: jgd does not import optax)."""
    module = sys.modules.get("optax.tree_utils._state_utils")
    cls = getattr(module, "_ParamsPlaceholder", None)
    return isinstance(cls, type) and isinstance(params, cls)


def _mask_tree(mask: Any, tree: Any) -> Any:
    return mask(tree) if callable(mask) else mask.tree


def _mask_pytree(tree: Any, mask_tree: Any) -> Any:
    return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_tree, tree)


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
            as optax does. Static: a new mask means a new trace.
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

    Matches: optax.masked(inner, mask, mask_compatible_extra_args=), with its
    special case for ``optax.tree_utils.tree_map_params``' placeholder.
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
        if _is_placeholder(params):
            return MaskedState(inner_state=self.inner.init(params))
        masked_params = _mask_pytree(params, _mask_tree(self.mask, params))
        return MaskedState(inner_state=self.inner.init(masked_params))

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        mask_tree = _mask_tree(self.mask, updates)
        if self.mask_compatible_extra_args:
            # Any: jax's PyTreeDef stub has no __eq__ that mypy can see.
            structure: Any = jax.tree.structure(updates)
            extra_args = {
                k: _mask_pytree(v, mask_tree)
                if jax.tree.structure(v) == structure
                else v
                for k, v in extra_args.items()
            }
        masked_params = None if params is None else _mask_pytree(params, mask_tree)
        new, inner_state = self.inner.update(
            _mask_pytree(updates, mask_tree),
            state.inner_state,
            masked_params,
            **extra_args,
        )
        updates = jax.tree.map(lambda m, n, o: n if m else o, mask_tree, new, updates)
        return updates, MaskedState(inner_state=inner_state)


masked = Masked
