"""Runs: optimizer trajectories and learning-rate sweeps, each one compiled program.

Holds ``OPTIMIZERS`` (name -> ``learning_rate -> optimizer``: gd, sgd,
momentum, nesterov, rmsprop, adagrad, adam, adamw), ``Trajectory`` and
``trajectory`` (every iterate and loss of one run, as one ``lax.scan``),
``trajectories`` (several optimizers, batched by ``vmap`` where their pytree
structures match), ``Sweep`` and ``lr_sweep`` (all learning rates in one
``jax.vmap`` over the optimizer value, with divergence and convergence flags
and the stable range).

Because a jgd optimizer is a pytree whose ``learning_rate`` is a leaf,
``jax.vmap(lambda lr: run(make_opt(lr)))(learning_rates)`` builds one
optimizer per learning rate inside the batched program: a sweep is traced and
compiled once, whatever the number of learning rates.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd.base import apply_updates, check_int, check_number
from jgd.lab.functions import Landscape
from jgd.optimizers import adagrad, adam, adamw, gd, rmsprop, sgd

__all__ = [
    "OPTIMIZERS",
    "Sweep",
    "Trajectory",
    "lr_sweep",
    "trajectories",
    "trajectory",
]


def _momentum(learning_rate):
    """SGD with heavy-ball momentum 0.9."""
    return sgd(learning_rate, momentum=0.9)


def _nesterov(learning_rate):
    """SGD with Nesterov momentum 0.9."""
    return sgd(learning_rate, momentum=0.9, nesterov=True)


OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "gd": gd,
    "sgd": sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "rmsprop": rmsprop,
    "adagrad": adagrad,
    "adam": adam,
    "adamw": adamw,
}
"""The lab's optimizers by name: each maps a learning rate to an optimizer
with the other hyperparameters at their defaults (momentum and nesterov use
``jgd.sgd`` with momentum 0.9). ``gd`` and ``sgd`` compute the same steps on a
full-batch loss; they differ in name and pytree structure only."""


class Trajectory(NamedTuple):
    """Every iterate of a run and its loss.

    Attributes:
        params: the iterates ``x_0, ..., x_steps``: the params pytree with a
            leading axis of length ``steps + 1`` (``x_0`` is the start).
        losses: ``f(x_0), ..., f(x_steps)``, shape ``(steps + 1,)``.
    """

    params: Any
    losses: jax.Array


def _start(api: str, fn: Any, x0: Any) -> Any:
    """The start point: ``x0`` as jax arrays (one array for a landscape, whose
    point may be given as a tuple), or the landscape's default."""
    if x0 is None:
        if not isinstance(fn, Landscape):
            raise TypeError(
                f"{api}: x0 must be given when fn is not a jgd.lab landscape; "
                f"got fn={fn!r}."
            )
        x0 = fn.start
    dt = jax.dtypes.canonicalize_dtype(jnp.float64)

    def as_array(x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(dt)
        return x

    if isinstance(fn, Landscape):  # a point: one array, e.g. shape (2,)
        return as_array(x0)
    return jax.tree.map(as_array, x0)


def _objective(fn: Callable, data: Any, has_data: bool) -> Callable:
    return (lambda p: fn(p, data)) if has_data else fn


def _run(opt, fn, x0, data, steps, has_data):
    """``steps`` optimizer steps as one ``lax.scan``; iterates and losses."""
    value_and_grad = jax.value_and_grad(_objective(fn, data, has_data))

    def step(carry, _):
        x, state = carry
        loss, g = value_and_grad(x)  # 1. loss and gradient at x_k
        updates, state = opt.update(g, state, x)  # 2. the optimizer's step
        return (apply_updates(x, updates), state), (x, loss)  # 3. x_{k+1}

    (last, _), (xs, losses) = jax.lax.scan(step, (x0, opt.init(x0)), length=steps)
    last_loss = _objective(fn, data, has_data)(last)
    xs = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), xs, last)
    return Trajectory(xs, jnp.concatenate([losses, last_loss[None]]))


_run_jit = jax.jit(_run, static_argnames=("fn", "steps", "has_data"))


@functools.partial(jax.jit, static_argnames=("fn", "steps", "has_data"))
def _run_batched(opts, fn, x0, data, steps, has_data):
    return jax.vmap(lambda o: _run(o, fn, x0, data, steps, has_data))(opts)


def trajectory(opt: Any, fn: Callable, x0: Any = None, steps: int = 100, *, data=None):
    """Run ``opt`` on ``fn`` from ``x0`` for ``steps`` steps; every iterate and loss.

    The loop is one ``lax.scan`` under ``jit`` (``fn`` and ``steps`` are static,
    the optimizer's hyperparameters are traced, so a new learning rate does not
    recompile). Step k is exactly the optax protocol:

    Update:
        loss_k, g = value_and_grad(fn)(x_k)
        updates, state = opt.update(g, state, x_k)
        x_{k+1} = apply_updates(x_k, updates)

    Args:
        opt: a jgd (or optax) optimizer; jgd values are pytrees and are traced.
        fn: ``params -> scalar loss`` (a ``jgd.lab`` landscape or any pure
            JAX function); with ``data``, ``fn(params, data)``. Must be
            hashable (functions are).
        x0: the start, a params pytree; default: the landscape's ``start``.
        steps: number of optimizer steps, an integer >= 0.
        data: optional batch passed to ``fn`` at every step (full-batch
            gradient descent on a ``loss(params, batch)``).

    Returns:
        ``Trajectory(params, losses)`` with ``steps + 1`` entries, ``x_0`` first.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> from jgd.lab import parabola, trajectory
        >>> run = trajectory(jgd.gd(0.1), parabola, jnp.array(5.0), steps=3)
        >>> [round(float(x), 4) for x in run.params]  # the tutorials' 5 * 0.8**k
        [5.0, 4.0, 3.2, 2.56]
    """
    check_int("jgd.lab.trajectory", "steps", steps, 0)
    x0 = _start("jgd.lab.trajectory", fn, x0)
    has_data = data is not None
    if _is_pytree_value(opt):
        return _run_jit(opt, fn, x0, data, steps=steps, has_data=has_data)
    # An optax optimizer is a pair of closures: close over it (compiles per call).
    run = functools.partial(_run, opt, fn, steps=steps, has_data=has_data)
    return jax.jit(run)(x0, data)


def _is_pytree_value(opt: Any) -> bool:
    """True when every leaf of ``opt`` is a number or an array (a jgd value,
    traceable by ``jit``/``vmap``); False for closures such as optax's."""
    return all(
        isinstance(v, (numbers.Number, np.ndarray, jax.Array))
        for v in jax.tree.leaves(opt)
    )


def trajectories(opts, fn: Callable, x0: Any = None, steps: int = 100, *, data=None):
    """Run several optimizers from the same start; a list of ``Trajectory``.

    Optimizers with the same pytree structure (the same kind and static
    configuration, differing only in numeric hyperparameters such as the
    learning rate) are stacked and run together under one ``jax.vmap``; the
    others run one by one. Results come back in the order given.

    Args:
        opts: a sequence of optimizers.
        fn, x0, steps, data: as for ``trajectory``.

    Example:
        >>> import jgd
        >>> from jgd.lab import bowl, trajectories
        >>> runs = trajectories([jgd.gd(0.1), jgd.gd(0.3), jgd.adam(0.1)], bowl, steps=10)
        >>> [r.losses.shape for r in runs]
        [(11,), (11,), (11,)]
    """
    check_int("jgd.lab.trajectories", "steps", steps, 0)
    x0 = _start("jgd.lab.trajectories", fn, x0)
    opts = list(opts)
    groups: dict[Any, list[int]] = {}
    for i, opt in enumerate(opts):
        key = jax.tree.structure(opt) if _is_pytree_value(opt) else ("single", i)
        groups.setdefault(key, []).append(i)
    out: list[Any] = [None] * len(opts)
    for idx in groups.values():
        if len(idx) == 1:
            out[idx[0]] = trajectory(opts[idx[0]], fn, x0, steps, data=data)
            continue
        stacked = jax.tree.map(
            lambda *leaves: jnp.stack([jnp.asarray(v) for v in leaves]),
            *[opts[i] for i in idx],
        )
        batch = _run_batched(
            stacked, fn, x0, data, steps=steps, has_data=data is not None
        )
        for j, i in enumerate(idx):
            out[i] = jax.tree.map(lambda a, j=j: a[j], batch)
    return out


class Sweep(NamedTuple):
    """The outcome of ``lr_sweep``: one entry per learning rate (NumPy arrays).

    Attributes:
        learning_rates: the learning rates, increasing, shape ``(n,)``.
        losses: loss at every step, shape ``(n, steps + 1)``.
        final_loss: ``losses[:, -1]``.
        initial_loss: the loss at the start (the same for every run).
        diverged: the run blew up: its final loss is not finite or is above
            the initial loss.
        converged: its final loss got within ``tol`` of the way to the
            minimum: ``final - minimum <= tol * (initial - minimum)``.
        too_slow: neither diverged nor converged (too small a learning rate,
            or one that bounces without getting anywhere).
        stable_range: ``(lo, hi)``, the first and last learning rate of the
            longest run of consecutive converged learning rates, or ``None``
            when none converged.
        minimum, tol: the reference minimum and tolerance used for
            ``converged``.
        final_params: the last iterate of every run (leading axis ``n``).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    final_loss: np.ndarray
    initial_loss: float
    diverged: np.ndarray
    converged: np.ndarray
    too_slow: np.ndarray
    stable_range: tuple[float, float] | None
    minimum: float
    tol: float
    final_params: Any

    @property
    def best_learning_rate(self) -> float | None:
        """The learning rate with the lowest finite final loss (None if all blew up)."""
        finite = np.isfinite(self.final_loss)
        if not finite.any():
            return None
        masked = np.where(finite, self.final_loss, np.inf)
        return float(self.learning_rates[int(np.argmin(masked))])


def _sweep(make_opt, fn, learning_rates, x0, data, steps, has_data):
    def one(lr):
        run = _run(make_opt(lr), fn, x0, data, steps, has_data)
        return run.losses, jax.tree.map(lambda a: a[-1], run.params)

    return jax.vmap(one)(learning_rates)


_sweep_jit = jax.jit(_sweep, static_argnames=("make_opt", "fn", "steps", "has_data"))


def lr_sweep(
    make_opt: Callable[[Any], Any],
    fn: Callable,
    learning_rates: Any,
    steps: int,
    x0: Any = None,
    *,
    data: Any = None,
    minimum: float | None = None,
    tol: float = 1e-3,
) -> Sweep:
    """Run one optimizer at many learning rates in one ``jax.vmap``.

    ``jax.vmap(lambda lr: run(make_opt(lr)))(learning_rates)``: the optimizer
    is built inside the batched program (its learning rate is a traced leaf,
    so construction-time checks skip it), and the whole sweep is traced and
    compiled once, not once per learning rate. The flags are then read off
    the losses:

    Update:
        diverged  = not isfinite(final) or final > initial
        converged = not diverged and final - minimum <= tol * (initial - minimum)
        too_slow  = not diverged and not converged

    Args:
        make_opt: ``learning_rate -> optimizer``, e.g. ``jgd.adam`` or an entry
            of ``OPTIMIZERS``; called once, with a traced learning rate.
            Static under ``jit``: pass the same function to reuse the
            compiled sweep.
        fn: the loss: ``params -> scalar`` (a landscape or any pure JAX
            function), or ``loss(params, batch)`` when ``data`` is given (a
            full-batch ``jgd.train`` problem such as linear regression).
        learning_rates: 1-D, positive, finite and increasing; the runs use
            them in the default float dtype (float32 unless x64 is on).
        steps: optimizer steps per run, an integer >= 1.
        x0: the start params (default: the landscape's ``start``).
        data: the batch passed to ``fn`` at every step.
        minimum: the least value of the loss (default: the landscape's
            ``minimum``, else 0). For a regression with noise, pass the
            least-squares loss or nothing will count as converged.
        tol: the fraction of the initial gap left at the end that counts as
            converged, in (0, 1), default 1e-3.

    Returns:
        a ``Sweep`` of NumPy arrays (host values, for tables and plots).

    Example:
        >>> import jgd
        >>> from jgd.lab import bowl, lr_sweep
        >>> s = lr_sweep(jgd.gd, bowl, [1e-3, 0.1, 0.5, 0.9, 1.1], steps=50)
        >>> s.diverged.tolist(), s.too_slow.tolist()
        ([False, False, False, False, True], [True, False, False, False, False])
        >>> s.stable_range
        (0.1, 0.9)

    References: the limit ``lr < 2 / L`` for a quadratic of curvature ``L``:
    Nesterov, "Introductory Lectures on Convex Optimization", 2004, sec. 1.2.3.
    """
    api = "jgd.lab.lr_sweep"
    if not callable(make_opt):
        raise TypeError(
            f"{api}: make_opt must be a function learning_rate -> optimizer; "
            f"got {make_opt!r}."
        )
    check_int(api, "steps", steps, 1)
    check_number(api, "tol", tol, 0, 1, lo_open=True, hi_open=True)
    lrs = np.asarray(learning_rates, dtype=np.float64)
    if lrs.ndim != 1 or lrs.size == 0:
        raise ValueError(
            f"{api}: learning_rates must be a non-empty 1-D sequence; got shape {lrs.shape}."
        )
    if not (np.all(np.isfinite(lrs)) and np.all(lrs > 0) and np.all(np.diff(lrs) > 0)):
        raise ValueError(
            f"{api}: learning_rates must be positive, finite and increasing; "
            f"got {lrs.tolist()}."
        )
    if minimum is None:
        minimum = fn.minimum if isinstance(fn, Landscape) else None
        minimum = 0.0 if minimum is None else minimum
    x0 = _start(api, fn, x0)
    dt = jax.dtypes.canonicalize_dtype(jnp.float64)
    losses, final_params = _sweep_jit(
        make_opt,
        fn,
        jnp.asarray(lrs, dt),
        x0,
        data,
        steps=steps,
        has_data=data is not None,
    )
    losses = np.asarray(losses)
    final, initial = losses[:, -1], float(losses[0, 0])
    with np.errstate(invalid="ignore", over="ignore"):
        diverged = ~np.isfinite(final) | (final > initial)
        converged = ~diverged & (final - minimum <= tol * (initial - minimum))
    return Sweep(
        learning_rates=lrs,
        losses=losses,
        final_loss=final,
        initial_loss=initial,
        diverged=diverged,
        converged=converged,
        too_slow=~diverged & ~converged,
        stable_range=_longest_run(lrs, converged),
        minimum=float(minimum),
        tol=float(tol),
        final_params=jax.tree.map(np.asarray, final_params),
    )


def _longest_run(values: np.ndarray, mask: np.ndarray) -> tuple[float, float] | None:
    """First and last value of the longest run of consecutive True in ``mask``."""
    best, start, best_len = None, None, 0
    for i, m in enumerate(list(mask) + [False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            if i - start > best_len:
                best, best_len = (start, i - 1), i - start
            start = None
    if best is None:
        return None
    return float(values[best[0]]), float(values[best[1]])
