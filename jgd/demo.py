"""``jgd demo`` (placeholder until the training demo lands): the tutorials'
first example, minimising x**2 from x = 5 with learning rate 0.1."""

from __future__ import annotations


def main(argv: list[str]) -> int:
    import jax
    import jax.numpy as jnp

    import jgd

    opt = jgd.gd(0.1)
    x = jnp.array(5.0)
    state = opt.init(x)
    for step in range(20):
        updates, state = opt.update(jax.grad(lambda w: w**2)(x), state, x)
        x = jgd.apply_updates(x, updates)
        print(f"Step {step}: Weight = {float(x):.6f}")
    return 0
