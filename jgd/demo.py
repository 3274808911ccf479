"""``jgd demo``: the tutorials' optimizers side by side on problems made on the spot.

Holds ``main(argv)`` (the command) and ``run(quick, seed)`` (the runs behind
its table). Two problems are generated from the seed: a linear regression
(``models.make_regression``, mean squared error) and a three-class
classification of Gaussian blobs learned by a ReLU MLP (``models.mlp``,
softmax cross entropy). Each is trained with full-batch gradient descent,
SGD (batch size 1), mini-batch SGD, momentum, RMSprop, AdaGrad and Adam
through ``jgd.train.fit``, every run for the same number of epochs from the
same initial params, and the table shows for each run the full-data loss
before and after, the number of steps until the full-data loss (checked at
the end of every epoch) first fell below the problem's tolerance, the time
spent training and the time spent compiling. ``--plot FILE.png`` draws the
full-data loss per epoch (needs matplotlib: ``pip install 'jgd[plot]'``).

Example:
    >>> from jgd import demo
    >>> demo.OPTIMIZERS[0][0], len(demo.OPTIMIZERS)
    ('GD (full batch)', 7)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

import jgd
from jgd import losses, models, train

# Name, batch size (None: full batch; "mini": the problem's mini-batch size),
# and the optimizer given the problem's learning rates.
OPTIMIZERS: list[tuple[str, Any, Callable[[dict], Any]]] = [
    ("GD (full batch)", None, lambda lr: jgd.gd(lr["gd"])),
    ("SGD (batch 1)", 1, lambda lr: jgd.sgd(lr["sgd1"])),
    ("mini-batch SGD", "mini", lambda lr: jgd.sgd(lr["sgd"])),
    ("momentum", "mini", lambda lr: jgd.sgd(lr["momentum"], momentum=0.9)),
    ("RMSprop", "mini", lambda lr: jgd.rmsprop(lr["rmsprop"])),
    ("AdaGrad", "mini", lambda lr: jgd.adagrad(lr["adagrad"])),
    ("Adam", "mini", lambda lr: jgd.adam(lr["adam"])),
]


EPOCHS = {False: 40, True: 10}  # by --quick
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
    steps: int
    initial_loss: float
    final_loss: float
    steps_to_tol: int | None
    train_s: float
    compile_s: float
    curve: list  # full-data loss after each epoch


def problems(quick: bool, seed: int) -> list[Problem]:
    """The regression and the classification problem for ``seed``."""
    n = 128 if quick else 512
    k_reg, k_lin, k_cls, k_mlp = jax.random.split(jax.random.key(seed), 4)

    x, y, _, _ = models.make_regression(k_reg, n, 8, noise=0.1)
    linear = models.linear_regression(8)

    def mse(params, batch):
        xb, yb = batch
        return losses.mean_squared_error(linear.apply(params, xb), yb)

    regression = Problem(
        "regression",
        (x, y),
        linear.init(k_lin),
        mse,
        {"gd": 0.3, "sgd1": 0.01, "sgd": 0.1, "momentum": 0.02,
         "rmsprop": 0.03, "adagrad": 0.5, "adam": 0.05},
        tolerance=TOLERANCE["regression"],  # twice the noise variance, 0.01
        mini_batch=16,
    )  # fmt: skip

    xc, labels = models.make_classification(k_cls, n, n_features=2, n_classes=3)
    mlp = models.mlp([2, 16, 3])

    def cross_entropy(params, batch):
        xb, yb = batch
        logits = mlp.apply(params, xb)
        return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, yb))

    classification = Problem(
        "classification",
        (xc, labels),
        mlp.init(k_mlp),
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
        for name, batch, make in OPTIMIZERS:
            batch_size = problem.mini_batch if batch == "mini" else batch
            curve: list[float] = []

            def record(epoch, params, metrics, curve=curve, f=full_loss, p=problem):
                curve.append(float(f(params, p.data)))

            _, history = train.fit(
                problem.loss,
                problem.params,
                make(problem.learning_rates),
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
    "| problem        | optimizer       | batch | steps | initial loss | final loss "
    "| steps to tol | train s | compile s |"
)


def _line(r: Row) -> str:
    tol = "-" if r.steps_to_tol is None else str(r.steps_to_tol)
    return (
        f"| {r.problem:<14} | {r.optimizer:<15} | {r.batch:>5} | {r.steps:>5} "
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="jgd demo",
        description="Train GD, SGD, mini-batch SGD, momentum, RMSprop, AdaGrad and "
        "Adam on a generated regression and classification problem; print a table.",
    )
    parser.add_argument("--quick", action="store_true", help="small data, 10 epochs")
    parser.add_argument("--plot", metavar="FILE.png", help="save the loss curves")
    parser.add_argument("--seed", type=int, default=0, help="data, init and shuffling")
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
        "are on the full data set; 'steps to tol' counts steps until it first fell "
        f"below the problem's tolerance ({tolerances}; checked at the end of each "
        "epoch)."
    )
    print(HEADER)
    print("|" + "|".join("-" * (len(c)) for c in HEADER.split("|")[1:-1]) + "|")
    rows = run(args.quick, args.seed)
    if args.plot is not None:
        plot(rows, args.plot)
        print(f"loss curves saved to {args.plot}")
    return 0
