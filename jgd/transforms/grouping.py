"""Rules to optimizers in one call: ``groups``, beyond optax.

``jgd.groups({"embed/*": jgd.adam(1e-3), "*/bias": jgd.sgd(0.1),
"backbone/**": jgd.freeze()})`` labels every params leaf by the one rule that
matches its path and runs ``partition`` (partitioning.py) on those labels. A
path joins the key path's dict keys, indices and attribute names with ``/``
(a flax nnx ``Variable`` counts as the leaf: ``embed/embedding``, not
``.../value``). Rules are path globs, compiled regexes or predicates.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from jgd.base import Transform, owner_name, register, static_field
from jgd.transforms.masking import MaskedNode, is_placeholder, is_variable, key_name
from jgd.transforms.partitioning import (
    as_transform,
    check_partition_state,
    partition_init,
    partition_update,
)

__all__ = ["groups"]


def _is_leaf(x: Any) -> bool:
    return isinstance(x, MaskedNode) or is_variable(x)


def path_string(path: Any) -> str:
    """``a/0/b`` for the key path ``['a'][0].b``."""
    return "/".join(str(key_name(k)) for k in path)


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str, path: str) -> bool:
    """Whether ``path`` matches ``pattern``: ``*`` (and fnmatch's ``?``,
    ``[...]``) inside one segment, ``**`` any number of whole segments."""

    def match(pat: tuple, segs: tuple) -> bool:
        if not pat:
            return not segs
        if pat[0] == "**":
            return any(match(pat[1:], segs[i:]) for i in range(len(segs) + 1))
        return (
            bool(segs)
            and fnmatch.fnmatchcase(segs[0], pat[0])
            and match(pat[1:], segs[1:])
        )

    split = lambda s: tuple(s.strip("/").split("/")) if s.strip("/") else ()
    return match(split(pattern), split(path))


def _rule_name(rule: Any) -> str:
    if isinstance(rule, str):
        return rule
    if isinstance(rule, re.Pattern):
        return f"re:{rule.pattern}"
    return getattr(rule, "__name__", None) or repr(rule)


def _check_rule(owner: Any, rule: Any) -> None:
    name = owner_name(owner)
    if isinstance(rule, str):
        bad = [s for s in rule.split("/") if "**" in s and s != "**"]
        if bad:
            raise ValueError(
                f"{name}: ** must be a whole path segment (any number of "
                f"segments); got {rule!r}. Use * inside a segment."
            )
        return
    if isinstance(rule, re.Pattern) or callable(rule):
        return
    raise TypeError(
        f"{name}: each rule must be a path glob (str), a compiled regex or a "
        f"predicate (path, leaf) -> bool; got {rule!r} ({type(rule).__name__})."
    )


@register
class Groups(Transform):
    """Map path rules to optimizers: each params leaf goes through the one
    transform whose rule matches its path.

    A leaf's path joins its key path's dict keys, sequence indices and
    attribute names with ``/`` (``layers/0/w``; for a flax nnx ``State`` the
    ``Variable`` is the leaf: ``embed/embedding``). Rules:

    - a glob (str): ``*`` matches within one segment, ``**`` any number of
      whole segments (zero included): ``"embed/*"``, ``"*/bias"``,
      ``"backbone/**"``, ``"**"`` (everything);
    - a compiled regex (``re.compile``): ``fullmatch`` on the path string;
    - a predicate ``(path, leaf) -> bool``: ``path`` is jax's key path (as in
      ``jax.tree_util.tree_map_with_path``), ``leaf`` the array (traced under
      jit: use its shape, ndim, dtype). It must return a Python bool.

    Update (per rule k, the leaves it matches):
        u[k] = transforms[k](g[k])        (a partition by rule)

    ``jgd.freeze()`` as a rule's transform zeroes that group's updates and
    keeps no state: frozen leaves hold no state anywhere.

    Args:
        rules: a non-empty mapping rule -> transform (jgd or optax), in any
            order; every leaf must match exactly one rule. Rules are static;
            jgd transforms are pytree children, so their hyperparameters stay
            leaves (a new learning rate does not recompile).

    State: ``PartitionState({name: MaskedState(...)})`` keyed by each rule's
    name: the glob itself, ``"re:<pattern>"``, or a predicate's
    ``__name__`` (``#<index>`` appended to repeats).

    Raises:
        ValueError: paths no rule matches or several rules match, all listed.
        TypeError: a rule that is not a glob, regex or callable; a value that
            is not a transform.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.groups({"net/*": jgd.sgd(0.1), "**/b": jgd.freeze()})
        >>> g = {"net": {"w": jnp.array([1.0])}, "head": {"b": jnp.array([1.0])}}
        >>> tx.update(g, tx.init(g))[0]
        {'head': {'b': Array([0.], dtype=float32)}, 'net': {'w': Array([-0.1], dtype=float32)}}

    Matches: no optax counterpart; the same as optax.partition(transforms,
    labels) with the labels built from these rules.
    """

    rules: Any = static_field()
    transforms: tuple = ()

    _api = "jgd.groups"

    def __post_init__(self):
        name = owner_name(self)
        if isinstance(self.rules, Mapping):
            rules, transforms = tuple(self.rules), tuple(self.rules.values())
        else:
            rules, transforms = tuple(self.rules), tuple(self.transforms)
        if not rules or len(rules) != len(transforms):
            raise TypeError(
                f"{name}: rules must be a non-empty mapping from rules to "
                f"transforms; got {self.rules!r}."
            )
        for rule in rules:
            _check_rule(self, rule)
        transforms = tuple(
            as_transform(self, f"rules[{r!r}]", t) for r, t in zip(rules, transforms)
        )
        object.__setattr__(self, "rules", rules)
        object.__setattr__(self, "transforms", transforms)
        super().__post_init__()

    def __repr__(self) -> str:
        items = ", ".join(f"{r!r}: {t!r}" for r, t in zip(self.rules, self.transforms))
        return f"Groups({{{items}}})"

    def _names(self) -> list[str]:
        names: list[str] = []
        for i, rule in enumerate(self.rules):
            n = _rule_name(rule)
            names.append(f"{n}#{i}" if n in names else n)
        return names

    def _transforms(self) -> dict:
        return dict(zip(self._names(), self.transforms))

    def _matches(self, path: Any, leaf: Any) -> list[int]:
        text = path_string(path)
        if is_variable(leaf):
            inner = jax.tree.leaves(leaf)
            leaf = inner[0] if len(inner) == 1 else leaf
        hits = []
        for i, rule in enumerate(self.rules):
            if isinstance(rule, str):
                hit = _glob(rule, text)
            elif isinstance(rule, re.Pattern):
                hit = rule.fullmatch(text) is not None
            else:
                hit = _predicate(self, rule, path, leaf, text)
            if hit:
                hits.append(i)
        return hits

    def labels(self, tree: Any, tree_arg: str = "params") -> Any:
        """A tree shaped like ``tree`` holding each leaf's group name (a
        ``Variable`` holds it in place of its value): what ``init`` and
        ``update`` give ``partition``."""
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_leaf)
        names = self._names()
        labels, none, many = [], [], []
        for path, leaf in leaves:
            if isinstance(leaf, MaskedNode):  # masked out above: no group needed
                labels.append(names[0])
                continue
            hits = self._matches(path, leaf)
            if len(hits) == 1:
                labels.append(names[hits[0]])
                continue
            text = repr(path_string(path))
            if hits:
                many.append(f"{text} ({', '.join(repr(self.rules[i]) for i in hits)})")
            else:
                none.append(text)
        if none or many:
            got = []
            if none:
                got.append(f"no rule for {', '.join(none)}")
            if many:
                got.append(f"several rules for {', '.join(many)}")
            raise ValueError(
                f"{owner_name(self)}: rules must match each {tree_arg} leaf exactly "
                f"once; got {'; '.join(got)}."
            )
        return jax.tree.unflatten(treedef, labels)

    def init(self, params: Any) -> Any:
        labels = None if is_placeholder(params) else self.labels(params)
        return partition_init(self._transforms(), labels, params)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        transforms = self._transforms()
        check_partition_state(self, state, transforms)
        labels = self.labels(updates, "updates")
        return partition_update(transforms, labels, updates, state, params, extra_args)


def _predicate(owner: Any, rule: Callable, path: Any, leaf: Any, text: str) -> bool:
    hit = rule(path, leaf)
    if isinstance(hit, (bool, np.bool_)):
        return bool(hit)
    raise TypeError(
        f"{owner_name(owner)}: a predicate rule must return a Python bool; got "
        f"{hit!r} ({type(hit).__name__}) from the rule {_rule_name(rule)} at "
        f"{text!r}."
    )


groups = Groups
