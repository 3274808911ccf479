"""``fit``: epochs of full-batch, stochastic or mini-batch gradient descent.

Holds ``fit``, its ``History`` and ``NonFiniteLossError``. Each epoch is one
compiled program (a ``lax.scan`` of the step over the batches), compiled once
before the first epoch.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd.base import check_int
from jgd.train.state import init
from jgd.train.step import default_compiler_options, step_fn

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
        compile_time: seconds spent compiling the epoch (0.0 when an earlier
            ``fit`` of the same loss and shapes compiled it).
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

    def epoch(state, opt, data, order, offsets):
        def guarded(carry, batch):
            state, ok = carry
            new, m = step(state, opt, batch, offsets)
            ok = ok & jnp.isfinite(m["loss"]) & jnp.isfinite(m["grad_norm"])
            state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)
            return (state, ok), (m["loss"], m["grad_norm"])

        if batch_size == n:  # full batch: the order of the samples is moot
            (state, _), out = guarded((state, jnp.array(True)), data)
            return state, tuple(v[None] for v in out)
        take = lambda idx: jax.tree.map(lambda x: x[idx], data)
        full = order[: n_full * batch_size].reshape(n_full, batch_size)
        body = lambda c, idx: guarded(c, take(idx))
        carry, out = jax.lax.scan(body, (state, jnp.array(True)), full)
        if rest:
            carry, last = guarded(carry, take(order[n_full * batch_size :]))
            out = tuple(jnp.concatenate([a, b[None]]) for a, b in zip(out, last))
        return carry[0], out

    return epoch


def _batch_sizes(n: int, batch_size: int, drop_last: bool) -> np.ndarray:
    """The size of each batch of an epoch, in order."""
    n_full, rest = divmod(n, batch_size)
    rest = 0 if drop_last else rest
    return np.array([batch_size] * n_full + ([rest] if rest else []), np.float64)


# Compiled epochs, kept across fit calls: per loss function, per epoch shape,
# per abstract signature of the arguments. The optimizer is an argument, so a
# new learning rate finds its epoch here instead of compiling one.
_EPOCHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_KEEP = 8  # compiled epochs kept per loss function


def _signature(args: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(args)

    def abstract(x):
        if isinstance(x, jax.Array):
            return (x.shape, x.dtype, x.weak_type, x.sharding)
        return (type(x), np.shape(x), getattr(x, "dtype", None))

    return treedef, tuple(map(abstract, leaves))


def _compiled_epoch(loss_fn, key: tuple, make: Callable, args: tuple):
    """The compiled epoch for ``args`` and the seconds spent compiling it (0
    when an earlier ``fit`` compiled it)."""
    try:
        cache = _EPOCHS.setdefault(loss_fn, {})
    except TypeError:  # not weakly referenceable: compile every time
        cache = {}
    full_key = (key, _signature(args))
    if full_key in cache:
        cache[full_key] = cache.pop(full_key)  # most recently used last
        return cache[full_key], 0.0
    t0 = time.perf_counter()
    compiled = jax.jit(make()).lower(*args).compile(default_compiler_options() or None)
    cache[full_key] = compiled
    while len(cache) > _KEEP:
        cache.pop(next(iter(cache)))
    return compiled, time.perf_counter() - t0


# fit's progress says "compiling" once a compile has lasted this long, and how
# long it took after.
COMPILE_NOTICE_S = 3.0


def _show_progress(progress: bool) -> bool:
    """A bar on a terminal, or a widget in a notebook (where stderr is no tty)."""
    if not progress:
        return False
    from tqdm import autonotebook, std

    return sys.stderr.isatty() or autonotebook.tqdm is not std.tqdm


class _CompileNotice:
    """Tell the user about a slow compile: a line on stderr after
    ``COMPILE_NOTICE_S`` seconds, and another with the time once done."""

    def __init__(self, show: bool, name: str):
        self.name, self.t0 = name, time.perf_counter()
        self.timer = threading.Timer(
            COMPILE_NOTICE_S, self._say, ["compiling the epoch…"]
        )
        self.timer.daemon = True
        if show:
            self.timer.start()

    def _say(self, what: str) -> None:
        print(f"{self.name}: {what}", file=sys.stderr, flush=True)

    def done(self) -> None:
        self.timer.cancel()
        seconds = time.perf_counter() - self.t0
        if self.timer.ident is not None and seconds > COMPILE_NOTICE_S:  # started
            self._say(f"compiled the epoch in {seconds:.1f} s")


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
    flat: bool | None = None,
) -> tuple[Any, History]:
    """Train ``params`` on ``data`` for some epochs; return them and a history.

    ``batch_size=None`` is full-batch gradient descent (one step per epoch on
    all the data), ``1`` stochastic gradient descent (one step per sample),
    ``k`` mini-batch gradient descent. Every epoch visits the samples in a new
    order drawn from ``key`` and runs as one compiled program: a ``lax.scan``
    of the step over the ``n // k`` full batches, then one step on the
    ``n % k`` left over (a smaller batch) unless ``drop_last``, which skips
    them (a different few each epoch). The program is compiled once, before
    the first epoch, and kept: a later ``fit`` with the same ``loss_fn``,
    shapes and optimizer structure reuses it, whatever the hyperparameters'
    values (the optimizer is an argument of the program).

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
        progress: a tqdm bar over epochs with the running loss (``tqdm.auto``:
            a widget in notebooks; off when stderr is not a terminal
            outside a notebook), and a line on stderr when compiling the
            epoch takes over ``COMPILE_NOTICE_S`` (3) seconds.
        callbacks: callables ``cb(epoch, params, metrics)`` run after each
            epoch, ``metrics`` a dict of ``loss`` (float), ``step_loss`` and
            ``grad_norm`` (arrays); one returning True stops training.
        flat: how the state stores the params, as in ``jgd.train.init``:
            None (default) packs small leaves where packing pays and stores
            optimizers that need leaf boundaries leaf by leaf.

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
        BaseException: anything else that stops an epoch (an interrupt, a
            failure while it runs) is raised with ``.params`` (after the last
            completed epoch: epochs run on a copy, never on the only one) and
            ``.history`` attached.

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
    state = init(params, opt, flat=flat)  # its layout is made for opt
    carry, opt = state.replace(opt=None), state.opt
    offsets = state.layout.offsets()

    def make():
        step = step_fn(loss_fn, False, name, grad_norm=True)
        return _epoch_fn(step, n, batch_size, drop_last)

    sizes = _batch_sizes(n, batch_size, drop_last)
    show = _show_progress(progress)
    notice = _CompileNotice(show, name)
    t0 = time.perf_counter()
    try:
        compiled, compile_time = _compiled_epoch(
            loss_fn,
            (n, batch_size, drop_last),
            make,
            (carry, opt, data, in_order, offsets),
        )
        next_order = jax.block_until_ready(order(0))  # compiles the shuffle, if new
    except BaseException:
        notice.timer.cancel()
        raise
    compile_time = time.perf_counter() - t0 if compile_time else 0.0
    notice.done()

    epoch_loss: list[float] = []
    step_loss: list[np.ndarray] = []
    grad_norm: list[np.ndarray] = []
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
        disable=not show,
    )
    try:
        for e in range(epochs):
            t0 = time.perf_counter()
            # Not donated: until the epoch has run, ``carry`` is the last
            # good state, whatever happens to the epoch.
            new, (losses, norms) = compiled(carry, opt, data, next_order, offsets)
            if e + 1 < epochs:  # drawn while the epoch runs
                next_order = order(e + 1)
            losses, norms = np.asarray(losses), np.asarray(norms)
            carry = new
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
                    carry.replace(opt=opt).params,
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
                p = carry.replace(opt=opt).params
                stops = [bool(cb(e, p, metrics)) for cb in callbacks]  # run them all
                if any(stops):
                    break
    except NonFiniteLossError:
        raise
    except BaseException as err:  # an interrupt, or the epoch failed to run
        _keep_last_good(err, carry.replace(opt=opt), history())
        raise
    finally:
        bar.close()
    return carry.replace(opt=opt).params, history()


def _keep_last_good(err: BaseException, state: Any, history: History) -> None:
    """Hand the last good params to whoever catches ``err``."""
    try:
        vars(err).update(params=state.params, history=history)
    except TypeError:  # a class that takes no attributes
        return
    err.add_note(
        "jgd.train.fit: the params after the last completed epoch are in this "
        "error's .params, the history so far in .history."
    )
