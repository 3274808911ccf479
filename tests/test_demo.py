"""``jgd demo``: the quick mode's table is sane, --plot writes a PNG, and a
missing matplotlib gets a clear message.

``quick_demo()`` runs ``jgd demo --quick`` once per test session, in a
subprocess (the command as users run it, timed, with an empty compilation
cache of its own); ``tests/test_cli.py`` reads the same run."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from jgd import cli, demo

# Its tests share module fixtures that run for seconds: one xdist worker
# runs them all (--dist loadgroup), so the fixtures run once.
pytestmark = pytest.mark.xdist_group("quick_demo")


class QuickDemo(NamedTuple):
    code: int
    stdout: str
    stderr: str
    seconds: float
    png: Path
    cache: Path  # the XDG_CACHE_HOME it ran with


@functools.cache
def quick_demo() -> QuickDemo:
    """``jgd demo --quick --plot ... --seed 1`` in a fresh process and cache."""
    tmp = Path(tempfile.mkdtemp(prefix="jgd-demo-"))  # left for the OS to clean
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
    # As tests/conftest.py sets for this process.
    env.update(JAX_NUMPY_DTYPE_PROMOTION="strict", JAX_NUMPY_RANK_PROMOTION="raise")
    png = tmp / "curves.png"
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "jgd", "demo", "--quick", "--plot", str(png)]
        + ["--seed", "1"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    seconds = time.perf_counter() - t0
    return QuickDemo(
        done.returncode, done.stdout, done.stderr, seconds, png, tmp / "cache"
    )


@pytest.fixture(scope="module")
def quick_run():
    """The quick demo's exit status, stdout and the PNG's path."""
    run = quick_demo()
    assert run.code == 0, run.stderr
    return run.code, run.stdout, run.png


def table_rows(text):
    """The table's data rows as lists of cells."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in ("regression", "classification"):
            rows.append(cells)
    return rows


def test_quick_demo_prints_a_row_per_problem_and_optimizer(quick_run):
    code, text, _ = quick_run
    assert code == 0
    rows = table_rows(text)
    names = [name for name, *_ in demo.OPTIMIZERS if name in demo.QUICK]
    assert len(names) == len(demo.QUICK) < len(demo.OPTIMIZERS)
    assert [(r[0], r[1]) for r in rows] == [
        (p, n) for p in ("regression", "classification") for n in names
    ]
    header = [c.strip() for c in demo.HEADER.strip("|").split("|")]
    assert header == [
        "problem", "optimizer", "batch", "lr", "steps", "initial loss", "final loss",
        "steps to tol", "train s", "compile s",
    ]  # fmt: skip


def test_every_optimizer_lowers_the_loss(quick_run):
    for problem, name, _, _, _, initial, final, *_ in table_rows(quick_run[1]):
        assert float(final) < float(initial), (problem, name)
        assert float(final) < 0.5 * float(initial), (problem, name)


def test_step_counts_follow_from_batch_size_and_epochs(quick_run):
    n, epochs = demo.SAMPLES[True], demo.EPOCHS[True]
    for _, name, batch, _, steps, _, _, to_tol, train_s, compile_s in table_rows(
        quick_run[1]
    ):
        per_epoch = 1 if batch == "all" else -(-n // int(batch))
        assert int(steps) == per_epoch * epochs, name
        if to_tol != "-":  # reached at the end of some epoch
            assert int(to_tol) % per_epoch == 0 and 0 < int(to_tol) <= int(steps)
        assert float(train_s) >= 0 and float(compile_s) > 0


def test_plot_writes_a_png(quick_run):
    _, text, path = quick_run
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert f"loss curves saved to {path}" in text


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    assert demo.main(["--quick", "--plot", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "pip install 'jgd[plot]'" in err
    assert not (tmp_path / "x.png").exists()


def test_cli_dispatches_demo_and_rejects_bad_options(capsys):
    assert cli.main(["demo", "--bogus"]) == 2
    assert "usage: jgd demo" in capsys.readouterr().err
