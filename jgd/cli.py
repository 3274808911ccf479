"""The ``jgd`` command line: ``jgd demo``, ``jgd bench``, ``jgd plot``, ``jgd --version``.

Each subcommand lives in its own module (``jgd.demo``, ``jgd.bench``,
``jgd.lab``) as ``main(argv) -> int`` with its own argparse parser, and is
imported only when used, so ``jgd --help`` stays fast and optional extras
(matplotlib) stay optional. With no subcommand, ``jgd`` runs the demo.
``HelpFormatter`` is the formatter every subcommand's parser uses: help texts
show each option's default. Before a command runs, the paths it will read and
write are checked (``PATHS``), so a long run does not fail at its end; bad
paths and bad arguments give one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path

COMMANDS = {
    "demo": (
        "jgd.demo",
        "train the tutorials' optimizers on small problems, print a table",
    ),
    "bench": ("jgd.bench", "time training steps of real models: jgd against optax"),
    "plot": ("jgd.lab", "draw optimizer trajectories and learning-rate sweeps"),
}


# Each command's path options: "file" (written), "dir" (written into, made if
# missing), "read" (read). jgd plot writes NAME.png here when --out is absent.
PATHS = {
    "demo": {"--plot": "file"},
    "bench": {"--out": "dir", "--goals": "read", "--report": "read"},
    "plot": {"--out": "file"},
}

# Set to see the traceback of an error that the command line reports in one line.
TRACEBACK_ENV = "JGD_TRACEBACK"


class UsageError(Exception):
    """A bad path or argument, reported as ``jgd COMMAND: message`` (exit 2)."""


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


def _option(args: list[str], name: str) -> str | None:
    """The value of option ``name`` in ``args`` (``--out X`` or ``--out=X``),
    the last one given; None when absent."""
    value = None
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(name + "="):
            value = a[len(name) + 1 :]
    return value


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_path(option: str, value: str, kind: str) -> None:
    """Raise ``UsageError`` unless ``value`` can be read (``kind="read"``),
    written as a file (``"file"``) or written into as a directory that is
    made if missing (``"dir"``)."""
    path = Path(value)
    got = f"got {value!r}"
    if kind == "read":
        if not path.is_file():
            why = "a directory" if path.is_dir() else "no such file"
            raise UsageError(f"{option} must be a readable file; {got} ({why}).")
        if not os.access(path, os.R_OK):
            raise UsageError(
                f"{option} must be a readable file; {got} (no permission)."
            )
        return
    if kind == "file":
        if path.is_dir():
            raise UsageError(f"{option} must be a file path; {got}, a directory.")
        parent = path.absolute().parent
        if not parent.is_dir():
            why = "is not a directory" if parent.exists() else "does not exist"
            raise UsageError(
                f"{option} must be in an existing directory; {got} ({parent} {why})."
            )
        if path.exists() and not os.access(path, os.W_OK):
            raise UsageError(f"{option} must be writable; {got} (no permission).")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"{option} must be writable; {got} ({parent} is not).")
        return
    base = _existing(path)
    if not base.is_dir():
        raise UsageError(f"{option} must be a directory; {got} ({base} is a file).")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"{option} must be writable; {got} ({base} is not).")


def _default_outputs(command: str, args: list[str]) -> dict[str, tuple[str, str]]:
    """Where ``command`` writes when its output option is absent."""
    if command == "plot" and _option(args, "--out") is None:
        return {"the current directory": (".", "dir")}
    if command == "bench" and _option(args, "--out") is None:
        if _option(args, "--report") is not None:
            return {}
        quick = "--quick" in args
        preset = "quick" if quick else _option(args, "--preset") or "full"
        if preset == "full":
            # loaded by name on use, as every subcommand (the library never
            # imports the benchmark)
            results = importlib.import_module("jgd.bench.cli").RESULTS
            return {"the results directory": (str(results), "dir")}
        return {"the temporary directory": (tempfile.gettempdir(), "dir")}
    return {}


def check_paths(command: str, args: list[str]) -> None:
    """Check every path ``command`` would read or write, before it runs."""
    if any(a in ("-h", "--help") for a in args):
        return
    for option, kind in PATHS.get(command, {}).items():
        value = _option(args, option)
        if value is not None:
            check_path(option, value, kind)
    for where, (value, kind) in _default_outputs(command, args).items():
        check_path(where, value, kind)


def _one_line(e: BaseException) -> str:
    """An error as one line; messages that do not name jgd get their type."""
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.strerror}: {e.filename!s}"
    if text.startswith("jgd"):
        return text
    return f"{type(e).__name__}: {text} (set {TRACEBACK_ENV}=1 for the traceback)"


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
    if args.command is None:  # `jgd --` and the like: nothing to run
        parser.print_usage(sys.stderr)
        return 2
    prog = f"jgd {args.command}"
    try:
        check_paths(args.command, args.args)
        module = importlib.import_module(COMMANDS[args.command][0])
        return int(module.main(args.args) or 0)
    except SystemExit as e:  # the command's parser: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 1 if e.code else 0
    except BrokenPipeError:  # e.g. `jgd demo | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    except UsageError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError) as e:  # a bad path or argument
        if os.environ.get(TRACEBACK_ENV):
            raise
        message = _one_line(e)
        if message.startswith(prog + ":"):
            message = message[len(prog) + 1 :].lstrip()
        print(f"{prog}: {message}", file=sys.stderr)
        return 2
