"""Small building blocks, most of them element-wise, under optax 0.2.8's names.

Holds the sign and step-size blocks (``scale_by_sign``, ``scale_by_rprop``,
``scale_by_optimistic_gradient``, ``scale_by_polyak``, ``scale_by_schedule``,
``scale_by_distance_over_gradients``, ``normalize_by_update_norm``) with
their states, and re-exports from ``noise_and_constraints`` noise and
averaging (``add_noise``, ``ema``), constraints and clean-up
(``centralize``, ``keep_params_nonnegative``, ``zero_nans``, ``set_to_zero``)
and the wrappers of a user's function (``stateless``,
``stateless_with_tree_map``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_dtype,
    check_number,
    empty_state,
    owner_name,
    register,
    static_field,
)
from jgd.transforms.basic import ScaleByScheduleState, _count0
from jgd.transforms.noise_and_constraints import (  # noqa: F401 (as before)
    AddNoise,
    AddNoiseState,
    Centralize,
    Ema,
    EmaState,
    KeepParamsNonnegative,
    SetToZero,
    Stateless,
    StatelessWithTreeMap,
    ZeroNans,
    ZeroNansState,
    _check_seed,
    _needs_params,
    _traced,
    add_noise,
    centralize,
    ema,
    keep_params_nonnegative,
    set_to_zero,
    stateless,
    stateless_with_tree_map,
    zero_nans,
)

__all__ = [
    "AddNoiseState",
    "EmaState",
    "ScaleByDistanceOverGradientsState",
    "ScaleByOptimisticGradientState",
    "ScaleByRpropState",
    "ZeroNansState",
    "add_noise",
    "centralize",
    "ema",
    "keep_params_nonnegative",
    "normalize_by_update_norm",
    "scale_by_distance_over_gradients",
    "scale_by_optimistic_gradient",
    "scale_by_polyak",
    "scale_by_rprop",
    "scale_by_schedule",
    "scale_by_sign",
    "set_to_zero",
    "stateless",
    "stateless_with_tree_map",
    "zero_nans",
]


# --------------------------------------------------------------------------
# Helpers: |x|**2 and the squared l2 norm of a tree, as optax computes them.
# --------------------------------------------------------------------------


# clipping.py imports this name; it should call tree.abs_sq.
_abs_sq = tree.abs_sq


def _sq_norm(updates: Any) -> jax.Array:
    """``sum_i sum(|x_i|**2)`` over the leaves in order, accumulated in the
    widest dtype present (optax's ``tree.norm(squared=True)``)."""
    sums = [jnp.sum(tree.abs_sq(x)) for x in jax.tree.leaves(updates)]
    if not sums:
        return jnp.zeros([], tree.default_float())
    dt = tree.wider_dtype(*[s.dtype for s in sums])
    return functools.reduce(jnp.add, [s.astype(dt) for s in sums])


# --------------------------------------------------------------------------
# Signs and sign-adapted step sizes.
# --------------------------------------------------------------------------


@register
class ScaleBySign(Transform):
    """Replace every update element by its sign.

    Update:
        u = sign(g)

    References: Bernstein et al., "signSGD: Compressed Optimisation for
    Non-Convex Problems", 2018, Algorithm 1.

    Matches: optax.scale_by_sign().
    """

    packable = True  # element-wise

    _api = "jgd.scale_by_sign"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        return jax.tree.map(jnp.sign, updates), state


scale_by_sign = ScaleBySign


class ScaleByRpropState(NamedTuple):
    """Per-element step sizes and the last step taken (matches optax's)."""

    step_sizes: Any
    prev_updates: Any


@register
class ScaleByRprop(Transform):
    """Rprop's per-element step sizes, adapted by the sign of the gradient.

    A sign change shrinks the step and skips the element for this step (its
    remembered step becomes 0, so the next step does not shrink it again); the
    same sign grows it. The result is a step to be negated (``rprop`` chains
    ``scale(-1)``).

    Update (per element, s = g * prev):
        step = clip(step * eta_plus, min_step_size, max_step_size)   (s > 0)
        step = clip(step * eta_minus, min_step_size, max_step_size)  (s < 0)
        prev = 0 if s < 0 else step * sign(g)
        u = prev

    Args:
        learning_rate: the initial step size, >= 0 (not a schedule).
        eta_minus: shrink factor on a sign change, in [0, 1], default 0.5.
        eta_plus: growth factor on the same sign, >= 1, default 1.2.
        min_step_size: >= 0, default 1e-6.
        max_step_size: >= min_step_size, default 50.

    References: Riedmiller & Braun, "A Direct Adaptive Method for Faster
    Backpropagation Learning: The RPROP Algorithm", 1993; Igel & Hüsken,
    "Empirical evaluation of the improved Rprop learning algorithms", 2003
    (the iRprop- variant).

    Matches: optax.scale_by_rprop(...) in its state at every step, but optax
    0.2.8 returns the state's previous ``prev`` (all zeros on the first step;
    optax PR #1725): jgd returns this step's, as the papers and
    ``torch.optim.Rprop`` do.
    """

    packable = True  # element-wise

    learning_rate: Scalar
    eta_minus: Scalar = 0.5
    eta_plus: Scalar = 1.2
    min_step_size: Scalar = 1e-6
    max_step_size: Scalar = 50.0

    _api = "jgd.scale_by_rprop"

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0)
        check_number(self, "eta_minus", self.eta_minus, 0, 1)
        check_number(self, "eta_plus", self.eta_plus, 1)
        check_number(self, "min_step_size", self.min_step_size, 0)
        lo = self.min_step_size  # compared only when it is a plain number
        lo = lo if isinstance(lo, (int, float)) and not isinstance(lo, bool) else 0
        check_number(self, "max_step_size", self.max_step_size, lo)

    def init(self, params: Any) -> Any:
        return ScaleByRpropState(
            step_sizes=tree.full_like(params, self.learning_rate),
            prev_updates=tree.zeros_like(params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.step_sizes, "state")

        def sign(g, prev):
            return jnp.multiply(*tree.promote(g, prev))

        def step_size(s, size):
            eta = jnp.where(
                s > 0,
                tree.coef(self.eta_plus, size.dtype),
                tree.coef(self.eta_minus, size.dtype),
            )
            lo = tree.coef(self.min_step_size, size.dtype)
            hi = tree.coef(self.max_step_size, size.dtype)
            return jnp.where(s == 0, size, jnp.clip(size * eta, lo, hi))

        def step(s, g, size, prev):
            u = jnp.where(s < 0, jnp.zeros_like(size), size * jnp.sign(g))
            return u.astype(prev.dtype)

        signs = jax.tree.map(sign, updates, state.prev_updates)
        sizes = jax.tree.map(step_size, signs, state.step_sizes)
        prev = jax.tree.map(step, signs, updates, sizes, state.prev_updates)
        return prev, ScaleByRpropState(step_sizes=sizes, prev_updates=prev)


scale_by_rprop = ScaleByRprop


class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no step was taken yet, and the last gradient (optax's)."""

    is_initial_step: jax.Array
    previous_gradient: Any


@register
class ScaleByOptimisticGradient(Transform):
    """Generalised optimistic gradient: extrapolate from the last gradient.

    Update (g_prev = g on the first step):
        u = (alpha + beta) * g - beta * g_prev
        g_prev = g

    Args:
        alpha: weight of the gradient, >= 0, default 1 (not a schedule).
        beta: weight of the negative momentum, >= 0, default 1 (not a schedule).

    References: Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of
    Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems:
    Proximal Point Approach", 2020 (generalised OGD); Daskalakis et al., "Training
    GANs with Optimism", 2018.

    Matches: optax.scale_by_optimistic_gradient(alpha, beta).
    """

    packable = True  # element-wise

    alpha: Scalar = 1.0
    beta: Scalar = 1.0

    _api = "jgd.scale_by_optimistic_gradient"

    def check(self):
        check_number(self, "alpha", self.alpha, 0)
        check_number(self, "beta", self.beta, 0)

    def init(self, params: Any) -> Any:
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(True),
            previous_gradient=tree.zeros_like(params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.previous_gradient, "state")
        first = state.is_initial_step

        def f(g, prev):
            # optax issue 1082: with no previous gradient, use the current one.
            g, prev = tree.promote(g, prev)
            prev = jnp.where(first, g, prev)
            ab = tree.coef(self.alpha + self.beta, g.dtype)
            return ab * g - tree.coef(self.beta, g.dtype) * prev

        new = jax.tree.map(f, updates, state.previous_gradient)
        kept = jax.tree.map(
            lambda g, p: g.astype(p.dtype), updates, state.previous_gradient
        )
        return new, ScaleByOptimisticGradientState(jnp.array(False), kept)


scale_by_optimistic_gradient = ScaleByOptimisticGradient


@register
class ScaleByPolyak(Transform):
    """Scale updates by Polyak's step size, from the loss value ``value=``.

    ``update`` takes the current loss as the keyword argument ``value`` (optax's
    ``GradientTransformationExtraArgs`` protocol); jgd chains pass it along.

    Update:
        gap = value - f_min                  (sps+: max(gap, 0))
        n2 = sum over leaves of sum(|g|**2)
        step = 0                             if n2 + eps <= 2**-52
        step = min(gap / (n2 + eps), max_learning_rate)   otherwise
        u = step * g

    Args:
        f_min: a lower bound of the loss, finite, default 0.
        max_learning_rate: the largest step, >= 0, default 1.
        eps: >= 0, default 0, added to the squared norm.
        variant: ``"sps"`` or ``"sps+"`` (static).

    Raises:
        TypeError: when ``update`` gets no ``value=``.

    References: Loizou et al., "Stochastic Polyak Step-size for SGD: An
    Adaptive Learning Rate for Fast Convergence", 2021 (SPS_max);
    Garrigos et al., "Function value learning: Adaptive learning rates based on
    the Polyak stepsize and function splitting in ERM", 2023 (sps+).

    Matches: optax.scale_by_polyak(f_min, max_learning_rate, eps, variant),
    except that a bad ``variant`` raises when built, not at the first update.
    """

    packable = True  # one global sum

    f_min: Scalar = 0.0
    max_learning_rate: Scalar = 1.0
    eps: Scalar = 0.0
    variant: str = static_field(default="sps")

    _api = "jgd.scale_by_polyak"

    def check(self):
        check_number(self, "f_min", self.f_min)
        check_number(self, "max_learning_rate", self.max_learning_rate, 0)
        check_number(self, "eps", self.eps, 0)
        if self.variant not in ("sps", "sps+"):
            raise ValueError(
                f"{owner_name(self)}: variant must be 'sps' or 'sps+'; "
                f"got {self.variant!r}."
            )

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self,
        updates: Any,
        state: Any,
        params: Any = None,
        *,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, Any]:
        if value is None:
            raise TypeError(
                f"{owner_name(self)}: update needs value= (the loss at params); "
                "call update(grads, state, params, value=loss)."
            )
        n2 = _sq_norm(updates)
        dt = n2.dtype
        if isinstance(value, (int, float)) and isinstance(self.f_min, (int, float)):
            gap = jnp.asarray(value - self.f_min, dt)  # in double, as optax
        else:
            v = jnp.asarray(value)
            gap = (v - tree.coef(self.f_min, v.dtype)).astype(dt)
        if self.variant == "sps+":
            gap = jnp.maximum(gap, jnp.zeros_like(gap))
        den = n2 + tree.coef(self.eps, dt)
        tiny = tree.coef(np.finfo(np.float64).eps, dt)  # optax's finfo(float).eps
        ratio = jnp.minimum(gap / den, tree.coef(self.max_learning_rate, dt))
        step = jnp.where(den <= tiny, jnp.zeros_like(ratio), ratio)
        return jax.tree.map(lambda g: step.astype(g.dtype) * g, updates), state


scale_by_polyak = ScaleByPolyak


@register
class ScaleBySchedule(Transform):
    """Multiply updates by a schedule of the step count.

    Update:
        u = step_size_fn(count) * g
        count = count + 1

    Args:
        step_size_fn: a schedule (a jgd schedule, whose numbers are leaves, or
            any callable of the int32 count, carried as static configuration).

    Matches: optax.scale_by_schedule(step_size_fn).
    """

    packable = True  # element-wise

    step_size_fn: Any

    _api = "jgd.scale_by_schedule"

    def check(self):
        if not callable(self.step_size_fn):
            v = self.step_size_fn
            raise TypeError(
                f"{owner_name(self)}: step_size_fn must be a schedule (a callable "
                f"of the step count); got {v!r} ({type(v).__name__})."
            )

    def init(self, params: Any) -> Any:
        return ScaleByScheduleState(count=_count0())

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        s = self.step_size_fn(state.count)
        updates = jax.tree.map(lambda g: tree.coef(s, g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=tree.safe_increment(state.count))


scale_by_schedule = ScaleBySchedule


class ScaleByDistanceOverGradientsState(NamedTuple):
    """Per-leaf largest distance travelled, per-leaf running sum of squared
    gradients (shape (1,), as optax's) and the initial params."""

    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Any


def _l2(x: jax.Array, y: jax.Array | None = None) -> jax.Array:
    d = x if y is None else jnp.subtract(*tree.promote(x, y))
    return jnp.sqrt(jnp.sum(jnp.square(d)))


@register
class ScaleByDistanceOverGradients(Transform):
    """Layer-wise DoG: a learning-rate-free step from the distance travelled.

    Per leaf (a "layer"), with x0 the initial params:

    Update:
        d = max(d, ||p - x0||)           (d starts at reps_rel * (1 + ||x0||))
        G = G + ||g||**2
        u = global_scale * d / sqrt(G + eps) * g

    Args:
        reps_rel: the initial distance relative to ``1 + ||x0||``, > 0,
            default 1e-6 (1e-4 with batch norm, the authors say).
        eps: >= 0, default 1e-8, added under the root.
        param_dtype: the dtype ``x0`` is stored in (static), default float32.
        global_scale: a finite factor, default 1 (-1 to descend without
            ``scale_by_learning_rate``).

    Raises:
        ValueError: when ``update`` gets no ``params``.

    References: Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule", 2023 (layer-wise DoG,
    L-DoG).

    Matches: optax.scale_by_distance_over_gradients(reps_rel, eps,
    param_dtype, global_scale), except on a scalar leaf: optax's update there
    has shape (1,) (its shape-(1,) sum of squares broadcasts), jgd's the
    leaf's shape. The state keeps its dtypes from step to step.
    """

    reps_rel: Scalar = 1e-6
    eps: Scalar = 1e-8
    param_dtype: DTypeLike | None = static_field(default=jnp.float32)
    global_scale: Scalar = 1.0

    _api = "jgd.scale_by_distance_over_gradients"

    def check(self):
        check_number(self, "reps_rel", self.reps_rel, 0, lo_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "global_scale", self.global_scale)
        object.__setattr__(
            self, "param_dtype", check_dtype(self, "param_dtype", self.param_dtype)
        )

    def init(self, params: Any) -> Any:
        r = self.reps_rel

        def dist0(x):
            return tree.coef(r, x.dtype) * (tree.coef(1, x.dtype) + _l2(x))

        return ScaleByDistanceOverGradientsState(
            max_dist=jax.tree.map(dist0, params),
            grad_sum_of_squares=jax.tree.map(
                lambda x: jnp.zeros(1, tree.default_float()), params
            ),
            init_params=tree.cast(params, self.param_dtype),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "the distance from the initial params")
        tree.check_same_structure(self, updates, params, "params")
        tree.check_same_structure(self, updates, state.init_params, "state")

        def dist(d, p, x0):
            return jnp.maximum(*tree.promote(d, _l2(p, x0))).astype(d.dtype)

        def sos(s, g):
            return jnp.add(*tree.promote(s, jnp.sum(jnp.square(g)))).astype(s.dtype)

        max_dist = jax.tree.map(dist, state.max_dist, params, state.init_params)
        g_sos = jax.tree.map(sos, state.grad_sum_of_squares, updates)

        def step(g, d, s):
            d, s = tree.promote(d, s)
            eta = tree.coef(self.global_scale, s.dtype) * (
                d / jnp.sqrt(s + tree.coef(self.eps, s.dtype))
            )
            # eta has shape (1,); the leaf keeps its own shape (optax's does not
            # for a scalar leaf).
            return eta.reshape(()).astype(g.dtype) * g

        updates = jax.tree.map(step, updates, max_dist, g_sos)
        return updates, ScaleByDistanceOverGradientsState(
            max_dist, g_sos, state.init_params
        )


scale_by_distance_over_gradients = ScaleByDistanceOverGradients


@register
class NormalizeByUpdateNorm(Transform):
    """Divide all updates by their global l2 norm (plus ``eps``).

    Update:
        n = sqrt(sum over leaves of sum(|g|**2))
        u = g / ((n + eps) / scale_factor)

    Args:
        scale_factor: a finite factor, default 1 (-1 to descend).
        eps: >= 0, default 1e-6.

    Matches: optax.normalize_by_update_norm(scale_factor, eps). The norm is
    over the whole tree, as optax's (not per leaf).
    """

    packable = True  # one global sum

    scale_factor: Scalar = 1.0
    eps: Scalar = 1e-6

    _api = "jgd.normalize_by_update_norm"

    def check(self):
        check_number(self, "scale_factor", self.scale_factor)
        check_number(self, "eps", self.eps, 0)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        n = jnp.sqrt(_sq_norm(updates))
        d = (n + tree.coef(self.eps, n.dtype)) / tree.coef(self.scale_factor, n.dtype)
        return jax.tree.map(lambda g: g / d.astype(g.dtype), updates), state


normalize_by_update_norm = NormalizeByUpdateNorm
