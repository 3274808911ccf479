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


@pytest.mark.xdist_group("quick_demo")  # the run test_demo.py reads too
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


# Bad paths and arguments: one line on stderr, exit 2, nothing run (issue 13).
BAD_PATHS = [
    (
        ["plot", "bowl", "--out", "/nonexistent/x.png"],
        (
            "jgd plot: --out must be in an existing directory; got "
            "'/nonexistent/x.png' (/nonexistent does not exist)."
        ),
    ),
    (
        ["plot", "bowl", "--out={tmp}"],
        "jgd plot: --out must be a file path; got '{tmp}', a directory.",
    ),
    (
        ["demo", "--plot", "{tmp}/file/x.png"],
        (
            "jgd demo: --plot must be in an existing directory; got "
            "'{tmp}/file/x.png' ({tmp}/file is not a directory)."
        ),
    ),
    (
        ["bench", "--out", "{tmp}/file/sub", "--preset", "tiny"],
        (
            "jgd bench: --out must be a directory; got '{tmp}/file/sub' "
            "({tmp}/file is a file)."
        ),
    ),
    (
        ["bench", "--report", "{tmp}/missing.json"],
        (
            "jgd bench: --report must be a readable file; got "
            "'{tmp}/missing.json' (no such file)."
        ),
    ),
    (
        ["bench", "--report={tmp}"],
        "jgd bench: --report must be a readable file; got '{tmp}' (a directory).",
    ),
]


@pytest.mark.parametrize("argv, message", BAD_PATHS, ids=lambda a: str(a)[:40])
def test_bad_paths_give_one_line_and_exit_2(
    argv, message, tmp_path, capsys, monkeypatch
):
    (tmp_path / "file").write_text("")
    started = []
    monkeypatch.setattr(importlib, "import_module", lambda *a: started.append(a))
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert err == message.format(tmp=tmp_path) + "\n"
    assert out == "" and started == []  # the command never started


def test_unwritable_default_output_stops_the_run(tmp_path, capsys, monkeypatch):
    """jgd plot writes NAME.png into the current directory without --out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)
    assert cli.main(["plot", "bowl"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "jgd plot: the current directory must be writable; got '.' "
        f"({tmp_path} is not).\n"
    )


def test_a_bad_argument_the_library_refuses_is_one_line(capsys):
    assert cli.main(["plot", "bowl", "--lr", "1e39", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("jgd plot: jgd.sgd: learning_rate must be finite")


def test_other_errors_name_their_type_and_the_traceback_switch(capsys, monkeypatch):
    def boom(argv):
        raise ValueError("Seed must be\nnon-negative")

    monkeypatch.setattr(demo, "main", boom)
    assert cli.main(["demo"]) == 2
    assert capsys.readouterr().err == (
        "jgd demo: ValueError: Seed must be non-negative "
        f"(set {cli.TRACEBACK_ENV}=1 for the traceback)\n"
    )
    monkeypatch.setenv(cli.TRACEBACK_ENV, "1")
    with pytest.raises(ValueError):
        cli.main(["demo"])


def test_help_skips_the_path_checks(capsys):
    assert cli.main(["plot", "bowl", "--out", "/nonexistent/x.png", "--help"]) == 0
