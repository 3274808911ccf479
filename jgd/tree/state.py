"""optax.tree's state tools: ``get_all_with_path``, ``get`` and ``set`` find or
replace values by key (a dict key, a NamedTuple field, or a NamedTuple's class
name), and ``map_params`` maps over the copies of the parameter tree inside an
optimizer state. ``NamedTupleKey`` is the path entry of a NamedTuple field.

Beyond optax, jgd's values (optimizers, transforms, schedules) are searched
like NamedTuples, by field and by class name: ``get(opt, "learning_rate")``
reads a hyperparameter, ``set(opt, learning_rate=1e-4)`` gives a new optimizer
(checked as at construction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from jgd.base import Value

__all__ = ["NamedTupleKey", "get", "get_all_with_path", "map_params", "set"]

_DictKey = jax.tree_util.DictKey
_GetAttrKey = jax.tree_util.GetAttrKey


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """The path entry of a NamedTuple field, printed ``tuple_name.name``.

    Paths from ``get_all_with_path`` (and those given to ``filtering``) use it
    in place of jax's ``GetAttrKey``, so that two fields of one name in
    different states (two ``count``\\ s) can be told apart.

    Matches: optax.tree_utils.NamedTupleKey (jgd's own class: compare paths
    with ``jax.tree_util.keystr`` or by fields, not with optax's class).
    """

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_named_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _fields(node: Any) -> tuple[str, ...] | None:
    """The named children of a NamedTuple or a jgd value; None for others."""
    if _is_named_tuple(node):
        return tuple(node._fields)
    if isinstance(node, Value) and dataclasses.is_dataclass(node):
        return tuple(f.name for f in dataclasses.fields(node))
    return None


def _entry(node: Any, name: Any) -> Any:
    """The path entry of child ``name`` of ``node``."""
    if _is_named_tuple(node):
        return NamedTupleKey(type(node).__name__, name)
    if isinstance(node, dict):
        return _DictKey(name)
    return _GetAttrKey(name)  # a jgd value: jax's own entry for its fields


def _name(entry: Any) -> Any:
    """The key or field name that a path entry stands for."""
    return entry.key if isinstance(entry, _DictKey) else entry.name


def _has_keys(node: Any, keys: tuple) -> bool:
    """Whether ``node`` holds one of ``keys``, or is a NamedTuple (or a jgd
    value) whose class is named one of them."""
    fields = _fields(node)
    if fields is not None:
        return type(node).__name__ in keys or any(k in fields for k in keys)
    if isinstance(node, dict):
        return any(k in node for k in keys)
    return False


def _children(path: tuple, node: Any) -> list[tuple[tuple, Any]]:
    """``(path, child)`` for each named child of a NamedTuple, jgd value or dict."""
    if isinstance(node, dict):
        return [((*path, _DictKey(k)), v) for k, v in node.items()]
    return [((*path, _entry(node, f)), getattr(node, f)) for f in _fields(node) or ()]


def _leaves_with_path(tree: Any, stop: Callable[[Any], bool]) -> list:
    """``(path, leaf)`` of ``tree``, not entering nodes where ``stop(node)``
    (they come out whole); NamedTuple fields get ``NamedTupleKey`` entries."""
    out = []
    is_leaf = lambda x: stop(x) or _is_named_tuple(x)
    for path, node in jax.tree_util.tree_leaves_with_path(tree, is_leaf=is_leaf):
        if stop(node) or not _is_named_tuple(node):
            out.append((tuple(path), node))
            continue
        for f in node._fields:
            entry = NamedTupleKey(type(node).__name__, f)
            out += [
                ((*path, entry, *sub), leaf)
                for sub, leaf in _leaves_with_path(getattr(node, f), stop)
            ]
    return out


def _get_all(tree: Any, key: Any) -> list[tuple[tuple, Any]]:
    """Every ``(path, value)`` for ``key``: the outermost first, then those
    inside each of them."""

    def has(node):
        return _has_keys(node, (key,))

    holders = [(p, n) for p, n in _leaves_with_path(tree, has) if has(n)]
    found = []
    for path, node in holders:
        if isinstance(node, dict):
            found.append(((*path, _DictKey(key)), node[key]))
        elif type(node).__name__ == key:
            found.append((path, node))
        else:
            found.append(((*path, _entry(node, key)), getattr(node, key)))
    for path, node in holders:
        for child_path, child in _children(path, node):
            found += [((*child_path, *p), v) for p, v in _get_all(child, key)]
    return found


def get_all_with_path(
    tree: Any,
    key: Any,
    filtering: Callable[[tuple, Any], bool] | None = None,
) -> list[tuple[tuple, Any]]:
    """Every value in ``tree`` under ``key`` (a dict key, a field of a
    NamedTuple or jgd value, or the class name of one), with its path.

    Args:
        tree: a pytree, e.g. an optimizer state.
        key: the key, field or class name to look for.
        filtering: ``filtering(path, value) -> bool`` keeps only some matches;
            paths name NamedTuple fields with ``NamedTupleKey``.

    Returns:
        ``[(path, value), ...]``; ``jax.tree_util.keystr(path)`` prints a path.

    Example:
        >>> import jax, jax.numpy as jnp, jgd
        >>> state = jgd.adam(0.1).init({"w": jnp.zeros(2)})
        >>> [(jax.tree_util.keystr(p), int(v))
        ...  for p, v in jgd.tree.get_all_with_path(state, "count")]
        [('[0]ScaleByAdamState.count', 0)]

    Matches: optax.tree.get_all_with_path(tree, key, filtering), and finds
    fields of jgd values too.
    """
    found = _get_all(tree, key)
    if filtering is not None:
        found = [(path, value) for path, value in found if filtering(path, value)]
    return found


def get(
    tree: Any,
    key: Any,
    default: Any = None,
    filtering: Callable[[tuple, Any], bool] | None = None,
) -> Any:
    """The one value in ``tree`` under ``key`` (see ``get_all_with_path``),
    or ``default`` when there is none.

    Raises:
        KeyError: when several values match (``filtering`` chooses one).

    Example:
        >>> import jax.numpy as jnp, jgd
        >>> opt = jgd.adam(0.1)
        >>> jgd.tree.get(opt.init(jnp.zeros(2)), "count")
        Array(0, dtype=int32)
        >>> jgd.tree.get(opt, "learning_rate")
        0.1

    Matches: optax.tree.get(tree, key, default, filtering), and finds fields of
    jgd values too.
    """
    found = get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(p) for p, _ in found)
        raise KeyError(
            f"jgd.tree.get: {len(found)} values match {key!r} (at {paths}); "
            "pass filtering= to choose one."
        )
    return found[0][1] if found else default


def _rebuilt(node: Any, children: dict) -> Any:
    """``node`` with the named children given (``node`` itself if none changed)."""
    if all(children[k] is v for k, v in _named(node)):
        return node
    if isinstance(node, dict):
        return children
    if _is_named_tuple(node):
        return node._replace(**children)
    changed = {k: v for k, v in children.items() if getattr(node, k) is not v}
    return dataclasses.replace(node, **changed)  # a jgd value: checked again


def _named(node: Any) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        return list(node.items())
    return [(f, getattr(node, f)) for f in _fields(node) or ()]


def set(
    tree: Any,
    filtering: Callable[[tuple, Any], bool] | None = None,
    /,
    **kwargs: Any,
) -> Any:
    """A copy of ``tree`` with the values under each key of ``kwargs``
    replaced (every match that ``get_all_with_path`` finds, ``filtering``
    permitting); a NamedTuple named by a key is replaced whole.

    Raises:
        KeyError: when a key of ``kwargs`` matches nothing.

    Example:
        >>> import jgd
        >>> jgd.tree.set(jgd.adam(0.1), learning_rate=0.01).learning_rate
        0.01

    Matches: optax.tree.set(tree, filtering, **kwargs), except that matches
    inside a list or tuple held by a matching node are replaced too (optax
    leaves them, though its get finds them), and that fields of jgd values are
    found too.
    """
    for key in kwargs:
        if not get_all_with_path(tree, key, filtering):
            where = " given the filtering" if filtering is not None else ""
            raise KeyError(f"jgd.tree.set: no value matches {key!r}{where}.")

    def keep(path, value):
        return filtering is None or filtering(path, value)

    def rebuild(path, node):
        named = _fields(node) is not None
        if named and type(node).__name__ in kwargs and keep(path, node):
            return kwargs[type(node).__name__]
        if named or isinstance(node, dict):
            children = {}
            for child_path, child in _children(path, node):
                name = _name(child_path[-1])
                if name in kwargs and keep(child_path, child):
                    children[name] = kwargs[name]
                else:
                    children[name] = rebuild(child_path, child)
            return _rebuilt(node, children)
        # Any other node (list, tuple, a registered class): one level down.
        kids, treedef = jax.tree_util.tree_flatten_with_path(
            node, is_leaf=lambda x: x is not node
        )
        if jax.tree_util.treedef_is_leaf(treedef):
            return node
        new = [rebuild((*path, *p), kid) for p, kid in kids]
        if all(a is b for a, (_, b) in zip(new, kids)):
            return node
        return jax.tree.unflatten(treedef, new)

    return rebuild((), tree)


@jax.tree_util.register_pytree_node_class
class _ParamsPlaceholder:
    """Stands for the parameter tree when ``map_params`` calls ``init``."""

    def tree_flatten(self):
        return (), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls()


def map_params(
    initable: Any,
    f: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[..., Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Apply ``f`` to every copy of the parameter tree inside an optimizer
    state (Adam's ``mu`` and ``nu``), e.g. to build sharding specs for it.

    ``initable`` (a transform, or its ``init`` function) is initialised on a
    placeholder to find where the parameter trees sit in ``state``.

    Args:
        initable: an object with ``init``, or ``init`` itself.
        f: called leaf by leaf on each parameter-shaped tree and the trees of
            ``rest``.
        state: the state to map over.
        *rest: more trees shaped like the params, passed to ``f``.
        transform_non_params: applied to every other leaf of the state (a
            count, a key); default: left as is.
        is_leaf: passed to ``jax.tree.map`` over each parameter tree.

    Example:
        >>> import jax.numpy as jnp, jgd
        >>> opt = jgd.adam(0.1)
        >>> state = opt.init({"w": jnp.zeros(2)})
        >>> specs = jgd.tree.map_params(opt, lambda p: "W", state,
        ...                             transform_non_params=lambda _: None)
        >>> specs[0].mu, specs[0].count
        ({'w': 'W'}, None)

    Matches: optax.tree.map_params(initable, f, state, *rest,
    transform_non_params, is_leaf).
    """
    placeholder = _ParamsPlaceholder()
    init = getattr(initable, "init", None)
    template = init(placeholder) if init is not None else initable(placeholder)

    def map_one(where, value):
        if isinstance(where, _ParamsPlaceholder):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        if transform_non_params is not None:
            return transform_non_params(value)
        return value

    return jax.tree.map(
        map_one,
        template,
        state,
        is_leaf=lambda v: isinstance(v, _ParamsPlaceholder),
    )
