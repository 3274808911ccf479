"""The benchmark harness itself, on tiny sizes: it runs, the JSON has every
field, the ratios come from the same run's own timings, the plots are PNGs.

Speed is never asserted here: the figures are whatever this machine gives.
"""

from __future__ import annotations

import json
import statistics
import struct
import zlib

import pytest

from jgd import bench, cli
from jgd.bench.workloads import _count, _shapes, _skip_rule

WORKLOADS = ("leaf-4k", "30x100")
OPTIMIZERS = ("adam", "clip+adamw")


def _variants():
    try:
        import torch  # noqa: F401
    except ImportError:
        return ("jgd", "jgd-flat", "jgd-step", "optax")
    return ("jgd", "jgd-flat", "jgd-step", "optax", "torch-foreach")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = [
        "--preset", "tiny",
        "--workloads", ",".join(WORKLOADS),
        "--optimizers", ",".join(OPTIMIZERS),
        "--variants", ",".join(_variants()),
        "--compile-sweep", "2,8",
        "--min-round-s", "0.001",
        "--out", str(out),
        "--name", "t",
        "--plot",
    ]  # fmt: skip
    assert bench.main(argv) == 0
    data = json.loads((out / "t.json").read_text())
    return out, data


def test_json_records_versions_device_threads_and_settings(result):
    _, data = result
    assert data["schema"] == "jgd-bench/1"
    assert data["command"].startswith("jgd bench --preset tiny")
    for k in ("python", "jgd", "jax", "jaxlib", "numpy", "optax", "torch"):
        assert k in data["versions"]
    assert data["versions"]["jax"] and data["versions"]["optax"]
    assert data["device"]["platform"] == "cpu"
    assert data["device"]["cpus_usable"] >= 1
    assert "env" in data["threads"] and "XLA_FLAGS" in data["threads"]["env"]
    s = data["settings"]
    assert s["rounds"] >= 7
    assert s["bytes_per_param"]["adam"] == 28
    assert tuple(s["variants"]) == _variants()
    assert data["duration_s"] > 0 and data["process_peak_rss_bytes"] > 0


def test_every_cell_and_variant_has_every_field(result):
    _, data = result
    cells = {(r["workload"], r["optimizer"]) for r in data["results"]}
    assert cells == {(w, o) for w in WORKLOADS for o in OPTIMIZERS}
    rounds = data["settings"]["rounds"]
    for r in data["results"]:
        for k in ("n_leaves", "n_params", "bytes_per_param", "bytes_per_step", "limit"):
            assert k in r
        for kernel in ("jit", "numpy"):
            lim = r["limit"][kernel]
            assert len(lim["rounds_s"]) == rounds
            assert lim["bytes_per_s"] > 0 and lim["calls_per_round"] >= 1
        assert r["limit"]["kernel"] in ("jit", "numpy")
        assert r["batch_args_s"] > 0  # jgd-step ran
        assert set(r["variants"]) == set(_variants())
        for name, v in r["variants"].items():
            assert v["status"] == "ok", (name, v)
            assert len(v["rounds_s"]) == rounds
            for k in ("step_s", "step_s_min", "bytes_per_s", "x_limit",
                      "fraction_of_limit", "state_bytes", "rss_growth_bytes"):  # fmt: skip
                assert k in v, (name, k)
            assert v["step_s"] > 0 and v["state_bytes"] > 0
            if v["kind"] == "jax":
                assert v["lower_s"] > 0 and v["compile_s"] > 0
                assert v["lower_plus_compile_s"] == pytest.approx(
                    v["lower_s"] + v["compile_s"]
                )
                m = v["xla_memory"]
                assert m["peak_bytes"] == (
                    m["argument_bytes"] + m["output_bytes"] - m["alias_bytes"]
                    + m["temp_bytes"]
                )  # fmt: skip
                # Donation: params and state alias the outputs.
                assert m["alias_bytes"] > 0
            else:
                assert v["compile_s"] is None and v["first_step_s"] > 0


def test_ratios_are_computed_from_the_same_runs_timings(result):
    _, data = result
    for r in data["results"]:
        n_leaves, n_params = _count(_shapes(r["workload"]))
        assert (r["n_leaves"], r["n_params"]) == (n_leaves, n_params)
        assert r["bytes_per_step"] == bench.BYTES_PER_PARAM[r["optimizer"]] * n_params
        bws = {}
        for kernel in ("jit", "numpy"):
            lim = r["limit"][kernel]
            assert lim["call_s"] == statistics.median(lim["rounds_s"])
            bws[kernel] = lim["bytes_per_call"] / lim["call_s"]
            assert lim["bytes_per_s"] == pytest.approx(bws[kernel], rel=1e-12)
        assert r["limit"]["bytes_per_s"] == pytest.approx(max(bws.values()), rel=1e-12)
        limit_step = r["bytes_per_step"] / max(bws.values())
        assert r["limit"]["step_s"] == pytest.approx(limit_step, rel=1e-12)
        for v in r["variants"].values():
            step = statistics.median(v["rounds_s"])
            assert v["step_s"] == step
            assert v["step_s_min"] == min(v["rounds_s"])
            assert v["x_limit"] == pytest.approx(step / limit_step, rel=1e-12)
            assert v["fraction_of_limit"] == pytest.approx(limit_step / step, rel=1e-12)
            assert v["bytes_per_s"] == pytest.approx(
                r["bytes_per_step"] / step, rel=1e-12
            )


def test_compile_sweep_and_goals(result):
    _, data = result
    assert [r["n_leaves"] for r in data["compile_sweep"]] == [2, 8]
    for r in data["compile_sweep"]:
        for name in ("jgd", "jgd-flat", "jgd-step", "optax"):
            v = r["variants"][name]
            assert v["lower_plus_compile_s"] == pytest.approx(
                v["lower_s"] + v["compile_s"]
            )
    # The tiny workloads are not the issue's, so only the clip/adam ratio applies.
    for g in data["goals"]:
        assert g["goal"].endswith("clip+adamw / adam at equal bandwidth")
        assert g["met"] == (g["measured"] <= g["target"])


def _png_chunks(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        pos += 12 + n
    return chunks


@pytest.mark.parametrize("suffix", ["leaves", "params", "compile"])
def test_plots_are_valid_pngs(result, suffix):
    out, _ = result
    chunks = _png_chunks((out / f"t-{suffix}.png").read_bytes())
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width > 100 and height > 100


def test_table_names_every_cell(result):
    _, data = result
    table = bench.format_table(data)
    for r in data["results"]:
        assert any(
            line.startswith(r["workload"]) and r["optimizer"] in line
            for line in table.splitlines()
        )


def test_unsupported_variant_is_recorded_as_skipped():
    pytest.importorskip("torch")
    out = bench.run(
        "tiny",
        workloads=("leaf-4k",),
        optimizers=("rmsprop",),
        variants=("torch-fused",),
        min_round_s=0.0005,
        compile_sweep=(),
        log=lambda _: None,
    )
    v = out["results"][0]["variants"]["torch-fused"]
    assert v == {
        "status": "skipped",
        "reason": "torch.optim.RMSprop has no fused implementation",
    }


def test_skip_rule_applies_each_variants_limits():
    skip = _skip_rule({"jgd": (1000, 100, ("adam",)), "jgd-step": (10000, 1000, None)})
    assert "at most 1000 leaves" in skip("w", 10000, "adam", "jgd")
    assert "only for adam" in skip("w", 1000, "sgd", "jgd")
    assert skip("w", 1000, "adam", "jgd") is None
    assert skip("w", 100, "sgd", "jgd") is None
    assert skip("w", 10000, "sgd", "jgd-step") is None
    assert skip("w", 10001, "sgd", "jgd-step")
    assert skip("w", 10**6, "sgd", "optax") is None  # no limits given


def test_goals_compare_against_the_targets():
    def cell(w, o, **variants):
        return {"workload": w, "optimizer": o,
                "variants": {k: {"status": "ok", **v} for k, v in variants.items()}}  # fmt: skip

    out = {"results": [
        cell("leaf-10M", "adam", jgd={"x_limit": 1.4, "step_s": 1.0},
             **{"jgd-step": {"x_limit": 1.1, "step_s": 0.8}}),
        cell("leaf-10M", "clip+adamw", jgd={"x_limit": 2.0, "step_s": 1.5}),
    ]}  # fmt: skip
    got = {(g["goal"], g["via"]): (g["measured"], g["met"]) for g in bench.goals(out)}
    assert got == {
        ("leaf-10M adam", "jgd"): (1.4, False),
        ("leaf-10M adam", "jgd-step"): (1.1, True),
        ("leaf-10M clip+adamw / adam at equal bandwidth", "jgd"): (
            pytest.approx(2.0 * 32 / (1.4 * 28)),
            False,
        ),
    }
    (clip,) = [g for g in bench.goals(out) if "clip" in g["goal"]]
    assert clip["time_ratio"] == 1.5


def test_make_step_goal_also_reports_its_figure_less_the_batch(result):
    """jgd-step's verdict is on its whole step; the row also says what it is
    less the time to pass the benchmark's batch, from the same cell."""
    out = {"results": [{
        "workload": "10000x100", "optimizer": "adam", "batch_args_s": 0.003,
        "limit": {"step_s": 0.001},
        "variants": {"jgd-step": {"status": "ok", "x_limit": 8.0, "step_s": 0.008},
                     "jgd-flat": {"status": "ok", "x_limit": 1.5, "step_s": 0.0015}},
    }]}  # fmt: skip
    rows = {g["via"]: g for g in bench.goals(out)}
    assert rows["jgd-step"]["met"] is False
    assert rows["jgd-step"]["net_of_batch_args"] == pytest.approx(5.0)
    assert "net_of_batch_args" not in rows["jgd-flat"]
    table = bench.format_table({"settings": {"variants": []}, "results": [],
                                "goals": bench.goals(out)})  # fmt: skip
    assert "5 less passing the batch" in table
    _, data = result  # a real run's JSON, with these goal rows
    markdown = bench.format_markdown(dict(data, goals=bench.goals(out)))
    assert "| 8 x limit (5 less passing the batch) | jgd-step | no |" in markdown


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


def test_cli_dispatches_bench(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "--help"])
    assert e.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_report_prints_a_recorded_runs_markdown(result, capsys):
    out, data = result
    assert bench.main(["--report", str(out / "t.json")]) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith("| leaf-4k |")]
    # One row per optimizer in the ratio table, one (Adam) in the compile table.
    assert len(rows) == len(OPTIMIZERS) + 1
    adam = next(
        r
        for r in data["results"]
        if r["workload"] == "leaf-4k" and r["optimizer"] == "adam"
    )
    assert f"| {adam['variants']['jgd']['x_limit']:.2f} |" in rows[0]
