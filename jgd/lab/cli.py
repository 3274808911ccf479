"""``jgd plot``: draw optimizer trajectories and learning-rate sweeps as PNG files.

Holds ``main(argv) -> int``, which ``jgd plot ...`` calls::

    jgd plot FUNCTION [--optimizers sgd,momentum,rmsprop,adam] [--lr LR[,LR...]]
                      [--steps 500] [--start X,Y] [--out FUNCTION.png]
    jgd plot sweep [--optimizer momentum] [--function rosenbrock] [--lr-min 1e-4]
                   [--lr-max 10] [--num 25] [--steps 500] [--tol 1e-3] [--out FILE.png]

FUNCTION is one of ``jgd.lab.FUNCTIONS`` (parabola, bowl, elongated,
rosenbrock, beale, himmelblau, saddle), optimizers are ``jgd.lab.OPTIMIZERS``.
``--lr`` is one learning rate for all optimizers or one per optimizer
(default: the function's ``learning_rate``); a sweep uses ``--num``
log-spaced learning rates from ``--lr-min`` to ``--lr-max``. Exit status 0
when the PNG is written, 1 when matplotlib is missing, 2 for a usage error.
Unknown names are rejected with the list of valid ones.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jgd.cli import HelpFormatter
from jgd.lab.functions import FUNCTIONS
from jgd.lab.runs import OPTIMIZERS, lr_sweep, trajectories

__all__ = ["main"]


class _UsageError(Exception):
    pass


def _choose(kind: str, name: str, valid) -> str:
    if name not in valid:
        raise _UsageError(f"unknown {kind} {name!r}; choose from {', '.join(valid)}.")
    return name


def _floats(arg: str, text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise _UsageError(
            f"{arg} must be numbers separated by commas; got {text!r}."
        ) from None
    if not values:
        raise _UsageError(f"{arg} must not be empty.")
    return values


def _parser(prog: str, sweep: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Plot the learning-rate sweep of one optimizer on a test function."
            if sweep
            else "Plot the paths of optimizers on a test function (or 'sweep')."
        ),
        epilog=f"functions: {', '.join(FUNCTIONS)}; optimizers: {', '.join(OPTIMIZERS)}.",
        formatter_class=HelpFormatter,
    )
    if sweep:
        p.add_argument("--optimizer", default="momentum", help="optimizer name")
        p.add_argument("--function", default="rosenbrock", help="function")
        p.add_argument(
            "--lr-min", type=float, default=1e-4, help="smallest learning rate"
        )
        p.add_argument(
            "--lr-max", type=float, default=10.0, help="largest learning rate"
        )
        p.add_argument("--num", type=int, default=25, help="learning rates, log-spaced")
        p.add_argument("--steps", type=int, default=500, help="steps per run")
        p.add_argument(
            "--tol",
            type=float,
            default=1e-3,
            help="converged: final gap <= tol * start gap",
        )
    else:
        p.add_argument("function", help=f"one of: {', '.join(FUNCTIONS)}, sweep")
        p.add_argument(
            "--optimizers",
            default="sgd,momentum,rmsprop,adam",
            help="comma-separated names",
        )
        p.add_argument(
            "--lr",
            default=None,
            help="one learning rate, or one per optimizer (default: the function's)",
        )
        p.add_argument("--steps", type=int, default=500, help="steps per run")
        p.add_argument("--start", default=None, help="start point, e.g. -1.5,2")
    p.add_argument("--out", default=None, help="PNG file to write (default: NAME.png)")
    return p


def _plot_paths(args) -> str:
    from jgd.lab.plots import plot_trajectories

    if args.function == "sweep":
        raise _UsageError("'sweep' must come first: jgd plot sweep [options].")
    fn = FUNCTIONS[_choose("plot", args.function, list(FUNCTIONS) + ["sweep"])]
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    if not names:
        raise _UsageError("--optimizers must name at least one optimizer.")
    for n in names:
        _choose("optimizer", n, OPTIMIZERS)
    lrs = [fn.learning_rate] if args.lr is None else _floats("--lr", args.lr)
    if len(lrs) == 1:
        lrs = lrs * len(names)
    if len(lrs) != len(names):
        raise _UsageError(
            f"--lr must give one learning rate or one per optimizer ({len(names)}); got {len(lrs)}."
        )
    if any(not (lr > 0 and np.isfinite(lr)) for lr in lrs):
        raise _UsageError(f"--lr must be positive and finite; got {args.lr}.")
    if args.steps < 1:
        raise _UsageError(f"--steps must be >= 1; got {args.steps}.")
    x0 = fn.start
    if args.start is not None:
        x0 = _floats("--start", args.start)
        if len(x0) != fn.ndim:
            raise _UsageError(
                f"--start must have {fn.ndim} coordinate(s) for {fn.name}; got {args.start!r}."
            )
        x0 = x0[0] if fn.ndim == 1 else tuple(x0)
    opts = [OPTIMIZERS[n](lr) for n, lr in zip(names, lrs)]
    runs = trajectories(opts, fn, x0, args.steps)
    labels = {}
    for n, lr, run in zip(names, lrs, runs):
        labels[f"{n}, lr {lr:g}"] = run
    start = ", ".join(f"{v:g}" for v in np.ravel(x0))
    out = args.out or f"{fn.name}.png"
    plot_trajectories(
        fn, labels, out, title=f"{fn.name}: {args.steps} steps from ({start})"
    )
    for label, run in labels.items():
        print(f"{label:>24}: final loss {float(run.losses[-1]):.4g}")
    return out


def _plot_sweep(args) -> str:
    from jgd.lab.plots import plot_sweep

    fn = FUNCTIONS[_choose("function", args.function, FUNCTIONS)]
    make = OPTIMIZERS[_choose("optimizer", args.optimizer, OPTIMIZERS)]
    if not (0 < args.lr_min < args.lr_max < np.inf):
        raise _UsageError(
            f"--lr-min and --lr-max must satisfy 0 < lr-min < lr-max; "
            f"got {args.lr_min:g} and {args.lr_max:g}."
        )
    if args.num < 2:
        raise _UsageError(f"--num must be >= 2; got {args.num}.")
    if args.steps < 1:
        raise _UsageError(f"--steps must be >= 1; got {args.steps}.")
    if not 0 < args.tol < 1:
        raise _UsageError(f"--tol must be in (0, 1); got {args.tol:g}.")
    lrs = np.geomspace(args.lr_min, args.lr_max, args.num)
    sweep = lr_sweep(make, fn, lrs, args.steps, tol=args.tol)
    out = args.out or f"sweep_{args.optimizer}_{fn.name}.png"
    plot_sweep(sweep, out, title=f"{args.optimizer} on {fn.name}: learning-rate sweep")
    rng = sweep.stable_range
    print(
        f"{args.optimizer} on {fn.name}, {args.steps} steps: "
        f"{int(sweep.diverged.sum())} diverged, {int(sweep.too_slow.sum())} too slow, "
        f"{int(sweep.converged.sum())} converged; stable range "
        + ("none" if rng is None else f"{rng[0]:.3g} to {rng[1]:.3g}")
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """``jgd plot ...``: parse ``argv``, draw, write the PNG; the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    sweep = bool(argv) and argv[0] == "sweep"
    parser = _parser("jgd plot sweep" if sweep else "jgd plot", sweep)
    try:
        args = parser.parse_args(argv[1:] if sweep else argv)
    except SystemExit as e:  # --help (0) or an argparse usage error (2)
        return int(e.code or 0)
    try:
        out = _plot_sweep(args) if sweep else _plot_paths(args)
    except _UsageError as e:
        print(f"{parser.prog}: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0
