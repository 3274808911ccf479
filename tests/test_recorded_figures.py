"""The speed figures the docs quote are the recorded run's
(benchmarks/results/full.json): re-recording the run without updating
docs/performance.md, benchmarks/README.md and the README fails here."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN = json.loads((ROOT / "benchmarks" / "results" / "full.json").read_text())
CELLS = {(r["workload"], r["optimizer"]): r for r in RUN["results"]}
OPTIMIZERS = ("adam", "momentum", "clip+adamw")  # the tables' column order

# "1.05 [1.02, 1.12] (1.04)", the first number bold where it is a win.
_CELL = re.compile(
    r"^\**(?P<x>\d\.\d\d)\** \[(?P<lo>\d\.\d\d), (?P<hi>\d\.\d\d)\] \((?P<aa>\d\.\d\d)\)$"
)


def _recorded(workload: str, optimizer: str) -> tuple[str, str, str, str]:
    v = CELLS[(workload, optimizer)]["variants"]
    lo, hi, _ = v["jgd-step"]["speedup_vs_optax_interval"]
    return tuple(  # type: ignore[return-value]
        f"{x:.2f}"
        for x in (
            v["jgd-step"]["speedup_vs_optax"],
            lo,
            hi,
            v["optax-again"]["speedup_vs_optax"],
        )
    )


def _table_rows(text: str, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header starts so."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(first_header))
    rows = []
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def _check_table(rows: list[list[str]], workload_of) -> int:
    checked = 0
    for label, *cells in rows:
        workload, leaves = workload_of(label)
        assert CELLS[(workload, "adam")]["n_leaves"] == leaves, label
        for optimizer, cell in zip(OPTIMIZERS, cells, strict=True):
            if not cell:
                assert (workload, optimizer) not in CELLS, (label, optimizer)
                continue
            m = _CELL.match(cell)
            assert m, (label, optimizer, cell)
            assert m.group("x", "lo", "hi", "aa") == _recorded(workload, optimizer), (
                label,
                optimizer,
            )
            checked += 1
    return checked


def test_the_performance_page_quotes_the_recorded_run():
    names = {
        "MLP 2M": "mlp-2M",
        "MLP 20M": "mlp-20M",
        "GPT": "gpt",
        "CNN": "cnn",
        "residual MLP": "resmlp-100",
    }

    def workload_of(label):
        name, leaves = re.fullmatch(r"(.+), (\d+) leaves", label).groups()
        return names[name], int(leaves)

    text = (ROOT / "docs" / "performance.md").read_text()
    rows = _table_rows(text, "| make_step vs optax")
    assert _check_table(rows, workload_of) == len(CELLS)


def test_the_benchmarks_readme_quotes_the_recorded_run():
    def workload_of(label):
        name, leaves = re.fullmatch(r"(\S+) \((\d+) leaves\)", label).groups()
        return name, int(leaves)

    text = (ROOT / "benchmarks" / "README.md").read_text()
    section = text[text.index("## Results: `results/full.json`") :]
    rows = _table_rows(section, "| workload | adam | momentum | clip+adamw |")
    assert _check_table(rows, workload_of) == len(CELLS)
    minutes = f"({RUN['duration_s'] / 60:.1f} minutes here"
    assert minutes in section


@pytest.mark.parametrize(
    "quote, figures",
    [
        ("{}x on a 404-leaf residual MLP", [("resmlp-100", "adam")]),
        (
            "{}-{}x on MLPs, a GPT and a CNN with Adam",
            [(w, "adam") for w in ("mlp-2M", "mlp-20M", "gpt", "cnn")],
        ),
        (
            "{}-{}x with clipping and AdamW",
            [(w, "clip+adamw") for w in ("mlp-2M", "mlp-20M", "gpt", "cnn")],
        ),
    ],
)
def test_the_readme_quotes_the_recorded_run(quote, figures):
    values = sorted(float(_recorded(w, o)[0]) for w, o in figures)
    ends = [values[0]] if len(values) == 1 else [values[0], values[-1]]
    expected = quote.format(*(f"{x:.2f}" for x in ends))
    assert expected in " ".join((ROOT / "README.md").read_text().split())
