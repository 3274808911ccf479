"""``restore``: a checkpoint read into the shape, placement and layout of
``like``, and the ``Restored`` report of where each leaf came from."""

from __future__ import annotations

import dataclasses
import numbers
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgd.checkpoint import disk
from jgd.checkpoint.matching import plan
from jgd.checkpoint.paths import Leaf, flatten, leaves, nest, user_trees
from jgd.train.layout import Layout, PerLeaf
from jgd.train.state import TrainState

__all__ = ["Restored", "restore"]


@dataclasses.dataclass(frozen=True)
class Restored:
    """What ``restore`` gives back: the state, and where each leaf came from.

    Fields:
        state: a ``TrainState`` shaped, placed and laid out as ``like`` (with
            ``like``'s optimizer), or a ``(params, opt_state)`` pair.
        step: the checkpoint's step.
        carried: the paths of ``like`` filled from the checkpoint, in order.
        fresh: the paths of ``like`` that no saved state fits, started from
            ``like``'s own values (e.g. a transform added to the chain).
        dropped: the saved paths nothing in ``like`` takes (e.g. a transform
            removed from the chain).
    """

    state: Any
    step: int
    carried: tuple[str, ...]
    fresh: tuple[str, ...]
    dropped: tuple[str, ...]


# --------------------------------------------------------------------------
# like as the user's trees, and back.
# --------------------------------------------------------------------------


def _sharding(x: Any) -> Any:
    """Where a leaf of ``like`` lives: its sharding, or None for an array not
    committed to a device (``jnp.zeros(3)``), which the result keeps free."""
    if isinstance(x, jax.Array):
        return x.sharding if x.committed else None
    return getattr(x, "sharding", None)


def _place(x: Any, like: Any) -> Any:
    """``x`` on the sharding of ``like``'s leaf, committed only where it is."""
    where = _sharding(like)
    return x if where is None else jax.device_put(x, where)


def _abstract(x: Any) -> Any:
    if isinstance(x, jax.Array):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=_sharding(x))
    return x


def _user_like(layout: Layout | PerLeaf, stored: Any) -> Any:
    """The user's tree a stored-form tree stands for, as ShapeDtypeStructs on
    the shardings it is read onto (a packed leaf: its bucket's)."""
    if isinstance(layout, PerLeaf):
        return jax.tree.map(_abstract, stored)
    out = []
    for s in layout.slots:
        b = stored[s.bucket]
        out.append(jax.ShapeDtypeStruct(s.shape, b.dtype, sharding=_sharding(b)))
    return layout.treedef.unflatten(out)


def _targets(name: str, like: Any) -> tuple[Any, Any, Any]:
    """``like`` as the user's trees ``(params, opt_state, step or None)``,
    without reading a TrainState's buffers."""
    if isinstance(like, TrainState):
        layout = like.layout
        opt_state = jax.tree.map(
            lambda x: _user_like(layout, x) if layout.is_stored(x) else _abstract(x),
            like.stored_opt_state,
            is_leaf=layout.is_stored,
        )
        params = _user_like(layout, like.stored_params)
        return params, opt_state, _abstract(like.step)
    if isinstance(like, (tuple, list)) and len(like) == 2:
        return like[0], like[1], None
    raise TypeError(
        f"{name}: like must be a jgd.train.TrainState or a (params, opt_state) "
        f"pair; got {type(like).__name__}."
    )


def _stored(layout: Layout | PerLeaf, user: Any, like: Any) -> Any:
    """``user`` (a params-shaped tree) in the stored form of ``like``, on
    ``like``'s shardings."""
    if isinstance(layout, PerLeaf):
        return jax.tree.map(_place, user, like)
    buckets = set(layout.names)
    return {
        k: _place(
            (jnp.concatenate(xs) if k in buckets else xs[0]).astype(like[k].dtype),
            like[k],
        )
        for k, xs in layout.group(jax.tree.leaves(user)).items()
    }


def _into(like: TrainState, params: Any, opt_state: Any, step: Any) -> TrainState:
    """The user's trees as a TrainState laid out and placed as ``like``."""
    layout = like.layout
    treedef: Any = jax.tree.structure(like.stored_opt_state, is_leaf=layout.is_stored)
    stored_opt_state = treedef.unflatten(
        [
            _stored(layout, new, old)
            if layout.is_stored(old)
            else (_place(new, old) if isinstance(old, jax.Array) else new)
            for new, old in zip(
                treedef.flatten_up_to(opt_state),
                treedef.flatten_up_to(like.stored_opt_state),
            )
        ]
    )
    stored_params = _stored(layout, params, like.stored_params)
    step = _place(jnp.asarray(step, jnp.int32), like.step)
    return TrainState(stored_params, stored_opt_state, step, like.opt, layout)


# --------------------------------------------------------------------------
# Reading, and starting fresh.
# --------------------------------------------------------------------------


def _is_jax(x: Any) -> bool:
    return isinstance(x, (jax.Array, jax.ShapeDtypeStruct))


def _read(
    name: str, where: Path, like: list[Leaf], source: dict[str, dict]
) -> dict[str, Any]:
    """The saved leaves ``like`` takes, by ``like``'s paths: each read onto
    its leaf's sharding, or through NumPy for a NumPy or Python leaf and an
    array not committed to a device (left so)."""
    item, args, wanted = [], [], {}
    out: dict[str, Any] = {}
    for t in like:
        s = source.get(t.path)
        if s is None:
            continue
        shape = tuple(s.get("data_shape", s["shape"]))
        dtype = np.dtype(s.get("data_dtype", s["dtype"]))
        if not s["stored"]:  # empty: orbax does not write it
            out[t.path] = np.zeros(shape, dtype)
            continue
        wanted[t.path] = s["path"]
        item.append((s["path"], jax.ShapeDtypeStruct(shape, dtype)))
        sharding = _sharding(t.value) if _is_jax(t.value) else None
        if sharding is not None:
            arg = disk.ocp.ArrayRestoreArgs(
                sharding=sharding, global_shape=shape, dtype=dtype
            )
        else:
            arg = disk.ocp.RestoreArgs(restore_type=np.ndarray)
        args.append((s["path"], arg))
    if item:
        arrays = disk.ocp.args.PyTreeRestore(
            nest(item), restore_args=nest(args), partial_restore=True
        )
        try:
            with disk.checkpointer() as checkpointer:
                got = checkpointer.restore(
                    where, args=disk.ocp.args.Composite(**{disk.ARRAYS: arrays})
                )[disk.ARRAYS]
        except Exception as e:
            e.add_note(f"{name}: while reading the arrays of {where}.")
            raise
        for target, saved in wanted.items():
            node = got
            for key in saved.split("/"):
                node = node[key]
            out[target] = node
    for t in like:
        if t.path not in out:
            continue
        x = out[t.path]
        if _is_jax(t.value) and isinstance(x, np.ndarray):
            x = _place(jnp.asarray(x), t.value)
        if "key_impl" in source[t.path]:
            x = jax.random.wrap_key_data(x, impl=source[t.path]["key_impl"])
        if isinstance(t.value, numbers.Number):
            number: Any = type(t.value)
            x = number(np.asarray(x).item())
        out[t.path] = x
    return out


def _copy(x: Any) -> Any:
    if isinstance(x, jax.Array):
        return jnp.copy(x)
    return np.copy(x) if isinstance(x, (np.ndarray, np.generic)) else x


def _fresh(name: str, like: Any, fresh: list[Leaf]) -> dict[str, Any]:
    """``like``'s own values (copies) for the leaves that start fresh."""
    if isinstance(like, TrainState):  # its optimizer state as the user's tree
        given = leaves(None, user_trees(name, like)[1], None)
    else:
        given = fresh
    start = {t.path: t.value for t in given}
    for t in fresh:
        if isinstance(start[t.path], jax.ShapeDtypeStruct):
            raise TypeError(
                f"{name}: {t.path}: no saved state fits it, and like gives only its "
                "shape (a jax.ShapeDtypeStruct) to start it from; pass like's "
                "opt_state as arrays (opt.init(params))."
            )
    return {t.path: _copy(start[t.path]) for t in fresh}


# --------------------------------------------------------------------------
# restore
# --------------------------------------------------------------------------


def restore(
    directory: str | os.PathLike,
    like: Any,
    step: int | None = None,
    *,
    strict: bool = False,
) -> Restored:
    """Restore a checkpoint into the shape, placement and layout of ``like``.

    Each leaf of ``like`` is filled from the saved leaf at its key path, read
    straight onto ``like``'s sharding (a checkpoint saved on one device
    restores onto a mesh, and back) and, for a TrainState, into ``like``'s
    layout (packed or leaf by leaf, whatever the saved state's). Structure,
    shapes and dtypes are checked before any array is read; the caller's
    objects are never changed, whether it succeeds or fails.

    The optimizer state may come from another chain: transform states are
    matched by type name, in order, so a state saved with ``jgd.adam(...)``
    restores into ``jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adam(...))``
    with Adam's moments and count. A transform state that nothing saved fits
    starts from ``like``'s values (``Restored.fresh``); saved ones nothing
    takes are ``Restored.dropped``.

    Args:
        directory: the checkpoints' directory.
        like: a ``jgd.train.TrainState`` (e.g. ``jgd.train.init(params,
            opt)``; the result has its optimizer, layout and shardings; only
            its shapes are read, unless a leaf starts fresh), or a
            ``(params, opt_state)`` pair of arrays, numbers or
            ``jax.ShapeDtypeStruct`` (read onto its ``sharding``; a struct
            cannot start fresh).
        step: the step to restore, an int >= 0 in ``all_steps(directory)``;
            default the latest.
        strict: True wants the whole optimizer state from the checkpoint
            (nothing fresh, nothing dropped); default False.

    Returns:
        A ``Restored``: ``.state`` (a TrainState, or a pair, as ``like``),
        ``.step``, and the paths ``.carried``, ``.fresh`` and ``.dropped``.
        A TrainState's ``step`` is the saved one (the checkpoint's step for a
        saved pair).

    Raises:
        TypeError: ``directory`` not a path; ``like`` neither a TrainState nor
            a pair; ``like`` and the checkpoint differ in structure, shape or
            dtype (the first differing path is named); with ``strict``, a
            state that does not carry over; a leaf to start fresh that
            ``like`` gives only as a ``jax.ShapeDtypeStruct``.
        ValueError: ``directory`` is a file; ``step`` < 0; a leaf starts
            fresh from a ``like`` that a step has donated.
        FileNotFoundError: no checkpoint, or none at ``step``.

    Example:
        >>> import tempfile, jax.numpy as jnp, jgd, jgd.checkpoint, jgd.train
        >>> tmp = tempfile.TemporaryDirectory()
        >>> state = jgd.train.init({"w": jnp.ones(3)}, jgd.adam(1e-3))
        >>> jgd.checkpoint.save(tmp.name, state, step=7)
        7
        >>> like = jgd.train.init({"w": jnp.zeros(3)}, jgd.chain(
        ...     jgd.clip_by_global_norm(1.0), jgd.adam(1e-3)))
        >>> r = jgd.checkpoint.restore(tmp.name, like)
        >>> r.step, r.state.params["w"], r.fresh
        (7, Array([1., 1., 1.], dtype=float32), ())
        >>> tmp.cleanup()
    """
    name = "jgd.checkpoint.restore"
    path = disk.check_directory(name, directory)
    if not isinstance(strict, bool):
        raise TypeError(f"{name}: strict must be a bool; got {strict!r}.")
    params, opt_state, count = _targets(name, like)
    found = disk.steps(path)
    if step is None:
        if not found:
            raise FileNotFoundError(f"{name}: no checkpoint in {path}.")
        step = found[-1]
    elif disk.check_step(name, step) not in found:
        raise FileNotFoundError(
            f"{name}: no checkpoint of step {step} in {path}; it has {found or 'none'}."
        )
    where = path / str(step)
    targets = leaves(params, opt_state, count)
    source, dropped = plan(
        name, disk.read_meta(name, where)["leaves"], targets, step, strict
    )
    fresh = [t for t in targets if t.path not in source and t.path != "step"]
    values = _fresh(name, like, fresh) if fresh else {}
    values.update(_read(name, where, targets, source))

    def rebuild(tree: Any, root: str, typed: bool) -> Any:
        new = [values[t.path] for t in flatten(tree, root, typed)]
        return jax.tree.unflatten(jax.tree.structure(tree), new)

    new_params = rebuild(params, "params", False)
    new_opt_state = rebuild(opt_state, "opt_state", True)
    result: Any = (new_params, new_opt_state)
    if isinstance(like, TrainState):
        result = _into(like, new_params, new_opt_state, values.get("step", step))
    carried = tuple(t.path for t in targets if t.path in source)
    return Restored(result, step, carried, tuple(t.path for t in fresh), tuple(dropped))
