"""The benchmark harness itself, on tiny models: it runs, every variant gives
a time, the JSON has the ratios, the goals come from the data file and can
fail, --quick leaves the tracked results alone, --report re-evaluates.

Speed is never asserted here: the figures are whatever this machine gives.
"""

from __future__ import annotations

import ast
import functools
import json
import mmap
import statistics
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest

from jgd import bench, cli
from jgd.bench import measure
from jgd.bench.goals import DEFAULT_GOALS
from jgd.bench.workloads import count

# Its tests share module fixtures that run for seconds: one xdist worker
# runs them all (--dist loadgroup), so the fixtures run once.
pytestmark = pytest.mark.xdist_group("bench")


CELLS = {"mlp-tiny": ("adam",)}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    data = {}
    for workload, optimizers in CELLS.items():
        argv = [
            "--preset",
            "tiny",
            "--workloads",
            workload,
            "--optimizers",
            ",".join(optimizers),
            "--min-round-s",
            "0.0005",
            "--out",
            str(out),
            "--name",
            workload,
        ]
        assert bench.main(argv) == 0
        data[workload] = json.loads((out / f"{workload}.json").read_text())
    return out, data


def _rows(data):
    return [r for d in data.values() for r in d["results"]]


def test_models_are_deterministic_and_trace_under_strict_promotion():
    for name in ("mlp-tiny", "gpt-tiny", "cnn-tiny", "resmlp-tiny"):
        model = bench.WORKLOADS[name]
        a, b = model.init(0), model.init(0)
        assert all(
            np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
        )
        # Traced only (the run's cells compute real losses: first_loss).
        loss = jax.eval_shape(model.loss, a, model.batch(0))
        assert loss.shape == () and loss.dtype == np.float32, name


def test_the_full_models_have_the_sizes_the_issue_asks_for():
    # Shapes only, through eval_shape: nothing is allocated.
    def size(name):
        model = bench.WORKLOADS[name]
        return count(jax.eval_shape(lambda: model.init(0)))

    assert size("mlp-2M")[1] == pytest.approx(2e6, rel=0.1)
    assert size("mlp-20M")[1] == pytest.approx(20e6, rel=0.01)
    assert 45 <= size("gpt")[0] <= 60
    assert size("resmlp-100")[0] >= 400


def test_json_records_the_run(result):
    _, data = result
    d = data["mlp-tiny"]
    assert d["schema"] == "jgd-bench/2"
    assert d["command"].startswith("jgd bench --preset tiny")
    assert d["versions"]["jax"] and d["versions"]["optax"]
    assert d["device"]["platform"] == "cpu"
    assert d["settings"]["rounds"] >= 7
    assert d["settings"]["cells"] == {"mlp-tiny": ["adam"]}
    assert d["settings"]["variants"] == list(bench.VARIANTS)
    assert d["workloads"]["mlp-tiny"]["n_leaves"] == 6
    assert d["duration_s"] > 0


def test_every_variant_produces_a_time_and_the_ratios(result):
    _, data = result
    rows = _rows(data)
    assert {(r["workload"], r["optimizer"]) for r in rows} == {
        (w, o) for w, opts in CELLS.items() for o in opts
    }
    for r in rows:
        assert set(r["variants"]) == set(bench.VARIANTS)
        ref = r["variants"]["optax"]
        for name, v in r["variants"].items():
            assert v["status"] == "ok", (name, v)
            assert v["step_s"] == statistics.median(v["rounds_s"]) > 0
            assert len(v["rounds_s"]) == data[r["workload"]]["settings"]["rounds"]
            assert v["lower_plus_compile_s"] == pytest.approx(
                v["lower_s"] + v["compile_s"]
            )
            samples = v["compile_samples_s"]
            assert len(samples) == data[r["workload"]]["settings"]["compile_repeats"]
            assert v["compile_s"] == statistics.median(c for _, c in samples)
            paired = [a / b for a, b in zip(ref["rounds_s"], v["rounds_s"])]
            assert v["speedup_vs_optax"] == pytest.approx(statistics.median(paired))
            assert len(v["minor_faults_per_step"]) == len(v["rounds_s"])
            assert min(v["minor_faults_per_step"]) >= 0
            lo, hi, _ = v["speedup_vs_optax_interval"]
            assert min(paired) <= lo <= v["speedup_vs_optax"] <= hi <= max(paired)
            assert v["compile_ratio_vs_optax"] == pytest.approx(
                v["lower_plus_compile_s"] / ref["lower_plus_compile_s"]
            )
            assert v["limit_fraction"] == pytest.approx(
                r["limit"]["step_s"] / v["step_s"]
            )
            # The same params and batch: every variant's first loss agrees.
            assert v["first_loss"] == pytest.approx(ref["first_loss"], rel=1e-5)
            m = v["xla_memory"]
            assert m["alias_bytes"] > 0  # params and state are donated
        assert r["variants"]["optax"]["speedup_vs_optax"] == 1.0
        assert r["bytes_per_step"] == r["bytes_per_param"] * r["n_params"]
        assert r["limit"]["step_s"] == pytest.approx(
            r["bytes_per_step"] / r["limit"]["bytes_per_s"]
        )


def _binomial_tail(n, k):  # P(Binomial(n, 1/2) < k), summed term by term
    return (
        sum(
            functools.reduce(lambda a, j: a * (n - j) / (j + 1), range(i), 1.0)
            for i in range(k)
        )
        / 2**n
    )


@pytest.mark.parametrize("n", [1, 2, 5, 11, 21, 40])
def test_the_speedup_interval_is_two_order_statistics(n):
    rng = np.random.default_rng(n)
    ref = list(rng.uniform(1.0, 2.0, n))
    other = list(rng.uniform(1.0, 2.0, n))
    ratios = sorted(a / b for a, b in zip(ref, other))
    lo, hi, coverage = measure.paired_interval(ref, other, level=0.9)
    k = ratios.index(lo) + 1  # lo is the k-th smallest
    assert hi == ratios[n - k]  # and hi the k-th largest
    assert lo <= measure.paired_speedup(ref, other) <= hi
    assert coverage == pytest.approx(1 - 2 * _binomial_tail(n, k))
    if n >= 5:  # enough rounds for 90%: k is the largest that keeps it
        assert coverage >= 0.9 > 1 - 2 * _binomial_tail(n, k + 1)
    else:
        assert k == 1


def test_page_faults_are_counted_per_step():
    def touch_fresh_memory(k):  # 16 MiB mapped afresh and written, per step
        for _ in range(k):
            with mmap.mmap(-1, 1 << 24) as m:
                if hasattr(mmap, "MADV_NOHUGEPAGE"):  # 4 KiB pages, counted
                    m.madvise(mmap.MADV_NOHUGEPAGE)
                m.write(b"\1" * (1 << 24))

    faults = {}
    measure.interleave(
        {"fresh": touch_fresh_memory, "idle": lambda k: None},
        {"fresh": 3, "idle": 3},
        2,
        faults,
    )
    assert len(faults["fresh"]) == len(faults["idle"]) == 2
    assert min(faults["fresh"]) > 1000  # 4096 pages of 4 KiB each
    assert max(faults["idle"]) < 100


def test_rounds_rotate_so_no_runner_always_goes_first():
    order: list[str] = []
    runs = {n: functools.partial(lambda n, k: order.extend([n] * k), n) for n in "abc"}
    times = measure.interleave(runs, {"a": 1, "b": 2, "c": 1}, rounds=4)
    assert "".join(order) == "abbc" + "bbca" + "cabb" + "abbc"
    assert {n: len(t) for n, t in times.items()} == {"a": 4, "b": 4, "c": 4}


def test_compile_time_is_the_median_of_fresh_builds():
    from jgd.bench.runners import Runner

    made = []

    def make():  # each build must trace anew, or it would time a cache hit
        made.append(jax.jit(lambda x: x + 1.0))
        return made[-1]

    runner = Runner()
    runner._prepare(make, np.float32(1.0))
    for _ in range(3):
        runner.compile_once()
    fn = runner.fn
    assert len(made) == 3 and len({id(f) for f in made}) == 3
    assert len(runner.compile_samples_s) == 3
    assert runner.lower_s == statistics.median(lo for lo, _ in runner.compile_samples_s)
    assert runner.compile_s == statistics.median(c for _, c in runner.compile_samples_s)
    assert float(fn(np.float32(1.0))) == 2.0


def test_a_variant_that_fails_to_compile_is_recorded_and_the_rest_run(monkeypatch):
    from jgd.bench import runners

    def broken(self):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(runners.MakeStep, "compile_once", broken)
    out = measure.run(
        "tiny",
        workloads=("mlp-tiny",),
        optimizers=("adam",),
        variants=("optax", "jgd-step"),
        min_round_s=0.0005,
        log=lambda line: None,
    )
    (row,) = out["results"]
    assert row["variants"]["jgd-step"] == {
        "status": "failed",
        "reason": "RuntimeError: no compiler today",
    }
    assert row["variants"]["optax"]["status"] == "ok"
    assert row["variants"]["optax"]["speedup_vs_optax"] == 1.0


def test_goals_come_from_the_data_file_and_are_evaluated(result):
    _, data = result
    spec = json.loads(DEFAULT_GOALS.read_text())
    d = data["mlp-tiny"]
    assert d["goal_spec"]["source"] == str(DEFAULT_GOALS)
    assert [g["id"] for g in d["goal_spec"]["goals"]] == [
        g["id"] for g in spec["goals"]
    ]
    by_cell = {(g["goal"], g["workload"], g["optimizer"]): g for g in d["goals"]}
    for g in spec["goals"]:
        if g["workloads"] == "all":
            for o in CELLS["mlp-tiny"]:
                row = by_cell[(g["id"], "mlp-tiny", o)]
                assert (
                    row["measured"]
                    == next(r for r in d["results"] if r["optimizer"] == o)["variants"][
                        g["variant"]
                    ][g["metric"]]
                )
                assert row["met"] in (True, False)
        else:  # named workloads this run did not include
            for w in g["workloads"]:
                assert by_cell[(g["id"], w, None)]["met"] is None


def _fabricated(speedup, compile_ratio):
    return {
        "results": [
            {
                "workload": "w",
                "optimizer": "adam",
                "variants": {
                    "jgd-step": {
                        "status": "ok",
                        "speedup_vs_optax": speedup,
                        "compile_ratio_vs_optax": compile_ratio,
                    },
                    "jgd": {"status": "failed", "reason": "x"},
                },
            }
        ]
    }


SPEC = {
    "goals": [
        {
            "id": "fast",
            "variant": "jgd-step",
            "metric": "speedup_vs_optax",
            "at_least": 1.5,
            "workloads": "all",
        },
        {
            "id": "compile",
            "variant": "jgd-step",
            "metric": "compile_ratio_vs_optax",
            "at_most": 1.0,
            "tolerance": 0.05,
        },
        {"id": "jgd", "variant": "jgd", "metric": "speedup_vs_optax", "at_least": 1.0},
        {
            "id": "named",
            "variant": "jgd-step",
            "metric": "speedup_vs_optax",
            "at_least": 1.0,
            "workloads": ["elsewhere"],
        },
    ]
}


def test_a_goal_can_fail():
    got = {g["goal"]: g["met"] for g in bench.evaluate(_fabricated(1.2, 1.04), SPEC)}
    assert got == {"fast": False, "compile": True, "jgd": None, "named": None}
    run = _fabricated(1.2, 1.04)
    run["results"][0]["variants"]["jgd-step"]["speedup_vs_optax_interval"] = [
        1.1,
        1.6,
        0.93,
    ]
    rows = {g["goal"]: g for g in bench.evaluate(run, SPEC)}
    # The interval is reported alongside; the verdict stays on the median.
    assert rows["fast"]["interval"] == [1.1, 1.6, 0.93]
    assert rows["fast"]["met"] is False
    assert rows["compile"]["interval"] is None
    got = {g["goal"]: g["met"] for g in bench.evaluate(_fabricated(1.6, 1.06), SPEC)}
    assert got == {"fast": True, "compile": False, "jgd": None, "named": None}


def test_a_malformed_goal_is_refused(tmp_path):
    path = tmp_path / "goals.json"
    path.write_text(
        json.dumps(
            {
                "goals": [
                    {
                        "id": "g",
                        "variant": "jgd-step",
                        "metric": "speedup_vs_optax",
                        "at_least": 1.0,
                        "at_most": 2.0,
                    }
                ]
            }
        )
    )
    with pytest.raises(ValueError, match="exactly one number"):
        bench.load_goals(path)


def test_report_re_evaluates_goals(result, tmp_path, capsys):
    out, data = result
    strict = tmp_path / "strict.json"
    strict.write_text(
        json.dumps(
            {
                "goals": [
                    {
                        "id": "impossible",
                        "variant": "jgd",
                        "metric": "speedup_vs_optax",
                        "at_least": 1e9,
                    }
                ]
            }
        )
    )
    recorded = out / "mlp-tiny.json"
    assert bench.main(["--report", str(recorded), "--goals", str(strict)]) == 0
    text = capsys.readouterr().out
    assert text.count("MISS impossible") == len(CELLS["mlp-tiny"])
    assert "| impossible | mlp-tiny adam | jgd | speedup_vs_optax |" in text
    assert "step-speed" not in text  # the recorded goals are not reused
    adam = data["mlp-tiny"]["results"][0]
    jgd_cell = adam["variants"]["jgd"]
    lo, hi, _ = jgd_cell["speedup_vs_optax_interval"]
    assert f"({jgd_cell['speedup_vs_optax']:.2f}x [{lo:.2f}, {hi:.2f}])" in text


def test_report_refuses_the_old_synthetic_format(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "jgd-bench/1", "results": []}))
    assert bench.main(["--report", str(old)]) == 2
    assert "earlier harness" in capsys.readouterr().err


def test_quick_does_not_write_into_benchmarks_results(tmp_path, monkeypatch):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    argv = [
        "--quick",
        "--workloads",
        "mlp-tiny",
        "--optimizers",
        "clip+adamw",
        "--variants",
        "optax,jgd-step",
        "--min-round-s",
        "0.0005",
    ]
    assert bench.main(argv) == 0
    assert list((tmp_path / "benchmarks" / "results").iterdir()) == []
    written = json.loads((tmp_path / "tmp" / "jgd-bench" / "quick.json").read_text())
    assert written["preset"] == "quick"
    assert written["settings"]["cells"] == {"mlp-tiny": ["clip+adamw"]}
    (row,) = written["results"]
    assert row["variants"]["jgd-step"]["speedup_vs_optax"] > 0


@pytest.mark.parametrize("name", bench.OPTIMIZERS)
def test_jgd_and_optax_builds_take_the_same_steps(name):
    import optax

    import jgd
    from jgd.bench.workloads import build_optimizer

    params = {
        "w": np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3),
        "b": np.full((3,), 0.5, np.float32),
    }
    grads = jax.tree.map(lambda p: 3.0 * p + np.float32(0.1), params)
    ours, theirs = build_optimizer(jgd, name), build_optimizer(optax, name)
    with jax.numpy_dtype_promotion("standard"):  # optax is not strict-clean
        s1, s2 = ours.init(params), theirs.init(params)
        for _ in range(2):
            u1, s1 = ours.update(grads, s1, params)
            u2, s2 = theirs.update(grads, s2, params)
            for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert (
        bench.main(["--preset", "tiny", "--workloads", "nope", "--out", str(tmp_path)])
        == 2
    )
    assert "unknown workload 'nope'" in capsys.readouterr().err
    assert (
        bench.main(["--preset", "tiny", "--rounds", "3", "--out", str(tmp_path)]) == 2
    )
    assert "rounds must be >= 7" in capsys.readouterr().err
    assert (
        bench.main(
            ["--preset", "tiny", "--variants", "jgd-flat", "--out", str(tmp_path)]
        )
        == 2
    )
    assert "unknown variant 'jgd-flat'" in capsys.readouterr().err


def test_cli_dispatches_bench(capsys):
    # jgd's main returns a subcommand's exit status (as jgd --version does).
    assert cli.main(["bench", "--help"]) == 0
    assert "--quick" in capsys.readouterr().out


def test_the_library_does_not_import_the_benchmark():
    """Outside jgd/bench, only the command line names it (by string, loaded on
    use)."""
    root = Path(bench.__file__).parents[1]
    for path in root.rglob("*.py"):
        if "bench" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [
                    f"{node.module}.{a.name}" for a in node.names
                ]
            assert not any(n.startswith("jgd.bench") for n in names), path
