"""The ``jgd`` command line: ``jgd demo``, ``jgd bench``, ``jgd plot``.

Each subcommand lives in its own module and is imported only when used, so
``jgd --help`` stays fast and optional extras (matplotlib) stay optional.
With no subcommand, ``jgd`` runs the demo.
"""

from __future__ import annotations

import argparse
import sys


def _demo(argv: list[str]) -> int:
    import jax
    import jax.numpy as jnp

    import jgd

    # The tutorials' first example: minimise x**2 from x = 5 with lr 0.1.
    opt = jgd.gd(0.1)
    x = jnp.array(5.0)
    state = opt.init(x)
    for step in range(20):
        updates, state = opt.update(jax.grad(lambda w: w**2)(x), state, x)
        x = jgd.apply_updates(x, updates)
        print(f"Step {step}: Weight = {float(x):.6f}")
    return 0


COMMANDS = {"demo": _demo}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="jgd", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="demo", choices=sorted(COMMANDS))
    args, rest = parser.parse_known_args(argv[:1])
    return COMMANDS[args.command](argv[1:])
