"""Steps with NaN or Inf: ``apply_if_finite`` (skip them, up to a limit, with
optax's ``ApplyIfFiniteState`` counters), which also records where the
first non-finite values came from, and ``nonfinite_paths`` (that record as
the params' path strings).

``LeafFlags`` holds the record: one bool per leaf in one array (a single
small buffer, jit-friendly) with the leaves' paths as static data.
``ClipByGlobalNormState`` (the opt-in pre-clip norm of
``clip_by_global_norm``) is exported here too.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import (
    Static,
    Transform,
    check_int,
    is_transform,
    owner_name,
    register,
    static_field,
)
from jgd.transforms.regularization import ClipByGlobalNormState

__all__ = [
    "ApplyIfFiniteState",
    "ClipByGlobalNormState",
    "LeafFlags",
    "apply_if_finite",
    "nonfinite_paths",
]


@register
class LeafFlags:
    """One bool per leaf of a tree, with the leaves' paths as static data.

    Fields:
        flags: bool array of shape ``(number of leaves,)``, in
            ``jax.tree.leaves`` order.
        paths: the leaves' paths (``jax.tree_util.keystr``), static.
    """

    flags: jax.Array
    paths: tuple[str, ...] = static_field(default=())

    @classmethod
    def of(cls, values: Any, tree_: Any) -> LeafFlags:
        """Flags ``values`` (a list of bool scalars) for the leaves of ``tree_``."""
        paths = tuple(
            jax.tree_util.keystr(p)
            for p, _ in jax.tree_util.tree_leaves_with_path(tree_)
        )
        flags = jnp.stack(values) if values else jnp.zeros((0,), bool)
        return cls(flags, paths)

    @classmethod
    def nonfinite(cls, tree_: Any) -> LeafFlags:
        """Which leaves of ``tree_`` hold a NaN or an Inf."""
        return cls.of(
            [~jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree_)], tree_
        )

    def names(self) -> list[str]:
        """The paths whose flag is True (concrete values only, not under jit)."""
        return [p for p, f in zip(self.paths, np.asarray(self.flags)) if f]


class ApplyIfFiniteState(NamedTuple):
    """State of ``apply_if_finite``: optax's four fields, then jgd's record.

    Fields:
        notfinite_count: int32, non-finite steps in a row (0 after a finite
            step, and after the step that gives up).
        last_finite: bool, whether the last step's updates were all finite.
        total_notfinite: int32, non-finite steps since init (never reset).
        inner_state: the inner transform's state.
        notfinite_leaves: ``LeafFlags``, True for the leaves that held a NaN
            or Inf at the first step of the latest run of non-finite steps
            (all False until one). ``nonfinite_paths(state)`` reads it.
    """

    notfinite_count: Any
    last_finite: Any
    total_notfinite: Any
    inner_state: Any
    notfinite_leaves: Any = None


@register
class ApplyIfFinite(Transform):
    """Skip steps whose updates hold a NaN or an Inf, up to
    ``max_consecutive_errors`` in a row; then accept one and start counting
    again.

    Update (finite = no NaN or Inf in any leaf of g):
        n = 0                        if finite
        n = n + 1                    otherwise
        u, inner_state = inner(g)    if finite or n > max_consecutive_errors
        u = 0                        otherwise (inner_state kept)
        n = 0                        when it gives up (accepts a non-finite g)

    Where it came from: on a non-finite step that follows a finite one (the
    start of a run of bad steps), ``notfinite_leaves`` records which leaves
    held the NaN or Inf; later steps of the same run, where the values may
    have spread (through a global norm, or params that went NaN after giving
    up), leave the record alone. The check reads the incoming updates, so put
    ``apply_if_finite`` outermost: ``apply_if_finite(chain(clip_by_global_norm,
    adam), 3)`` names the leaf, and keeps adam's moments clean.

    Args:
        inner: the wrapped transform (jgd or optax).
        max_consecutive_errors: an int >= 0: how many non-finite steps in a
            row are skipped before one is accepted. Required.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.apply_if_finite(jgd.sgd(0.1), max_consecutive_errors=2)
        >>> g = {"w": jnp.array([1.0]), "b": jnp.array([jnp.nan])}
        >>> u, state = opt.update(g, opt.init(g))
        >>> u["w"], jgd.nonfinite_paths(state)
        (Array([0.], dtype=float32), ["['b']"])

    Matches: optax.apply_if_finite(inner, max_consecutive_errors) with the fix
    of optax PR #1746: optax 0.2.8 keeps counting after it gives up, so every
    later non-finite step is accepted too; jgd (and the PR) reset the count
    on the step that gives up, so the next ones are skipped again. The state
    has a fifth field, ``notfinite_leaves``.
    """

    inner: Any
    max_consecutive_errors: Any

    _api = "jgd.apply_if_finite"

    def __post_init__(self):
        if not isinstance(self.inner, (Transform, Static)):
            if not is_transform(self.inner):
                raise TypeError(
                    f"{owner_name(self)}: inner must be a transform with init and "
                    f"update (jgd or optax); got {self.inner!r} "
                    f"({type(self.inner).__name__})."
                )
            object.__setattr__(self, "inner", Static(self.inner))
        super().__post_init__()

    def check(self):
        m = self.max_consecutive_errors
        if not isinstance(m, jax.core.Tracer) and not (
            isinstance(m, (np.ndarray, jax.Array))
            and m.shape == ()
            and jnp.issubdtype(m.dtype, jnp.integer)
        ):
            check_int(self, "max_consecutive_errors", m, lo=0)

    def init(self, params: Any) -> ApplyIfFiniteState:
        n = len(jax.tree.leaves(params))
        return ApplyIfFiniteState(
            notfinite_count=jnp.zeros([], jnp.int32),
            last_finite=jnp.array(True),
            total_notfinite=jnp.zeros([], jnp.int32),
            inner_state=self.inner.init(params),
            notfinite_leaves=LeafFlags.of([jnp.array(False)] * n, params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if not isinstance(state, ApplyIfFiniteState):
            raise TypeError(
                f"{owner_name(self)}: state must be the ApplyIfFiniteState returned "
                f"by init; got {type(state).__name__}."
            )
        where = LeafFlags.nonfinite(updates)
        old = state.notfinite_leaves
        if where.paths != old.paths:
            _mismatch(owner_name(self), where.paths, old.paths)
        finite = ~jnp.any(where.flags)
        count = tree.safe_increment(state.notfinite_count)
        give_up = count > self.max_consecutive_errors
        apply = finite | give_up

        def run(_):
            u, s = self.inner.update(updates, state.inner_state, params, **extra_args)
            return u, tree.cast_like(s, state.inner_state)  # both branches agree

        shapes = jax.eval_shape(run, None)[0]

        def reject(_):
            return tree.zeros_like(shapes), state.inner_state

        updates, inner_state = jax.lax.cond(apply, run, reject, None)
        # Record on the first bad step of a run (see the docstring).
        first_bad = ~finite & state.last_finite
        flags = jnp.where(first_bad, where.flags, old.flags)
        return updates, ApplyIfFiniteState(
            notfinite_count=jnp.where(apply, jnp.zeros_like(count), count),
            last_finite=finite,
            total_notfinite=jnp.where(
                finite,
                state.total_notfinite,
                tree.safe_increment(state.total_notfinite),
            ),
            inner_state=inner_state,
            notfinite_leaves=LeafFlags(flags, old.paths),
        )


def _mismatch(name: str, got: tuple[str, ...], want: tuple[str, ...]) -> None:
    first = next(
        (i for i, (a, b) in enumerate(zip(got, want)) if a != b),
        min(len(got), len(want)),
    )
    at = lambda paths: paths[first] if first < len(paths) else "<nothing>"
    raise TypeError(
        f"{name}: the updates tree does not match the params tree given to init; "
        f"first difference at leaf {first}: updates have {at(got) or '<root>'}, "
        f"params have {at(want) or '<root>'}."
    )


apply_if_finite = ApplyIfFinite


def nonfinite_paths(state: Any) -> list[str]:
    """The params' paths where the latest run of non-finite steps began.

    Reads every ``ApplyIfFiniteState`` inside ``state`` (an optimizer state,
    a chain's tuple, ``jgd.train.TrainState.opt_state``) and returns the
    paths (``jax.tree_util.keystr`` form, e.g. ``"['layers'][0]['w']"``)
    whose leaves held a NaN or Inf, in leaf order. Empty when no step was
    non-finite. Reads concrete values: call it outside ``jit``; inside, read
    ``state.notfinite_leaves.flags``.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.apply_if_finite(jgd.adam(0.1), 3)
        >>> g = {"a": jnp.ones(2), "b": jnp.array([jnp.inf, 0.0])}
        >>> jgd.nonfinite_paths(opt.update(g, opt.init(g))[1])
        ["['b']"]
    """
    found = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, LeafFlags))
    return [p for x in found if isinstance(x, LeafFlags) for p in x.names()]
