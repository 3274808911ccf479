"""Which saved leaf fills which leaf of ``like``: the checks before reading.

The params (and a TrainState's step) match by path, exactly. The optimizer
state matches by path when its paths are the saved ones; otherwise transform
states match by type name, in order (a longest common subsequence of the two
chains' state types), and inside a matched pair by path. A leaf of ``like``
nothing fits starts fresh; a saved one nothing takes is dropped. Every shape
and dtype is checked, and the first misfit raises naming its path.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import numpy as np

from jgd.checkpoint.paths import Leaf

__all__ = ["plan"]


def _describe(name: str, leaf: Leaf) -> tuple[tuple, str]:
    """Shape and dtype (as the JSON writes them) of a leaf of ``like``."""
    x = leaf.value
    if isinstance(x, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        return tuple(x.shape), str(x.dtype)
    if isinstance(x, numbers.Number):
        a = np.asarray(x)
        return a.shape, str(a.dtype)
    raise TypeError(
        f"{name}: {leaf.path}: like's leaves must be arrays, jax.ShapeDtypeStruct "
        f"or numbers; got {type(x).__name__}."
    )


def _check_fits(name: str, leaf: Leaf, saved: dict) -> None:
    shape, dtype = _describe(name, leaf)
    if tuple(saved["shape"]) != shape:
        raise TypeError(
            f"{name}: {leaf.path}: saved shape {tuple(saved['shape'])} but like "
            f"has {shape}."
        )
    if saved["dtype"] != dtype:
        raise TypeError(
            f"{name}: {leaf.path}: saved dtype {saved['dtype']} but like has {dtype}."
        )


def _records(
    items: list, path: Callable, record: Callable, kind: Callable
) -> dict[str, tuple[str | None, dict]]:
    """The transform states in order: their path -> (type name, {path inside:
    item}). A leaf outside any transform state is a record of type None."""
    out: dict[str, tuple[str | None, dict]] = {}
    for it in items:
        r = record(it)
        if r is None:
            out[path(it)] = (None, {"": it})
        else:
            out.setdefault(r, (kind(it), {}))[1][path(it)[len(r) :]] = it
    return out


def _align(a: list[str | None], b: list[str | None]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of two lists of type names
    (None matches nothing)."""
    n, m = len(a), len(b)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if a[i] is not None and a[i] == b[j]:
                best[i][j] = best[i + 1][j + 1] + 1
            else:
                best[i][j] = max(best[i + 1][j], best[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] is not None and a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _match_states(
    name: str, like: list[Leaf], saved: list[dict], source: dict[str, dict]
) -> None:
    """Fill ``source`` for the optimizer state of another chain."""
    mine = _records(like, lambda t: t.path, lambda t: t.record, lambda t: t.kind)
    theirs = _records(
        saved, lambda s: s["path"], lambda s: s["record"], lambda s: s["type"]
    )
    mine_keys, their_keys = list(mine), list(theirs)
    pairs = _align([mine[k][0] for k in mine_keys], [theirs[k][0] for k in their_keys])
    for i, j in pairs:
        kind, targets = mine[mine_keys[i]]
        sources = theirs[their_keys[j]][1]
        for inner, t in targets.items():
            s = sources.get(inner)
            if s is None:
                raise TypeError(
                    f"{name}: {t.path}: like's {kind} has this leaf, but the saved "
                    f"{kind} ({their_keys[j]}) has no {inner.lstrip('/')}."
                )
            _check_fits(name, t, s)
            source[t.path] = s
        for inner in sources.keys() - targets.keys():
            raise TypeError(
                f"{name}: {sources[inner]['path']}: saved in a {kind}, but like's "
                f"{kind} ({mine_keys[i]}) has no {inner.lstrip('/')}."
            )
    by_path = {s["path"]: s for s in saved}
    for t in like:  # leaves outside any transform state: by path
        s = by_path.get(t.path)
        if t.record is None and s is not None and s["record"] is None:
            _check_fits(name, t, s)
            source[t.path] = s


def plan(
    name: str, saved: list[dict], like: list[Leaf], step: int, strict: bool
) -> tuple[dict[str, dict], list[str]]:
    """For each path of ``like``, the saved leaf (its JSON) that fills it
    (absent: it starts fresh), and the saved paths nothing takes."""
    by_path = {s["path"]: s for s in saved}
    source: dict[str, dict] = {}
    # 1. The params (and the step count) by path, exactly.
    fixed = [t for t in like if not t.path.startswith("opt_state")]
    for t in fixed:
        s = by_path.get(t.path)
        if s is None:
            if t.path == "step":  # a saved pair: the step is the checkpoint's
                continue
            raise TypeError(
                f"{name}: {t.path}: like has this leaf but the checkpoint (step "
                f"{step}) does not."
            )
        _check_fits(name, t, s)
        source[t.path] = s
    like_paths = {t.path for t in fixed}
    for s in saved:
        if s["path"].startswith("params") and s["path"] not in like_paths:
            raise TypeError(
                f"{name}: {s['path']}: saved (step {step}) but like has no such leaf."
            )
    # 2. The optimizer state: as saved, or matched by transform type and order.
    opt_like = [t for t in like if t.path.startswith("opt_state")]
    opt_saved = [s for s in saved if s["path"].startswith("opt_state")]
    if [t.path for t in opt_like] == [s["path"] for s in opt_saved]:
        for t, s in zip(opt_like, opt_saved):
            _check_fits(name, t, s)
            source[t.path] = s
    else:
        _match_states(name, opt_like, opt_saved, source)
    used = {s["path"] for s in source.values()}
    dropped = [s["path"] for s in saved if s["path"] not in used]
    if strict:
        fresh = [t.path for t in opt_like if t.path not in source]
        lost = [p for p in dropped if p.startswith("opt_state")]
        if fresh or lost:
            what = (
                f"{fresh[0]}: no saved state fits it"
                if fresh
                else f"{lost[0]}: saved, but nothing in like takes it"
            )
            raise TypeError(
                f"{name}: {what}, and strict=True wants the whole optimizer state "
                "from the checkpoint. Restore into the optimizer it was saved "
                "with, or pass strict=False to start such states fresh."
            )
    return source, dropped
