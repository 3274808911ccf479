"""Speed of ``jgd.train.make_step`` against a hand-written optax step.

Three ways to run the same Adam training step (value_and_grad of the loss,
the optimizer update, the params update, the loss and the global gradient
norm as metrics) on a pytree of 1000 leaves of 1000 float32 params:

    jgd flat   jgd.train.make_step on jgd.train.init(params, adam): params and
               optimizer state stored as one buffer each (the default)
    jgd leaf   the same with init(..., flat=False): one buffer per leaf
    optax      a jitted, donating step written by hand with optax.adam,
               jax.value_and_grad and optax.apply_updates

The loss is ``0.5 * sum_i sum((p_i - t)**2)`` for a scalar batch ``t``, so
the gradient of every leaf is cheap and the step is dominated by what the
three variants differ in: buffers at the jit boundary and the optimizer's
memory traffic. All three are compiled ahead of time (lower and compile are
timed apart), checked to agree after three steps, then timed interleaved
(A B C A B C ...) for ``--rounds`` rounds of ``--steps`` steps each, with
``block_until_ready`` after each variant's round; the table shows each
variant's median time per step.

Run: python benchmarks/train_step.py [--leaves 1000] [--size 1000]
Writes benchmarks/results/train_step_<platform>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jgd
import jgd.train


def loss_fn(params, target):
    total = jnp.zeros([], jnp.float32)
    for p in jax.tree.leaves(params):
        total = total + 0.5 * jnp.sum(jnp.square(p - target))
    return total


def make_params(leaves: int, size: int) -> dict:
    rng = np.random.default_rng(0)
    return {
        f"layer{i:04d}": jnp.asarray(rng.normal(size=size).astype(np.float32))
        for i in range(leaves)
    }


class Variant:
    """A compiled step and the state it carries from call to call."""

    def __init__(self, name, lower, run, state, extra_inputs=0):
        self.name = name
        t0 = time.perf_counter()
        lowered = lower(state)
        t1 = time.perf_counter()
        self.compiled = lowered.compile()
        self.lower_s, self.compile_s = t1 - t0, time.perf_counter() - t1
        self.run, self.state = run, state
        self.inputs = len(jax.tree.leaves(state)) + extra_inputs
        self.times: list[float] = []

    def steps(self, k: int, batch) -> float:
        t0 = time.perf_counter()
        state = self.state
        for _ in range(k):
            state = self.run(self.compiled, state, batch)
        jax.block_until_ready(state)
        self.state = state
        return (time.perf_counter() - t0) / k


def build(params, learning_rate: float, batch):
    opt = jgd.adam(learning_rate)
    step = jgd.train.make_step(loss_fn, opt)

    def jgd_run(compiled, state, b):
        return compiled(state, b)[0]

    def jgd_variant(name, flat):
        state = jgd.train.init(params, opt, flat=flat)
        # A flat step also takes the leaves' offsets: one int32 array with
        # jgd.kernels, else one int32 scalar per leaf.
        offsets = len(jax.tree.leaves(state.layout.offsets())) if flat else 0
        return Variant(name, lambda s: step.lower(s, batch), jgd_run, state, offsets)

    tx = optax.adam(learning_rate)

    def optax_step(params, opt_state, b):
        loss, grads = jax.value_and_grad(loss_fn)(params, b)
        updates, opt_state = tx.update(grads, opt_state, params)
        metrics = {"loss": loss, "grad_norm": optax.global_norm(grads)}
        return optax.apply_updates(params, updates), opt_state, metrics

    jitted = jax.jit(optax_step, donate_argnums=(0, 1))

    def optax_run(compiled, state, b):
        p, s, _ = compiled(*state, b)
        return p, s

    own = jax.tree.map(jnp.copy, params)  # donated: not the caller's arrays
    optax_variant = Variant(
        "optax", lambda s: jitted.lower(*s, batch), optax_run, (own, tx.init(own))
    )
    return [
        jgd_variant("jgd flat", True),
        jgd_variant("jgd leaf", False),
        optax_variant,
    ]


def check_agreement(variants, batch, steps: int = 3) -> float:
    """Run each variant ``steps`` times from the start; the largest absolute
    difference of the params from optax's."""
    out = {}
    for v in variants:
        state = v.state
        for _ in range(steps):
            state = v.run(v.compiled, state, batch)
        v.state = state
        out[v.name] = state.params if hasattr(state, "params") else state[0]
    ref = out["optax"]
    worst = 0.0
    for p in out.values():
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(ref), strict=True):
            worst = max(worst, float(jnp.max(jnp.abs(a - b))))
    return worst


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    parser.add_argument("--out", default=None, help="JSON path (default: results/)")
    args = parser.parse_args(argv)
    if args.rounds < 7:
        parser.error("--rounds must be >= 7 (the median of fewer is noisy)")

    batch = jnp.float32(0.5)
    params = make_params(args.leaves, args.size)
    variants = build(params, 1e-3, batch)
    worst = check_agreement(variants, batch)
    if worst > 1e-5:
        print(
            f"variants disagree: max |params - optax params| = {worst}", file=sys.stderr
        )
        return 1
    for v in variants:  # warm up the timed path
        v.steps(1, batch)
    for _ in range(args.rounds):
        for v in variants:
            v.times.append(v.steps(args.steps, batch))

    device = jax.devices()[0]
    optax_ms = statistics.median(variants[2].times) * 1e3
    rows = []
    for v in variants:
        ms = statistics.median(v.times) * 1e3
        rows.append({
            "variant": v.name,
            "input_buffers": v.inputs,
            "lower_s": round(v.lower_s, 3),
            "compile_s": round(v.compile_s, 3),
            "step_ms_median": round(ms, 3),
            "step_ms_rounds": [round(t * 1e3, 3) for t in v.times],
            "speedup_vs_optax": round(optax_ms / ms, 2),
        })  # fmt: skip
    result = {
        "what": "Adam training step (value_and_grad + update + metrics) on "
        f"{args.leaves} leaves x {args.size} float32 params",
        "config": vars(args) | {"learning_rate": 1e-3, "loss": "0.5*sum((p-t)^2)"},
        "max_abs_param_difference_after_3_steps": worst,
        "machine": {
            "platform": device.platform,
            "device": str(device.device_kind),
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "versions": {
            "jax": jax.__version__,
            "optax": optax.__version__,
            "jgd": jgd.__version__,
            "python": platform.python_version(),
        },
        "results": rows,
    }
    path = Path(args.out) if args.out else (
        Path(__file__).parent / "results" / f"train_step_{device.platform}.json"
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")

    print(result["what"], f"on {device.platform} ({os.cpu_count()} CPUs),")
    print(f"median of {args.rounds} interleaved rounds of {args.steps} steps:")
    print()
    print("| variant  | input buffers | lower s | compile s | step ms | vs optax |")
    print("|----------|---------------|---------|-----------|---------|----------|")
    for r in rows:
        print(
            f"| {r['variant']:<8} | {r['input_buffers']:>13} | {r['lower_s']:>7.2f} "
            f"| {r['compile_s']:>9.2f} | {r['step_ms_median']:>7.2f} "
            f"| {r['speedup_vs_optax']:>7.2f}x |"
        )
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
