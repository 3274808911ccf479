"""``jgd demo``: the quick mode runs in-process, its table is sane, --plot
writes a PNG, and a missing matplotlib gets a clear message."""

from __future__ import annotations

import contextlib
import io
import sys

import pytest

from jgd import cli, demo


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick demo with --plot; its stdout and the PNG's path."""
    path = tmp_path_factory.mktemp("demo") / "curves.png"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(["--quick", "--plot", str(path), "--seed", "1"])
    return code, out.getvalue(), path


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
    names = [name for name, _, _ in demo.OPTIMIZERS]
    assert [(r[0], r[1]) for r in rows] == [
        (p, n) for p in ("regression", "classification") for n in names
    ]
    header = [c.strip() for c in demo.HEADER.strip("|").split("|")]
    assert header == [
        "problem", "optimizer", "batch", "steps", "initial loss", "final loss",
        "steps to tol", "train s", "compile s",
    ]  # fmt: skip


def test_every_optimizer_lowers_the_loss(quick_run):
    for problem, name, _, _, initial, final, *_ in table_rows(quick_run[1]):
        assert float(final) < float(initial), (problem, name)
        assert float(final) < 0.5 * float(initial), (problem, name)


def test_step_counts_follow_from_batch_size_and_epochs(quick_run):
    n, epochs = 128, demo.EPOCHS[True]  # the quick mode's data size and epochs
    for _, name, batch, steps, _, _, to_tol, train_s, compile_s in table_rows(
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
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--bogus"])
    assert info.value.code == 2
    assert "usage: jgd demo" in capsys.readouterr().err
