"""Training: the loop of the tutorials as one compiled program.

Holds ``TrainState`` (params, optimizer state and step count, a pytree),
``init``, ``make_step`` (a compiled, donating ``(state, batch) -> (state,
metrics)``), ``fit`` (epochs of full-batch, stochastic or mini-batch gradient
descent, each epoch one compiled ``lax.scan``), ``History``,
``NonFiniteLossError`` and ``Layout`` (how params are packed).

**Flat-resident storage.** By default (``flat=True``) a ``TrainState`` keeps
the params and the optimizer state as a few contiguous 1-D buffers, one per
*bucket*, instead of one buffer per leaf. A bucket holds every leaf of one
dtype that carries the same labels, where the labels are what the optimizer
needs to tell leaves apart: for each weight-decay ``mask`` in the optimizer
(``jgd.adamw(mask=...)``, ``jgd.add_decayed_weights(mask=...)``), whether the
leaf is decayed. Inside the compiled step the loss function still receives
the user's pytree (rebuilt by slicing the buckets), its gradients are packed
into buckets the same way, and the optimizer runs over a handful of large
leaves. The arithmetic is the same element by element, so the results equal
the leaf-by-leaf path (``flat=False``) up to the order of the sums in global
norms; what changes is that JAX handles a few buffers at the ``jit`` boundary
instead of thousands. ``state.params`` and ``state.opt_state`` give the
user's trees back.

Transforms work flat when their math is element-wise or global (all of jgd's:
momentum, RMSprop, AdaGrad, Adam, clipping, global-norm clipping, masked
weight decay). An optax transform inside a jgd chain works flat when it is
element-wise too; optax transforms that need leaf boundaries (per-layer norms
or trust ratios, optax masks and ``multi_transform`` labels over the user's
tree) need ``flat=False``.

Example:
    >>> import jax.numpy as jnp, jgd, jgd.train
    >>> loss = lambda p, batch: jnp.mean((batch[0] * p["w"] + p["b"] - batch[1]) ** 2)
    >>> x = jnp.linspace(-1.0, 1.0, 32)
    >>> params, history = jgd.train.fit(loss, {"w": 0.0, "b": 0.0}, jgd.gd(0.5),
    ...                                 (x, 3.0 * x + 1.0), epochs=100)
    >>> print(f"{float(params['w']):.3f} {float(params['b']):.3f}")
    3.000 1.000
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import apply_updates, check_int, register, static_field
from jgd.optimizers import Optimizer
from jgd.transforms import AddDecayedWeights

__all__ = [
    "History",
    "Layout",
    "NonFiniteLossError",
    "TrainState",
    "fit",
    "init",
    "make_step",
]


# --------------------------------------------------------------------------
# The layout: where each leaf lives in the buckets.
# --------------------------------------------------------------------------


class Bucket(NamedTuple):
    """One contiguous buffer: its name (the key in ``stored_params``), dtype,
    number of elements, and the labels its leaves share."""

    name: str
    dtype: np.dtype
    size: int
    labels: tuple[bool, ...]


class Slot(NamedTuple):
    """Where one user leaf lives: bucket name, offset, size and shape."""

    bucket: str
    offset: int
    size: int
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a params pytree is packed into buckets (static, hashable).

    ``slots[i]`` places leaf ``i`` of ``treedef``; ``buckets`` are keyed by
    (dtype, labels) in the order their first leaf appears. A transform that
    needs leaf boundaries inside a bucket reads them from ``slots``.
    """

    treedef: Any
    buckets: tuple[Bucket, ...]
    slots: tuple[Slot, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.buckets)

    def pack(self, leaves: Sequence[jax.Array]) -> dict[str, jax.Array]:
        """The leaves (in ``treedef`` order) concatenated into buckets."""
        parts: dict[str, list] = {b.name: [] for b in self.buckets}
        for slot, x in zip(self.slots, leaves, strict=True):
            parts[slot.bucket].append(jnp.reshape(x, (-1,)))
        return {
            b.name: jnp.concatenate(parts[b.name]).astype(b.dtype) for b in self.buckets
        }

    def unpack(
        self, buffers: dict[str, jax.Array], offsets: Sequence | None = None
    ) -> Any:
        """The user's pytree, each leaf sliced out of its bucket and reshaped.

        The leaves keep the buffers' dtype, so an optimizer state held in
        another dtype (``mu_dtype``) unpacks too. Inside a compiled program,
        pass ``offsets()`` as an argument of that program: each leaf is then
        cut at a runtime offset, so XLA compiles one kernel per distinct leaf
        computation instead of one per leaf (a constant offset makes every
        slice, and every kernel it fuses into, unique: about 10 ms of
        compile time each on CPU).
        """
        if offsets is None:
            offsets = [s.offset for s in self.slots]
        leaves = [
            jax.lax.dynamic_slice(buffers[s.bucket], (o,), (s.size,)).reshape(s.shape)
            for s, o in zip(self.slots, offsets, strict=True)
        ]
        return self.treedef.unflatten(leaves)

    def offsets(self) -> tuple[jax.Array, ...]:
        """Each leaf's offset as an int32 scalar array (cached per layout)."""
        return _offsets(self)

    def is_buffers(self, x: Any) -> bool:
        """True for a dict of this layout's buckets (params, or a moment)."""
        return (
            type(x) is dict
            and x.keys() == set(self.names)
            and all(np.shape(x[b.name]) == (b.size,) for b in self.buckets)
        )


@functools.lru_cache(maxsize=64)
def _offsets(layout: Layout) -> tuple[jax.Array, ...]:
    return tuple(jnp.asarray(s.offset, jnp.int32) for s in layout.slots)


_unpack_jit = jax.jit(Layout.unpack, static_argnums=0)
_pack_jit = jax.jit(Layout.pack, static_argnums=0)


def _unpack_now(layout: Layout, buffers: dict[str, jax.Array]) -> Any:
    """Unpack outside a step: fresh arrays, compiled once per layout."""
    return _unpack_jit(layout, buffers, layout.offsets())


def _find_masked_decays(opt: Any) -> list[AddDecayedWeights]:
    found: list[AddDecayedWeights] = []

    def visit(node):
        found.append(node)
        return node

    _rewrite_masked_decays(opt, visit)
    return found


def _rewrite_masked_decays(opt: Any, fn: Callable) -> Any:
    """``opt`` with every ``AddDecayedWeights`` that has a mask replaced by
    ``fn(node)``, in a fixed order. jgd optimizers are expanded into their
    ``recipe()`` (their state is the recipe's state, so nothing changes)."""

    def is_node(x):
        return isinstance(x, (AddDecayedWeights, Optimizer))

    def go(x):
        if isinstance(x, Optimizer):
            return _rewrite_masked_decays(x.recipe(), fn)
        if isinstance(x, AddDecayedWeights) and x.mask is not None:
            return fn(x)
        return x

    return jax.tree.map(go, opt, is_leaf=is_node)


def _decay_labels(name: str, node: AddDecayedWeights, params: Any) -> list[bool]:
    """One bool per params leaf: is it decayed by this masked node?"""
    mask = node.mask(params) if callable(node.mask) else node.mask
    try:
        per_leaf = jax.tree.map(
            lambda m, sub: jax.tree.map(lambda _: m, sub), mask, params
        )
    except (ValueError, TypeError) as e:
        raise TypeError(
            f"{name}: the weight-decay mask must be a tree of bools shaped like the "
            f"params tree (or a prefix of it); got {jax.tree.structure(mask)} for "
            f"params {jax.tree.structure(params)}."
        ) from e
    paths = jax.tree_util.tree_flatten_with_path(per_leaf)[0]
    labels = []
    for path, m in paths:
        if np.ndim(m) != 0 or isinstance(m, jax.core.Tracer):
            raise ValueError(
                f"{name}: with flat=True a weight-decay mask needs one concrete bool "
                f"per params leaf; got {m!r} at {jax.tree_util.keystr(path)}. Use "
                "flat=False for element-wise masks."
            )
        labels.append(bool(m))
    return labels


def _make_layout(name: str, leaves: list, treedef: Any, opt: Any) -> Layout:
    params = treedef.unflatten(leaves)
    per_node = [_decay_labels(name, n, params) for n in _find_masked_decays(opt)]
    keys: dict[tuple, list[int]] = {}
    for i, x in enumerate(leaves):
        key = (np.dtype(x.dtype), tuple(labels[i] for labels in per_node))
        keys.setdefault(key, []).append(i)
    buckets, slots = [], [None] * len(leaves)
    for (dtype, labels), members in keys.items():
        bname = dtype.name
        if labels:
            bname += "/mask=" + "".join("1" if b else "0" for b in labels)
        offset = 0
        for i in members:
            size = math.prod(leaves[i].shape)
            slots[i] = Slot(bname, offset, size, tuple(leaves[i].shape))
            offset += size
        buckets.append(Bucket(bname, dtype, offset, labels))
    return Layout(treedef, tuple(buckets), tuple(slots))


def _flat_optimizer(opt: Any, layout: Layout) -> Any:
    """``opt`` acting on ``layout``'s buckets: each weight-decay mask over the
    params becomes the same mask over the buckets (one bool per bucket)."""
    count = iter(range(len(layout.buckets[0].labels) if layout.buckets else 0))

    def swap(node):
        i = next(count, None)
        if i is None:
            raise TypeError(
                "jgd.train.make_step: the optimizer has more weight-decay masks than "
                "the one given to jgd.train.init; pass the same optimizer to both."
            )
        return node.replace(mask={b.name: b.labels[i] for b in layout.buckets})

    flat_opt = _rewrite_masked_decays(opt, swap)
    if next(count, None) is not None:
        raise TypeError(
            "jgd.train.make_step: the optimizer has fewer weight-decay masks than "
            "the one given to jgd.train.init; pass the same optimizer to both."
        )
    return flat_opt


# --------------------------------------------------------------------------
# The state and the step.
# --------------------------------------------------------------------------


@register
class TrainState:
    """Params, optimizer state and step count: a pytree that ``jit`` traces
    and donates.

    Fields:
        stored_params: with a layout, a dict of 1-D buckets (``Layout.pack``);
            without (``flat=False``), the user's params pytree.
        stored_opt_state: the optimizer's state over ``stored_params``.
        step: int32 scalar, the number of steps taken.
        layout: the static ``Layout``, or None for leaf-by-leaf storage.

    ``state.params`` and ``state.opt_state`` give the user's trees (fresh
    arrays, safe to keep after the next donating step): the optimizer state
    has the same structure as ``opt.init(params)``, each bucket dict
    unpacked into a params-shaped tree.
    """

    stored_params: Any
    stored_opt_state: Any
    step: jax.Array
    layout: Layout | None = static_field(None)

    @property
    def params(self) -> Any:
        if self.layout is None:
            return jax.tree.map(jnp.copy, self.stored_params)
        return _unpack_now(self.layout, self.stored_params)

    @property
    def opt_state(self) -> Any:
        layout = self.layout
        if layout is None:
            return jax.tree.map(jnp.copy, self.stored_opt_state)
        return jax.tree.map(
            lambda x: _unpack_now(layout, x) if layout.is_buffers(x) else jnp.copy(x),
            self.stored_opt_state,
            is_leaf=layout.is_buffers,
        )


def init(params: Any, opt: Any, *, flat: bool = True) -> TrainState:
    """Start training ``params`` with the optimizer ``opt``.

    Args:
        params: a pytree of floating-point arrays (Python floats become
            float32 arrays; dtypes are kept, so bf16 stays bf16).
        opt: a jgd optimizer or transform, or an optax ``GradientTransformation``.
        flat: store params and optimizer state as one buffer per bucket
            (default, see the module docstring) or leaf by leaf.

    Returns:
        A ``TrainState`` at step 0. It owns its buffers (the user's arrays are
        never donated).

    Raises:
        TypeError: a non-floating params leaf; a weight-decay mask that does
            not match the params tree.
        ValueError: with ``flat=True``, a mask that is not one bool per leaf.

    Example:
        >>> import jax.numpy as jnp, jgd, jgd.train
        >>> state = jgd.train.init({"w": jnp.zeros(3), "b": 0.0}, jgd.adam(1e-3))
        >>> state.layout.names, state.stored_params["float32"].shape
        (('float32',), (4,))
    """
    name = "jgd.train.init"
    leaves, treedef = jax.tree.flatten(params)
    arrays = []
    for path, x in jax.tree_util.tree_flatten_with_path(params)[0]:
        a = jnp.asarray(x)
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(
                f"{name}: params must be floating-point arrays; got dtype {a.dtype} "
                f"at {jax.tree_util.keystr(path)}."
            )
        arrays.append(jnp.asarray(a, dtype=a.dtype))  # drop weak types
    if flat:
        layout = _make_layout(name, arrays, treedef, opt)
        stored = _pack_jit(layout, arrays)
        tx = _flat_optimizer(opt, layout)
    else:
        layout, stored, tx = None, treedef.unflatten(arrays), opt
    opt_state = tx.init(stored)
    # A donating step must not free the caller's arrays: copy any that the
    # state would otherwise share with them.
    theirs = {id(x) for x in leaves}
    own = lambda x: jnp.copy(x) if id(x) in theirs else x
    stored, opt_state = jax.tree.map(own, (stored, opt_state))
    return TrainState(stored, opt_state, jnp.zeros([], jnp.int32), layout)


def _loss_and_aux(name: str, out: Any, has_aux: bool) -> tuple[jax.Array, Any]:
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"{name}: with has_aux=True, loss_fn must return (loss, aux); got "
                f"{type(out).__name__}."
            )
        loss, aux = out
    else:
        if isinstance(out, tuple):
            raise TypeError(
                f"{name}: loss_fn must return a scalar loss; got a tuple of "
                f"{len(out)}. If it returns (loss, aux), pass has_aux=True."
            )
        loss, aux = out, None
    shape, dtype = np.shape(loss), getattr(loss, "dtype", None)
    if shape != ():
        raise ValueError(
            f"{name}: loss_fn must return a scalar loss; got shape {shape}. "
            "Reduce it over the batch (jnp.mean or jnp.sum)."
        )
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name}: loss_fn must return a floating-point scalar; got {loss!r}."
        )
    return loss, aux


def _step_fn(loss_fn: Callable, opt: Any, has_aux: bool, name: str) -> Callable:
    """The step as a pure function (``make_step`` compiles it, ``fit`` scans
    it)."""

    def step(state: TrainState, batch: Any, offsets: tuple):
        layout = state.layout
        if layout is None:
            params, tx = state.stored_params, opt
        else:
            params = layout.unpack(state.stored_params, offsets)
            tx = _flat_optimizer(opt, layout)

        def loss_of(p):
            return _loss_and_aux(name, loss_fn(p, batch), has_aux)

        (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        if layout is not None:
            grads = layout.pack(jax.tree.leaves(grads))
        updates, opt_state = tx.update(
            grads, state.stored_opt_state, state.stored_params
        )
        new_params = apply_updates(state.stored_params, updates)
        new = TrainState(new_params, opt_state, tree.safe_increment(state.step), layout)
        metrics = {"loss": loss, "grad_norm": tree.global_norm(grads)}
        if has_aux:
            metrics["aux"] = aux
        return new, metrics

    return step


def make_step(loss_fn: Callable, opt: Any, *, has_aux: bool = False) -> Callable:
    """A compiled training step ``(state, batch) -> (state, metrics)``.

    Update:
        loss, g = value_and_grad(loss_fn)(params, batch)
        u, opt_state = opt.update(g, opt_state, params)
        params = params + u
        step = step + 1

    The step works on flat and leaf-by-leaf states alike (the layout is part
    of the state); it donates the old state, so use only the returned one.

    Args:
        loss_fn: ``loss_fn(params, batch) -> scalar`` (or ``(scalar, aux)``
            with ``has_aux``); ``params`` is the user's pytree, ``batch``
            whatever the step is given.
        opt: the optimizer given to ``init``.
        has_aux: ``loss_fn`` returns ``(loss, aux)``; aux goes into metrics.

    Returns:
        The jitted step. ``metrics`` holds ``loss``, ``grad_norm`` (the global
        l2 norm of the gradients) and ``aux`` when ``has_aux``.

    Raises:
        ValueError: (on the first call) the loss is not a scalar.
        TypeError: (on the first call) the loss is not floating point, or a
            tuple without ``has_aux``.

    Example:
        >>> import jax.numpy as jnp, jgd, jgd.train
        >>> loss = lambda p, batch: jnp.sum((p - batch) ** 2)
        >>> opt = jgd.gd(0.25)
        >>> state = jgd.train.init(jnp.zeros(2), opt)
        >>> step = jgd.train.make_step(loss, opt)
        >>> state, metrics = step(state, jnp.array([1.0, 2.0]))
        >>> state.params, metrics["loss"]
        (Array([0.5, 1. ], dtype=float32), Array(5., dtype=float32))
    """
    return _Step(_step_fn(loss_fn, opt, has_aux, "jgd.train.make_step"))


def _offsets_of(state: TrainState) -> tuple:
    return () if state.layout is None else state.layout.offsets()


class _Step:
    """A jitted step that passes the layout's leaf offsets as arguments (see
    ``Layout.unpack``)."""

    def __init__(self, fn: Callable):
        self._jit = jax.jit(fn, donate_argnums=0)

    def __call__(self, state: TrainState, batch: Any):
        return self._jit(state, batch, _offsets_of(state))

    def lower(self, state: TrainState, batch: Any) -> _Bound:
        """Ahead-of-time lowering, as ``jax.jit(f).lower``: ``.compile()``
        gives a callable ``(state, batch)``; other attributes (``as_text``,
        ``memory_analysis``, ...) are jax's."""
        offsets = _offsets_of(state)
        return _Bound(self._jit.lower(state, batch, offsets), offsets)


class _Bound:
    """A jax ``Lowered`` or ``Compiled`` step with its offsets argument bound."""

    def __init__(self, inner: Any, offsets: tuple):
        self._inner, self._offsets = inner, offsets

    def compile(self, *args, **kwargs) -> _Bound:
        return _Bound(self._inner.compile(*args, **kwargs), self._offsets)

    def __call__(self, state: TrainState, batch: Any):
        return self._inner(state, batch, self._offsets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# --------------------------------------------------------------------------
# fit: epochs of compiled scans.
# --------------------------------------------------------------------------


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
    """One epoch as one program: scan the full batches taken in ``order``, then
    the last partial batch (unless dropped). After a non-finite loss or gradient, no
    further update is applied (``fit`` reports where)."""
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
            applied) and the history so far. Checked once per epoch, at no
            cost per step.

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
        _step_fn(loss_fn, opt, False, name), n, batch_size, drop_last
    )

    t0 = time.perf_counter()
    offsets = _offsets_of(state)
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
