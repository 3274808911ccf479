"""Small models, where make_step's fixed costs show: the hand-written optax
step, and make_step with its default layout, with every small leaf packed
(``flat=True``) and leaf by leaf (``flat=False``), on unrolled residual MLPs
of width 64 and 1 to 50 blocks, and two small MLPs (Adam, batch 32). The
default packs from ``jgd.train.PACK_MIN_LEAVES`` small leaves or
``PACK_MIN_SIZE`` elements.

The four are compiled first and timed interleaved, ``--rounds`` rounds of
about 0.15 s each, each round starting one further along; ratios are medians
of per-round ratios with their ~90% intervals. ``benchmarks/README.md``
("Tiny models") quotes the run.

    python benchmarks/small_models.py       # writes results/small-models.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jgd
import jgd.train as T
from jgd.bench import models
from jgd.bench.measure import interleave, paired_interval, paired_speedup
from jgd.bench.workloads import LR

MODELS = {
    **{
        f"resmlp-{n}": models.resmlp(
            f"resmlp-{n}", blocks=n, width=64, features=64, classes=10, batch=32
        )
        for n in (1, 4, 8, 16, 25, 50)
    },
    "mlp-64": models.mlp("mlp-64", (64, 64, 64, 10), batch=32),
    "mlp-16": models.mlp("mlp-16", (16, 32, 32, 4), batch=32),
}
PAIRS = (
    ("optax", "default"),
    ("optax", "packed"),
    ("optax", "leaf-by-leaf"),
    ("leaf-by-leaf", "packed"),
)


def _variants(model) -> dict:
    params = jax.tree.map(jnp.asarray, model.init(0))
    batch = jax.tree.map(jnp.asarray, model.batch(0))
    tx = optax.adam(LR)

    def step(p, s, b):
        loss, g = jax.value_and_grad(model.loss)(p, b)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    p = jax.tree.map(jnp.copy, params)
    hand = jax.jit(step, donate_argnums=(0, 1)).lower(p, tx.init(p), batch).compile()
    box = [p, tx.init(p)]

    def optax_run(k):
        for _ in range(k):
            box[0], box[1], _ = hand(box[0], box[1], batch)
        jax.block_until_ready(box)

    def make_step(**kw):
        state = T.init(params, jgd.adam(LR), **kw)
        fn = T.make_step(model.loss).lower(state, batch).compile()
        held = [state]

        def run(k):
            for _ in range(k):
                held[0], _ = fn(held[0], batch)
            jax.block_until_ready(held[0].stored_params)

        return run

    runs = {
        "optax": optax_run,
        "default": make_step(),
        "packed": make_step(flat=True),
        "leaf-by-leaf": make_step(flat=False),
    }
    state = T.init(params, jgd.adam(LR))
    return {
        "runs": runs,
        "leaves": len(jax.tree.leaves(params)),
        "default_layout": type(state.layout).__name__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    rows = {}
    for name in args.models.split(","):
        built = _variants(MODELS[name])
        runs = built["runs"]
        for run in runs.values():
            run(3)
        t0 = time.perf_counter()
        runs["optax"](5)
        k = max(1, int(0.15 / ((time.perf_counter() - t0) / 5)))
        times = interleave(runs, dict.fromkeys(runs, k), args.rounds)
        row = {
            "leaves": built["leaves"],
            "default_layout": built["default_layout"],
            "optax_step_s": float(np.median(times["optax"])),
        }
        for ref, other in PAIRS:
            row[f"{other}/{ref}"] = {
                "speedup": paired_speedup(times[ref], times[other]),
                "interval": paired_interval(times[ref], times[other]),
            }
        rows[name] = row
        cells = "  ".join(
            f"{k} {v['speedup']:.2f} [{v['interval'][0]:.2f}, {v['interval'][1]:.2f}]"
            for k, v in row.items()
            if isinstance(v, dict)
        )
        print(
            f"{name:10s} {row['leaves']:3d} leaves ({row['default_layout']})  optax "
            f"{row['optax_step_s'] * 1e6:8.1f} us  {cells}",
            flush=True,
        )
    out = Path(__file__).parent / "results" / "small-models.json"
    record = {
        "command": "python benchmarks/small_models.py",
        "jax": jax.__version__,
        "rounds": args.rounds,
        "rows": rows,
    }
    out.write_text(json.dumps(record, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
