"""Gradient accumulation: ``MultiSteps`` (a wrapper that feeds its inner
optimizer the mean or sum of k mini-steps' gradients, with optax's
``MultiStepsState``, ``skip_not_finite`` and ``skip_large_updates``) and
``apply_every`` (sum k updates and emit them every k-th step, with optax's
``ApplyEvery`` state).

Both follow optax 0.2.8's names, arguments and state fields. With k = 1 they
keep no accumulator (no second param-sized buffer): their ``acc_grads`` /
``grad_acc`` field is ``()`` there.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jgd import tree
from jgd.base import (
    Static,
    Transform,
    check_dtype,
    check_int,
    is_transform,
    owner_name,
    register,
    static_field,
)

__all__ = [
    "ApplyEvery",
    "MultiSteps",
    "MultiStepsState",
    "ShouldSkipUpdateFunction",
    "apply_every",
    "skip_large_updates",
    "skip_not_finite",
]


# --------------------------------------------------------------------------
# Functions that decide whether MultiSteps drops a mini-step.
# --------------------------------------------------------------------------


class ShouldSkipUpdateFunction(Protocol):
    """``fn(updates, gradient_step, params) -> (should_skip, skip_state)``:
    a bool scalar array (True drops this mini-step, as if it never happened)
    and any pytree, stored in ``MultiStepsState.skip_state`` (optax's)."""

    def __call__(
        self, updates: Any, gradient_step: Any, params: Any
    ) -> tuple[Any, Any]: ...


def skip_not_finite(
    updates: Any, gradient_step: Any, params: Any
) -> tuple[jax.Array, Any]:
    """Skip a mini-step whose updates hold a NaN or an Inf.

    Returns:
        ``(should_skip, {"should_skip": should_skip, "num_not_finite": n})``,
        ``n`` the number of NaN and Inf elements (default int dtype).

    Matches: optax.skip_not_finite.
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(g)) for g in jax.tree.leaves(updates)]
    num_not_finite = jnp.sum(jnp.array(counts, dtype=_default_int()))
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: Any, gradient_step: Any, params: Any, max_squared_norm: Any
) -> tuple[jax.Array, Any]:
    """Skip a mini-step whose squared global norm is not below
    ``max_squared_norm`` (a NaN norm is skipped too). Bind the bound with
    ``functools.partial(skip_large_updates, max_squared_norm=42.0)``.

    Returns:
        ``(should_skip, {"should_skip": should_skip, "norm_squared": n2})``,
        ``n2`` in the leaves' common dtype.

    Matches: optax.skip_large_updates.
    """
    del gradient_step, params
    leaves = jax.tree.leaves(updates)
    sums = [jnp.sum(jnp.square(g)) for g in leaves]
    dt = tree.wider_dtype(*[s.dtype for s in sums]) if sums else None
    norm_sq = jnp.sum(jnp.array([s.astype(dt) for s in sums], dtype=dt))
    should_skip = ~(norm_sq < tree.coef(max_squared_norm, norm_sq.dtype))
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _default_int() -> Any:
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def _never_skip(updates: Any, gradient_step: Any, params: Any) -> tuple[Any, Any]:
    return jnp.array(False), ()


# --------------------------------------------------------------------------
# MultiSteps.
# --------------------------------------------------------------------------


class MultiStepsState(NamedTuple):
    """State of ``MultiSteps`` (optax's fields).

    Fields:
        mini_step: int32, mini-steps accumulated so far (0 after an update).
        gradient_step: int32, updates of the inner optimizer so far.
        inner_opt_state: the inner optimizer's state.
        acc_grads: the accumulated gradients (``()`` when k is the int 1).
        skip_state: what ``should_skip_update_fn`` returned last (``()``).
    """

    mini_step: Any
    gradient_step: Any
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


@register
class MultiSteps(Transform):
    """Accumulate gradients over k mini-steps; every k-th step, feed their
    mean (or sum) to the inner optimizer and return its update.

    Update (n = mini_step, k = every_k_schedule(gradient_step)):
        acc = acc + (g - acc) / (n + 1)      use_grad_mean (Welford's mean)
        acc = acc + g                        otherwise
        u, inner_state = opt(acc)            when n == k - 1; acc = 0 after
        u = 0                                otherwise (inner_state kept)
        n = (n + 1) % k

    Schedules of the inner optimizer see its own step count: they count
    optimizer steps (``gradient_step``), not mini-steps. A mini-step for which
    ``should_skip_update_fn`` says True changes nothing but ``skip_state``
    and returns zeros.

    Args:
        opt: the inner optimizer (jgd or optax); its hyperparameters stay
            leaves of this value.
        every_k_schedule: an int >= 1, or a callable ``gradient_step -> k``
            (a varying batch size); static. With the int 1 no accumulator is
            kept.
        use_grad_mean: average the k gradients (default True) or sum them;
            static.
        should_skip_update_fn: None (default), ``skip_not_finite``,
            ``functools.partial(skip_large_updates, max_squared_norm=...)``
            or any ``ShouldSkipUpdateFunction``; static.
        accumulator_dtype: dtype of ``acc_grads``; None (default) means
            float32, or the gradient's dtype where that is wider (float64,
            complex); static.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.MultiSteps(jgd.sgd(1.0), every_k_schedule=2)
        >>> state = opt.init(jnp.zeros(1))
        >>> u, state = opt.update(jnp.array([1.0]), state)
        >>> u, state = opt.update(jnp.array([3.0]), state)
        >>> u, opt.has_updated(state)
        (Array([-2.], dtype=float32), Array(True, dtype=bool))

    Matches: optax.MultiSteps(opt, every_k_schedule, use_grad_mean,
    should_skip_update_fn, accumulator_dtype), but: (1) accumulator_dtype
    defaults to None, float32 as optax's default unless the gradient is wider,
    where optax rounds float64 to float32 and drops imaginary parts; (2) with
    k the int 1, ``acc_grads`` is ``()``; (3) the inner optimizer runs only on
    the k-th mini-step (optax runs it on every mini-step and discards the
    result): the inner optimizer's own numbers (optax's are up to 1 ulp off
    in float32, through XLA's FMA contraction), k - 1 of k inner updates
    saved, a NaN cannot leak through a discarded update (optax multiplies it
    by 0); peak memory is 2.2 param-sized buffers below optax's at k = 1 and
    0.2 above at k = 4 (``benchmarks/results/multisteps_memory.md``).
    ``gradient_transformation()`` returns the value itself.
    """

    opt: Any
    every_k_schedule: Any = static_field()
    use_grad_mean: bool = static_field(default=True)
    should_skip_update_fn: Any = static_field(default=None)
    accumulator_dtype: Any = static_field(default=None)

    _api = "jgd.MultiSteps"

    def __post_init__(self):
        name = owner_name(self)
        if not isinstance(self.opt, (Transform, Static)):
            if not is_transform(self.opt):
                raise TypeError(
                    f"{name}: opt must be a transform with init and update (jgd "
                    f"or optax); got {self.opt!r} ({type(self.opt).__name__})."
                )
            object.__setattr__(self, "opt", Static(self.opt))
        k = self.every_k_schedule
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            check_int(self, "every_k_schedule", k, lo=1)
            object.__setattr__(self, "every_k_schedule", int(k))
        elif callable(k):
            if not isinstance(k, Static):
                object.__setattr__(self, "every_k_schedule", Static(k))
        else:
            raise TypeError(
                f"{name}: every_k_schedule must be an integer >= 1 or a callable "
                f"gradient_step -> k; got {k!r} ({type(k).__name__})."
            )
        if not isinstance(self.use_grad_mean, bool):
            raise TypeError(
                f"{name}: use_grad_mean must be a bool; got {self.use_grad_mean!r}."
            )
        fn = self.should_skip_update_fn
        if fn is not None and not isinstance(fn, Static):
            if not callable(fn):
                raise TypeError(
                    f"{name}: should_skip_update_fn must be None or a callable "
                    "(updates, gradient_step, params) -> (bool, skip_state); "
                    f"got {fn!r}."
                )
            object.__setattr__(self, "should_skip_update_fn", Static(fn))
        dt = check_dtype(self, "accumulator_dtype", self.accumulator_dtype)
        object.__setattr__(self, "accumulator_dtype", dt)
        super().__post_init__()

    # -- optax's interface ---------------------------------------------------

    @property
    def inner_opt(self) -> Any:
        """The wrapped optimizer, as given."""
        return self.opt.value if isinstance(self.opt, Static) else self.opt

    def gradient_transformation(self) -> MultiSteps:
        """The transform itself (a jgd value already has ``init``/``update``)."""
        return self

    def has_updated(self, state: Any) -> jax.Array:
        """True when the last ``update`` stepped the inner optimizer."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    # -- the transform -------------------------------------------------------

    def _single(self) -> bool:
        """k is the int 1: every mini-step is an update, no accumulator."""
        return self.every_k_schedule == 1

    def _acc_dtype(self, g: jax.Array) -> Any:
        if self.accumulator_dtype is not None:
            return jax.dtypes.canonicalize_dtype(self.accumulator_dtype)
        return tree.wider_dtype(g.dtype, jnp.float32)

    def _skip_fn(self) -> Any:
        fn = self.should_skip_update_fn
        return _never_skip if fn is None else fn

    def init(self, params: Any) -> MultiStepsState:
        step0 = jnp.zeros([], jnp.int32)
        _, skip_state = self._skip_fn()(tree.zeros_like(params), step0, params)
        if self._single():
            acc: Any = ()
        else:
            acc = jax.tree.map(lambda p: jnp.zeros_like(p, self._acc_dtype(p)), params)
        return MultiStepsState(
            mini_step=step0,
            gradient_step=step0,
            inner_opt_state=self.opt.init(params),
            acc_grads=acc,
            skip_state=skip_state,
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        name = owner_name(self)
        if not isinstance(state, MultiStepsState):
            raise TypeError(
                f"{name}: state must be the MultiStepsState returned by init; got "
                f"{type(state).__name__}."
            )
        skip, skip_state = self._skip_fn()(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if (skip.dtype, skip.shape) != (jnp.bool_, ()):
            raise ValueError(
                f"{name}: should_skip_update_fn must return a boolean scalar array "
                f"first; got dtype {skip.dtype} and shape {skip.shape}."
            )
        if self._single():
            # optax's mean of one step is computed in the wider dtype and only
            # stored in accumulator_dtype: the gradient reaches opt as it is.
            acc, emit, new_acc = updates, jnp.array(True), ()
        else:
            tree.check_same_structure(self, updates, state.acc_grads, "state")
            k = self.every_k_schedule
            if callable(k):
                k = k(state.gradient_step)
            emit = state.mini_step == k - 1
            acc = jax.tree.map(
                lambda g, a: self._accumulate(g, a, state.mini_step),
                updates,
                state.acc_grads,
            )
            new_acc = jax.tree.map(
                lambda a, old: jnp.where(
                    emit, jnp.zeros_like(old), a.astype(old.dtype)
                ),
                acc,
                state.acc_grads,
            )
            acc = tree.cast_like(acc, updates)
        step = emit & ~skip

        def run(_):
            u, s = self.opt.update(acc, state.inner_opt_state, params, **extra_args)
            return u, tree.cast_like(s, state.inner_opt_state)

        if self._single() and self.should_skip_update_fn is None:
            final, inner = run(None)
        else:
            shapes = jax.eval_shape(run, None)[0]

            def hold(_):
                return tree.zeros_like(shapes), state.inner_opt_state

            final, inner = jax.lax.cond(step, run, hold, None)
        if self._single():
            mini, new_acc = state.mini_step, ()
        else:
            mini = tree.safe_increment(state.mini_step) % k
            mini = jnp.where(skip, state.mini_step, mini).astype(jnp.int32)
            new_acc = jax.tree.map(
                lambda n, o: jnp.where(skip, o, n), new_acc, state.acc_grads
            )
        grad_step = jnp.where(
            step, tree.safe_increment(state.gradient_step), state.gradient_step
        )
        return final, MultiStepsState(
            mini_step=mini,
            gradient_step=grad_step,
            inner_opt_state=inner,
            acc_grads=new_acc,
            skip_state=skip_state,
        )

    def _accumulate(self, g: jax.Array, a: jax.Array, n: jax.Array) -> jax.Array:
        """One mini-step into the accumulator, in the wider of the two dtypes
        (optax's arithmetic under standard promotion)."""
        g, a = tree.promote(g, a)
        if self.use_grad_mean:
            return a + (g - a) / (n + 1).astype(a.dtype)
        return g + a


# --------------------------------------------------------------------------
# apply_every.
# --------------------------------------------------------------------------


class ApplyEvery(NamedTuple):
    """State of ``apply_every``: a counter and the running sum (optax's name
    and fields; ``grad_acc`` is ``()`` when k = 1)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    grad_acc: Any


@register
class ApplyEveryTransform(Transform):
    """Sum updates over k steps; emit the sum every k-th step, zeros between.

    Update (c = count % k):
        acc = g               if c == 0
        acc = acc + g         otherwise
        u = acc               if c == k - 1, else 0

    Unlike ``MultiSteps``, transforms chained before or after it still run
    (and update their state) at every step.

    Args:
        k: an int >= 1, default 1 (no accumulator kept); static, as a step
            count.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.apply_every(2)
        >>> state = tx.init(jnp.zeros(1))
        >>> u, state = tx.update(jnp.array([1.0]), state)
        >>> tx.update(jnp.array([3.0]), state)[0]
        Array([4.], dtype=float32)

    Matches: optax.apply_every(k), except that ``k`` is static and that with
    k = 1 ``grad_acc`` is ``()`` where optax keeps a copy of the last update.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    k: int = static_field(default=1)

    _api = "jgd.apply_every"

    def check(self):
        check_int(self, "k", self.k, lo=1)

    def init(self, params: Any) -> ApplyEvery:
        acc = () if self.k == 1 else tree.zeros_like(params)
        return ApplyEvery(count=jnp.zeros([], jnp.int32), grad_acc=acc)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if self.k == 1:
            return updates, state
        tree.check_same_structure(self, updates, state.grad_acc, "state")
        c = state.count % self.k
        emit = c == self.k - 1

        def add(g, a):  # in the wider dtype, as optax's acc * a + g promotes
            a, g = tree.promote(a, g)
            return jnp.where(c != 0, a + g, g)

        acc = jax.tree.map(add, updates, state.grad_acc)
        out = jax.tree.map(
            lambda a, g: jnp.where(emit, a, jnp.zeros_like(a)).astype(g.dtype),
            acc,
            updates,
        )
        acc = tree.cast_like(acc, state.grad_acc)
        count = tree.safe_increment(state.count) % self.k
        return out, ApplyEvery(count=count, grad_acc=acc)


apply_every = ApplyEveryTransform
