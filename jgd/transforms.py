"""Building blocks: small gradient transformations that optimizers chain.

Holds ``scale``, ``scale_by_learning_rate`` (the only one that flips the sign),
``trace`` (momentum, Nesterov), ``scale_by_rms`` (RMSprop), ``scale_by_stddev``
(centered RMSprop), ``scale_by_rss`` (AdaGrad), ``scale_by_adam``,
``add_decayed_weights``, ``clip`` and ``clip_by_global_norm``, with their state
types. Names, arguments, defaults and state fields are optax 0.2.8's.

Each is a frozen dataclass registered as a pytree: its numeric
hyperparameters are leaves (so ``jit`` does not recompile when they change and
``vmap``/``grad`` reach them), its flags and dtypes are static. In the update
equations ``g`` is the incoming update leaf, ``t`` the 1-based step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgd import tree
from jgd.base import (
    EmptyState,
    Transform,
    check_dtype,
    check_number,
    owner_name,
    register,
    static_field,
)

__all__ = [
    "AddDecayedWeightsState",
    "ScaleByAdamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "add_decayed_weights",
    "clip",
    "clip_by_global_norm",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_stddev",
    "trace",
]


def _count0() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def _ema(g: jax.Array, m: jax.Array, decay: Any, square: bool = False) -> jax.Array:
    """``(1 - decay) * g**k + decay * m`` in the wider of the two dtypes."""
    g, m = tree.promote(g, m)
    if square:
        g = jnp.square(g)
    return tree.coef(1 - decay, g.dtype) * g + tree.coef(decay, m.dtype) * m


# --------------------------------------------------------------------------
# Scaling by constants and by the learning rate.
# --------------------------------------------------------------------------


@register
class Scale(Transform):
    """Multiply updates by a fixed scalar.

    Update:
        u = step_size * g

    Args:
        step_size: a finite number (may be negative).

    Matches: optax.scale(step_size).
    """

    step_size: Any

    _api = "jgd.scale"

    def check(self):
        check_number(self, "step_size", self.step_size)

    def init(self, params):
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        s = self.step_size
        return jax.tree.map(lambda g: tree.coef(s, g.dtype) * g, updates), state


scale = Scale


class ScaleByScheduleState(NamedTuple):
    """Step counter for a scheduled scale (matches optax's)."""

    count: jax.Array  # int32 scalar


@register
class ScaleByLearningRate(Transform):
    """Multiply updates by ``-learning_rate``: the step that ``apply_updates``
    adds goes downhill. The only transform that flips the sign.

    Update:
        u = -lr(t - 1) * g     (lr a float, or a schedule of the step count)

    Args:
        learning_rate: a finite float ``>= 0`` or a schedule (a jgd schedule or
            any callable of the int32 step count). ``None`` leaves updates
            unchanged.
        flip_sign: multiply by ``-learning_rate`` (default) or ``+learning_rate``.

    State: ``EmptyState()`` for a float, ``ScaleByScheduleState(count)`` for a
    schedule, as in optax.

    Matches: optax.scale_by_learning_rate(learning_rate, flip_sign=flip_sign).
    """

    learning_rate: Any = None
    flip_sign: bool = static_field(True, kw_only=True)

    _api = "jgd.scale_by_learning_rate"

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True, none=True)

    def init(self, params):
        if callable(self.learning_rate):
            return ScaleByScheduleState(count=_count0())
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        lr = self.learning_rate
        if lr is None:
            return updates, state
        sign = -1 if self.flip_sign else 1
        if callable(lr):
            step = sign * lr(state.count)
            state = ScaleByScheduleState(count=tree.safe_increment(state.count))
        else:
            step = sign * lr
        return jax.tree.map(lambda g: tree.coef(step, g.dtype) * g, updates), state


scale_by_learning_rate = ScaleByLearningRate


# --------------------------------------------------------------------------
# Momentum.
# --------------------------------------------------------------------------


class TraceState(NamedTuple):
    """Momentum buffer (matches ``optax.TraceState``)."""

    trace: Any


@register
class Trace(Transform):
    """Accumulate a momentum trace of past updates (heavy ball or Nesterov).

    Update:
        trace = g + decay * trace
        u     = trace                      (nesterov=False)
        u     = g + decay * trace          (nesterov=True, with the new trace)

    Args:
        decay: momentum coefficient in [0, 1).
        nesterov: use Nesterov's look-ahead form.
        accumulator_dtype: dtype of the trace (default: the params' dtype).

    References: Polyak, "Some methods of speeding up the convergence of
    iteration methods", 1964; Sutskever et al., "On the importance of
    initialization and momentum in deep learning", 2013, eq. 3-4.

    Matches: optax.trace(decay, nesterov, accumulator_dtype).
    """

    decay: Any
    nesterov: bool = static_field(False)
    accumulator_dtype: Any = static_field(None)

    _api = "jgd.trace"

    def check(self):
        check_number(self, "decay", self.decay, 0, 1, hi_open=True)
        object.__setattr__(
            self,
            "accumulator_dtype",
            check_dtype(self, "accumulator_dtype", self.accumulator_dtype),
        )

    def init(self, params):
        return TraceState(trace=tree.zeros_like(params, dtype=self.accumulator_dtype))

    def update(self, updates, state, params=None, **extra_args):
        tree.check_same_structure(self, updates, state.trace, "state")
        d = self.decay

        def f(g, t):
            g, t = tree.promote(g, t)
            return g + tree.coef(d, t.dtype) * t

        new_trace = jax.tree.map(f, updates, state.trace)
        updates = jax.tree.map(f, updates, new_trace) if self.nesterov else new_trace
        return updates, TraceState(trace=tree.cast(new_trace, self.accumulator_dtype))


trace = Trace


# --------------------------------------------------------------------------
# RMSprop family.
# --------------------------------------------------------------------------


class ScaleByRmsState(NamedTuple):
    """EMA of squared updates (matches optax's)."""

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """EMA of squared updates and a step count, for bias correction."""

    count: jax.Array
    nu: Any


def _rms_scaling(nu_hat, eps, eps_in_sqrt):
    if eps_in_sqrt:
        return jax.lax.rsqrt(nu_hat + tree.coef(eps, nu_hat.dtype))
    return 1 / (jnp.sqrt(nu_hat) + tree.coef(eps, nu_hat.dtype))


@register
class ScaleByRms(Transform):
    """Divide updates by the root of an EMA of their squares (RMSprop).

    Update:
        nu = decay * nu + (1 - decay) * g**2
        nu_hat = nu / (1 - decay**t)      (bias_correction=True, else nu)
        u = g / sqrt(nu_hat + eps)        (eps_in_sqrt=True)
        u = g / (sqrt(nu_hat) + eps)      (eps_in_sqrt=False)

    Args:
        decay: EMA decay in [0, 1), default 0.9.
        eps: >= 0, default 1e-8.
        initial_scale: starting value of ``nu``, >= 0, default 0.
        eps_in_sqrt: where eps goes (static).
        bias_correction: divide ``nu`` by ``1 - decay**t`` (static).

    References: Hinton, Srivastava & Swersky, "Neural Networks for Machine
    Learning", lecture 6e, 2012.

    Matches: optax.scale_by_rms(decay, eps, initial_scale, eps_in_sqrt,
    bias_correction).
    """

    decay: Any = 0.9
    eps: Any = 1e-8
    initial_scale: Any = 0.0
    eps_in_sqrt: bool = static_field(True)
    bias_correction: bool = static_field(False)

    _api = "jgd.scale_by_rms"

    def check(self):
        check_number(self, "decay", self.decay, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "initial_scale", self.initial_scale, 0)

    def init(self, params):
        nu = tree.full_like(params, self.initial_scale)
        if self.bias_correction:
            return ScaleByRmsWithCountState(count=_count0(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(self, updates, state, params=None, **extra_args):
        tree.check_same_structure(self, updates, state.nu, "state")
        nu = jax.tree.map(lambda g, n: _ema(g, n, self.decay, True), updates, state.nu)
        if self.bias_correction:
            count = tree.safe_increment(state.count)
            nu_hat = tree.bias_correction(nu, self.decay, count)
        else:
            nu_hat = nu

        def step(g, n):
            s = _rms_scaling(n, self.eps, self.eps_in_sqrt)
            s, g = tree.promote(s, g)
            return s * g

        updates = jax.tree.map(step, updates, nu_hat)
        if self.bias_correction:
            return updates, ScaleByRmsWithCountState(count=count, nu=nu)
        return updates, ScaleByRmsState(nu=nu)


scale_by_rms = ScaleByRms


class ScaleByRStdDevState(NamedTuple):
    """EMAs of updates and of their squares (matches optax's)."""

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """EMAs of updates and squares and a step count, for bias correction."""

    count: jax.Array
    mu: Any
    nu: Any


@register
class ScaleByStddev(Transform):
    """Divide updates by their running standard deviation (centered RMSprop).

    Update:
        mu = decay * mu + (1 - decay) * g
        nu = decay * nu + (1 - decay) * g**2
        (mu_hat, nu_hat) = (mu, nu) / (1 - decay**t)   (bias_correction=True)
        u = g / sqrt(nu_hat - mu_hat**2 + eps)         (eps_in_sqrt=True)
        u = g / (sqrt(nu_hat - mu_hat**2) + eps)       (eps_in_sqrt=False)

    Args: as ``scale_by_rms``.

    References: Graves, "Generating Sequences With Recurrent Neural Networks",
    2013, eq. 38-41.

    Matches: optax.scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt,
    bias_correction).
    """

    decay: Any = 0.9
    eps: Any = 1e-8
    initial_scale: Any = 0.0
    eps_in_sqrt: bool = static_field(True)
    bias_correction: bool = static_field(False)

    _api = "jgd.scale_by_stddev"

    check = ScaleByRms.check

    def init(self, params):
        mu = tree.zeros_like(params)
        nu = tree.full_like(params, self.initial_scale)
        if self.bias_correction:
            return ScaleByRStdDevWithCountState(count=_count0(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(self, updates, state, params=None, **extra_args):
        tree.check_same_structure(self, updates, state.nu, "state")
        d = self.decay
        mu = jax.tree.map(lambda g, m: _ema(g, m, d), updates, state.mu)
        nu = jax.tree.map(lambda g, n: _ema(g, n, d, True), updates, state.nu)
        if self.bias_correction:
            count = tree.safe_increment(state.count)
            mu_hat = tree.bias_correction(mu, d, count)
            nu_hat = tree.bias_correction(nu, d, count)
        else:
            mu_hat, nu_hat = mu, nu

        def step(g, m, n):
            m, n = tree.promote(m, n)
            s = _rms_scaling(n - jnp.square(m), self.eps, self.eps_in_sqrt)
            s, g = tree.promote(s, g)
            return s * g

        updates = jax.tree.map(step, updates, mu_hat, nu_hat)
        if self.bias_correction:
            return updates, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
        return updates, ScaleByRStdDevState(mu=mu, nu=nu)


scale_by_stddev = ScaleByStddev


# --------------------------------------------------------------------------
# AdaGrad and Adam.
# --------------------------------------------------------------------------


class ScaleByRssState(NamedTuple):
    """Sum of squared updates to date (matches optax's)."""

    sum_of_squares: Any


@register
class ScaleByRss(Transform):
    """Divide updates by the root of the sum of all squared updates (AdaGrad).

    Update:
        sum_of_squares = sum_of_squares + g**2
        u = g / sqrt(sum_of_squares + eps)   (0 where sum_of_squares == 0)

    Args:
        initial_accumulator_value: starting sum, >= 0, default 0.1.
        eps: >= 0, default 1e-7.

    References: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", 2011, Figure 1 (diagonal form).

    Matches: optax.scale_by_rss(initial_accumulator_value, eps).
    """

    initial_accumulator_value: Any = 0.1
    eps: Any = 1e-7

    _api = "jgd.scale_by_rss"

    def check(self):
        check_number(self, "initial_accumulator_value", self.initial_accumulator_value, 0)
        check_number(self, "eps", self.eps, 0)

    def init(self, params):
        return ScaleByRssState(
            sum_of_squares=tree.full_like(params, self.initial_accumulator_value)
        )

    def update(self, updates, state, params=None, **extra_args):
        tree.check_same_structure(self, updates, state.sum_of_squares, "state")

        def accumulate(g, s):
            g, s = tree.promote(g, s)
            return jnp.square(g) + s

        sos = jax.tree.map(accumulate, updates, state.sum_of_squares)

        def step(g, s):
            inv = jnp.where(s > 0, jax.lax.rsqrt(s + tree.coef(self.eps, s.dtype)), 0)
            return inv.astype(s.dtype) * g.astype(s.dtype)

        return jax.tree.map(step, updates, sos), ScaleByRssState(sum_of_squares=sos)


scale_by_rss = ScaleByRss


class ScaleByAdamState(NamedTuple):
    """Adam's step count and moments (matches ``optax.ScaleByAdamState``)."""

    count: jax.Array  # int32 scalar
    mu: Any
    nu: Any


@register
class ScaleByAdam(Transform):
    """Rescale updates by Adam's bias-corrected moment estimates.

    Update:
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        mu_hat = mu / (1 - b1**t)
        mu_hat = b1 * mu / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)  (nesterov)
        nu_hat = nu / (1 - b2**t)
        u = mu_hat / (sqrt(nu_hat + eps_root) + eps)

    Args:
        b1: first-moment decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.999.
        eps: >= 0, default 1e-8, added outside the root.
        eps_root: >= 0, default 0, added inside the root.
        mu_dtype: dtype of ``mu`` (default: the params' dtype), static.
        nesterov: Dozat's Nesterov form (NAdam), static, keyword-only.

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    2014, Algorithm 1; Dozat, "Incorporating Nesterov Momentum into Adam", 2016.

    Matches: optax.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=).
    """

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    eps_root: Any = 0.0
    mu_dtype: Any = static_field(None)
    nesterov: bool = static_field(False, kw_only=True)

    _api = "jgd.scale_by_adam"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "eps_root", self.eps_root, 0)
        object.__setattr__(self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype))

    def init(self, params):
        return ScaleByAdamState(
            count=_count0(),
            mu=tree.zeros_like(params, dtype=self.mu_dtype),
            nu=tree.zeros_like(params),
        )

    def update(self, updates, state, params=None, **extra_args):
        tree.check_same_structure(self, updates, state.nu, "state")
        b1, b2 = self.b1, self.b2
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: _ema(g, v, b2, True), updates, state.nu)
        t = tree.safe_increment(state.count)
        if self.nesterov:
            t1 = tree.safe_increment(t)

            def nesterov_mu(m, g):
                m, g = tree.promote(m, g)
                return tree.coef(b1, m.dtype) * m + tree.coef(1 - b1, g.dtype) * g

            mu_hat = jax.tree.map(
                nesterov_mu,
                tree.bias_correction(mu, b1, t1),
                tree.bias_correction(updates, b1, t),
            )
        else:
            mu_hat = tree.bias_correction(mu, b1, t)
        nu_hat = tree.bias_correction(nu, b2, t)

        def step(m, v):
            m, v = tree.promote(m, v)
            root = jnp.sqrt(v + tree.coef(self.eps_root, v.dtype))
            return m / (root + tree.coef(self.eps, v.dtype))

        updates = jax.tree.map(step, mu_hat, nu_hat)
        mu = tree.cast(mu, self.mu_dtype)
        nu = jax.tree.map(lambda v, old: v.astype(old.dtype), nu, state.nu)
        return updates, ScaleByAdamState(count=t, mu=mu, nu=nu)


scale_by_adam = ScaleByAdam


# --------------------------------------------------------------------------
# Weight decay and clipping.
# --------------------------------------------------------------------------


class AddDecayedWeightsState(NamedTuple):
    """Step count for a scheduled weight decay (optax: WeightDecaySchedule)."""

    count: jax.Array


@register
class AddDecayedWeights(Transform):
    """Add ``weight_decay * params`` to the updates (decoupled weight decay when
    placed before the learning rate, as in AdamW).

    Update:
        u = g + weight_decay * p        (where mask is True; u = g elsewhere)

    Args:
        weight_decay: float >= 0 or a schedule, default 0.
        mask: a pytree of bools shaped like the params, or a callable
            ``params -> such a tree``; ``None`` decays every leaf.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Matches: optax.add_decayed_weights(weight_decay, mask); with a mask optax
    wraps the state in ``MaskedState``, jgd keeps it flat (same leaves).
    """

    weight_decay: Any = 0.0
    mask: Any = None

    _api = "jgd.add_decayed_weights"

    def check(self):
        check_number(self, "weight_decay", self.weight_decay, 0, schedule=True)

    def init(self, params):
        if callable(self.weight_decay):
            return AddDecayedWeightsState(count=_count0())
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError(
                f"{owner_name(self)}: update needs params (weight decay adds "
                "weight_decay * params); call update(grads, state, params)."
            )
        tree.check_same_structure(self, updates, params, "params")
        wd = self.weight_decay
        if callable(wd):
            s = wd(state.count)
            state = AddDecayedWeightsState(count=tree.safe_increment(state.count))
        else:
            s = wd
            if isinstance(wd, (int, float)) and wd == 0:
                return updates, state

        def decay(g, p):
            g, p = tree.promote(g, p)
            return g + tree.coef(s, p.dtype) * p

        if self.mask is None:
            return jax.tree.map(decay, updates, params), state
        mask = self.mask(params) if callable(self.mask) else self.mask
        tree.check_same_structure(self, updates, mask, "mask", shapes=False)

        def masked(g, p, m):
            if isinstance(m, bool):
                return decay(g, p) if m else g
            return jnp.where(m, decay(g, p), g)

        return jax.tree.map(masked, updates, params, mask), state


add_decayed_weights = AddDecayedWeights


@register
class Clip(Transform):
    """Clip every update element to ``[-max_delta, max_delta]``.

    Update:
        u = clip(g, -max_delta, max_delta)

    Args:
        max_delta: >= 0.

    Matches: optax.clip(max_delta).
    """

    max_delta: Any

    _api = "jgd.clip"

    def check(self):
        check_number(self, "max_delta", self.max_delta, 0)

    def init(self, params):
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        d = self.max_delta

        def f(g):
            c = tree.coef(d, g.dtype)
            return jnp.clip(g, -c, c)

        return jax.tree.map(f, updates), state


clip = Clip


@register
class ClipByGlobalNorm(Transform):
    """Rescale all updates together so their global l2 norm is at most
    ``max_norm``.

    Update:
        n = sqrt(sum over leaves of sum(g**2))
        u = g                    if n < max_norm
        u = g / n * max_norm     otherwise

    Args:
        max_norm: > 0.

    References: Pascanu, Mikolov & Bengio, "On the difficulty of training
    recurrent neural networks", 2013, Algorithm 1.

    Matches: optax.clip_by_global_norm(max_norm).
    """

    max_norm: Any

    _api = "jgd.clip_by_global_norm"

    def check(self):
        check_number(self, "max_norm", self.max_norm, 0, lo_open=True)

    def init(self, params):
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        n = tree.global_norm(updates)
        keep = n < tree.coef(self.max_norm, n.dtype)

        def f(g):
            scaled = g / n.astype(g.dtype) * tree.coef(self.max_norm, g.dtype)
            return jnp.where(keep, g, scaled)

        return jax.tree.map(f, updates), state


clip_by_global_norm = ClipByGlobalNorm
