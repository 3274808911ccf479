"""The measurements of ``jgd bench``: resident-set peaks, one cell (all
variants of a workload and an optimizer, interleaved with the limit kernels),
the compile-time sweep, the machine's description and ``run``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
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

from jgd.bench.report import _row_line, goals
from jgd.bench.runners import (
    _BatchArgs,
    _build,
    _LimitJit,
    _LimitNumpy,
    _Runner,
    _TorchRunner,
)
from jgd.bench.workloads import (
    BYTES_PER_PARAM,
    LR,
    OPTIMIZERS,
    PRESETS,
    VARIANTS,
    WORKING_SET,
    WORKLOADS,
    _count,
    _many,
    _numpy_tree,
    _shapes,
    _skip_rule,
    _Unsupported,
)

LIMITS = ("limit-jit", "limit-numpy")


# --------------------------------------------------------------------------
# Memory: the resident set's high-water mark.
# --------------------------------------------------------------------------


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


def _proc_status(field: str) -> int | None:
    return _proc_kib("/proc/self/status", field)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_growth(runner: _Runner, steps: int = 2) -> int | None:
    """Bytes by which the resident set's peak exceeds its size before
    ``steps`` steps of ``runner`` (None where the peak cannot be reset)."""
    gc.collect()
    if not _reset_hwm():
        return None
    before = _proc_status("VmRSS")
    runner.run(steps)
    peak = _proc_status("VmHWM")
    if before is None or peak is None:
        return None
    return max(0, peak - before)


def _process_peak_rss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


# --------------------------------------------------------------------------
# One cell: a workload and an optimizer, all variants interleaved.
# --------------------------------------------------------------------------


def _calibrate(runner: _Runner, min_round_s: float, max_k: int) -> int:
    runner.run(1)  # warm-up (first call allocates)
    t0 = time.perf_counter()
    runner.run(1)
    one = max(time.perf_counter() - t0, 1e-7)
    return int(min(max_k, max(1, math.ceil(min_round_s / one))))


def _cell(workload, opt_name, variants, settings, params_np, grads, grads_np, log):
    import jax

    n_leaves, n_params = _count(_shapes(workload))
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
    runners: dict[str, _Runner] = {}
    for name in variants:
        skip = settings["skip"](workload, n_leaves, opt_name, name)
        if skip:
            row["variants"][name] = {"status": "skipped", "reason": skip}
            continue
        try:
            runners[name] = _build(name, opt_name, params_np, grads, grads_np)
        except _Unsupported as e:
            row["variants"][name] = {"status": "skipped", "reason": str(e)}
    runners["limit-jit"] = _LimitJit(floats)
    runners["limit-numpy"] = _LimitNumpy(floats)
    if "jgd-step" in runners:
        runners["batch-args"] = _BatchArgs(grads)

    ks = {n: _calibrate(r, settings["min_round_s"], settings["max_k"])
          for n, r in runners.items()}  # fmt: skip
    times: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(settings["rounds"]):
        for n, r in runners.items():
            t0 = time.perf_counter()
            r.run(ks[n])
            times[n].append((time.perf_counter() - t0) / ks[n])

    med = {n: statistics.median(ts) for n, ts in times.items()}
    limit = {}
    for n in LIMITS:
        bw = runners[n].bytes_per_call / med[n]
        limit[n.removeprefix("limit-")] = {
            "call_s": med[n],
            "bytes_per_call": runners[n].bytes_per_call,
            "bytes_per_s": bw,
            "rounds_s": times[n],
            "calls_per_round": ks[n],
        }
    best = max(limit, key=lambda n: limit[n]["bytes_per_s"])
    if jax.default_backend() != "cpu":
        best = "jit"  # NumPy measures host memory, not the accelerator's
    limit_bw = limit[best]["bytes_per_s"]
    limit_step = row["bytes_per_step"] / limit_bw
    row["limit"] = limit | {
        "kernel": best,
        "bytes_per_s": limit_bw,
        "step_s": limit_step,
    }
    if "batch-args" in runners:
        row["batch_args_s"] = med.pop("batch-args")
        runners.pop("batch-args").close()
    for n, r in runners.items():
        if n in LIMITS:
            continue
        s = med[n]
        rec = {
            "status": "ok",
            "kind": r.kind,
            "step_s": s,
            "step_s_min": min(times[n]),
            "rounds_s": times[n],
            "steps_per_round": ks[n],
            "bytes_per_s": row["bytes_per_step"] / s,
            "fraction_of_limit": limit_step / s,
            "x_limit": s / limit_step,
            "lower_s": r.lower_s,
            "compile_s": r.compile_s,
            "lower_plus_compile_s": (
                None if r.compile_s is None else r.lower_s + r.compile_s
            ),
            "xla_memory": r.xla_memory,
            "state_bytes": r.state_bytes,
        }
        if isinstance(r, _TorchRunner):
            rec["first_step_s"] = r.first_step_s
            rec["torch_threads"] = r.threads
            rec["torch_device"] = r.device
        rec["rss_growth_bytes"] = _rss_growth(r)
        row["variants"][n] = rec
    for r in runners.values():
        r.close()
    runners.clear()
    gc.collect()
    row["variants"] = {n: row["variants"][n] for n in variants}
    log(_row_line(row))
    return row


# --------------------------------------------------------------------------
# Compile-time sweep: leaves x 100 params, Adam, lower + compile only.
# --------------------------------------------------------------------------


def _compile_sweep(leaf_counts, variants, log):
    out = []
    for n in leaf_counts:
        params_np = _numpy_tree(_many(n, 100), 0, 0.02)
        import jax
        import jax.numpy as jnp

        grads_np = _numpy_tree(_many(n, 100), 1, 0.01)
        grads = jax.tree.map(jnp.asarray, grads_np)
        row = {"n_leaves": n, "n_params": 100 * n, "optimizer": "adam", "variants": {}}
        for v in variants:
            try:
                r = _build(v, "adam", params_np, grads, grads_np)
            except _Unsupported as e:
                row["variants"][v] = {"status": "skipped", "reason": str(e)}
                continue
            row["variants"][v] = {
                "status": "ok",
                "lower_s": r.lower_s,
                "compile_s": r.compile_s,
                "lower_plus_compile_s": r.lower_s + r.compile_s,
            }
            r.close()
        gc.collect()
        out.append(row)
        log(
            f"  compile sweep {n:>6} leaves: "
            + "  ".join(
                f"{v} {c['lower_plus_compile_s']:.2f}s"
                for v, c in row["variants"].items()
                if c["status"] == "ok"
            )
        )
    return out


# --------------------------------------------------------------------------
# The machine and the run.
# --------------------------------------------------------------------------


def _kernels_status() -> str:
    """jgd.kernels.status() after trying to load the kernel ("on: path" or
    "off: why"), or why it could not be asked."""
    try:
        kernels = importlib.import_module("jgd.kernels")
        kernels.available()
        return kernels.status()
    except ImportError as e:
        return f"off: jgd.kernels not importable ({e})"


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
    for mod in ("optax", "torch", "matplotlib"):
        try:
            out[mod] = importlib.import_module(mod).__version__
        except ImportError:
            out[mod] = None
    return out


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
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "platform": d.platform,
        "device_kind": d.device_kind,
        "jax_devices": len(jax.devices()),
        "cpu": _cpu_model(),
        "os_cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "memory_total_bytes": _meminfo("MemTotal"),
        "system": f"{platform.system()} {platform.release()}",
        "gpu_note": "no GPU was lent to this run" if d.platform == "cpu" else None,
    }


def _meminfo(field: str) -> int | None:
    return _proc_kib("/proc/meminfo", field)


def _threads() -> dict[str, Any]:
    env = {k: os.environ.get(k) for k in (
        "XLA_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
        "JAX_PLATFORMS", "JAX_ENABLE_X64", "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_")}  # fmt: skip
    out: dict[str, Any] = {"env": env}
    try:
        import torch

        out["torch_num_threads"] = torch.get_num_threads()
        out["torch_num_interop_threads"] = torch.get_num_interop_threads()
    except ImportError:
        pass
    out["numpy"] = "single-threaded copy"
    out["xla_cpu"] = "XLA's default intra-op thread pool (one thread per usable core)"
    try:
        out["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return out


def run(
    preset: str = "quick",
    *,
    workloads: tuple[str, ...] | None = None,
    optimizers: tuple[str, ...] | None = None,
    variants: tuple[str, ...] = VARIANTS,
    rounds: int | None = None,
    min_round_s: float | None = None,
    compile_sweep: tuple[int, ...] | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and return the results as a JSON-ready dict."""
    import jax
    import jax.numpy as jnp

    cfg = dict(PRESETS[preset])
    cfg["workloads"] = tuple(workloads or cfg["workloads"])
    cfg["optimizers"] = tuple(optimizers or cfg["optimizers"])
    if rounds is not None:
        cfg["rounds"] = rounds
    if min_round_s is not None:
        cfg["min_round_s"] = min_round_s
    if compile_sweep is not None:
        cfg["compile_sweep"] = tuple(compile_sweep)
    for w in cfg["workloads"]:
        if w not in WORKLOADS:
            raise ValueError(
                f"jgd bench: unknown workload {w!r}; choose from {list(WORKLOADS)}"
            )
    for o in cfg["optimizers"]:
        if o not in BYTES_PER_PARAM:
            raise ValueError(
                f"jgd bench: unknown optimizer {o!r}; choose from {OPTIMIZERS}"
            )
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(
                f"jgd bench: unknown variant {v!r}; choose from {VARIANTS}"
            )
    if cfg["rounds"] < 7:
        raise ValueError(f"jgd bench: rounds must be >= 7; got {cfg['rounds']}.")
    settings = {
        "rounds": cfg["rounds"],
        "min_round_s": cfg["min_round_s"],
        "max_k": cfg["max_k"],
        "skip": _skip_rule(cfg["limits"]),
    }
    started = time.time()
    out: dict[str, Any] = {
        "schema": "jgd-bench/1",
        "command": command,
        "preset": preset,
        "started": _dt.datetime.fromtimestamp(started, _dt.UTC).isoformat(),
        "versions": _versions(),
        "jgd_kernels": _kernels_status(),
        "device": _device(),
        "threads": _threads(),
        "settings": {k: v for k, v in cfg.items() if k != "limits"}
        | {
            "variants": list(variants),
            "learning_rate": LR,
            "limits": {k: list(v) for k, v in cfg["limits"].items()},
            "bytes_per_param": BYTES_PER_PARAM,
            "working_set_floats_per_param": WORKING_SET,
        },
        "methods": {
            "timing": "variants and limit kernels interleaved in each round; a round "
            "runs k back-to-back steps and ends with block_until_ready; step_s is the "
            "median over rounds of elapsed/k",
            "limit": "max bytes/s of (a) donated jax.jit in-place x=0.5*x+0.25 over a "
            "flat float32 buffer of working_set_floats, (b) numpy copyto between its "
            "two halves; limit step_s = bytes_per_step / that",
            "compile": "jax.jit(step, donate_argnums).lower(...) and .compile() timed "
            "separately (make_step: its .lower/.compile)",
            "memory": "xla_memory: XLA's memory analysis of the compiled step "
            "(peak_bytes = arguments + outputs - aliased + temporaries); "
            "rss_growth_bytes: VmHWM minus VmRSS over two steps, VmHWM reset through "
            "/proc/self/clear_refs (jax.Device.memory_stats() is None on CPU)",
            "jgd": "jit(update + apply_updates), params and state donated, one "
            "buffer per leaf",
            "jgd-flat": "make_step's optimizer update alone (jgd.train.step."
            "update_and_apply, with jgd.kernels' fused loop where it applies: see "
            "jgd_kernels) on the flat buffers jgd.train.init stores (one per "
            "bucket), the gradient given packed",
            "jgd-step": "jgd.train.make_step(loss, opt) on jgd.train.init(params, opt); "
            "loss is a custom-VJP function whose value is 0 and whose gradient is the "
            "batch (a tree shaped like the params), so the step is the optimizer "
            "update plus make_step's packing of the gradient and its grad_norm "
            "metric, plus passing the batch's leaves (batch_args_s: a jitted call "
            "that only takes the batch)",
            "optax": "jit(optax update + optax.apply_updates), params and state "
            "donated",
            "torch": "torch.optim with foreach=True or fused=True, grads set once, "
            "opt.step() per step (clip: clip_grad_norm_(foreach=True) first)",
        },
        "results": [],
        "compile_sweep": [],
    }
    log(
        f"jgd bench --preset {preset}: {out['device']['cpu']} "
        f"({out['device']['cpus_usable']} usable cores), jax {jax.__version__}, "
        f"optax {out['versions']['optax']}, torch {out['versions']['torch']}"
    )
    for w in cfg["workloads"]:
        shapes = _shapes(w)
        n_leaves, n_params = _count(shapes)
        log(f"\n{w}: {n_leaves} leaves, {n_params / 1e6:.2f}M float32 params")
        params_np = _numpy_tree(shapes, 0, 0.02)
        grads_np = _numpy_tree(shapes, 1, 0.01)
        grads = jax.tree.map(jnp.asarray, grads_np)
        for o in cfg["optimizers"]:
            out["results"].append(
                _cell(w, o, variants, settings, params_np, grads, grads_np, log)
            )
        del params_np, grads_np, grads
        gc.collect()
    if cfg["compile_sweep"]:
        log("\ncompile time against leaf count (adam, 100 params per leaf)")
        sweep_variants = [
            v for v in ("jgd", "jgd-flat", "jgd-step", "optax") if v in variants
        ]
        out["compile_sweep"] = _compile_sweep(cfg["compile_sweep"], sweep_variants, log)
    out["duration_s"] = time.time() - started
    with contextlib.suppress(OSError):
        out["threads"]["loadavg_end"] = os.getloadavg()
    out["process_peak_rss_bytes"] = _process_peak_rss()
    out["goals"] = goals(out)
    return out
