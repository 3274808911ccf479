"""``fit``: epochs of full-batch, stochastic or mini-batch gradient descent.

Holds ``fit``, its ``History`` and ``NonFiniteLossError``. Each epoch is one
compiled program (a ``lax.scan`` of the step over the batches), compiled once
before the first epoch.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd.base import check_int
from jgd.train.step import init, offsets_of, step_fn

__all__ = ["History", "NonFiniteLossError", "fit"]


class History(NamedTuple):
    """What ``fit`` recorded, as NumPy arrays ready to plot.

    Fields:
        loss: per epoch, the mean training loss over the epoch's samples
            (each step's batch loss weighted by its batch size; the params
            move during the epoch, so this is a running loss).
        step_loss: every step's batch loss, in order.
        grad_norm: every step's global gradient norm.
        steps_per_epoch: steps in one epoch.
        compile_time: seconds spent compiling the epoch.
        train_time: seconds spent running epochs (compile excluded).
    """

    loss: np.ndarray
    step_loss: np.ndarray
    grad_norm: np.ndarray
    steps_per_epoch: int
    compile_time: float
    train_time: float


class NonFiniteLossError(FloatingPointError):
    """``fit`` met a non-finite loss or gradient and stopped.

    Attributes:
        params: the last good params: every update before the failing step
            applied, the failing step's not.
        history: the ``History`` up to and including the failing step.
        epoch, step: where it failed (0-based; ``step`` within the epoch).
    """

    def __init__(
        self, message: str, params: Any, history: History, epoch: int, step: int
    ):
        super().__init__(message)
        self.params = params
        self.history = history
        self.epoch = epoch
        self.step = step


def _num_samples(name: str, data: Any) -> int:
    paths = jax.tree_util.tree_flatten_with_path(data)[0]
    if not paths:
        raise ValueError(f"{name}: data must hold at least one array; got {data!r}.")
    sizes = {}
    for path, x in paths:
        if np.ndim(x) == 0:
            raise ValueError(
                f"{name}: every data array needs a leading sample dimension; got a "
                f"scalar at {jax.tree_util.keystr(path) or '<root>'}."
            )
        sizes[jax.tree_util.keystr(path) or "<root>"] = np.shape(x)[0]
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(
            f"{name}: data arrays must share their leading dimension (the number "
            f"of samples); got {shown}."
        )
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError(f"{name}: data must hold at least one sample; got 0.")
    return n


def _epoch_fn(step: Callable, n: int, batch_size: int, drop_last: bool):
    """One epoch as one program: scan the full batches taken in ``order``,
    then the last partial batch (unless dropped). After a non-finite loss or
    gradient no further update is applied (``fit`` reports where); returns
    the state and every step's loss and gradient norm."""
    n_full, rest = divmod(n, batch_size)
    rest = 0 if drop_last else rest

    def guarded(carry, batch, offsets):
        state, ok = carry
        new, m = step(state, batch, offsets)
        ok = ok & jnp.isfinite(m["loss"]) & jnp.isfinite(m["grad_norm"])
        state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
        return (state, ok), (m["loss"], m["grad_norm"])

    def epoch(state, data, order, offsets):
        if batch_size == n:  # full batch: the order of the samples is moot
            (state, _), out = guarded((state, jnp.array(True)), data, offsets)
            return state, tuple(v[None] for v in out)
        take = lambda idx: jax.tree.map(lambda x: x[idx], data)
        full = order[: n_full * batch_size].reshape(n_full, batch_size)
        body = lambda c, idx: guarded(c, take(idx), offsets)
        carry, out = jax.lax.scan(body, (state, jnp.array(True)), full)
        if rest:
            carry, last = guarded(carry, take(order[n_full * batch_size :]), offsets)
            out = tuple(jnp.concatenate([a, b[None]]) for a, b in zip(out, last))
        return carry[0], out

    sizes = np.array([batch_size] * n_full + ([rest] if rest else []), np.float64)
    return epoch, sizes


@functools.partial(jax.jit, static_argnums=2)
def _epoch_order(key: jax.Array, epoch: jax.Array, n: int) -> jax.Array:
    """The order in which epoch ``epoch`` visits the ``n`` samples. Compiled
    apart from the epoch (once per ``n``, shared by every ``fit``): drawing a
    permutation is a sizeable program of its own."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), n).astype(jnp.int32)


def fit(
    loss_fn: Callable,
    params: Any,
    opt: Any,
    data: Any,
    *,
    epochs: int,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callable] | None = None,
    flat: bool = True,
) -> tuple[Any, History]:
    """Train ``params`` on ``data`` for some epochs; return them and a history.

    ``batch_size=None`` is full-batch gradient descent (one step per epoch on
    all the data), ``1`` stochastic gradient descent (one step per sample),
    ``k`` mini-batch gradient descent. Every epoch visits the samples in a new
    order drawn from ``key`` and runs as one compiled program: a ``lax.scan``
    of the step over the ``n // k`` full batches, then one step on the
    ``n % k`` left over (a smaller batch) unless ``drop_last``, which skips
    them (a different few each epoch). The program is compiled once, before
    the first epoch, and reused.

    Update (per step, see ``make_step``):
        loss, g = value_and_grad(loss_fn)(params, batch)
        params, opt_state = params + opt(g), ...

    Args:
        loss_fn: ``loss_fn(params, batch) -> scalar``; ``batch`` has the
            structure of ``data`` with a leading dimension of the batch size.
        params: the initial params pytree (not modified).
        opt: a jgd optimizer or transform, or an optax one.
        data: a pytree of arrays sharing their leading (sample) dimension,
            e.g. ``(x, y)``.
        epochs: number of passes over the data, an integer >= 0.
        batch_size: None (all samples) or an integer in [1, number of samples].
        key: a JAX random key for shuffling (default ``jax.random.key(0)``);
            the same key gives the same run.
        shuffle: visit samples in a new random order every epoch (ignored for
            full batches); False keeps the data's order.
        drop_last: skip the last ``n % batch_size`` samples of each epoch.
        progress: a tqdm bar over epochs with the running loss (also off when
            stderr is not a terminal).
        callbacks: callables ``cb(epoch, params, metrics)`` run after each
            epoch, ``metrics`` a dict of ``loss`` (float), ``step_loss`` and
            ``grad_norm`` (arrays); one returning True stops training.
        flat: flat-resident storage (default) or leaf by leaf.

    Returns:
        ``(params, history)``: the trained params pytree and a ``History``.

    Raises:
        ValueError: data with no samples, a scalar, or leading dimensions that
            disagree; ``batch_size`` larger than the data; a loss that is not
            a scalar.
        NonFiniteLossError: a step's loss or gradient is not finite. Training
            stops; the error names the epoch and step and carries the last
            good params (``err.params``: the failing step's update not
            applied) and the history so far. Inside the compiled epoch each
            update is kept only while every loss and gradient norm so far is
            finite (a select between the new and the old state, no Python);
            the host reads the epoch's losses once per epoch and raises.

    Example:
        >>> import jax, jax.numpy as jnp, jgd, jgd.train
        >>> x = jnp.arange(8.0)
        >>> loss = lambda p, xb: jnp.mean((p - xb) ** 2)
        >>> p, h = jgd.train.fit(loss, 0.0, jgd.sgd(0.1), x, epochs=3, batch_size=3,
        ...                      key=jax.random.key(1), progress=False)
        >>> h.steps_per_epoch, h.step_loss.shape, h.loss.shape
        (3, (9,), (3,))
    """
    name = "jgd.train.fit"
    check_int(name, "epochs", epochs, 0)
    n = _num_samples(name, data)
    if batch_size is None:
        batch_size = n
    check_int(name, "batch_size", batch_size, 1)
    if batch_size > n:
        raise ValueError(
            f"{name}: batch_size must be <= the number of samples ({n}); got "
            f"{batch_size}. Use batch_size=None for full batches."
        )
    key = jax.random.key(0) if key is None else key
    shuffled = shuffle and batch_size < n
    in_order = jnp.arange(n, dtype=jnp.int32)
    order = lambda e: _epoch_order(key, e, n) if shuffled else in_order
    data = jax.tree.map(jnp.asarray, data)
    state = init(params, opt, flat=flat)
    epoch, sizes = _epoch_fn(
        step_fn(loss_fn, opt, False, name), n, batch_size, drop_last
    )

    t0 = time.perf_counter()
    offsets = offsets_of(state)
    lowered = jax.jit(epoch, donate_argnums=0).lower(state, data, in_order, offsets)
    compiled = lowered.compile()
    next_order = jax.block_until_ready(order(0))  # compiles the shuffle, if new
    compile_time = time.perf_counter() - t0

    epoch_loss, step_loss, grad_norm = [], [], []
    train_time = 0.0

    def history():
        return History(
            np.asarray(epoch_loss, np.float64),
            np.concatenate(step_loss) if step_loss else np.zeros(0),
            np.concatenate(grad_norm) if grad_norm else np.zeros(0),
            len(sizes),
            compile_time,
            train_time,
        )

    from tqdm.auto import tqdm

    bar = tqdm(
        total=epochs,
        desc="fit",
        unit="epoch",
        disable=not (progress and sys.stderr.isatty()),
    )
    try:
        for e in range(epochs):
            t0 = time.perf_counter()
            state, (losses, norms) = compiled(state, data, next_order, offsets)
            if e + 1 < epochs:  # drawn while the epoch runs
                next_order = order(e + 1)
            losses, norms = np.asarray(losses), np.asarray(norms)
            train_time += time.perf_counter() - t0
            bad = ~(np.isfinite(losses) & np.isfinite(norms))
            if bad.any():
                k = int(np.argmax(bad))
                step_loss.append(losses[: k + 1])
                grad_norm.append(norms[: k + 1])
                what = "loss" if not np.isfinite(losses[k]) else "gradient norm"
                value = losses[k] if what == "loss" else norms[k]
                raise NonFiniteLossError(
                    f"{name}: non-finite {what} ({value}) in epoch {e}, step {k} "
                    f"(0-based; global step {e * len(sizes) + k}). Training stopped; "
                    "the error's .params hold the params before that step and "
                    ".history the losses so far. Try a smaller learning rate.",
                    state.params,
                    history(),
                    e,
                    k,
                )
            epoch_loss.append(float(np.dot(losses, sizes) / sizes.sum()))
            step_loss.append(losses)
            grad_norm.append(norms)
            bar.update(1)
            bar.set_postfix(loss=f"{epoch_loss[-1]:.4g}")
            if callbacks:
                metrics = {
                    "loss": epoch_loss[-1],
                    "step_loss": losses,
                    "grad_norm": norms,
                }
                p = state.params
                stops = [bool(cb(e, p, metrics)) for cb in callbacks]  # run them all
                if any(stops):
                    break
    finally:
        bar.close()
    return state.params, history()
