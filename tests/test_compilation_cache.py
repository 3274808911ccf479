"""The suite's compilation cache (the root conftest.py): pruned by age past its
limit, and a damaged entry is compiled afresh with a warning, never a crash or
a wrong number."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

import conftest

ROOT = Path(__file__).resolve().parents[1]

# One process per phase, as two test runs are: the cache is read at compile.
# It sets the cache up as the suite does, through conftest.py.
PROGRAM = textwrap.dedent(
    """
    import sys, warnings
    sys.path.insert(0, sys.argv[1])
    import conftest  # JGD_TEST_CACHE names the directory
    import jax, jax.numpy as jnp
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = jax.jit(lambda x: jnp.sin(x) * 3.0 + x)(jnp.arange(4.0))
    print(repr([float(v) for v in y]))
    print(any("persistent compilation cache" in str(w.message) for w in caught))
    """
)


def _run(cache):
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=dict(os.environ, JGD_TEST_CACHE=str(cache)),
    )
    values, warned = done.stdout.strip().splitlines()[-2:]
    return values, warned == "True"


def _files(tmp_path, sizes):
    """Files of ``sizes`` bytes, oldest first (mtimes 1000 s apart)."""
    paths = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"entry{i}-cache"
        p.write_bytes(b"x" * size)
        os.utime(p, (1000.0 * (i + 1), 1000.0 * (i + 1)))
        paths.append(p)
    return paths


def test_prune_deletes_the_oldest_down_to_half_the_limit(tmp_path):
    paths = _files(tmp_path, [300, 300, 300, 300])
    conftest._prune(tmp_path, limit=1000)  # 1200 > 1000: down to <= 500
    assert [p.exists() for p in paths] == [False, False, False, True]


def test_prune_leaves_a_cache_within_its_limit(tmp_path):
    paths = _files(tmp_path, [300, 300, 300])
    conftest._prune(tmp_path, limit=900)
    assert all(p.exists() for p in paths)


@pytest.mark.skipif(
    jax.__version_info__ < (0, 10), reason="conftest.py keeps the cache off"
)
def test_a_damaged_entry_is_compiled_afresh(tmp_path):
    cache = tmp_path / "cache"
    first, warned = _run(cache)
    assert not warned
    entries = [p for p in cache.iterdir() if p.is_file()]
    assert entries, "the first run wrote nothing to the cache"
    for p in entries:  # as a run killed while writing would leave them
        p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 3])
    again, warned = _run(cache)
    assert again == first
    assert warned
