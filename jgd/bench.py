"""``jgd bench``: optimizer steps under ``jit`` against optax, torch.optim and
the machine's memory-bandwidth limit, measured as ratios in one run.

Holds ``main(argv)`` (the ``jgd bench`` console command), the workloads
(``WORKLOADS``: single big leaves, a transformer-like tree, many small
leaves), the optimizers (``OPTIMIZERS``: each as jgd, optax and torch.optim
builds of the same hyperparameters), the variants that run them
(``VARIANTS``), the presets (``PRESETS``: ``tiny`` for tests, ``quick``,
``full``), ``run`` (the measurements, returned as a JSON-ready dict),
``format_table`` and ``plot``.

How a cell is measured. For one workload and one optimizer every variant is
built first: jgd through its bare ``update`` (``jit``, params and state
donated), jgd through ``jgd.train.make_step`` (flat-resident params and
state), optax's equivalent, and, where torch is installed, ``torch.optim``
with ``foreach=True`` and with ``fused=True``. For the ``jax`` variants
``jit(...).lower`` and ``.compile`` are timed separately and XLA's memory
analysis of the compiled step is kept. Then the variants and two limit
kernels are timed interleaved (A B C ... A B C ..., ``--rounds`` rounds, at
least 7): in a round each runs ``k`` back-to-back steps (``k`` chosen at
warm-up so that a round lasts ``--min-round-s``) and ends with
``block_until_ready``; a variant's step time is the median over rounds of
elapsed/``k``.

The limit. An optimizer step must read and write every parameter and state
element at least once: Adam reads p, g, m, v and writes p, m, v, 28 bytes per
float32 parameter (``BYTES_PER_PARAM``). In the same rotation two one-pass
kernels run over a flat float32 buffer of the optimizer's working-set size
(Adam: 4 floats per parameter): an in-place ``x = 0.5 * x + 0.25`` under a
donating ``jax.jit`` (reads and writes each byte once) and a NumPy copy
between two halves. The faster one's bytes per second is the limit;
``limit_step_s = bytes_per_step / limit_bytes_per_s`` and every step is
reported as ``x_limit = step_s / limit_step_s`` (1.0 means the step runs at
the speed of memory).

Peak memory. On CPU ``jax.Device.memory_stats()`` is ``None``, so two
figures are recorded: XLA's static memory analysis of the compiled step
(arguments + outputs - aliased + temporaries: what the step needs resident,
donation included) for the jax variants, and, for every variant, the growth
of the process's resident set during two steps, read from ``VmHWM`` in
``/proc/self/status`` after resetting it through ``/proc/self/clear_refs``
(Linux; elsewhere the ``resource.getrusage`` maximum, which cannot be reset).

Example (a tiny run, as the tests do)::

    jgd bench --preset tiny --out /tmp/bench --plot
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BYTES_PER_PARAM",
    "OPTIMIZERS",
    "PRESETS",
    "VARIANTS",
    "WORKLOADS",
    "format_markdown",
    "format_table",
    "main",
    "plot",
    "run",
]

LR = 1e-3

# --------------------------------------------------------------------------
# Workloads: pytrees of float32 shapes.
# --------------------------------------------------------------------------


def _transformer(d: int = 256, layers: int = 6, vocab: int = 2048, ctx: int = 512):
    """A GPT-like params tree: embeddings, per layer two layer norms,
    attention q/k/v/o matrices with biases and an MLP, a final layer norm.
    The defaults give 100 leaves and 5.39M params."""

    def ln():
        return {"scale": (d,), "bias": (d,)}

    def layer():
        attn = {f"w{n}": (d, d) for n in "qkvo"} | {f"b{n}": (d,) for n in "qkvo"}
        mlp = {"w1": (d, 4 * d), "b1": (4 * d,), "w2": (4 * d, d), "b2": (d,)}
        return {"ln1": ln(), "attn": attn, "ln2": ln(), "mlp": mlp}

    return {
        "embed": {"tok": (vocab, d), "pos": (ctx, d)},
        "layers": [layer() for _ in range(layers)],
        "ln_f": ln(),
    }


def _many(leaves: int, size: int):
    return [(size,) for _ in range(leaves)]


WORKLOADS: dict[str, Callable[[], Any]] = {
    "leaf-1M": lambda: {"w": (1_000_000,)},
    "leaf-10M": lambda: {"w": (10_000_000,)},
    "leaf-50M": lambda: {"w": (50_000_000,)},
    "transformer": _transformer,
    "1000x1000": lambda: _many(1000, 1000),
    "10000x100": lambda: _many(10000, 100),
    # Tiny stand-ins, for the harness's own tests.
    "leaf-4k": lambda: {"w": (4096,)},
    "transformer-tiny": lambda: _transformer(d=8, layers=2, vocab=16, ctx=4),
    "30x100": lambda: _many(30, 100),
}


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(i, int) for i in x)


def _shapes(workload: str) -> Any:
    return WORKLOADS[workload]()


def _count(shapes: Any) -> tuple[int, int]:
    import jax

    leaves = jax.tree.leaves(shapes, is_leaf=_is_shape)
    return len(leaves), sum(math.prod(s) for s in leaves)


def _numpy_tree(shapes: Any, seed: int, scale: float) -> Any:
    """A tree of float32 NumPy arrays with the given shapes (normal * scale)."""
    import jax

    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: rng.standard_normal(s, dtype=np.float32) * np.float32(scale),
        shapes,
        is_leaf=_is_shape,
    )


# --------------------------------------------------------------------------
# Optimizers: the same hyperparameters in jgd, optax and torch.optim.
# --------------------------------------------------------------------------

# Minimal bytes one step moves per float32 parameter (reads + writes, 4 bytes
# each): sgd reads p, g and writes p; momentum, RMSprop and AdaGrad add one
# state buffer; Adam two. Global-norm clipping must read g once more to form
# the norm before the update pass can start.
BYTES_PER_PARAM = {
    "sgd": 12,
    "momentum": 20,
    "adam": 28,
    "adamw": 28,
    "rmsprop": 20,
    "adagrad": 20,
    "clip+adamw": 32,
}
# Floats per parameter a step touches (its working set): the limit kernels
# run over a buffer of this many floats per parameter.
WORKING_SET = {"sgd": 2, "momentum": 3, "adam": 4, "adamw": 4, "rmsprop": 3,
               "adagrad": 3, "clip+adamw": 4}  # fmt: skip


def _jgd_opt(name: str):
    import jgd

    return {
        "sgd": lambda: jgd.sgd(LR),
        "momentum": lambda: jgd.sgd(LR, momentum=0.9),
        "adam": lambda: jgd.adam(LR),
        "adamw": lambda: jgd.adamw(LR, weight_decay=1e-4),
        "rmsprop": lambda: jgd.rmsprop(LR, decay=0.9, eps=1e-8),
        "adagrad": lambda: jgd.adagrad(LR, initial_accumulator_value=0.1, eps=1e-7),
        "clip+adamw": lambda: jgd.chain(
            jgd.clip_by_global_norm(1.0), jgd.adamw(LR, weight_decay=1e-4)
        ),
    }[name]()


def _optax_opt(name: str):
    import optax

    return {
        "sgd": lambda: optax.sgd(LR),
        "momentum": lambda: optax.sgd(LR, momentum=0.9),
        "adam": lambda: optax.adam(LR),
        "adamw": lambda: optax.adamw(LR, weight_decay=1e-4),
        "rmsprop": lambda: optax.rmsprop(LR, decay=0.9, eps=1e-8),
        "adagrad": lambda: optax.adagrad(LR, initial_accumulator_value=0.1, eps=1e-7),
        "clip+adamw": lambda: optax.chain(
            optax.clip_by_global_norm(1.0), optax.adamw(LR, weight_decay=1e-4)
        ),
    }[name]()


def _torch_opt(name: str, params: list, mode: str):
    """(optimizer, clip or None) for torch; ``mode`` is "foreach" or "fused".
    Raises ``_Unsupported`` where torch has no such implementation."""
    import torch

    kw = {mode: True}
    o = torch.optim
    if name == "rmsprop" and mode == "fused":
        raise _Unsupported("torch.optim.RMSprop has no fused implementation")
    make = {
        "sgd": lambda: o.SGD(params, lr=LR, **kw),
        "momentum": lambda: o.SGD(params, lr=LR, momentum=0.9, **kw),
        "adam": lambda: o.Adam(params, lr=LR, **kw),
        "adamw": lambda: o.AdamW(params, lr=LR, weight_decay=1e-4, **kw),
        "rmsprop": lambda: o.RMSprop(params, lr=LR, alpha=0.9, eps=1e-8, **kw),
        "adagrad": lambda: o.Adagrad(
            params, lr=LR, initial_accumulator_value=0.1, eps=1e-7, **kw
        ),
        "clip+adamw": lambda: o.AdamW(params, lr=LR, weight_decay=1e-4, **kw),
    }
    clip = None
    if name == "clip+adamw":

        def clip():
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)

    return make[name](), clip


OPTIMIZERS = tuple(BYTES_PER_PARAM)


class _Unsupported(Exception):
    """This variant cannot run this cell (recorded as skipped, with the reason)."""


# --------------------------------------------------------------------------
# Runners: one per variant. Each owns its buffers; run(k) does k steps and
# blocks until they are done.
# --------------------------------------------------------------------------


def _tree_bytes(tree: Any) -> int:
    import jax

    return int(sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(tree)))


def _xla_memory(compiled: Any) -> dict[str, int] | None:
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend has it
        return None
    if m is None:
        return None
    out = {
        "argument_bytes": int(m.argument_size_in_bytes),
        "output_bytes": int(m.output_size_in_bytes),
        "alias_bytes": int(m.alias_size_in_bytes),
        "temp_bytes": int(m.temp_size_in_bytes),
    }
    out["peak_bytes"] = (
        out["argument_bytes"]
        + out["output_bytes"]
        - out["alias_bytes"]
        + out["temp_bytes"]
    )
    return out


class _Runner:
    kind = "jax"
    lower_s: float | None = None
    compile_s: float | None = None
    xla_memory: dict | None = None
    state_bytes: int | None = None
    note: str = ""

    def run(self, k: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.__dict__.clear()


def _compile(fn: Callable, args: tuple, donate: tuple[int, ...], runner: _Runner):
    import jax

    jitted = jax.jit(fn, donate_argnums=donate)
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    runner.lower_s, runner.compile_s = t1 - t0, t2 - t1
    runner.xla_memory = _xla_memory(compiled)
    return compiled


class _UpdateRunner(_Runner):
    """``updates, state = opt.update(g, state, p); p = apply_updates(p, updates)``
    as one jitted function with params and state donated (jgd or optax)."""

    def __init__(self, lib: str, opt_name: str, params_np: Any, grads: Any):
        import jax
        import jax.numpy as jnp

        if lib == "jgd":
            import jgd

            opt, apply = _jgd_opt(opt_name), jgd.apply_updates
            promo = contextlib.nullcontext()
        else:
            import optax

            opt, apply = _optax_opt(opt_name), optax.apply_updates
            # optax does not pass jax_numpy_dtype_promotion="strict".
            promo = jax.numpy_dtype_promotion("standard")

        def step(params, state, g):
            updates, state = opt.update(g, state, params)
            return apply(params, updates), state

        with promo:
            params = jax.tree.map(jnp.asarray, params_np)
            state = opt.init(params)
            self.state_bytes = _tree_bytes(params) + _tree_bytes(state)
            self.fn = _compile(step, (params, state, grads), (0, 1), self)
        self.carry, self.grads = (params, state), grads

    def run(self, k: int) -> None:
        import jax

        p, s = self.carry
        for _ in range(k):
            p, s = self.fn(p, s, self.grads)
        jax.block_until_ready((p, s))
        self.carry = (p, s)


class _Grad:
    """``loss(params, batch)`` whose gradient with respect to ``params`` is
    ``batch`` and whose value is 0: a custom VJP, so the forward pass reads
    nothing and the backward pass hands the batch's leaves over as the
    gradient's (``value_and_grad`` seeds the cotangent with 1, so the batch is
    returned as it is rather than multiplied by it). Through ``make_step`` the
    optimizer then sees the batch as its gradient, arriving leaf by leaf as a
    backward pass delivers it; the step's work over the optimizer update is
    what make_step itself adds (packing the gradient into its bucket, the
    ``grad_norm`` metric) plus passing the batch's leaves as arguments."""

    @staticmethod
    def make():
        import jax
        import jax.numpy as jnp

        @jax.custom_vjp
        def linear(p, b):
            return jnp.zeros([], jnp.float32)

        def fwd(p, b):
            return linear(p, b), b

        def bwd(b, ct):
            return (b, None)

        linear.defvjp(fwd, bwd)
        return linear


class _MakeStepRunner(_Runner):
    """``jgd.train.make_step(loss, opt)``: flat-resident params and state,
    the gradient coming from a loss whose gradient is the batch (``_Grad``)."""

    def __init__(self, opt_name: str, params_np: Any, grads: Any):
        import jax
        import jax.numpy as jnp

        try:
            train = importlib.import_module("jgd.train")
            make_step, init = train.make_step, train.init
        except (ImportError, AttributeError) as e:
            raise _Unsupported(f"jgd.train.make_step is not available ({e})") from None
        opt = _jgd_opt(opt_name)
        loss = _Grad.make()
        params = jax.tree.map(jnp.asarray, params_np)
        state = init(params, opt)
        del params
        self.state_bytes = _tree_bytes(state)
        step = make_step(loss, opt)
        if not hasattr(step, "lower"):
            raise _Unsupported("jgd.train.make_step's step has no .lower to time")
        t0 = time.perf_counter()
        lowered = step.lower(state, grads)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
        self.lower_s, self.compile_s = t1 - t0, t2 - t1
        self.xla_memory = _xla_memory(compiled)
        self.fn, self.state, self.grads = compiled, state, grads

    def run(self, k: int) -> None:
        import jax

        s, m = self.state, None
        for _ in range(k):
            s, m = self.fn(s, self.grads)
        jax.block_until_ready((s, m))
        self.state = s


class _FlatRunner(_Runner):
    """jgd's bare ``update`` + ``apply_updates`` on the flat-resident buffers
    that ``jgd.train.init`` stores (``stored_params``, ``stored_opt_state``),
    the gradient given packed the same way (one buffer per bucket), jitted
    with params and state donated: the optimizer step inside ``make_step``,
    without the gradient packing, the metrics and the batch's arguments."""

    def __init__(self, opt_name: str, params_np: Any, grads_np: Any):
        import jax
        import jax.numpy as jnp

        import jgd

        try:
            train = importlib.import_module("jgd.train")
            init = train.init
        except (ImportError, AttributeError) as e:
            raise _Unsupported(f"jgd.train.init is not available ({e})") from None
        opt = _jgd_opt(opt_name)  # no weight-decay masks: the same on buckets
        state = init(jax.tree.map(jnp.asarray, params_np), opt)
        layout = state.layout
        leaves = jax.tree.leaves(grads_np)
        flat = {b.name: np.empty(b.size, b.dtype) for b in layout.buckets}
        for slot, g in zip(layout.slots, leaves, strict=True):
            flat[slot.bucket][slot.offset : slot.offset + slot.size] = np.ravel(g)
        grads = {k: jnp.asarray(v) for k, v in flat.items()}
        params, opt_state = state.stored_params, state.stored_opt_state
        self.state_bytes = _tree_bytes(params) + _tree_bytes(opt_state)

        def step(params, opt_state, g):
            updates, opt_state = opt.update(g, opt_state, params)
            return jgd.apply_updates(params, updates), opt_state

        self.fn = _compile(step, (params, opt_state, grads), (0, 1), self)
        self.carry, self.grads = (params, opt_state), grads

    run = _UpdateRunner.run


class _BatchArgs(_Runner):
    """A compiled function that takes the batch tree and returns one scalar:
    the cost of passing the batch's leaves to a jitted call, which the
    ``jgd-step`` variant pays on top of its step (a real batch has a few
    leaves; this one has the params' structure)."""

    def __init__(self, grads: Any):
        import jax

        self.fn = _compile(
            lambda b: jax.tree.leaves(b)[0].ravel()[0], (grads,), (), self
        )
        self.grads = grads

    def run(self, k: int) -> None:
        out = None
        for _ in range(k):
            out = self.fn(self.grads)
        out.block_until_ready()


class _TorchRunner(_Runner):
    kind = "torch"

    def __init__(self, opt_name: str, params_np: Any, grads_np: Any, mode: str):
        import jax
        import torch

        # On a GPU run torch uses the GPU too, so that both sides share a device.
        gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
        self.device = "cuda" if gpu else "cpu"
        self.params = [torch.nn.Parameter(torch.from_numpy(np.array(p)).to(self.device))
                       for p in jax.tree.leaves(params_np)]  # fmt: skip
        for p, g in zip(self.params, jax.tree.leaves(grads_np), strict=True):
            p.grad = torch.from_numpy(np.array(g)).to(self.device)
        self.opt, self.clip = _torch_opt(opt_name, self.params, mode)
        self.threads = torch.get_num_threads()
        t0 = time.perf_counter()
        self.run(1)  # creates the optimizer state
        self.first_step_s = time.perf_counter() - t0
        self.state_bytes = sum(p.nbytes for p in self.params) + sum(
            t.nbytes for s in self.opt.state.values() for t in s.values()
            if torch.is_tensor(t)
        )  # fmt: skip

    def run(self, k: int) -> None:
        for _ in range(k):
            if self.clip is not None:
                self.clip()
            self.opt.step()
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


class _LimitJit(_Runner):
    """In-place ``x = 0.5 * x + 0.25`` over a flat float32 buffer, donated."""

    def __init__(self, floats: int):
        import jax.numpy as jnp

        self.bytes_per_call = 8 * floats
        buf = jnp.zeros((floats,), jnp.float32)
        self.fn = _compile(
            lambda x: x * jnp.float32(0.5) + jnp.float32(0.25), (buf,), (0,), self
        )
        self.buf = buf

    def run(self, k: int) -> None:
        x = self.buf
        for _ in range(k):
            x = self.fn(x)
        x.block_until_ready()
        self.buf = x


class _LimitNumpy(_Runner):
    """``np.copyto`` between two halves of the working set."""

    kind = "numpy"

    def __init__(self, floats: int):
        half = max(1, floats // 2)
        self.src = np.full(half, 0.5, np.float32)
        self.dst = np.zeros(half, np.float32)
        self.bytes_per_call = 8 * half

    def run(self, k: int) -> None:
        for _ in range(k):
            np.copyto(self.dst, self.src)


def _torch_available() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


VARIANTS = ("jgd", "jgd-flat", "jgd-step", "optax", "torch-foreach", "torch-fused")
LIMITS = ("limit-jit", "limit-numpy")


def _build(variant: str, opt_name: str, params_np: Any, grads: Any, grads_np: Any):
    if variant == "jgd":
        return _UpdateRunner("jgd", opt_name, params_np, grads)
    if variant == "optax":
        return _UpdateRunner("optax", opt_name, params_np, grads)
    if variant == "jgd-step":
        return _MakeStepRunner(opt_name, params_np, grads)
    if variant == "jgd-flat":
        return _FlatRunner(opt_name, params_np, grads_np)
    if variant.startswith("torch-"):
        if _torch_available() is None:
            raise _Unsupported("torch is not installed")
        return _TorchRunner(opt_name, params_np, grads_np, variant.split("-", 1)[1])
    raise ValueError(f"jgd bench: unknown variant {variant!r}")


# --------------------------------------------------------------------------
# Memory: the resident set's high-water mark.
# --------------------------------------------------------------------------


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


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
# Presets and the run.
# --------------------------------------------------------------------------


def _skip_rule(limits: dict[str, tuple[int, int, tuple[str, ...] | None]]):
    """``limits[variant] = (max_leaves, over, optimizers)``: the variant is
    skipped on workloads with more than ``max_leaves`` leaves, and on those
    with more than ``over`` leaves runs only ``optimizers`` (None: all).

    Why presets need it: per-leaf jax programs (jgd's and optax's bare
    ``update``) compile in time that grows faster than linearly with the leaf
    count (XLA:CPU emits kernels per leaf; see the compile sweep), make_step
    packs a 10000-leaf gradient with one concatenate that XLA:CPU compiles in
    tens of seconds, and torch steps over 10000 leaves are slow."""

    def skip(workload, n_leaves, opt_name, variant):
        if variant not in limits:
            return None
        max_leaves, over, optimizers = limits[variant]
        if n_leaves > max_leaves:
            return (
                f"this preset runs {variant} on at most {max_leaves} leaves "
                "(compile time; see the compile sweep and benchmarks/README.md)"
            )
        if n_leaves > over and optimizers is not None and opt_name not in optimizers:
            return (
                f"this preset runs {variant} on more than {over} leaves only for "
                + ", ".join(optimizers)
            )
        return None

    return skip


_HEAVY = ("adam", "clip+adamw")

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "workloads": ("leaf-4k", "transformer-tiny", "30x100"),
        "optimizers": ("sgd", "adam", "clip+adamw"),
        "rounds": 7,
        "min_round_s": 0.002,
        "max_k": 50,
        "limits": {},
        "compile_sweep": (3, 30),
    },
    "quick": {
        "workloads": ("leaf-1M", "leaf-10M", "transformer", "1000x1000"),
        "optimizers": ("adam", "clip+adamw"),
        "rounds": 7,
        "min_round_s": 0.02,
        "max_k": 1000,
        "limits": {"jgd": (1000, 100, ("adam",)), "optax": (1000, 100, ("adam",))},
        "compile_sweep": (),
    },
    "full": {
        "workloads": (
            "leaf-1M", "leaf-10M", "leaf-50M", "transformer", "1000x1000", "10000x100"
        ),
        "optimizers": OPTIMIZERS,
        "rounds": 9,
        "min_round_s": 0.05,
        "max_k": 2000,
        "limits": {
            "jgd": (1000, 1000, None),
            "optax": (1000, 1000, None),
            "jgd-step": (10000, 1000, _HEAVY),
            "torch-foreach": (10000, 1000, _HEAVY),
            "torch-fused": (10000, 1000, _HEAVY),
        },
        "compile_sweep": (10, 100, 300, 1000, 2000),
    },
}  # fmt: skip


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
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


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
            "jgd-flat": "the same on the flat buffers jgd.train.init stores (one per "
            "bucket), the gradient given packed: make_step's optimizer update alone",
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


# --------------------------------------------------------------------------
# Goals (issue 4), evaluated on a run's own figures.
# --------------------------------------------------------------------------


def _get(out, workload, opt, variant, key="x_limit"):
    for r in out["results"]:
        if r["workload"] == workload and r["optimizer"] == opt:
            v = r["variants"].get(variant, {})
            return v.get(key) if v.get("status") == "ok" else None
    return None


JGD_VARIANTS = ("jgd", "jgd-flat", "jgd-step")


def goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, one row per goal and jgd variant, with the figure
    this run measured and whether it is met. Cells the run did not measure
    are left out."""
    rows = []

    def add(goal, target, value, via, unit="x limit"):
        if value is None:
            return
        rows.append({"goal": goal, "target": target, "measured": value, "unit": unit,
                     "via": via, "met": bool(value <= target)})  # fmt: skip

    targets = {"leaf-1M": 1.15, "leaf-10M": 1.15, "leaf-50M": 1.15,
               "transformer": 1.25, "1000x1000": 3.0, "10000x100": 5.0}  # fmt: skip
    for w, target in targets.items():
        for v in JGD_VARIANTS:
            add(f"{w} adam", target, _get(out, w, "adam", v), v)
    for w in targets:
        for v in JGD_VARIANTS:
            a = _get(out, w, "adam", v, "step_s")
            c = _get(out, w, "clip+adamw", v, "step_s")
            if a and c:
                add(f"{w} clip+adamw / adam time", 1.3, c / a, v, "x adam")
    for w, target in (("1000x1000", 0.5), ("10000x100", 3.0)):
        for v in JGD_VARIANTS:
            add(f"{w} adam compile", target,
                _get(out, w, "adam", v, "lower_plus_compile_s"), v, "s")  # fmt: skip
    return rows


# --------------------------------------------------------------------------
# Output: the terminal table, the JSON, the plots.
# --------------------------------------------------------------------------


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f}us"
    if s < 1:
        return f"{s * 1e3:.2f}ms"
    return f"{s:.2f}s"


def _row_line(row: dict[str, Any]) -> str:
    parts = [f"  {row['optimizer']:<11} limit {_fmt_s(row['limit']['step_s']):>8}"]
    for n, v in row["variants"].items():
        if v["status"] == "ok":
            parts.append(f"{n} {_fmt_s(v['step_s'])} ({v['x_limit']:.2f}x)")
        else:
            parts.append(f"{n} skipped")
    return "  ".join(parts)


_COMPILED = ("jgd", "jgd-flat", "jgd-step", "optax")
_SHORT = {"jgd": "jgd", "jgd-flat": "flat", "jgd-step": "step", "optax": "optax"}


def format_table(out: dict[str, Any]) -> str:
    """The results as a fixed-width table: one line per workload and
    optimizer; each variant's step time and its multiple of the limit."""
    variants = out["settings"]["variants"]
    head = f"{'workload':<17}{'optimizer':<11}{'B/p':>4}{'limit GB/s':>11}{'limit':>9}"
    head += "".join(f"{v:>20}" for v in variants)
    head += f"  compile {'/'.join(_SHORT[v] for v in _COMPILED)}"
    lines = [head, "-" * len(head)]
    for r in out["results"]:
        line = f"{r['workload']:<17}{r['optimizer']:<11}{r['bytes_per_param']:>4}"
        line += (
            f"{r['limit']['bytes_per_s'] / 1e9:>11.1f}{_fmt_s(r['limit']['step_s']):>9}"
        )
        for v in variants:
            c = r["variants"].get(v, {"status": "skipped"})
            cell = (f"{_fmt_s(c['step_s'])} {c['x_limit']:6.2f}x"
                    if c["status"] == "ok" else "-")  # fmt: skip
            line += f"{cell:>20}"
        comp = []
        for v in _COMPILED:
            c = r["variants"].get(v, {})
            comp.append(_fmt_s(c.get("lower_plus_compile_s")) if c.get("status") == "ok"
                        else "-")  # fmt: skip
        line += "  " + "/".join(comp)
        lines.append(line)
    if out.get("goals"):
        lines += ["", "goals (issue 4), for each jgd variant measured:"]
        for g in out["goals"]:
            lines.append(
                f"  {'met ' if g['met'] else 'MISS'} {g['goal']:<34} "
                f"{g['measured']:8.3g} {g['unit']:<8} (target <= {g['target']}, {g['via']})"
            )
    return "\n".join(lines)


def _plot_rows(out: dict[str, Any], axis: str) -> tuple[list[dict], str]:
    """The cells each plot draws as lines, and what they hold fixed. Against
    leaves: the workloads of the most common parameter count (1M in the full
    run: one leaf, 1000 x 1000, 10000 x 100). Against parameters: the
    single-leaf workloads (other workloads are drawn as unjoined squares)."""
    rows = out["results"]
    if axis == "leaves":
        counts = [r["n_params"] for r in rows]
        n = max(set(counts), key=counts.count) if counts else 0
        same = [r for r in rows if r["n_params"] == n]
        if len({r["n_leaves"] for r in same}) > 1:
            return same, f"{n / 1e6:g}M float32 params"
        return rows, "all workloads"
    single = [r for r in rows if r["n_leaves"] == 1]
    return (single, "one leaf") if single else (rows, "all workloads")


def _md_ratio(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("status") != "ok":
        return "-"
    return f"{cell['x_limit']:.2f}"


def format_markdown(out: dict[str, Any]) -> str:
    """A recorded run as Markdown: every step as a multiple of the limit, the
    compile times, the goals; the numbers are the JSON's, rounded."""
    variants = out["settings"]["variants"]
    d, v = out["device"], out["versions"]
    load = out["threads"]
    loads = [f"{load[k][0]:.2f} at the {k[8:]}" for k in ("loadavg_start", "loadavg_end")
             if k in load]  # fmt: skip
    head = (
        f"`{out.get('command')}`: {d['cpu']}, {d['cpus_usable']} cores, "
        f"jax {v['jax']}, optax {v['optax']}, torch {v['torch']}, "
        f"{out['duration_s'] / 60:.1f} min; load average " + " and ".join(loads) + "."
    )
    lines = [
        head,
        "",
        "Step time as a multiple of the limit (lower is better; 1.00 = memory speed):",
        "",
        "| workload | optimizer | limit | " + " | ".join(variants) + " |",
        "|---|---|--:|" + "--:|" * len(variants),
    ]
    for r in out["results"]:
        cells = [_md_ratio(r["variants"].get(n)) for n in variants]
        lines.append(f"| {r['workload']} | {r['optimizer']} | "
                     f"{_fmt_s(r['limit']['step_s'])} | " + " | ".join(cells) + " |")  # fmt: skip
    compiled = [n for n in _COMPILED if n in variants]
    lines += ["", "Compile time (lower + compile), Adam:", "",
              "| workload | " + " | ".join(compiled) + " |",
              "|---|" + "--:|" * len(compiled)]  # fmt: skip
    for r in out["results"]:
        if r["optimizer"] != "adam":
            continue
        cells = []
        for n in compiled:
            c = r["variants"].get(n, {})
            cells.append(_fmt_s(c.get("lower_plus_compile_s"))
                         if c.get("status") == "ok" else "-")  # fmt: skip
        lines.append(f"| {r['workload']} | " + " | ".join(cells) + " |")
    if out.get("compile_sweep"):
        names = [
            n for n in compiled if any(n in r["variants"] for r in out["compile_sweep"])
        ]
        lines += ["", "Compile sweep (Adam, leaves of 100 params):", "",
                  "| leaves | " + " | ".join(names) + " |",
                  "|--:|" + "--:|" * len(names)]  # fmt: skip
        for r in out["compile_sweep"]:
            cells = [_fmt_s(r["variants"].get(n, {}).get("lower_plus_compile_s"))
                     for n in names]  # fmt: skip
            lines.append(f"| {r['n_leaves']} | " + " | ".join(cells) + " |")
    if out.get("goals"):
        lines += ["", "| goal | target | measured | variant | met |",
                  "|---|--:|--:|---|---|"]  # fmt: skip
        for g in out["goals"]:
            lines.append(f"| {g['goal']} | {g['target']} | {g['measured']:.3g} "
                         f"{g['unit']} | {g['via']} | {'yes' if g['met'] else 'no'} |")  # fmt: skip
    return "\n".join(lines)


def plot(out: dict[str, Any], stem: Path) -> list[Path]:
    """Write ``<stem>-leaves.png`` (step time against leaf count, parameter
    count fixed), ``<stem>-params.png`` (against parameter count, single
    leaves joined) and, when the run has a compile sweep,
    ``<stem>-compile.png``; log scales, one panel per optimizer, one line per
    variant plus the limit (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [*out["settings"]["variants"], "limit"]
    colors = {v: f"C{i}" for i, v in enumerate(variants)} | {"limit": "k"}
    opts = list(dict.fromkeys(r["optimizer"] for r in out["results"]))
    paths = []

    def step_of(r, v):
        if v == "limit":
            return r["limit"]["step_s"]
        c = r["variants"].get(v, {})
        return c["step_s"] if c.get("status") == "ok" else None

    for axis, key in (("leaves", "n_leaves"), ("params", "n_params")):
        lined, fixed = _plot_rows(out, axis)
        others = (
            [r for r in out["results"] if r not in lined] if axis == "params" else []
        )
        ncol = min(4, max(1, len(opts)))
        nrow = math.ceil(len(opts) / ncol) if opts else 1
        fig, axes = plt.subplots(
            nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False
        )
        for ax, o in zip(axes.flat, opts):
            rows = sorted(
                (r for r in lined if r["optimizer"] == o), key=lambda r: r[key]
            )
            for v in variants:
                pts = [(r[key], step_of(r, v)) for r in rows if step_of(r, v)]
                style = {"ls": "--"} if v == "limit" else {"marker": "o"}
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(
                        xs, [y * 1e3 for y in ys], label=v, color=colors[v], **style
                    )
                pts = [(r[key], step_of(r, v)) for r in others
                       if r["optimizer"] == o and step_of(r, v)]  # fmt: skip
                if pts:
                    xs, ys = zip(*pts)
                    ax.scatter(xs, [y * 1e3 for y in ys], marker="s", s=14,
                               color=colors[v], alpha=0.6)  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(o)
            ax.set_xlabel("leaves" if axis == "leaves" else "float32 parameters")
            ax.set_ylabel("step time (ms)")
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(opts) :]:
            ax.axis("off")
        if opts:
            axes.flat[0].legend(fontsize=7)
        note = f"lines: {fixed}" + ("; squares: multi-leaf workloads" if others else "")
        fig.suptitle(f"jgd bench ({out['preset']}): step time against {axis} ({note}); "
                     f"{out['device']['cpu']}", fontsize=9)  # fmt: skip
        fig.tight_layout()
        path = Path(f"{stem}-{axis}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    if out.get("compile_sweep"):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for v in _COMPILED:
            pts = [(r["n_leaves"], r["variants"][v]["lower_plus_compile_s"])
                   for r in out["compile_sweep"]
                   if r["variants"].get(v, {}).get("status") == "ok"]  # fmt: skip
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=v)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("leaves (100 params each)")
        ax.set_ylabel("lower + compile (s)")
        ax.set_title("adam: compile time against leaf count", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = Path(f"{stem}-compile.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------
# The command line.
# --------------------------------------------------------------------------


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jgd bench",
        description="Time optimizer steps under jit: jgd (bare update and "
        "make_step), optax and torch.optim, as multiples of the memory-bandwidth "
        "limit measured in the same run.",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="preset",
        help="a subset that runs in about 2 minutes on 2 CPU cores",
    )
    g.add_argument(
        "--full",
        action="store_const",
        const="full",
        dest="preset",
        help="every workload and optimizer (the default)",
    )
    g.add_argument("--preset", choices=sorted(PRESETS), help="tiny, quick or full")
    p.add_argument("--workloads", type=_csv, help=f"comma list from {list(WORKLOADS)}")
    p.add_argument(
        "--optimizers", type=_csv, help=f"comma list from {list(OPTIMIZERS)}"
    )
    p.add_argument(
        "--variants",
        type=_csv,
        default=VARIANTS,
        help=f"comma list from {list(VARIANTS)} (torch ones need torch)",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (>= 7)")
    p.add_argument(
        "--min-round-s", type=float, help="seconds each round of a variant lasts"
    )
    p.add_argument(
        "--compile-sweep",
        type=_csv,
        help="leaf counts for the compile-time sweep ('' for none)",
    )
    p.add_argument(
        "--out",
        default="benchmarks/results",
        help="directory for the JSON and PNGs (default benchmarks/results)",
    )
    p.add_argument("--name", help="file stem (default: the preset)")
    p.add_argument("--plot", action="store_true", help="also write PNG plots")
    p.add_argument("--no-torch", action="store_true", help="skip the torch variants")
    p.add_argument(
        "--report",
        metavar="JSON",
        help="run nothing: print a recorded run's table and its Markdown "
        "summary (as quoted in benchmarks/README.md)",
    )
    return p  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.report:
        out = json.loads(Path(args.report).read_text())
        print(format_table(out))
        print()
        print(format_markdown(out))
        return 0
    preset = args.preset or "full"
    variants = tuple(args.variants)
    if args.no_torch:
        variants = tuple(v for v in variants if not v.startswith("torch"))
    sweep = (
        None
        if args.compile_sweep is None
        else tuple(int(x) for x in args.compile_sweep)
    )
    command = "jgd bench " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        out = run(
            preset,
            workloads=args.workloads,
            optimizers=args.optimizers,
            variants=variants,
            rounds=args.rounds,
            min_round_s=args.min_round_s,
            compile_sweep=sweep,
            command=command.strip(),
        )
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    print()
    print(format_table(out))
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / (args.name or preset)
    path = Path(f"{stem}.json")
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {path}")
    if args.plot:
        for p in plot(out, stem):
            print(f"wrote {p}")
    return 0
