"""Key paths: the user's trees as lists of (path, leaf), the names a checkpoint
stores its leaves under.

A path joins the keys from the root with ``/``: ``params/layers/0/w``. In the
optimizer state a transform's state (any node that is not a dict, list or
tuple, e.g. ``ScaleByAdamState``) adds its type to its key:
``opt_state/0:ScaleByAdamState/mu/layers/0/w``. Keys are percent-escaped
(``/``, ``:``, ``.`` and ``%`` in a dict key never clash with the scheme).
"""

from __future__ import annotations

import urllib.parse
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgd.train.layout import Layout
from jgd.train.state import TrainState

__all__ = ["Leaf", "flatten", "leaves", "nest", "user_trees"]


class Leaf(NamedTuple):
    """One leaf and its key path; in the optimizer state, the outermost
    transform state it sits in (its path, up to ``:Type``, and type name)."""

    path: str
    value: Any
    record: str | None = None
    kind: str | None = None


def _escape(key: Any) -> str:
    # '/' separates keys, ':' announces a type, '.' joins orbax's own names.
    return urllib.parse.quote(str(key), safe="").replace(".", "%2E") or "%00"


def _component(key: Any) -> str:
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.DictKey):
        return _escape(key.key)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return _escape(key.name)
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return _escape(key)


def flatten(tree: Any, root: str, typed: bool) -> list[Leaf]:
    """The leaves of ``tree`` in ``jax.tree.leaves`` order, with their paths
    from ``root``; with ``typed``, transform states add ``:Type``."""
    out: list[Leaf] = []

    def go(node: Any, path: str, record: str | None, kind: str | None) -> None:
        if node is None:
            return
        shape: Any = jax.tree.structure(node)  # jax's stub lacks num_nodes
        if shape.num_nodes == 1 and shape.num_leaves == 1:
            out.append(Leaf(path, node, record, kind))
            return
        if typed and type(node) not in (dict, list, tuple):
            path = f"{path}:{type(node).__name__}"
            if record is None:
                record, kind = path, type(node).__name__
        children = jax.tree_util.tree_flatten_with_path(
            node, is_leaf=lambda x: x is not node
        )[0]
        for (key,), child in children:
            go(child, f"{path}/{_component(key)}", record, kind)

    go(tree, root, None, None)
    return out


def leaves(params: Any, opt_state: Any, step: Any) -> list[Leaf]:
    """Every leaf a checkpoint holds: ``params/...``, ``opt_state/...`` and,
    for a TrainState, ``step``."""
    out = flatten(params, "params", False) + flatten(opt_state, "opt_state", True)
    return out + ([Leaf("step", step)] if step is not None else [])


def nest(items: list[tuple[str, Any]]) -> dict:
    """``[("a/b", x)]`` as ``{"a": {"b": x}}``: orbax's tree, by key path."""
    out: dict = {}
    for path, value in items:
        *parents, last = path.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _user(layout: Any, stored: Any) -> Any:
    """A stored-form tree as the user's tree, as ``layout.to_user`` gives it
    but without copying what is stored as it is (leaf by leaf, or resident):
    only packed leaves are sliced out of their buckets."""
    if not isinstance(layout, Layout):
        return stored
    resident = {s.bucket for s in layout.slots if not s.packed}
    light = {
        k: jnp.zeros((), v.dtype) if k in resident else v for k, v in stored.items()
    }
    sliced = jax.tree.leaves(layout.to_user(light))
    return layout.treedef.unflatten(
        [x if s.packed else stored[s.bucket] for s, x in zip(layout.slots, sliced)]
    )


def user_trees(name: str, state: Any) -> tuple[Any, Any, Any]:
    """``(params, opt_state, step array or None)`` of a TrainState (the
    user's trees, never its packed buckets) or of a pair."""
    if isinstance(state, TrainState):
        stored = (state.stored_params, state.stored_opt_state)
        if any(
            isinstance(x, jax.Array) and x.is_deleted() for x in jax.tree.leaves(stored)
        ):
            raise ValueError(
                f"{name}: this TrainState was donated to a step, which consumed its "
                "buffers; use the state that step returned."
            )
        layout = state.layout
        opt_state = jax.tree.map(
            lambda x: _user(layout, x) if layout.is_stored(x) else x,
            state.stored_opt_state,
            is_leaf=layout.is_stored,
        )
        return _user(layout, state.stored_params), opt_state, state.step
    if isinstance(state, (tuple, list)) and len(state) == 2:
        return state[0], state[1], None
    raise TypeError(
        f"{name}: state must be a jgd.train.TrainState or a (params, opt_state) "
        f"pair; got {type(state).__name__}."
    )
