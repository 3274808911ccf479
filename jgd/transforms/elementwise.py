"""Small building blocks, most of them element-wise, under optax 0.2.8's names.

Holds the sign and step-size blocks (``scale_by_sign``, ``scale_by_rprop``,
``scale_by_optimistic_gradient``, ``scale_by_polyak``, ``scale_by_schedule``,
``scale_by_distance_over_gradients``, ``normalize_by_update_norm``), noise
and averaging (``add_noise``, ``ema``), constraints and clean-up
(``centralize``, ``keep_params_nonnegative``, ``zero_nans``, ``set_to_zero``)
and the wrappers of a user's function (``stateless``,
``stateless_with_tree_map``), with their states.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
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
from jgd.transforms.basic import ScaleByScheduleState, _count0, _ema

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


def _traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _needs_params(owner: Any, params: Any, why: str) -> None:
    if params is None:
        raise ValueError(
            f"{owner_name(owner)}: update needs params ({why}); call "
            "update(grads, state, params)."
        )


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


# --------------------------------------------------------------------------
# Noise and averages.
# --------------------------------------------------------------------------


class AddNoiseState(NamedTuple):
    """Step count (for the annealing) and the random key (optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax
    rng_key: jax.Array


def _canonical_key(key: Any) -> jax.Array:
    """A typed key from a seed, a typed key, or a raw uint32 key."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if getattr(key, "shape", ()) != ():  # a raw uint32 key (jax.random.PRNGKey)
        return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    return jax.random.key(key)


def _check_seed(owner: Any, key: Any, seed: int | None) -> None:
    """optax's deprecated ``seed``: allowed alone, with a DeprecationWarning."""
    if seed is None:
        return
    if key is not None:
        raise ValueError(
            f"{owner_name(owner)}: give key or seed, not both; got key={key!r}, "
            f"seed={seed!r}."
        )
    warnings.warn(
        f"{owner_name(owner)}: seed is deprecated (as in optax); pass key.",
        DeprecationWarning,
        stacklevel=5,  # the user, past check, __post_init__ and __init__
    )


@register
class AddNoise(Transform):
    """Add annealed Gaussian noise to the updates.

    Update:
        t = count + 1
        sigma = sqrt(eta / t**gamma)
        key, sample = split(key)
        u = g + sigma * N(0, 1)     (one key per leaf: split(sample, #leaves))

    Args:
        eta: the initial variance, >= 0.
        gamma: the annealing exponent, >= 0 (0.55 in the paper).
        key: a key (``jax.random.key``, or a raw ``jax.random.PRNGKey``) or an
            integer seed; ``None`` is seed 0 (optax warns there).
        seed: deprecated (as in optax): an integer seed, when ``key`` is None.

    References: Neelakantan et al., "Adding Gradient Noise Improves Learning
    for Very Deep Networks", 2015, Section 2.

    Matches: optax.add_noise(eta, gamma, key, seed=seed): the same key gives
    the same numbers. bf16 updates stay bf16 (optax's become float32).
    """

    eta: Scalar
    gamma: Scalar
    key: Any = None
    seed: int | None = static_field(default=None, kw_only=True)

    _api = "jgd.add_noise"

    def check(self):
        check_number(self, "eta", self.eta, 0)
        check_number(self, "gamma", self.gamma, 0)
        _check_seed(self, self.key, self.seed)
        k = self.key
        if k is None or _traced(k) or isinstance(k, jax.Array):
            return
        if isinstance(k, bool) or not isinstance(k, (int, np.integer, np.ndarray)):
            raise TypeError(
                f"{owner_name(self)}: key must be a jax.random.key, a raw "
                f"jax.random.PRNGKey or an integer seed; got {k!r} "
                f"({type(k).__name__})."
            )

    def init(self, params: Any) -> Any:
        key = self.key
        if key is None:
            key = 0 if self.seed is None else self.seed
        return AddNoiseState(count=_count0(), rng_key=_canonical_key(key))

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        count = tree.safe_increment(state.count)
        fdt = tree.default_float()
        t_gamma = count.astype(fdt) ** tree.coef(self.gamma, fdt)
        sigma = jnp.sqrt(tree.coef(self.eta, fdt) / t_gamma)
        key, sample = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample, len(leaves))
        noisy = [
            g + sigma.astype(g.dtype) * jax.random.normal(k, g.shape, g.dtype)
            for g, k in zip(leaves, keys)
        ]
        return jax.tree.unflatten(treedef, noisy), AddNoiseState(count, key)


add_noise = AddNoise


class EmaState(NamedTuple):
    """Step count and the moving average (matches optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax
    ema: Any


@register
class Ema(Transform):
    """An exponential moving average of the updates, optionally debiased.

    Update:
        ema = decay * ema + (1 - decay) * g
        u = ema / (1 - decay**t)      (debias=True)
        u = ema                       (debias=False)

    Args:
        decay: in [0, 1).
        debias: divide by ``1 - decay**t`` (static), default True.
        accumulator_dtype: dtype of the stored average (static); default the
            params' dtype.

    Matches: optax.ema(decay, debias, accumulator_dtype).
    """

    packable = True  # element-wise

    decay: Scalar
    debias: bool = static_field(default=True)
    accumulator_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.ema"

    def check(self):
        check_number(self, "decay", self.decay, 0, 1, hi_open=True)
        object.__setattr__(
            self,
            "accumulator_dtype",
            check_dtype(self, "accumulator_dtype", self.accumulator_dtype),
        )

    def init(self, params: Any) -> Any:
        return EmaState(
            count=_count0(),
            ema=tree.zeros_like(params, dtype=self.accumulator_dtype),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.ema, "state")
        new = jax.tree.map(lambda g, m: _ema(g, m, self.decay), updates, state.ema)
        count = tree.safe_increment(state.count)
        out = tree.bias_correction(new, self.decay, count) if self.debias else new
        kept = jax.tree.map(lambda m, old: m.astype(old.dtype), new, state.ema)
        return out, EmaState(count=count, ema=kept)


ema = Ema


# --------------------------------------------------------------------------
# Constraints and clean-up.
# --------------------------------------------------------------------------


@register
class Centralize(Transform):
    """Subtract from each leaf of rank >= 2 its mean over all axes but the
    first (gradient centralization); vectors and scalars pass unchanged.

    Update:
        u = g - mean(g, axes 1..ndim-1)    (g.ndim > 1)
        u = g                              (otherwise)

    References: Yong et al., "Gradient Centralization: A New Optimization
    Technique for Deep Neural Networks", 2020.

    Matches: optax.centralize().
    """

    _api = "jgd.centralize"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        def f(g):
            if g.ndim <= 1:
                return g
            return g - g.mean(tuple(range(1, g.ndim)), keepdims=True)

        return jax.tree.map(f, updates), state


centralize = Centralize


@register
class KeepParamsNonnegative(Transform):
    """Change the updates so that ``params + updates >= 0``; put it last in a
    chain. Negative params are moved to 0.

    Update:
        u = -p    where p + g < 0
        u = g     elsewhere

    A ``None`` param keeps a ``None`` update, as in optax.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Matches: optax.keep_params_nonnegative().
    """

    packable = True  # element-wise

    _api = "jgd.keep_params_nonnegative"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "it keeps params + updates >= 0")
        updates = tree.none_under_none(params, updates)
        tree.check_same_structure(self, updates, params, "params")

        def f(p, g):
            if p is None:
                return None
            p2, g2 = tree.promote(p, g)
            return jnp.where(p2 + g2 < 0, -p2, g2).astype(g.dtype)

        is_none = lambda x: x is None
        return jax.tree.map(f, params, updates, is_leaf=is_none), state


keep_params_nonnegative = KeepParamsNonnegative


class ZeroNansState(NamedTuple):
    """One bool per leaf: whether the last update had a NaN there (optax's)."""

    found_nan: Any


@register
class ZeroNans(Transform):
    """Replace NaNs in the updates by 0 and record, per leaf, whether any was
    found (the state is for the user; the transform does not read it).

    Update:
        found_nan = any(isnan(g))
        u = 0 where isnan(g), g elsewhere

    Matches: optax.zero_nans().
    """

    # Element-wise; through jgd.train's packed buckets found_nan is one bool
    # per stored array instead of per leaf.
    packable = True

    _api = "jgd.zero_nans"

    def init(self, params: Any) -> Any:
        return ZeroNansState(found_nan=jax.tree.map(lambda p: jnp.array(False), params))

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        found = jax.tree.map(lambda g: jnp.any(jnp.isnan(g)), updates)
        clean = jax.tree.map(
            lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates
        )
        return clean, ZeroNansState(found_nan=found)


zero_nans = ZeroNans


@register
class SetToZero(Transform):
    """Map every update to zeros (freezes params, e.g. under a mask).

    Update:
        u = 0

    Matches: optax.set_to_zero().
    """

    packable = True  # element-wise

    _api = "jgd.set_to_zero"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        return jax.tree.map(jnp.zeros_like, updates), state


set_to_zero = SetToZero


# --------------------------------------------------------------------------
# A user's function as a transform.
# --------------------------------------------------------------------------


@register
class Stateless(Transform):
    """A stateless transform from a function of the whole trees.

    ``f`` is static configuration, compared by identity: reusing one function
    object reuses the compiled program, while a new function (for example a
    lambda written inside the training loop) is a new static value, so ``jit``
    retraces and recompiles.

    Update:
        u = f(g, params)     (params may be None)

    Args:
        f: ``f(updates, params) -> updates`` on whole trees (static).

    Matches: optax.stateless(f).
    """

    f: Callable[[Any, Any], Any] = static_field()

    _api = "jgd.stateless"

    def check(self):
        _check_callable(self, self.f)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        return self.f(updates, params), empty_state()


stateless = Stateless


@register
class StatelessWithTreeMap(Transform):
    """A stateless transform from a function of one update leaf (and its
    param), mapped over the tree.

    ``f`` is static configuration, compared by identity: reusing one function
    object reuses the compiled program, while a new function (for example a
    lambda written inside the training loop) is a new static value, so ``jit``
    retraces and recompiles.

    Update:
        u = f(g, p)          (per leaf; f(g, None) when params is None)

    Args:
        f: ``f(update_leaf, param_leaf_or_None) -> update_leaf`` (static).

    Matches: optax.stateless_with_tree_map(f).
    """

    f: Callable[[Any, Any], Any] = static_field()

    _api = "jgd.stateless_with_tree_map"

    def check(self):
        _check_callable(self, self.f)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if params is None:
            return jax.tree.map(lambda g: self.f(g, None), updates), empty_state()
        return jax.tree.map(self.f, updates, params), empty_state()


stateless_with_tree_map = StatelessWithTreeMap


def _check_callable(owner: Any, f: Any) -> None:
    if not callable(f):
        raise TypeError(
            f"{owner_name(owner)}: f must be a function; got {f!r} "
            f"({type(f).__name__})."
        )
