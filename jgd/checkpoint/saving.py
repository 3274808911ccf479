"""``save``: a TrainState, or a (params, opt_state) pair, to ``directory/<step>``."""

from __future__ import annotations

import datetime
import numbers
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgd.checkpoint import disk
from jgd.checkpoint.paths import Leaf, leaves, nest, user_trees
from jgd.train.state import TrainState

__all__ = ["save"]


def _on_disk(name: str, leaf: Leaf) -> tuple[Any, dict]:
    """The array orbax writes for ``leaf`` (None for an empty one, which
    orbax refuses; restore makes it again), and the leaf's JSON."""
    x = leaf.value
    if not isinstance(x, jax.Array):
        if isinstance(x, (str, bytes)) or not isinstance(
            x, (np.ndarray, np.generic, numbers.Number)
        ):
            raise TypeError(
                f"{name}: {leaf.path}: leaves must be arrays or numbers; got "
                f"{type(x).__name__}."
            )
        x = np.asarray(x)
    info: dict[str, Any] = {
        "path": leaf.path,
        "shape": list(x.shape),
        "dtype": str(x.dtype),
        "record": leaf.record,
        "type": leaf.kind,
    }
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # a typed key: its data
        info["key_impl"] = str(jax.random.key_impl(x))
        x = jax.random.key_data(x)
        info["data_shape"], info["data_dtype"] = list(x.shape), str(x.dtype)
    info["stored"] = x.size > 0
    return (x if x.size > 0 else None), info


def _check_keep(name: str, keep: Any) -> None:
    if keep is None:
        return
    if isinstance(keep, bool) or not isinstance(keep, numbers.Integral) or keep < 1:
        error = ValueError if isinstance(keep, numbers.Integral) else TypeError
        raise error(
            f"{name}: keep must be an int >= 1; got {keep!r}. Pass keep=None to "
            "keep every checkpoint."
        )


def save(
    directory: str | os.PathLike,
    state: Any,
    step: int | None = None,
    *,
    keep: int | None = 3,
) -> int:
    """Save a ``TrainState`` (or a ``(params, opt_state)`` pair) as
    ``directory/<step>``, and keep only the ``keep`` newest checkpoints.

    Stores the user's trees, ``state.params`` and ``state.opt_state`` (and the
    step count), leaf by leaf under key paths, whatever the state's layout or
    sharding. The checkpoint is written under a temporary name and renamed
    when complete; older checkpoints are removed only after that. Blocks until
    written. The optimizer itself is not stored (``restore`` takes ``like``'s).

    Args:
        directory: the checkpoints' directory (created if missing).
        state: a ``jgd.train.TrainState`` (not one a step has donated), or a
            ``(params, opt_state)`` pair of pytrees of arrays or numbers.
        step: an int >= 0, after every step already in ``directory``.
            Default: ``state.step`` for a TrainState, else one past the
            latest checkpoint (0 for the first).
        keep: an int >= 1, how many of the newest checkpoints to keep
            (default 3), or None to keep every one.

    Returns:
        The step saved.

    Raises:
        TypeError: ``directory`` not a path; ``step`` or ``keep`` not an int;
            ``state`` neither a TrainState nor a pair; a leaf that is not an
            array or number.
        ValueError: ``directory`` is a file; ``keep`` < 1; ``step`` < 0 or not
            after the latest checkpoint; two leaves with one key path; a
            donated TrainState.

    Example:
        >>> import tempfile, jax.numpy as jnp, jgd, jgd.checkpoint, jgd.train
        >>> tmp = tempfile.TemporaryDirectory()
        >>> state = jgd.train.init({"w": jnp.ones(3)}, jgd.adam(1e-3))
        >>> jgd.checkpoint.save(tmp.name, state)
        0
        >>> jgd.checkpoint.all_steps(tmp.name)
        [0]
        >>> tmp.cleanup()
    """
    name = "jgd.checkpoint.save"
    path = disk.check_directory(name, directory)
    _check_keep(name, keep)
    if step is not None:
        step = disk.check_step(name, step)
    params, opt_state, count = user_trees(name, state)
    arrays, described = [], []
    for leaf in leaves(params, opt_state, count):
        x, info = _on_disk(name, leaf)
        described.append(info)
        if x is not None:
            arrays.append((leaf.path, x))
    seen: set[str] = set()
    for info in described:
        if info["path"] in seen:
            raise ValueError(
                f"{name}: {info['path']}: two leaves have this key path (a dict "
                "with keys 0 and '0'?); give them distinct keys."
            )
        seen.add(info["path"])

    path.mkdir(parents=True, exist_ok=True)
    done = disk.steps(path)
    if step is None:
        step = int(count) if count is not None else (done[-1] + 1 if done else 0)
    if done and step <= done[-1]:
        raise ValueError(
            f"{name}: step must be after the latest checkpoint ({done[-1]}) in "
            f"{path}; got {step}. To go back, restore(directory, like, step=...) "
            "and save to another directory (or remove the later steps)."
        )
    if (path / str(step)).exists():
        raise ValueError(
            f"{name}: {path / str(step)} exists and is not a jgd checkpoint; "
            "choose another step or directory."
        )
    disk.remove_leftovers(path)
    is_state = isinstance(state, TrainState)
    meta = {
        "format": disk.FORMAT,
        "version": disk.VERSION,
        "step": step,
        "kind": "TrainState" if is_state else "pair",
        "layout": type(state.layout).__name__ if is_state else None,
        "opt": repr(state.opt) if is_state else None,  # for people, not read back
        "saved_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "versions": {"jax": jax.__version__, "orbax": disk.ocp.__version__},
        "leaves": described,
    }
    items = {disk.META: disk.ocp.args.JsonSave(meta)}
    if arrays:
        items[disk.ARRAYS] = disk.ocp.args.PyTreeSave(nest(arrays))
    with disk.checkpointer() as checkpointer:
        checkpointer.save(path / str(step), args=disk.ocp.args.Composite(**items))
    if keep is not None:
        disk.prune(path, keep)
    return step
