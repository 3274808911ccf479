"""``jgd demo``: the tutorials' optimizers side by side on problems made on the spot.

Holds ``main(argv)`` (the command) and ``run(quick, seed)`` (the runs behind
its table). Two problems are generated from the seed: a linear regression
(``models.make_regression``, mean squared error) and a three-class
classification of Gaussian blobs learned by a ReLU MLP (``models.mlp``,
softmax cross entropy). Each is trained with full-batch gradient descent,
SGD (batch size 1), mini-batch SGD, momentum, RMSprop, AdaGrad and Adam
through ``jgd.train.fit``, every run for the same number of epochs from the
same initial params, and the table shows for each run the learning rate, the
full-data loss before and after, the number of steps until the full-data loss (checked at
the end of every epoch) first fell below the problem's tolerance, the time
spent training and the time spent compiling. Compiling dominates, so
``--quick`` runs fewer optimizers (``QUICK``) on less data for fewer epochs,
and compiled programs are kept in JAX's persistent compilation cache
(``cache_dir()``; ``--no-cache`` turns it off). ``--plot FILE.png`` draws the
full-data loss per epoch (needs matplotlib: ``pip install 'jgd[plot]'``).

Example:
    >>> from jgd import demo
    >>> demo.OPTIMIZERS[0][0], len(demo.OPTIMIZERS)
    ('GD (full batch)', 7)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import jgd
from jgd import cli, losses, models, train

# Name, batch size (None: full batch; "mini": the problem's mini-batch size),
# the key of its learning rate in ``Problem.learning_rates``, and the
# optimizer given that learning rate.
OPTIMIZERS: list[tuple[str, Any, str, Callable[[float], Any]]] = [
    ("GD (full batch)", None, "gd", jgd.gd),
    ("SGD (batch 1)", 1, "sgd1", jgd.sgd),
    ("mini-batch SGD", "mini", "sgd", jgd.sgd),
    ("momentum", "mini", "momentum", lambda lr: jgd.sgd(lr, momentum=0.9)),
    ("RMSprop", "mini", "rmsprop", jgd.rmsprop),
    ("AdaGrad", "mini", "adagrad", jgd.adagrad),
    ("Adam", "mini", "adam", jgd.adam),
]
# --quick: every run compiles its own epoch, so fewer runs is what makes it quick.
QUICK = ("GD (full batch)", "SGD (batch 1)", "Adam")

EPOCHS = {False: 40, True: 10}  # by --quick
SAMPLES = {False: 512, True: 128}  # by --quick
TOLERANCE = {"regression": 0.02, "classification": 0.05}


class Problem(NamedTuple):
    """A generated data set, a model's initial params and loss, the learning
    rates its optimizers use, and the loss that counts as reached."""

    name: str
    data: Any
    params: Any
    loss: Callable[[Any, Any], Any]
    learning_rates: dict
    tolerance: float
    mini_batch: int


class Row(NamedTuple):
    """One line of the table."""

    problem: str
    optimizer: str
    batch: str
    learning_rate: float
    steps: int
    initial_loss: float
    final_loss: float
    steps_to_tol: int | None
    train_s: float
    compile_s: float
    curve: list  # full-data loss after each epoch


def problems(quick: bool, seed: int) -> list[Problem]:
    """The regression and the classification problem for ``seed``."""
    n = SAMPLES[quick]
    k_reg, k_lin, k_cls, k_mlp = jax.random.split(jax.random.key(seed), 4)
    linear = models.linear_regression(8)
    mlp = models.mlp([2, 16, 3])

    # One compiled program per problem instead of many small eager ones.
    @functools.partial(jax.jit, static_argnums=(1, 3))
    def generate(k_data, make, k_init, model):
        return make(k_data), model.init(k_init)

    make_reg = functools.partial(models.make_regression, n=n, n_features=8, noise=0.1)
    (x, y, _, _), linear_params = generate(k_reg, make_reg, k_lin, linear)

    def mse(params, batch):
        xb, yb = batch
        return losses.mean_squared_error(linear.apply(params, xb), yb)

    regression = Problem(
        "regression",
        (x, y),
        linear_params,
        mse,
        {"gd": 0.3, "sgd1": 0.01, "sgd": 0.1, "momentum": 0.02,
         "rmsprop": 0.03, "adagrad": 0.5, "adam": 0.05},
        tolerance=TOLERANCE["regression"],  # twice the noise variance, 0.01
        mini_batch=16,
    )  # fmt: skip

    make_cls = functools.partial(
        models.make_classification, n=n, n_features=2, n_classes=3
    )
    (xc, labels), mlp_params = generate(k_cls, make_cls, k_mlp, mlp)

    def cross_entropy(params, batch):
        xb, yb = batch
        logits = mlp.apply(params, xb)
        return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, yb))

    classification = Problem(
        "classification",
        (xc, labels),
        mlp_params,
        cross_entropy,
        {"gd": 0.5, "sgd1": 0.01, "sgd": 0.1, "momentum": 0.02,
         "rmsprop": 0.005, "adagrad": 0.1, "adam": 0.01},
        tolerance=TOLERANCE["classification"],
        mini_batch=16,
    )  # fmt: skip
    return [regression, classification]


def run(quick: bool = False, seed: int = 0) -> list[Row]:
    """Train every optimizer on every problem; one ``Row`` per run, each
    printed as it finishes."""
    epochs = EPOCHS[quick]
    rows = []
    for problem in problems(quick, seed):
        full_loss = jax.jit(problem.loss)
        initial = float(full_loss(problem.params, problem.data))
        for name, batch, lr_key, make in OPTIMIZERS:
            if quick and name not in QUICK:
                continue
            lr = problem.learning_rates[lr_key]
            batch_size = problem.mini_batch if batch == "mini" else batch
            curve: list[float] = []

            def record(epoch, params, metrics, curve=curve, f=full_loss, p=problem):
                curve.append(float(f(params, p.data)))

            _, history = train.fit(
                problem.loss,
                problem.params,
                make(lr),
                problem.data,
                epochs=epochs,
                batch_size=batch_size,
                key=jax.random.key(seed + 1),
                progress=False,
                callbacks=[record],
            )
            per_epoch = history.steps_per_epoch
            reached = next(
                (e for e, v in enumerate(curve) if v <= problem.tolerance), None
            )
            rows.append(
                Row(
                    problem.name,
                    name,
                    "all" if batch_size is None else str(batch_size),
                    lr,
                    per_epoch * epochs,
                    initial,
                    curve[-1],
                    None if reached is None else (reached + 1) * per_epoch,
                    history.train_time,
                    history.compile_time,
                    curve,
                )
            )
            print(_line(rows[-1]), flush=True)
    return rows


HEADER = (
    "| problem        | optimizer       | batch |    lr | steps | initial loss "
    "| final loss "
    "| steps to tol | train s | compile s |"
)


def _line(r: Row) -> str:
    tol = "-" if r.steps_to_tol is None else str(r.steps_to_tol)
    return (
        f"| {r.problem:<14} | {r.optimizer:<15} | {r.batch:>5} "
        f"| {r.learning_rate:>5g} | {r.steps:>5} "
        f"| {r.initial_loss:>12.4g} | {r.final_loss:>10.4g} | {tol:>12} "
        f"| {r.train_s:>7.3f} | {r.compile_s:>9.3f} |"
    )


def plot(rows: list[Row], path: str) -> None:
    """Full-data loss per epoch, one panel per problem, one line per
    optimizer, saved as a PNG."""
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(r.problem for r in rows))
    fig = Figure(figsize=(6 * len(names), 4.5), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        for r in (r for r in rows if r.problem == name):
            epochs = range(len(r.curve) + 1)
            ax.plot(epochs, [r.initial_loss, *r.curve], label=r.optimizer)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("full-data loss")
        ax.set_title(name)
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)


def cache_dir() -> Path:
    """Where the demo keeps JAX's compiled programs:
    ``$XDG_CACHE_HOME/jgd/jax-cache``, else ``~/.cache/jgd/jax-cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jgd" / "jax-cache"


def use_compilation_cache() -> Path:
    """Turn on JAX's persistent compilation cache in ``cache_dir()`` for this
    process (the command's choice; ``import jgd`` never does this)."""
    path = cache_dir()
    jax.config.update("jax_compilation_cache_dir", str(path))
    # The epochs compile in 0.2-1 s; the default (1 s) would keep almost none.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    return path


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    parser = argparse.ArgumentParser(
        prog="jgd demo",
        description="Train GD, SGD, mini-batch SGD, momentum, RMSprop, AdaGrad and "
        "Adam on a generated regression and classification problem; print a table.",
        formatter_class=cli.HelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{len(QUICK)} optimizers ({', '.join(QUICK)}), {SAMPLES[True]} "
        f"samples, {EPOCHS[True]} epochs (else all {len(OPTIMIZERS)}, "
        f"{SAMPLES[False]} samples, {EPOCHS[False]} epochs)",
    )
    parser.add_argument("--plot", metavar="FILE.png", help="save the loss curves")
    parser.add_argument("--seed", type=int, default=0, help="data, init and shuffling")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help=f"do not keep compiled programs in {cache_dir()}",
    )
    args = parser.parse_args(argv)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "jgd demo: --plot needs matplotlib; install it with "
                "pip install 'jgd[plot]' (or pip install matplotlib).",
                file=sys.stderr,
            )
            return 1
    tolerances = ", ".join(f"{k} {v}" for k, v in TOLERANCE.items())
    print(
        f"jgd demo: {EPOCHS[args.quick]} epochs per run, seed {args.seed}. Losses "
        "are on the full data set; 'lr' is the run's learning rate; 'steps to tol' "
        "counts steps until the loss first fell below the problem's tolerance "
        f"({tolerances}; checked at the end of each epoch)."
    )
    if args.no_cache:
        print("compilation cache: off (--no-cache)")
    else:
        print(f"compilation cache: {use_compilation_cache()} (--no-cache: off)")
    print(HEADER)
    print("|" + "|".join("-" * (len(c)) for c in HEADER.split("|")[1:-1]) + "|")
    rows = run(args.quick, args.seed)
    if args.plot is not None:
        plot(rows, args.plot)
        print(f"loss curves saved to {args.plot}")
    compiling = sum(r.compile_s for r in rows)
    print(
        f"{len(rows)} runs in {time.perf_counter() - t0:.1f} s, "
        f"{compiling:.1f} s of it compiling epochs."
    )
    return 0
