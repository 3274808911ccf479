"""The ``jgd`` command line: ``jgd demo``, ``jgd bench``, ``jgd plot``, ``jgd --version``.

Each subcommand lives in its own module (``jgd.demo``, ``jgd.bench``,
``jgd.lab``) as ``main(argv) -> int`` with its own argparse parser, and is
imported only when used, so ``jgd --help`` stays fast and optional extras
(matplotlib) stay optional. With no subcommand, ``jgd`` runs the demo.
``HelpFormatter`` is the formatter every subcommand's parser uses: help texts
show each option's default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "demo": (
        "jgd.demo",
        "train the tutorials' optimizers on small problems, print a table",
    ),
    "bench": ("jgd.bench", "time training steps of real models: jgd against optax"),
    "plot": ("jgd.lab", "draw optimizer trajectories and learning-rate sweeps"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows "(default: ...)" after an option's help, except for
    flags, options whose default is None (nothing to show) and help texts
    that state their default themselves."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if (
            action.default is None
            or action.nargs == 0
            or "default" in (action.help or "")
        ):
            return action.help or ""
        return super()._get_help_string(action) or ""


def version() -> str:
    """jgd's version: the installed distribution's, else ``jgd.__version__``."""
    from importlib import metadata

    try:
        return metadata.version("jgd")
    except metadata.PackageNotFoundError:  # run from a source tree
        import jgd

        return jgd.__version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jgd",
        description="Gradient-based optimizers for JAX: demos, plots, benchmarks.",
        epilog="Run 'jgd COMMAND --help' for a command's options. With no command, "
        "jgd runs the demo (options go to it: 'jgd --quick').",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"jgd {version()}")
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for name, (_, about) in COMMANDS.items():
        # The command's own parser reads its options (and its --help).
        s = sub.add_parser(name, help=about, add_help=False, prefix_chars="\0")
        s.add_argument("args", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = ("-h", "--help", "--version")
    if not argv or (argv[0].startswith("-") and argv[0] not in top):
        argv = ["demo", *argv]  # the default command
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) or a usage error (2)
        return int(e.code or 0)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(args.args) or 0)
    except SystemExit as e:  # the command's parser: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 1 if e.code else 0
    except BrokenPipeError:  # e.g. `jgd demo | head`: the reader left, not an error
        sys.stderr.close()
        return 0
