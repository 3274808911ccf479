"""The training state: ``TrainState`` and ``init``.

A ``TrainState`` is a pytree of the stored params, the optimizer state, the
step count and the optimizer itself, with its static layout
(``layout.py``). ``init`` builds one; ``step.py`` compiles steps over it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jax
import jax.numpy as jnp

from jgd.base import Static, Transform, is_transform, register, static_field
from jgd.train.layout import PACK_BELOW, Layout, PerLeaf, make_layout

__all__ = ["TrainState", "init"]


@register
class TrainState:
    """Params, optimizer state, step count and optimizer: an immutable
    pytree that ``jit`` traces (the optimizer's hyperparameters are leaves).

    Fields:
        stored_params: the params in the layout's stored form: a dict of
            buckets and resident leaves, or the user's tree (``PerLeaf``).
        stored_opt_state: the optimizer's state over ``stored_params``.
        step: int32 scalar, the number of steps taken.
        opt: the optimizer. ``state.replace(opt=state.opt.replace(
            learning_rate=3e-4))`` changes a hyperparameter without a new
            compile; a new static field (``nesterov``, a dtype, a mask
            function) compiles anew.
        layout: the static layout (``jgd.train.Layout`` or ``PerLeaf``).

    ``state.params`` and ``state.opt_state`` give the user's trees (fresh
    arrays, safe to keep after the next donating step): the optimizer state
    has the structure of ``opt.init(params)``.
    """

    stored_params: Any
    stored_opt_state: Any
    step: jax.Array
    opt: Any = None
    # Always set by init; the None default is only there to follow opt's.
    layout: Layout | PerLeaf = static_field(default=None)  # type: ignore[assignment]

    def replace(self, **changes: Any) -> TrainState:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def params(self) -> Any:
        check_alive("jgd.train.TrainState.params", self)
        return self.layout.to_user(self.stored_params)

    @property
    def opt_state(self) -> Any:
        check_alive("jgd.train.TrainState.opt_state", self)
        layout = self.layout
        return jax.tree.map(
            lambda x: layout.to_user(x) if layout.is_stored(x) else jnp.copy(x),
            self.stored_opt_state,
            is_leaf=layout.is_stored,
        )


def as_transform(name: str, opt: Any) -> Any:
    """``opt`` as a value the state can carry: jgd's as it is, an optax
    ``GradientTransformation`` wrapped as static configuration."""
    if isinstance(opt, (Transform, Static)):
        return opt
    if is_transform(opt):
        return Static(opt)
    raise TypeError(
        f"{name}: opt must be a jgd or optax optimizer (with init and update); got "
        f"{type(opt).__name__}."
    )


def init(
    params: Any, opt: Any, *, flat: bool | None = None, pack_below: int | None = None
) -> TrainState:
    """Start training ``params`` with the optimizer ``opt``.

    Args:
        params: a pytree of floating-point arrays (Python floats become
            float32 arrays; dtypes and shardings are kept).
        opt: a jgd optimizer or transform, or an optax ``GradientTransformation``;
            it travels in the state (``state.opt``).
        flat: None (default) packs leaves smaller than ``pack_below`` elements
            into buckets when packing pays: there are at least
            ``jgd.train.PACK_MIN_LEAVES`` of them, or the params hold at least
            ``jgd.train.PACK_MIN_SIZE`` elements (on a smaller model the
            step is too short to repay packing's fixed cost); it stores leaf
            by leaf otherwise, and when ``opt`` needs leaf boundaries
            (per-leaf norms, masks over the user's tree, optax chains). True
            packs and refuses such an ``opt``; False stores leaf by leaf.
            Leaves split across devices always stay resident.
        pack_below: the packing threshold in elements (default
            ``jgd.train.PACK_BELOW``); 0 packs nothing.

    Returns:
        A ``TrainState`` at step 0. It owns its buffers (the user's arrays are
        never donated), each on its param's sharding.

    Raises:
        TypeError: a non-floating params leaf; a weight-decay mask that does
            not match the params tree; ``opt`` not a transform.
        ValueError: with ``flat=True``, a transform that needs leaf boundaries
            or a mask that is not one bool per leaf.

    Example:
        >>> import jax.numpy as jnp, jgd, jgd.train
        >>> params = {"w": jnp.zeros(3), "b": 0.0}
        >>> type(jgd.train.init(params, jgd.adam(1e-3)).layout).__name__
        'PerLeaf'
        >>> state = jgd.train.init(params, jgd.adam(1e-3), flat=True)
        >>> state.layout.names, state.stored_params["float32"].shape
        (('float32',), (4,))
    """
    name = "jgd.train.init"
    opt = as_transform(name, opt)
    if pack_below is None:
        pack_below = PACK_BELOW
    if not isinstance(pack_below, int) or pack_below < 0:
        raise ValueError(f"{name}: pack_below must be an int >= 0; got {pack_below!r}.")
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(params)
    leaves = [x for _, x in with_paths]
    arrays = []
    for path, x in with_paths:
        a = jnp.asarray(x)
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(
                f"{name}: params must be floating-point arrays; got dtype {a.dtype} "
                f"at {jax.tree_util.keystr(path)}."
            )
        arrays.append(jnp.asarray(a, dtype=a.dtype))  # drop weak types
    layout = make_layout(name, arrays, treedef, opt, flat, pack_below)
    stored = layout.place(layout.store(arrays))
    opt_state = layout.place(layout.optimizer(opt).init(stored))
    # A donating step must not free the caller's arrays, nor be handed one
    # buffer twice (optax's lbfgs state holds the same zeros in two fields):
    # copy any leaf shared with the caller or seen before.
    seen = {id(x) for x in leaves}

    def own(x):
        if id(x) in seen:
            return jnp.copy(x)
        seen.add(id(x))
        return x

    stored, opt_state = jax.tree.map(own, (stored, opt_state))
    return TrainState(stored, opt_state, jnp.zeros([], jnp.int32), opt, layout)


def check_alive(name: str, state: TrainState, failure: Exception | None = None) -> None:
    """Refuse a state whose buffers a donating step has consumed (reusing
    them crashes XLA on some backends, and says nothing useful on others).
    ``failure``: the error of a step just called with ``state``; unless jax
    refused the state's deleted buffers, that step consumed them itself."""
    for x in jax.tree.leaves((state.stored_params, state.stored_opt_state)):
        if isinstance(x, jax.Array) and not _traced(x) and x.is_deleted():
            if failure is not None and not _DELETED.search(str(failure)):
                raise ValueError(
                    f"{name}: the step failed while running "
                    f"({type(failure).__name__}: {failure}), after this "
                    "TrainState's buffers were donated to it: the state is "
                    "gone. Where you must recover, keep a copy "
                    "(jax.tree.map(jnp.copy, state)) or pass make_step(..., "
                    "donate=False)."
                ) from failure
            raise ValueError(
                f"{name}: this TrainState was donated to a step, which consumed "
                "its buffers. Use the state that step returned "
                "(state, metrics = step(state, batch)), or make_step(..., "
                "donate=False) to keep old states."
            )


# How jax refuses a deleted buffer ("Buffer has been deleted or donated",
# "Array has been deleted").
_DELETED = re.compile(r"deleted|donated", re.IGNORECASE)


def _traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)
