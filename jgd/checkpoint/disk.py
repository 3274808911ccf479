"""What a checkpoint directory holds, and the steps in it.

``directory/<step>/`` is one checkpoint, written by orbax's
``CompositeCheckpointHandler``: ``arrays/`` (the leaves, by key path, through
orbax's array handlers) and ``meta/metadata`` (JSON: the format, the step, each
leaf's path, shape and dtype). orbax writes ``<step>.orbax-checkpoint-tmp``
and renames it when complete; a step is listed only under its final name and
with its JSON, so a half-written one never counts. A dropped step is renamed
to ``<step>.jgd-deleting`` before it is removed, so a half-deleted one never
counts either; the next save removes what such crashes left.
"""

from __future__ import annotations

import json
import numbers
import os
import re
import shutil
from pathlib import Path
from typing import Any

try:
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]
except ImportError as e:  # pragma: no cover (orbax is in the test extra)
    raise ImportError(
        "jgd.checkpoint needs orbax-checkpoint: pip install 'jgd[checkpoint]'."
    ) from e

__all__ = [
    "ARRAYS",
    "FORMAT",
    "META",
    "VERSION",
    "all_steps",
    "check_directory",
    "check_step",
    "checkpointer",
    "latest_step",
    "ocp",
    "prune",
    "read_meta",
    "remove_leftovers",
    "steps",
]

FORMAT, VERSION = "jgd.checkpoint", 1
ARRAYS, META = "arrays", "meta"  # orbax items in directory/<step>/
_META_FILE = "metadata"  # orbax's JsonCheckpointHandler's file name
_STEP = re.compile(r"0|[1-9][0-9]*")
_DELETING = ".jgd-deleting"
_LEFTOVER = re.compile(r"[0-9]+(\.orbax-checkpoint-tmp.*|\.jgd-deleting)")


def checkpointer() -> Any:
    """orbax's synchronous checkpointer over named items (a context manager)."""
    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def check_directory(name: str, directory: Any) -> Path:
    """``directory`` as an absolute path; it need not exist, but not as a file."""
    path = os.fspath(directory) if isinstance(directory, os.PathLike) else directory
    if not isinstance(path, str):
        raise TypeError(
            f"{name}: directory must be a path (str or os.PathLike); got "
            f"{directory!r} ({type(directory).__name__})."
        )
    if not path:
        raise ValueError(f"{name}: directory must be a directory path; got ''.")
    out = Path(path).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"{name}: directory must be a directory path; got {path!r}, which is "
            "a file."
        )
    return out


def check_step(name: str, step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(
            f"{name}: step must be an int >= 0 or None; got {step!r} "
            f"({type(step).__name__})."
        )
    if step < 0:
        raise ValueError(f"{name}: step must be an int >= 0 or None; got {step!r}.")
    return int(step)


def steps(path: Path) -> list[int]:
    """The complete checkpoints in ``path``: ``<step>/`` with its JSON."""
    if not path.is_dir():
        return []
    return sorted(
        int(e.name)
        for e in os.scandir(path)
        if _STEP.fullmatch(e.name)
        and e.is_dir()
        and os.path.isfile(os.path.join(e.path, META, _META_FILE))
    )


def all_steps(directory: str | os.PathLike) -> list[int]:
    """The steps of the complete checkpoints in ``directory``, ascending.

    A checkpoint that a crash left half-written (orbax's temporary directory)
    or half-deleted is not listed. A directory that does not exist has none.

    Raises:
        TypeError: ``directory`` is not a path.
        ValueError: ``directory`` is a file.
    """
    return steps(check_directory("jgd.checkpoint.all_steps", directory))


def latest_step(directory: str | os.PathLike) -> int | None:
    """The step of the newest complete checkpoint in ``directory``, or None.

    Raises:
        TypeError: ``directory`` is not a path.
        ValueError: ``directory`` is a file.
    """
    found = steps(check_directory("jgd.checkpoint.latest_step", directory))
    return found[-1] if found else None


def remove_leftovers(path: Path) -> None:
    """Remove what crashed saves and deletions left (never listed anyway)."""
    for e in os.scandir(path):
        if _LEFTOVER.fullmatch(e.name):
            shutil.rmtree(e.path, ignore_errors=True)


def prune(path: Path, keep: int) -> None:
    """Drop all but the ``keep`` newest checkpoints: each renamed first (one
    atomic step, so a crash never leaves a half-deleted ``<step>/``)."""
    for s in steps(path)[:-keep]:
        trash = path / f"{s}{_DELETING}"
        os.rename(path / str(s), trash)
        shutil.rmtree(trash, ignore_errors=True)


def read_meta(name: str, where: Path) -> dict:
    """The JSON of the checkpoint at ``where``."""
    with open(where / META / _META_FILE) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT or meta.get("version", 0) > VERSION:
        raise ValueError(
            f"{name}: {where} is not a checkpoint this jgd reads (format "
            f"{meta.get('format')!r}, version {meta.get('version')!r}); "
            f"expected {FORMAT!r}, version <= {VERSION}."
        )
    return meta
