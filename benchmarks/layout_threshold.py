"""Where packing stops paying: ``jgd.train.make_step`` with every leaf resident
against every leaf packed, on unrolled residual MLPs whose matrices grow.

Each width is one model (a real loss: softmax cross-entropy); the two
layouts (``pack_below=0`` and ``pack_below=2**30``) and the hand-written optax
step are compiled first and then timed interleaved, ``--rounds`` rounds of 10
steps, each round starting one further along; ratios are medians of per-round
ratios. The crossing sets ``jgd.train.PACK_BELOW``; ``benchmarks/README.md``
quotes the run.

    python benchmarks/layout_threshold.py            # writes results/layout-threshold.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jgd
import jgd.train as T
from jgd.bench.measure import interleave, paired_speedup
from jgd.bench.runners import HandWritten
from jgd.bench.workloads import LR

# (blocks, width): fewer blocks as the matrices grow, to keep the run short.
SIZES = [
    (25, 32),
    (25, 64),
    (25, 128),
    (25, 181),
    (25, 256),
    (12, 362),
    (6, 512),
    (6, 724),
    (6, 1024),
    (3, 2048),
]


def model(blocks: int, width: int):
    keys = iter(jax.random.split(jax.random.key(0), 2 * blocks + 2))
    normal = lambda shape, s: jax.random.normal(next(keys), shape) * s
    params = {
        "inp": normal((32, width), 0.1),
        "blocks": [
            {
                "w1": normal((width, width), 0.05),
                "b1": jnp.zeros(width),
                "w2": normal((width, width), 0.05),
                "b2": jnp.zeros(width),
            }
            for _ in range(blocks)
        ],
        "out": normal((width, 10), 0.1),
    }

    def loss(p, batch):
        x, y = batch
        h = x @ p["inp"]
        for b in p["blocks"]:
            h = h + jax.nn.relu(h @ b["w1"] + b["b1"][None]) @ b["w2"] + b["b2"][None]
        return optax.softmax_cross_entropy_with_integer_labels(h @ p["out"], y).mean()

    return params, loss


def measure(blocks: int, width: int, rounds: int) -> dict:
    params, loss = model(blocks, width)
    batch = (
        jax.random.normal(jax.random.key(1), (32, 32)),
        jax.random.randint(jax.random.key(2), (32,), 0, 10),
    )
    # jgd bench's hand-written optax step: optax.adam(LR), as jgd.adam below.
    # Handed NumPy copies: the step donates its params.
    host = jax.tree.map(np.array, params)
    optax_step = HandWritten("optax", SimpleNamespace(loss=loss), "adam", host, batch)
    optax_step.compile_once()
    optax_step.run(3)
    runs = {"optax": optax_step.run}
    for name, below in (("resident", 0), ("packed", 1 << 30)):
        state = T.init(params, jgd.adam(LR), pack_below=below)
        step = T.make_step(loss).lower(state, batch).compile()
        box = [state]

        def run(k, step=step, box=box):
            for _ in range(k):
                box[0], _ = step(box[0], batch)
            jax.block_until_ready(box[0].stored_params)

        run(3)
        runs[name] = run
    times = interleave(runs, dict.fromkeys(runs, 10), rounds)
    med = {n: float(np.median(v)) for n, v in times.items()}

    def ratio(a, b):
        return paired_speedup(times[a], times[b])

    return {
        "blocks": blocks,
        "width": width,
        "leaf_elements": width * width,
        "leaves": len(jax.tree.leaves(params)),
        "optax_s": med["optax"],
        "resident_s": med["resident"],
        "packed_s": med["packed"],
        "packed_speedup": ratio("resident", "packed"),
        "resident_vs_optax": ratio("optax", "resident"),
        "packed_vs_optax": ratio("optax", "packed"),
        "rounds_s": times,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument(
        "--out",
        default=str(Path(__file__).parent / "results" / "layout-threshold.json"),
    )
    args = ap.parse_args()
    rows = []
    for blocks, width in SIZES:
        row = measure(blocks, width, args.rounds)
        rows.append(row)
        print(
            f"leaf {row['leaf_elements']:>8} elements: resident {row['resident_s'] * 1e3:8.2f} ms, "
            f"packed {row['packed_s'] * 1e3:8.2f} ms, packing {row['packed_speedup']:.2f}x; "
            f"vs optax: resident {row['resident_vs_optax']:.2f}x, "
            f"packed {row['packed_vs_optax']:.2f}x",
            flush=True,
        )
    out = {
        "command": "python benchmarks/layout_threshold.py",
        "jax": jax.__version__,
        "machine": platform.processor() or platform.machine(),
        "pack_below": T.PACK_BELOW,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
