"""One cell of ``jgd bench``, rerun with a ceiling: how fast could any optimizer make it?

Times, interleaved (15 rounds of 10 steps, each round starting one variant
further along; median of the per-round ratios, with its ~90% interval), on
one of ``jgd bench``'s real models: the hand-written optax step; that step
compiled with ``jgd.train.COMPILER_OPTIONS`` (what jgd's XLA settings alone
give); the same step whose update is a no-op scaled gradient (``p - 1e-9 *
g``: the forward and backward passes and one trivial loop per leaf, a
ceiling for any optimizer in that step); the gradient alone, jitted, written into
the previous gradient's donated buffers (a ceiling for any training step of
this model); and ``jgd.train.make_step``, with jgd's XLA settings and with XLA's
defaults. Ratios are to the optax step.

    python benchmarks/paired.py resmlp-100 adam     # writes results/paired-resmlp-100-adam.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jgd
import jgd.train as T
from jgd.bench.measure import interleave, paired_interval, paired_speedup
from jgd.bench.workloads import LR, WORKLOADS

OPTIMIZERS = {
    "adam": lambda lib: lib.adam(LR),
    "momentum": lambda lib: lib.sgd(LR, momentum=0.9),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("optimizer", choices=sorted(OPTIMIZERS))
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    model = WORKLOADS[args.workload]
    params = jax.tree.map(jnp.asarray, model.init(0))
    batch = jax.tree.map(jnp.asarray, model.batch(0))

    def hand(no_op: bool, options=None):
        tx = OPTIMIZERS[args.optimizer](optax)

        def step(p, s, b):
            loss, g = jax.value_and_grad(model.loss)(p, b)
            if no_op:
                return jax.tree.map(lambda x, y: x - 1e-9 * y, p, g), s, loss
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s, loss

        p = jax.tree.map(jnp.copy, params)
        s = tx.init(p)
        fn = jax.jit(step, donate_argnums=(0, 1)).lower(p, s, batch).compile(options)
        box = [p, s]

        def run(k):
            for _ in range(k):
                box[0], box[1], _ = fn(box[0], box[1], batch)
            jax.block_until_ready(box)

        return run

    def forward_backward():
        # The previous gradient is donated so the new one is written into its
        # buffers, as the steps above reuse theirs: no fresh allocation.
        def grads(g_old, p, b):
            return jax.value_and_grad(model.loss)(p, b)[1]

        g = jax.tree.map(jnp.zeros_like, params)
        fn = (
            jax.jit(grads, donate_argnums=0, keep_unused=True)
            .lower(g, params, batch)
            .compile()
        )
        box = [g]

        def run(k):
            for _ in range(k):
                box[0] = fn(box[0], params, batch)
            jax.block_until_ready(box)

        return run

    def make_step(options=None):
        state = T.init(params, OPTIMIZERS[args.optimizer](jgd))
        step = T.make_step(model.loss, compiler_options=options)
        fn = step.lower(state, batch).compile()
        box = [state]

        def run(k):
            for _ in range(k):
                box[0], _ = fn(box[0], batch)
            jax.block_until_ready(box[0].stored_params)

        return run

    jgd_options = T.COMPILER_OPTIONS.get(jax.default_backend())
    runs = {
        "optax": hand(False),
        "optax, jgd's XLA options": hand(False, jgd_options),
        "no-op update": hand(True),
        "forward and backward alone": forward_backward(),
        "jgd-step": make_step(),
        "jgd-step, XLA defaults": make_step({}),
    }
    for run in runs.values():
        run(2)
    times = interleave(runs, dict.fromkeys(runs, 10), args.rounds)
    rows = {
        n: {
            "step_s": float(np.median(times[n])),
            "speedup_vs_optax": paired_speedup(times["optax"], times[n]),
            "speedup_vs_optax_interval": paired_interval(times["optax"], times[n]),
        }
        for n in runs
    }
    for n, r in rows.items():
        lo, hi, _ = r["speedup_vs_optax_interval"]
        print(
            f"{n:26s} {r['step_s'] * 1e3:8.2f} ms  {r['speedup_vs_optax']:.2f}x "
            f"[{lo:.2f}, {hi:.2f}]"
        )
    out = (
        Path(__file__).parent
        / "results"
        / f"paired-{args.workload}-{args.optimizer}.json"
    )
    record = {
        "command": f"python benchmarks/paired.py {args.workload} {args.optimizer}",
        "jax": jax.__version__,
        "rows": rows,
        "rounds_s": times,
    }
    out.write_text(json.dumps(record, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
