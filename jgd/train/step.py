"""The compiled step.

Holds ``step_fn``, the step as a pure function of a ``TrainState`` without
its optimizer (``fit`` scans it), and ``make_step``, which compiles it. The
optimizer travels in the state as an argument of the compiled step, so a
new learning rate is a new value, not a new program.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import Transform, apply_updates
from jgd.train.layout import Layout, leaf_labels, needs_leaves
from jgd.train.state import TrainState, check_alive
from jgd.transforms.nonfinite import LeafFlags

__all__ = ["COMPILER_OPTIONS", "GRAD_BUFFER_MIN_BYTES", "make_step"]

# XLA:CPU copies a donated param that the backward pass still reads before
# updating it in place; region-based live-range analysis (on by default for
# TPU, off for CPU) proves the read comes first and drops the copy.
COMPILER_OPTIONS = {"cpu": {"xla_cpu_copy_insertion_use_region_analysis": True}}

# XLA:CPU allocates a step's temporaries afresh on every call, and glibc maps
# any block over 32 MiB anew, so each step faults its pages in again. A
# gradient this big is written into the last one's donated buffers instead.
GRAD_BUFFER_MIN_BYTES = 32 * 2**20


def default_compiler_options() -> dict[str, Any]:
    """``COMPILER_OPTIONS`` for jax's default backend."""
    return dict(COMPILER_OPTIONS.get(jax.default_backend(), {}))


# Whether no jax transformation is tracing: jax has no public test. Without
# this one, compiler options are never applied (XLA's defaults, same numbers).
try:
    from jax._src.core import trace_state_clean as _top_level
except ImportError:

    def _top_level() -> bool:
        return False


def check_opt(name: str, state: TrainState) -> None:
    """The state's optimizer must fit its layout: packed buckets only for
    optimizers that need no leaf boundaries, split by the same masks."""
    layout, opt = state.layout, state.opt
    if not isinstance(layout, Layout):
        return
    culprit = needs_leaves(opt)
    if culprit is not None:
        raise ValueError(
            f"{name}: {culprit} needs leaf boundaries, but this state packs the "
            "params into buckets; start from jgd.train.init(state.params, opt)."
        )
    shapes = [jax.ShapeDtypeStruct(s.shape, jnp.float32) for s in layout.slots]
    labels = dict(layout.labels)
    want = [labels[s.bucket] for s in layout.slots]
    if leaf_labels(name, opt, layout.treedef.unflatten(shapes)) != want:
        raise ValueError(
            f"{name}: the optimizer's weight-decay mask groups the leaves "
            "differently from the one this state was made with; start from "
            "jgd.train.init(state.params, opt)."
        )


def _to_device(x: Any) -> Any:
    """A Python float or int hyperparameter as the weakly typed array jit
    would make of it (the same compiled program), made once."""
    return jnp.asarray(x) if type(x) in (float, int) else x


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
            fix = (
                "pass has_aux=True"
                if name == "jgd.train.make_step"
                else "pass lambda p, b: loss_fn(p, b)[0]"
            )
            raise TypeError(
                f"{name}: loss_fn must return a scalar loss; got a tuple of "
                f"{len(out)}. If it returns (loss, aux), {fix}."
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


def step_fn(
    loss_fn: Callable,
    has_aux: bool,
    name: str,
    grad_norm: bool,
    skip_nonfinite: bool = False,
    grads_out: bool = False,
) -> Callable:
    """The step as a pure function ``(state, opt, batch, offsets) -> (state,
    metrics)`` of a state without its optimizer (``make_step`` compiles it,
    ``fit`` scans it). With ``grads_out`` it is ``(state, opt, batch,
    offsets, buffer) -> (state, grads, metrics)``: ``buffer``, unread, is
    there to be donated, so XLA writes the gradient into its memory."""

    def step(state: TrainState, opt: Any, batch: Any, offsets: Any, *buffer: Any):
        layout = state.layout
        params = layout.view(state.stored_params, offsets)

        def loss_of(p):
            return _loss_and_aux(name, loss_fn(p, batch), has_aux)

        (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        # On the user's tree, before packing, so the record names its paths.
        bad = LeafFlags.nonfinite(grads) if skip_nonfinite else None
        grads = layout.gather(grads, like=state.stored_params)

        def value_fn(stored):  # the loss at other params, in the stored form
            return loss_of(layout.view(stored, offsets))[0]

        # optax's extra arguments (line searches, Polyak and MoMo steps read
        # them); transforms that take none never see them.
        extra = {"value": loss, "grad": grads, "value_fn": value_fn}
        if wants_obj_fn(opt):
            extra["obj_fn"] = value_fn  # Sophia's Hutchinson estimator
        updates, opt_state = layout.optimizer(opt).update(
            grads, state.stored_opt_state, state.stored_params, **extra
        )
        new_params = apply_updates(state.stored_params, updates)
        count = tree.safe_increment(state.step)
        metrics = {"loss": loss}
        if bad is not None:  # a select, so a skipped step keeps every bit
            ok = jnp.isfinite(loss) & ~jnp.any(bad.flags)
            new_params, opt_state, count = jax.tree.map(
                lambda n, o: jnp.where(ok, n, o),
                (new_params, opt_state, count),
                (state.stored_params, state.stored_opt_state, state.step),
            )
            metrics.update(skipped=~ok, nonfinite=bad)
        new_params, opt_state = layout.pin((new_params, opt_state))
        new = TrainState(new_params, opt_state, count, None, layout)
        if grad_norm:
            metrics["grad_norm"] = tree.global_norm(grads)
        if has_aux:
            metrics["aux"] = aux
        if grads_out:  # before the metrics, so a scalar loss takes no buffer
            return new, layout.pin(grads), metrics
        return new, metrics

    return step


def wants_obj_fn(opt: Any) -> bool:
    """Whether a jgd transform inside ``opt`` names ``obj_fn`` in its update
    (Sophia's default estimator). Only those get it: optax's line searches
    forward every extra keyword to their ``value_fn``, which refuses it."""
    seen: list = [opt]
    while seen:
        node = seen.pop()
        if isinstance(node, (list, tuple)):
            seen.extend(node)
        elif isinstance(node, dict):
            seen.extend(node.values())
        elif isinstance(node, Transform):
            if "obj_fn" in inspect.signature(type(node).update).parameters:
                return True
            seen.extend(getattr(node, f.name) for f in dataclasses.fields(node))  # type: ignore[arg-type]  # a registered dataclass
    return False


def make_step(
    loss_fn: Callable,
    *args: Any,
    has_aux: bool = False,
    grad_norm: bool = False,
    donate: bool = True,
    skip_nonfinite: bool = False,
    compiler_options: dict[str, Any] | None = None,
    grad_buffer: bool | None = None,
) -> Callable:
    """A compiled training step ``(state, batch) -> (state, metrics)``.

    Update:
        loss, g = value_and_grad(loss_fn)(params, batch)
        u, opt_state = state.opt.update(g, opt_state, params,
                                        value=loss, grad=g, value_fn=f)
        params = params + u
        step = step + 1
    (with ``skip_nonfinite``, all three only where loss and g are finite),
    where f(p) = loss_fn(p, batch): optax's extra arguments, for line searches
    (lbfgs) and methods that read the loss (polyak_sgd, momo). ``obj_fn=f``
    goes only to optimizers holding a jgd transform whose update names it
    (Sophia's Hutchinson estimator): optax's line searches refuse keyword
    arguments their value_fn does not take. Transforms that take no extra
    arguments are called without them.

    The optimizer comes from the state (``jgd.train.init(params, opt)``), as
    an argument of the compiled program: a state whose optimizer has another
    learning rate, ``b1`` or schedule value reuses the compiled step.

    Args:
        loss_fn: ``loss_fn(params, batch) -> scalar`` (or ``(scalar, aux)``
            with ``has_aux``); ``params`` is the user's pytree, ``batch``
            whatever the step is given.
        has_aux: ``loss_fn`` returns ``(loss, aux)``; aux goes into metrics.
        grad_norm: also return the gradient's global l2 norm. It costs one
            more read of the gradient (on CPU, XLA's reduction loops make that
            about a tenth of a 20M-param MLP's step), unless the optimizer
            computes it anyway (``clip_by_global_norm``, the fused Adam).
        donate: the step donates the old state's buffers (default), so its
            params and optimizer state are updated in place; use only the
            returned state. A state passed again raises a ValueError. If the
            step fails while running, the donated state is gone with it (a
            ValueError says so, raised from the failure): keep a copy
            (``jax.tree.map(jnp.copy, state)``) or pass ``donate=False``
            (twice the memory) where you must recover.
        skip_nonfinite: skip a step whose loss or gradient holds a NaN or an
            Inf: params, optimizer state and ``state.step`` stay as they were,
            bit for bit (a select on the device: no host sync, no retry).
            ``metrics["skipped"]`` says so (a bool scalar) and
            ``metrics["nonfinite"]`` records which gradient leaves held one
            (``jgd.nonfinite_paths(metrics)`` lists their paths). Default
            False: the step then has no such check. For a limit on how many
            steps in a row to skip, wrap the optimizer in
            ``jgd.apply_if_finite`` instead.
        compiler_options: XLA options for the step when it is called at top
            level (not inside another ``jit``, ``vmap`` or ``grad``, where the
            outer program's options hold). None (default) takes
            ``jgd.train.COMPILER_OPTIONS`` for the default backend: on CPU,
            region-based copy insertion, which drops XLA's copy of each
            donated param read by the backward pass (same numbers, bit for
            bit). ``{}`` compiles with XLA's defaults.
        grad_buffer: keep the last gradient's buffers in the step and have
            the next call (at top level, donating) write its gradient there.
            None (default) does so on CPU when the params hold at least
            ``jgd.train.GRAD_BUFFER_MIN_BYTES``: XLA:CPU would otherwise
            allocate and page in that much fresh memory every step. It holds
            one more copy of the params between steps; ``False`` never keeps
            one, ``True`` always does.

    Returns:
        The jitted step (``step.lower(state, batch).compile()`` compiles it
        ahead of time). ``metrics`` holds ``loss``, and ``grad_norm``,
        ``aux``, ``skipped`` and ``nonfinite`` when asked for.

    Raises:
        ValueError: (on the first call) the loss is not a scalar; a donated
            state; a state whose optimizer no longer fits its layout.
        TypeError: (on the first call) the loss is not floating point, or a
            tuple without ``has_aux``; an optimizer passed here.

    Example:
        >>> import jax.numpy as jnp, jgd, jgd.train
        >>> loss = lambda p, batch: jnp.sum((p - batch) ** 2)
        >>> state = jgd.train.init(jnp.zeros(2), jgd.gd(0.25))
        >>> step = jgd.train.make_step(loss)
        >>> state, metrics = step(state, jnp.array([1.0, 2.0]))
        >>> state.params, metrics["loss"]
        (Array([0.5, 1. ], dtype=float32), Array(5., dtype=float32))
    """
    if args:
        raise TypeError(
            "jgd.train.make_step: the optimizer travels in the state; build it "
            "with jgd.train.init(params, opt) and call make_step(loss_fn)."
        )
    name = "jgd.train.make_step"
    if compiler_options is None:
        compiler_options = default_compiler_options()
    elif not isinstance(compiler_options, dict):
        raise TypeError(
            f"{name}: compiler_options must be a dict of XLA options or None; got "
            f"{type(compiler_options).__name__}."
        )
    if grad_buffer not in (None, True, False):
        raise TypeError(
            f"{name}: grad_buffer must be None, True or False; got {grad_buffer!r}."
        )
    fn = step_fn(loss_fn, has_aux, name, grad_norm, skip_nonfinite)
    fn_g = step_fn(loss_fn, has_aux, name, grad_norm, skip_nonfinite, grads_out=True)
    return _Step(fn, fn_g, donate, compiler_options, grad_buffer)


class _Step:
    """A jitted step: the state's optimizer travels as an argument that is
    never donated, and the layout's leaf offsets as arguments (see
    ``Layout.unpack``)."""

    name = "jgd.train.make_step"

    def __init__(
        self,
        fn: Callable,
        fn_g: Callable,
        donate: bool,
        options: dict[str, Any],
        grad_buffer: bool | None,
    ):
        donate_argnums = 0 if donate else ()
        self._jit = jax.jit(fn, donate_argnums=donate_argnums)
        self._top = self._jit
        if options:
            self._top = jax.jit(
                fn, donate_argnums=donate_argnums, compiler_options=options
            )
        # The buffered step: top level only, donating state and buffer.
        self._top_g = jax.jit(
            fn_g,
            donate_argnums=(0, 4),
            keep_unused=True,
            compiler_options=options or None,
        )
        self._grad_buffer = grad_buffer if donate else False
        self._buffer: Any = None  # (signature, the last gradient)
        self._wants: Any = None  # (layout, whether its states get a buffer)
        self._fits: Any = None  # the last optimizer found to fit its layout

    def _args(self, state: TrainState, batch: Any, offsets: Any = None) -> tuple:
        if not isinstance(state, TrainState):
            raise TypeError(
                f"{self.name}: state must be a jgd.train.TrainState (from "
                f"jgd.train.init); got {type(state).__name__}."
            )
        fits = self._fits
        # Identity first: comparing layouts walks every slot.
        if (
            fits is None
            or fits[0] is not state.opt
            or (fits[1] is not state.layout and fits[1] != state.layout)
        ):
            check_opt(self.name, state)
            # Python numbers would be copied to the device on every call.
            on_device = jax.tree.map(_to_device, state.opt)
            self._fits = fits = (state.opt, state.layout, on_device)
        if offsets is None:
            offsets = state.layout.offsets()
        carry = TrainState(
            state.stored_params, state.stored_opt_state, state.step, None, state.layout
        )
        return carry, fits[2], batch, offsets

    def _buffered(self, state: TrainState) -> bool:
        """At top level: whether this call writes the gradient into a kept
        buffer."""
        if self._grad_buffer is not None:
            return self._grad_buffer
        wants = self._wants
        if wants is None or wants[0] is not state.layout:
            leaves = jax.tree.leaves(state.stored_params)
            big = sum(x.nbytes for x in leaves) >= GRAD_BUFFER_MIN_BYTES and all(
                d.platform == "cpu" for x in leaves for d in x.devices()
            )
            self._wants = wants = (state.layout, big)
        return wants[1]

    def _take_buffer(self, state: TrainState) -> Any:
        """The kept gradient if it matches the state's stored params (shapes,
        dtypes, shardings), else zeros; taken, so a failed call loses it."""
        held, self._buffer = self._buffer, None
        sig = _signature(state.stored_params)
        if held is not None and held[0] == sig:
            return sig, held[1]
        zeros = jax.tree.map(
            lambda x: jnp.zeros(x.shape, x.dtype, device=x.sharding),
            state.stored_params,
        )
        return sig, zeros

    def _pick(self, state: TrainState) -> tuple[Any, bool]:
        """The jit for this call and whether it takes the kept buffer: compiler
        options and the buffer only at top level (jax refuses options on a
        nested jit)."""
        if not _top_level():
            return self._jit, False
        if self._buffered(state):
            return self._top_g, True
        return self._top, False

    def __call__(self, state: TrainState, batch: Any):
        args = self._args(state, batch)
        return self._run(*self._pick(state), state, args)

    def _run(self, fn: Callable, buffered: bool, state: TrainState, args: tuple):
        if buffered:
            sig, buffer = self._take_buffer(state)
            args = (*args, buffer)
        try:
            out = fn(*args)
        except (ValueError, RuntimeError) as e:
            # jax refuses deleted buffers before running anything; checking
            # every leaf up front would cost each call more than the step's
            # own dispatch on a model of many leaves.
            check_alive(self.name, state, e)
            raise
        if buffered:
            new, grads, metrics = out
            self._buffer = (sig, grads)
        else:
            new, metrics = out
        return new.replace(opt=state.opt), metrics

    def lower(self, state: TrainState, batch: Any) -> _Bound:
        """Ahead-of-time lowering, as ``jax.jit(f).lower``: ``.compile()``
        gives a callable ``(state, batch)``; other attributes (``as_text``,
        ``memory_analysis``, ...) are jax's."""
        check_alive(self.name, state)
        args = self._args(state, batch)
        fn, buffered = self._pick(state)
        # The stored params stand in for the buffer: same shapes and shardings.
        lowered = fn.lower(*args, state.stored_params) if buffered else fn.lower(*args)
        return _Bound(lowered, self, args[-1], buffered)


def _signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((x.shape, x.dtype, x.sharding) for x in leaves)


class _Bound:
    """A jax ``Lowered`` or ``Compiled`` step, called as ``(state, batch)``
    with the offsets it was lowered with (and the step's kept gradient
    buffer, when it was lowered with one)."""

    def __init__(self, inner: Any, step: _Step, offsets: Any, buffered: bool):
        self._inner, self._step, self._offsets = inner, step, offsets
        self._buffered = buffered

    def compile(self, *args, **kwargs) -> _Bound:
        inner = self._inner.compile(*args, **kwargs)
        return _Bound(inner, self._step, self._offsets, self._buffered)

    def __call__(self, state: TrainState, batch: Any):
        args = self._step._args(state, batch, self._offsets)
        return self._step._run(self._inner, self._buffered, state, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
