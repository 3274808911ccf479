"""The ``jgd`` command line: ``--version``, every command's ``--help`` (with
defaults, without internal jargon), the quick demo's promises (learning
rates, the cache line, its time budget), ``fit``'s compile notice, and that
``import jgd`` leaves the heavy namespaces unloaded."""

from __future__ import annotations

import importlib
import subprocess
import sys

import jax.numpy as jnp
import pytest

import jgd
from jgd import cli, demo
from tests.test_demo import quick_demo

# The test's run (cold cache, with --plot) measured 16 s on a loaded 2-core
# machine: twice that.
QUICK_DEMO_BUDGET_S = 32.0

HELPS = [["--help"], ["demo", "--help"], ["plot", "--help"]]
HELPS += [["plot", "sweep", "--help"], ["bench", "--help"]]


def test_version_prints_the_version_and_exits_0(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"jgd {cli.version()}"
    assert cli.version().split(".")[0].isdigit()


@pytest.mark.parametrize("argv", HELPS, ids=" ".join)
def test_help_exits_0_and_shows_defaults(argv, capsys):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: jgd")
    if argv != ["--help"]:  # the top level has no option with a default
        assert "(default:" in out
    assert "issue" not in out.lower()


def test_unknown_command_is_a_usage_error(capsys):
    assert cli.main(["bogus"]) == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_quick_demo_states_learning_rates_and_cache_and_is_quick():
    run = quick_demo()
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert f"compilation cache: {run.cache / 'jgd' / 'jax-cache'}" in run.stdout
    assert any(f.name.endswith("-cache") for f in (run.cache / "jgd").iterdir())
    header = next(line for line in lines if line.startswith("| problem"))
    assert "lr" in [c.strip() for c in header.strip("|").split("|")]
    learning_rates = {p.name: p.learning_rates for p in demo.problems(True, 1)}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in learning_rates:
            key = next(k for n, _, k, _ in demo.OPTIMIZERS if n == cells[1])
            assert float(cells[3]) == learning_rates[cells[0]][key]
    assert "issue" not in run.stdout.lower()
    assert run.seconds < QUICK_DEMO_BUDGET_S


def test_demo_no_cache_says_so(monkeypatch, capsys):
    monkeypatch.setattr(demo, "run", lambda quick, seed: [])
    assert demo.main(["--quick", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "compilation cache: off" in out and "issue" not in out.lower()


def test_fit_says_when_compiling_takes_long(monkeypatch, capsys):
    fit_module = importlib.import_module("jgd.train.fit")  # jgd.train.fit: fit()
    monkeypatch.setattr(fit_module, "COMPILE_NOTICE_S", 0.0)
    monkeypatch.setattr(fit_module, "_show_progress", lambda progress: progress)
    x = jnp.arange(5.0)

    def loss(p, xb):  # a new function: the epoch compiles afresh
        return jnp.mean((p - xb) ** 2)

    jgd.train.fit(loss, 0.0, jgd.sgd(0.1), x, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "jgd.train.fit: compiled the epoch in" in err
    jgd.train.fit(loss, 0.0, jgd.sgd(0.1), x, epochs=1, progress=False)
    assert "compil" not in capsys.readouterr().err


def test_import_jgd_leaves_heavy_namespaces_unloaded():
    code = (
        "import sys, jgd\n"
        "heavy = ('jgd.lab', 'jgd.bench', 'jgd.train', 'jgd.demo', 'matplotlib',"
        " 'tqdm')\n"
        "assert not [m for m in heavy if m in sys.modules], sorted(sys.modules)\n"
        "assert callable(jgd.train.init) and 'jgd.train' in sys.modules\n"
        "import jgd.lab\n"
        "assert jgd.lab.bowl.name == 'bowl'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
