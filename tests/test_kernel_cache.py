"""jgd.kernels' build cache: a corrupt or half-built cache never kills the process.

Each case runs in a fresh process with its own ``JGD_CACHE_DIR`` and a stand-in
compiler (``$CXX``) that copies the library this session built, so a rebuild
takes milliseconds instead of the real compiler's ten seconds. The child trains
two steps of ``jgd.adam``; its params and optimizer state must equal this
process's, whether it rebuilt the kernels or fell back to XLA's loops (which
agree bit for bit on one float32 bucket, ``tests/test_kernels.py``).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
import jgd.train
from jgd import kernels

ROOT = Path(__file__).resolve().parents[1]

# Records its pid and its sleep's (a child, as cc1plus is the driver's), sleeps
# $FAKE_CXX_SLEEP seconds, then "compiles" by copying $FAKE_CXX_PREBUILT to -o.
FAKE_CXX = """#!/bin/sh
echo $$ >> "$FAKE_CXX_PIDS"
sleep "${FAKE_CXX_SLEEP:-0}" & echo $! >> "$FAKE_CXX_PIDS"; wait
while [ $# -gt 1 ]; do [ "$1" = -o ] && out=$2; shift; done
exec cp "$FAKE_CXX_PREBUILT" "$out"
"""

CHILD = """
import json, sys, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from tests.test_kernel_cache import steps
    np.savez(sys.argv[1], **steps())  # asks kernels.ready() at each step
from jgd import kernels
print(json.dumps({
    "status": kernels.status(),
    "fallbacks": [
        str(w.message) for w in caught
        if issubclass(w.category, kernels.KernelFallbackWarning)
    ],
}))
"""


def steps() -> dict[str, np.ndarray]:
    """Params and optimizer state after two steps of jgd.adam on a small model."""
    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.standard_normal((30, 20)), jnp.float32),
        "b": jnp.zeros(20, jnp.float32),
    }
    x = jnp.asarray(rng.standard_normal((8, 30)), jnp.float32)

    def loss(p, x):
        return jnp.sum((x @ p["w"] + p["b"][None, :]) ** 2)

    state = jgd.train.init(params, jgd.adam(1e-2))
    step = jgd.train.make_step(loss)
    for _ in range(2):
        state, _ = step(state, x)
    leaves = jax.tree_util.tree_flatten_with_path((state.params, state.opt_state))[0]
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}


@pytest.fixture(scope="module")
def reference():
    assert kernels.ready(), kernels.status()
    return steps()


@pytest.fixture
def env(tmp_path):
    """The environment of a child with a fresh cache and the stand-in compiler."""
    assert kernels.available(), kernels.status()
    cxx = tmp_path / "fake-cxx"
    cxx.write_text(FAKE_CXX)
    cxx.chmod(0o755)
    out = {k: v for k, v in os.environ.items() if k != "JGD_KERNELS"}
    out.update(
        CXX=str(cxx),
        JGD_CACHE_DIR=str(tmp_path / "cache"),
        FAKE_CXX_PIDS=str(tmp_path / "pids"),
        FAKE_CXX_PREBUILT=kernels.status().removeprefix("on: "),
    )
    return out


def _build_here(env, monkeypatch) -> Path:
    """Build into ``env``'s cache from this process (no loading)."""
    for k, v in env.items():
        if k in ("CXX", "JGD_CACHE_DIR") or k.startswith("FAKE_CXX_"):
            monkeypatch.setenv(k, v)
    return kernels._build()


def _child(env, tmp_path) -> tuple[dict, dict[str, np.ndarray]]:
    out = tmp_path / "leaves.npz"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(out)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as leaves:
        return json.loads(done.stdout.splitlines()[-1]), dict(leaves)


def _assert_same(leaves, reference):
    assert leaves.keys() == reference.keys()
    for k in reference:
        np.testing.assert_array_equal(leaves[k], reference[k], err_msg=k)


def _pids(env) -> list[int]:
    path = Path(env["FAKE_CXX_PIDS"])
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _truncate(lib: Path):
    os.truncate(lib, lib.stat().st_size // 2)


def _flip(lib: Path):
    data = bytearray(lib.read_bytes())
    for i in range(4096, len(data), 997):  # past the ELF header: dlopen would take it
        data[i] ^= 0xFF
    lib.write_bytes(data)  # same size: only the digest tells


def _drop_sidecar(lib: Path):
    kernels._sidecar(lib).unlink()  # a cache from before sidecars


@pytest.mark.parametrize("corrupt", [_truncate, _flip, _drop_sidecar])
def test_a_corrupt_library_is_rebuilt(corrupt, env, tmp_path, monkeypatch, reference):
    lib = _build_here(env, monkeypatch)
    good = lib.read_bytes()
    corrupt(lib)
    compiles = len(_pids(env))
    report, leaves = _child(env, tmp_path)
    assert report == {"status": f"on: {lib}", "fallbacks": []}
    assert len(_pids(env)) > compiles  # rebuilt
    assert lib.read_bytes() == good
    _assert_same(leaves, reference)


def test_a_corrupt_library_that_cannot_be_rebuilt_falls_back(
    env, tmp_path, monkeypatch, reference
):
    lib = _build_here(env, monkeypatch)
    _truncate(lib)
    env["FAKE_CXX_PREBUILT"] = str(tmp_path / "gone.so")  # the rebuild fails
    report, leaves = _child(env, tmp_path)
    assert report["status"].startswith("off: the kernel could not be built")
    assert "gone.so" in report["status"]
    [warning] = report["fallbacks"]
    assert "gone.so" in warning and "XLA's loops" in warning
    _assert_same(leaves, reference)


def test_without_a_compiler_one_warning_and_the_same_numbers(env, tmp_path, reference):
    env["CXX"] = "/nonexistent"
    report, leaves = _child(env, tmp_path)
    assert report["status"] == (
        "off: the kernel could not be built or loaded: "
        "no C++ compiler (/nonexistent not found; set CXX, or install c++)"
    )
    [warning] = report["fallbacks"]
    assert "/nonexistent not found" in warning and "slower" in warning
    _assert_same(leaves, reference)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is dead: our pid 1 may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_kill_9_mid_build_takes_the_compiler_along(env, monkeypatch):
    env["FAKE_CXX_SLEEP"] = "60"
    builder = subprocess.Popen(
        [sys.executable, "-c", "from jgd import kernels; kernels.available()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(_pids(env)) < 2:  # the compiler and its child are running
        assert builder.poll() is None, builder.stderr.read()
        assert time.monotonic() < deadline, "the stand-in compiler never started"
        time.sleep(0.05)
    builder.kill()  # SIGKILL
    builder.wait()
    builder.stderr.close()
    assert builder.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(map(_running, _pids(env))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_running, _pids(env))), "the compiler outlived its builder"

    cache = Path(env["JGD_CACHE_DIR"])
    assert list(cache.glob(f"kernels-*.{builder.pid}.*.tmp"))  # left by the dead
    lib = _build_here({**env, "FAKE_CXX_SLEEP": "0"}, monkeypatch)
    assert kernels._intact(lib)
    assert not list(cache.glob("*.tmp"))


def test_concurrent_builders_compile_once(env, monkeypatch):
    # flock excludes separate opens of the lock file, threads as well as processes
    env["FAKE_CXX_SLEEP"] = "1"
    first = _build_here(env, monkeypatch)
    kernels._sidecar(first).unlink()  # all three find it stale at once
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        libs = list(pool.map(lambda _: kernels._build(), range(3)))
    [lib] = set(libs)
    assert kernels._intact(lib)
    assert len(_pids(env)) == 4  # two compilers and their sleeps: one rebuild
    assert not list(lib.parent.glob("*.tmp"))
