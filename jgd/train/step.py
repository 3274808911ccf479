"""The training state and the compiled step.

Holds ``TrainState`` (a pytree of stored params, optimizer state and step
count, with the static ``Layout``), ``init`` and ``make_step``, and
``step_fn``, the step as a pure function that ``fit`` scans.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgd import kernels, tree
from jgd.base import apply_updates, register, static_field
from jgd.train.layout import Layout, flat_optimizer, make_layout, pack_now, unpack_now

__all__ = ["TrainState", "init", "make_step"]


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
        return unpack_now(self.layout, self.stored_params)

    @property
    def opt_state(self) -> Any:
        layout = self.layout
        if layout is None:
            return jax.tree.map(jnp.copy, self.stored_opt_state)
        return jax.tree.map(
            lambda x: unpack_now(layout, x) if layout.is_buffers(x) else jnp.copy(x),
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
        layout = make_layout(name, arrays, treedef, opt)
        stored = pack_now(layout, arrays)
        tx = flat_optimizer(opt, layout)
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


def update_and_apply(
    tx: Any, grads: Any, opt_state: Any, params: Any, *, flat: bool
) -> tuple:
    """``tx.update`` then ``apply_updates``: ``(new_params, new_opt_state,
    grad_norm)``, with the global l2 norm of ``grads`` for the metrics.

    For a flat state (``flat``), ``grads`` maps each bucket to its gradient's leaves
    (``Layout.group``), and ``params`` and ``opt_state`` hold buckets. Adam
    and AdamW on float32 buckets on CPU, alone or after
    ``clip_by_global_norm``, then run as one fused loop (``jgd.kernels``) that
    reads the leaves where they are: one pass over memory, which also sums
    the gradient's squares. Otherwise the leaves are packed into their
    buckets first (``jgd.kernels.pack``, or a concatenate)."""
    if flat:
        fused = kernels.fused_update(tx, grads, opt_state, params)
        if fused is not None:
            return fused
        grads = kernels.pack(grads, params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return apply_updates(params, updates), opt_state, tree.global_norm(grads)


def step_fn(loss_fn: Callable, opt: Any, has_aux: bool, name: str) -> Callable:
    """The step as a pure function (``make_step`` compiles it, ``fit`` scans
    it)."""

    def step(state: TrainState, batch: Any, offsets: Any):
        layout = state.layout
        if layout is None:
            params, tx = state.stored_params, opt
        else:
            params = layout.unpack(state.stored_params, offsets)
            tx = flat_optimizer(opt, layout)

        def loss_of(p):
            return _loss_and_aux(name, loss_fn(p, batch), has_aux)

        (loss, aux), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        if layout is not None:
            grads = layout.group(jax.tree.leaves(grads))
        new_params, opt_state, grad_norm = update_and_apply(
            tx,
            grads,
            state.stored_opt_state,
            state.stored_params,
            flat=layout is not None,
        )
        new = TrainState(new_params, opt_state, tree.safe_increment(state.step), layout)
        metrics = {"loss": loss, "grad_norm": grad_norm}
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
        The jitted step (``step.lower(state, batch).compile()`` compiles it
        ahead of time). ``metrics`` holds ``loss``, ``grad_norm`` (the global
        l2 norm of the gradients) and ``aux`` when ``has_aux``. A flat state's
        leaf offsets travel as arguments of the compiled program (see
        ``Layout.unpack``), which ``step`` supplies.

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
    return _Step(step_fn(loss_fn, opt, has_aux, "jgd.train.make_step"))


def offsets_of(state: TrainState) -> Any:
    """The offsets argument of a compiled step for ``state``."""
    return () if state.layout is None else state.layout.offsets()


class _Step:
    """A jitted step that passes the layout's leaf offsets as arguments (see
    ``Layout.unpack``)."""

    def __init__(self, fn: Callable):
        self._jit = jax.jit(fn, donate_argnums=0)

    def __call__(self, state: TrainState, batch: Any):
        return self._jit(state, batch, offsets_of(state))

    def lower(self, state: TrainState, batch: Any) -> _Bound:
        """Ahead-of-time lowering, as ``jax.jit(f).lower``: ``.compile()``
        gives a callable ``(state, batch)``; other attributes (``as_text``,
        ``memory_analysis``, ...) are jax's."""
        offsets = offsets_of(state)
        return _Bound(self._jit.lower(state, batch, offsets), offsets)


class _Bound:
    """A jax ``Lowered`` or ``Compiled`` step with its offsets argument bound."""

    def __init__(self, inner: Any, offsets: Any):
        self._inner, self._offsets = inner, offsets

    def compile(self, *args, **kwargs) -> _Bound:
        return _Bound(self._inner.compile(*args, **kwargs), self._offsets)

    def __call__(self, state: TrainState, batch: Any):
        return self._inner(state, batch, self._offsets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
