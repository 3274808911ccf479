"""Peak memory of gradient accumulation: ``jgd.MultiSteps`` against
``optax.MultiSteps``, both over Adam, on an MLP's training step.

The step is ``value_and_grad`` of a softmax cross-entropy, the wrapper's
update and ``apply_updates``, jitted with params and optimizer state donated
(as a training loop runs it). XLA's ``memory_analysis()`` of the compiled
step gives the bytes of its arguments, outputs, donated aliases and
temporaries; peak = arguments + outputs - aliases + temporaries. Also the
optimizer state's bytes (live buffers kept between steps).

    python benchmarks/multisteps_memory.py            # prints a Markdown table
    python benchmarks/multisteps_memory.py --width 2048 --depth 4
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jgd

MB = 2**20


def mlp(key, width, depth, inputs, classes):
    sizes = [inputs] + [width] * depth + [classes]
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {
            "w": jax.random.normal(k, (a, b)) / jnp.sqrt(a),
            "b": jnp.zeros(b),
        }
        for k, a, b in zip(keys, sizes[:-1], sizes[1:])
    ]


def loss_fn(params, batch):
    x, y = batch
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    logits = x @ params[-1]["w"] + params[-1]["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def measure(opt, params, batch, promotion):
    def step(params, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, state = opt.update(grads, state, params)
        return jgd.apply_updates(params, updates), state, loss

    state = opt.init(params)
    with jax.numpy_dtype_promotion(promotion):
        compiled = (
            jax.jit(step, donate_argnums=(0, 1)).lower(params, state, batch).compile()
        )
    m = compiled.memory_analysis()
    peak = (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        - m.alias_size_in_bytes
        + m.temp_size_in_bytes
    )
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
    return {
        "state": state_bytes / MB,
        "temp": m.temp_size_in_bytes / MB,
        "peak": peak / MB,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    params = mlp(jax.random.key(0), args.width, args.depth, 784, 10)
    n = sum(x.size for x in jax.tree.leaves(params))
    key_x, key_y = jax.random.split(jax.random.key(1))
    batch = (
        jax.random.normal(key_x, (args.batch, 784)),
        jax.random.randint(key_y, (args.batch,), 0, 10),
    )
    print(
        f"MLP 784-{'-'.join([str(args.width)] * args.depth)}-10: {n:,} float32 "
        f"params ({n * 4 / MB:.1f} MiB), batch {args.batch}; jax "
        f"{jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}"
        f" ({platform.machine()}). MiB.\n"
    )
    print("| k | optimizer | state | temporaries | peak |")
    print("|---|---|---:|---:|---:|")
    for k in (1, 4):
        rows = [
            ("plain adam (no wrapper)", jgd.adam(1e-3), "strict"),
            ("jgd.MultiSteps(jgd.adam)", jgd.MultiSteps(jgd.adam(1e-3), k), "strict"),
            (
                "optax.MultiSteps(optax.adam)",
                optax.MultiSteps(optax.adam(1e-3), k),
                "standard",
            ),
        ]
        for name, opt, promotion in rows:
            r = measure(opt, params, batch, promotion)
            print(
                f"| {k} | {name} | {r['state']:.1f} | {r['temp']:.1f} "
                f"| {r['peak']:.1f} |"
            )


if __name__ == "__main__":
    main()
