"""The measurements of ``jgd bench``: one cell (every variant of one
workload and optimizer, timed interleaved with the limit kernels), the
machine's description, and ``run``, which returns a JSON-ready dict.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import gc
import importlib
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jgd.bench.goals import evaluate, load_goals
from jgd.bench.report import row_line
from jgd.bench.runners import Failed, LimitJit, LimitNumpy, Runner, build
from jgd.bench.workloads import (
    BYTES_PER_PARAM,
    LR,
    OPTIMIZERS,
    PRESETS,
    REFERENCE,
    VARIANTS,
    WORKING_SET,
    WORKLOADS,
    count,
)

LIMITS = ("limit-jit", "limit-numpy")
SCHEMA = "jgd-bench/2"

METHODS = {
    "timing": "every variant of a cell is built and compiled first; then the "
    "variants and the two limit kernels run interleaved for `rounds` rounds, "
    "each round starting one runner further along (A B C, B C A, C A B, ...); "
    "a round runs k back-to-back steps (k set at warm-up so that "
    "a round lasts min_round_s, at most max_k) and ends with block_until_ready; "
    "step_s is the median over rounds of elapsed/k",
    "optax": "jit(value_and_grad(loss) + optax update + optax.apply_updates), "
    "params and state donated, returning the loss",
    "optax-again": "the optax step built and compiled a second time: its "
    "speedup_vs_optax is the run-to-run spread of the cell (an A/A comparison)",
    "jgd": "the same hand-written step with the jgd optimizer and jgd.apply_updates",
    "jgd-step": "jgd.train.make_step(loss) on jgd.train.init(params, opt), "
    "step.lower(state, batch).compile(); metrics hold the loss",
    "speedup_vs_optax": "the median over rounds of optax's elapsed/k over this "
    "variant's in the same round, same cell and run "
    "(> 1: faster than the hand-written optax step)",
    "speedup_vs_optax_interval": "[low, high, coverage]: the k-th smallest and "
    "k-th largest per-round ratio, a distribution-free interval for that median "
    "with the coverage given (about 90%; k from the Binomial(rounds, 1/2) tails)",
    "compile_s": "lower_plus_compile_s: .lower(...) (tracing) plus .compile(), "
    "timed apart, after an untimed compile of jit(value_and_grad(loss)) warmed "
    "the caches the variants share; built compile_repeats times from a fresh "
    "function, the builds rotating like the rounds, lower_s and compile_s are "
    "the medians (compile_samples_s: each (lower, compile)); "
    "compile_ratio_vs_optax = this / optax's "
    "(< 1: compiles faster)",
    "limit": "max bytes/s of (a) donated jax.jit in-place x=0.5*x+0.25 over a flat "
    "float32 buffer of working_set_floats, (b) numpy copyto between its two halves; "
    "limit step_s = the optimizer's bytes_per_step / that: the least time the "
    "optimizer update alone can take; limit_fraction = limit step_s / step_s",
    "minor_faults_per_step": "per round, the process's minor page faults "
    "(getrusage ru_minflt) over the round's steps: with several programs "
    "interleaved, glibc can hand freed memory back and fault it in again on the "
    "next step, a cost of the harness that a lone training loop does not pay",
    "memory": "xla_memory: XLA's memory analysis of the compiled step "
    "(peak_bytes = arguments + outputs - aliased + temporaries)",
    "first_loss": "the loss of each variant's first step: the same params and "
    "batch, so the variants agree",
}


# --------------------------------------------------------------------------
# One cell: a workload and an optimizer, all variants interleaved.
# --------------------------------------------------------------------------


def _calibrate(runner: Runner, min_round_s: float, max_k: int) -> int:
    runner.run(1)  # warm-up: the first call allocates
    t0 = time.perf_counter()
    runner.run(1)
    one = max(time.perf_counter() - t0, 1e-7)
    return int(min(max_k, max(1, math.ceil(min_round_s / one))))


def rotations(names: list[str], rounds: int):
    """``rounds`` orders of ``names``, each starting one further along: in a
    fixed order the same variant would always follow the limit kernels' sweep
    of memory, or be compiled last in a process whose compiles slow down."""
    for i in range(rounds):
        turn = i % max(1, len(names))
        yield names[turn:] + names[:turn]


def interleave(
    runs: dict[str, Callable[[int], None]],
    ks: dict[str, int],
    rounds: int,
    faults: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Per name, the seconds per step of each round (``runs[name](k)`` timed,
    over k), the rounds in ``rotations``. A ``faults`` dict gets, per name,
    the process's minor page faults per step of each round: the allocator
    handing memory back and touching it anew shows up there."""
    times: dict[str, list[float]] = {n: [] for n in runs}
    for order in rotations(list(runs), rounds):
        for n in order:
            f0 = _minor_faults()
            t0 = time.perf_counter()
            runs[n](ks[n])
            times[n].append((time.perf_counter() - t0) / ks[n])
            if faults is not None:
                faults.setdefault(n, []).append((_minor_faults() - f0) / ks[n])
    return times


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not on this platform: recorded as none
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def paired_speedup(ref_s: list[float], other_s: list[float]) -> float:
    """The median over rounds of the reference's time over the other's: both
    ran within the same round, so a slow spell of the machine moves both."""
    return statistics.median(a / b for a, b in zip(ref_s, other_s, strict=True))


def paired_interval(
    ref_s: list[float], other_s: list[float], level: float = 0.9
) -> tuple[float, float, float]:
    """A distribution-free interval for ``paired_speedup``: the k-th smallest
    and k-th largest per-round ratio, k the largest with P(Binomial(n, 1/2)
    < k) <= (1 - level) / 2. Returns (low, high, its coverage); with too few
    rounds for ``level``, the smallest and largest ratio."""
    ratios = sorted(a / b for a, b in zip(ref_s, other_s, strict=True))
    n = len(ratios)
    tail, k = 0.0, 0
    while k < n // 2:
        nxt = tail + math.comb(n, k) / 2**n
        if nxt > (1 - level) / 2:
            break
        tail, k = nxt, k + 1
    k = max(k, 1)
    coverage = 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n
    return ratios[k - 1], ratios[n - k], coverage


def _limit(runners, med, times, ks, bytes_per_step) -> dict[str, Any]:
    import jax

    out: dict[str, Any] = {}
    for n in LIMITS:
        out[n.removeprefix("limit-")] = {
            "call_s": med[n],
            "bytes_per_call": runners[n].bytes_per_call,
            "bytes_per_s": runners[n].bytes_per_call / med[n],
            "rounds_s": times[n],
            "calls_per_round": ks[n],
        }
    best = max(out, key=lambda n: out[n]["bytes_per_s"])
    if jax.default_backend() != "cpu":
        best = "jit"  # NumPy measures host memory, not the accelerator's
    bw = out[best]["bytes_per_s"]
    return out | {"kernel": best, "bytes_per_s": bw, "step_s": bytes_per_step / bw}


def _warm_up(model: Any, params_np: Any, batch: Any) -> None:
    """Trace and compile the bare loss and gradient once, untimed: otherwise
    the first variant built pays for the caches (jitted helpers inside the
    model, XLA's own set-up) that every later one finds warm."""
    import jax
    import jax.numpy as jnp

    params = jax.tree.map(jnp.asarray, params_np)
    jax.jit(jax.value_and_grad(model.loss)).lower(params, batch).compile()


def _cell(workload: str, opt_name: str, variants, settings, params_np, batch, log):
    n_leaves, n_params = count(params_np)
    bpp = BYTES_PER_PARAM[opt_name]
    floats = WORKING_SET[opt_name] * n_params
    row: dict[str, Any] = {
        "workload": workload,
        "optimizer": opt_name,
        "n_leaves": n_leaves,
        "n_params": n_params,
        "bytes_per_param": bpp,
        "bytes_per_step": bpp * n_params,
        "working_set_floats": floats,
        "variants": {},
    }
    model = WORKLOADS[workload]
    _warm_up(model, params_np, batch)
    runners: dict[str, Runner] = {}

    def attempt(name: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; a failure marks the variant failed and drops its runner."""
        try:
            return fn()
        except Failed as e:
            row["variants"][name] = {"status": "failed", "reason": str(e)}
            log(f"    {name}: failed: {e}")
        except Exception as e:  # noqa: BLE001 - one variant must not lose the run
            why = f"{type(e).__name__}: {e}"
            row["variants"][name] = {"status": "failed", "reason": why}
            log(f"    {name}: failed: {why}")
        runners.pop(name, None)
        return None

    for name in variants:
        runner = attempt(
            name, functools.partial(build, name, model, opt_name, params_np, batch)
        )
        if runner is not None:
            runners[name] = runner
    for order in rotations(list(runners), settings["compile_repeats"]):
        for name in order:
            if name in runners:  # not dropped by an earlier failure
                attempt(name, runners[name].compile_once)
    runners["limit-jit"] = LimitJit(floats)
    runners["limit-numpy"] = LimitNumpy(floats)

    ks = {
        n: _calibrate(r, settings["min_round_s"], settings["max_k"])
        for n, r in runners.items()
    }
    faults: dict[str, list[float]] = {}
    runs = {n: r.run for n, r in runners.items()}
    times = interleave(runs, ks, settings["rounds"], faults)
    med = {n: statistics.median(ts) for n, ts in times.items()}
    row["limit"] = _limit(runners, med, times, ks, row["bytes_per_step"])

    for n, r in runners.items():
        if n in LIMITS:
            continue
        row["variants"][n] = {
            "status": "ok",
            "step_s": med[n],
            "step_s_min": min(times[n]),
            "rounds_s": times[n],
            "steps_per_round": ks[n],
            "minor_faults_per_step": faults[n],
            "lower_s": r.lower_s,
            "compile_s": r.compile_s,
            "lower_plus_compile_s": r.lower_s + r.compile_s,
            "compile_samples_s": r.compile_samples_s,
            "limit_fraction": row["limit"]["step_s"] / med[n],
            "first_loss": r.first_loss,
            "xla_memory": r.xla_memory,
            "state_bytes": r.state_bytes,
        }
    for r in runners.values():
        r.close()
    runners.clear()
    gc.collect()
    row["variants"] = {n: row["variants"][n] for n in variants}
    add_ratios(row)
    log(row_line(row))
    return row


def add_ratios(row: dict[str, Any]) -> None:
    """Each measured variant's ``speedup_vs_optax`` (optax's step time over
    its own) and ``compile_ratio_vs_optax`` (its lower + compile time over
    optax's), when the cell has the optax step."""
    ref = row["variants"].get(REFERENCE, {})
    if ref.get("status") != "ok":
        return
    for v in row["variants"].values():
        if v.get("status") == "ok":
            v["speedup_vs_optax"] = paired_speedup(ref["rounds_s"], v["rounds_s"])
            lo, hi, cover = paired_interval(ref["rounds_s"], v["rounds_s"])
            v["speedup_vs_optax_interval"] = [lo, hi, cover]
            v["compile_ratio_vs_optax"] = (
                v["lower_plus_compile_s"] / ref["lower_plus_compile_s"]
            )


# --------------------------------------------------------------------------
# The machine.
# --------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    import jax
    import jaxlib

    import jgd

    out = {
        "python": platform.python_version(),
        "jgd": jgd.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
    }
    try:
        out["optax"] = importlib.import_module("optax").__version__
    except ImportError:
        out["optax"] = None
    return out


def _proc_kib(path: str, field: str) -> int | None:
    """A ``field: N kB`` line of a /proc file, in bytes (None off Linux)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device() -> dict[str, Any]:
    import jax

    d = jax.devices()[0]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    return {
        "platform": d.platform,
        "device_kind": d.device_kind,
        "jax_devices": len(jax.devices()),
        "cpu": _cpu_model(),
        "os_cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "memory_total_bytes": _proc_kib("/proc/meminfo", "MemTotal"),
        "system": f"{platform.system()} {platform.release()}",
    }


def _environment() -> dict[str, Any]:
    names = (
        "XLA_FLAGS",
        "OMP_NUM_THREADS",
        "JAX_PLATFORMS",
        "JAX_ENABLE_X64",
        "JGD_KERNELS",
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
    )
    out: dict[str, Any] = {"env": {k: os.environ.get(k) for k in names}}
    with contextlib.suppress(OSError):
        out["loadavg_start"] = os.getloadavg()
    return out


def _process_peak_rss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --------------------------------------------------------------------------
# The run.
# --------------------------------------------------------------------------


def plan(
    preset: str,
    workloads: tuple[str, ...] | None = None,
    optimizers: tuple[str, ...] | None = None,
) -> dict[str, tuple[str, ...]]:
    """The cells to run, ``{workload: optimizers}``: the preset's, narrowed
    to ``workloads`` (any workload may be named) and with ``optimizers``
    replacing each workload's list. Raises ValueError on unknown names."""
    if preset not in PRESETS:
        raise ValueError(
            f"jgd bench: unknown preset {preset!r}; choose from {sorted(PRESETS)}"
        )
    cells = PRESETS[preset]["cells"]
    for w in workloads or ():
        if w not in WORKLOADS:
            raise ValueError(
                f"jgd bench: unknown workload {w!r}; choose from {list(WORKLOADS)}"
            )
    for o in optimizers or ():
        if o not in OPTIMIZERS:
            raise ValueError(
                f"jgd bench: unknown optimizer {o!r}; choose from {list(OPTIMIZERS)}"
            )
    chosen = workloads or tuple(cells)
    return {w: tuple(optimizers or cells.get(w, ("adam",))) for w in chosen}


def run(
    preset: str = "quick",
    *,
    workloads: tuple[str, ...] | None = None,
    optimizers: tuple[str, ...] | None = None,
    variants: tuple[str, ...] = VARIANTS,
    rounds: int | None = None,
    min_round_s: float | None = None,
    goals: dict[str, Any] | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and return the results as a JSON-ready dict (see
    ``METHODS`` and benchmarks/README.md for the fields). ``goals`` is a
    ``load_goals`` result (default: ``load_goals()``), evaluated at the end."""
    import jax
    import jax.numpy as jnp

    cells = plan(preset, workloads, optimizers)
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(
                f"jgd bench: unknown variant {v!r}; choose from {list(VARIANTS)}"
            )
    cfg = PRESETS[preset]
    settings = {
        "rounds": cfg["rounds"] if rounds is None else rounds,
        "min_round_s": cfg["min_round_s"] if min_round_s is None else min_round_s,
        "max_k": cfg["max_k"],
        "compile_repeats": cfg["compile_repeats"],
    }
    if settings["rounds"] < 7:
        raise ValueError(f"jgd bench: rounds must be >= 7; got {settings['rounds']}.")
    spec = load_goals() if goals is None else goals
    started = time.time()
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "command": command,
        "preset": preset,
        "started": _dt.datetime.fromtimestamp(started, _dt.UTC).isoformat(),
        "versions": _versions(),
        "device": _device(),
        "environment": _environment(),
        "settings": settings
        | {
            "cells": {w: list(o) for w, o in cells.items()},
            "variants": list(variants),
            "reference": REFERENCE,
            "learning_rate": LR,
            "bytes_per_param": BYTES_PER_PARAM,
            "working_set_floats_per_param": WORKING_SET,
        },
        "methods": METHODS,
        "workloads": {},
        "results": [],
    }
    log(
        f"jgd bench --preset {preset}: {out['device']['cpu']} "
        f"({out['device']['cpus_usable']} usable cores), jax {jax.__version__}, "
        f"optax {out['versions']['optax']}"
    )
    for w, opts in cells.items():
        model = WORKLOADS[w]
        params_np = model.init(0)
        batch = jax.tree.map(jnp.asarray, model.batch(0))
        n_leaves, n_params = count(params_np)
        out["workloads"][w] = {
            "about": model.about,
            "n_leaves": n_leaves,
            "n_params": n_params,
        }
        log(f"\n{w}: {model.about}; {n_leaves} leaves, {n_params / 1e6:.2f}M params")
        for o in opts:
            out["results"].append(
                _cell(w, o, variants, settings, params_np, batch, log)
            )
        del params_np, batch
        gc.collect()
    out["duration_s"] = time.time() - started
    with contextlib.suppress(OSError):
        out["environment"]["loadavg_end"] = os.getloadavg()
    out["process_peak_rss_bytes"] = _process_peak_rss()
    out["goal_spec"] = spec
    out["goals"] = evaluate(out, spec)
    return out
