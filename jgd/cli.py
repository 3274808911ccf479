"""The ``jgd`` command line: ``jgd demo``, ``jgd bench``, ``jgd plot``.

Each subcommand lives in its own module (``jgd.demo``, ``jgd.bench``,
``jgd.lab``) as ``main(argv) -> int`` and is imported only when used, so
``jgd --help`` stays fast and optional extras (matplotlib) stay optional.
With no subcommand, ``jgd`` runs the demo.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "demo": ("jgd.demo", "train every seed optimizer on small problems, print a table"),
    "bench": ("jgd.bench", "time training steps of real models: jgd against optax"),
    "plot": ("jgd.lab", "draw optimizer trajectories and learning-rate sweeps"),
}


def _usage() -> str:
    lines = ["usage: jgd [command] [options]", "", "commands:"]
    lines += [f"  {name:<6} {about}" for name, (_, about) in COMMANDS.items()]
    lines += ["", "Run 'jgd COMMAND --help' for a command's options. Default: demo."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name = "demo"
    if argv and not argv[0].startswith("-"):
        name, argv = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"jgd: unknown command {name!r}; choose from {', '.join(COMMANDS)}.",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(argv) or 0)
    except BrokenPipeError:  # e.g. `jgd demo | head`: the reader left, not an error
        sys.stderr.close()
        return 0
