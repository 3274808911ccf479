"""Per-element adaptive scaling: ``scale_by_rms`` (RMSprop),
``scale_by_stddev`` (centered RMSprop), ``scale_by_rss`` (AdaGrad) and
``scale_by_adam``, with their states. For complex updates the second moments
accumulate ``|g|**2`` (real-valued), as optax's do. For float16 leaves the
moments are kept and computed in float32 and the update is rounded back to
float16 (``_up``/``_down``): in float16 ``eps = 1e-8`` is 0 and ``g**2``
under- or overflows, so optax gives NaN or inf (optax issue #1754).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_dtype,
    check_number,
    register,
    static_field,
)
from jgd.transforms.basic import _count0, _ema
from jgd.transforms.lowp import _down, _moment_like, _up


def _abs_sq(x: jax.Array) -> jax.Array:
    """``|x|**2``: ``x * x`` for real ``x``, ``(conj(x) * x).real`` for complex
    (optax's ``numerics.abs_sq``), so complex second moments are real."""
    if jnp.iscomplexobj(x):
        return (jnp.conj(x) * x).real
    return jnp.square(x)


# --------------------------------------------------------------------------
# RMSprop family.
# --------------------------------------------------------------------------


class ScaleByRmsState(NamedTuple):
    """EMA of squared updates (matches optax's)."""

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """EMA of squared updates and a step count, for bias correction."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    nu: Any


def _rms_scaling(nu_hat, eps, eps_in_sqrt):
    if eps_in_sqrt:
        return jax.lax.rsqrt(nu_hat + tree.coef(eps, nu_hat.dtype))
    return 1 / (jnp.sqrt(nu_hat) + tree.coef(eps, nu_hat.dtype))


@dataclasses.dataclass(frozen=True)
class _RmsFields(Transform):
    """The arguments ``scale_by_rms`` and ``scale_by_stddev`` share (optax's)."""

    decay: Scalar = 0.9
    eps: Scalar = 1e-8
    initial_scale: Scalar = 0.0
    eps_in_sqrt: bool = static_field(default=True)
    bias_correction: bool = static_field(default=False)

    def check(self):
        check_number(self, "decay", self.decay, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "initial_scale", self.initial_scale, 0)


@register
class ScaleByRms(_RmsFields):
    """Divide updates by the root of an EMA of their squares (RMSprop).

    Update:
        nu = decay * nu + (1 - decay) * |g|**2
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
    bias_correction), except for float16 leaves: ``nu`` in float32 (finite
    where optax's float16 math gives NaN; see the module docstring).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    _api = "jgd.scale_by_rms"

    def init(self, params: Any) -> Any:
        nu = _moment_like(params, self.initial_scale)
        if self.bias_correction:
            return ScaleByRmsWithCountState(count=_count0(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        nu = jax.tree.map(lambda g, n: _ema(g, n, self.decay, True), updates, state.nu)
        if self.bias_correction:
            count = tree.safe_increment(state.count)
            nu_hat = tree.bias_correction(nu, self.decay, count)
        else:
            nu_hat = nu

        def step(g, n, g0):
            s = _rms_scaling(n, self.eps, self.eps_in_sqrt)
            s, g = tree.promote(s, g)
            return _down(s * g, g0.dtype)

        updates = jax.tree.map(step, updates, nu_hat, grads)
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

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: Any
    nu: Any


@register
class ScaleByStddev(_RmsFields):
    """Divide updates by their running standard deviation (centered RMSprop).

    Update:
        mu = decay * mu + (1 - decay) * g
        nu = decay * nu + (1 - decay) * |g|**2
        (mu_hat, nu_hat) = (mu, nu) / (1 - decay**t)   (bias_correction=True)
        u = g / sqrt(nu_hat - |mu_hat|**2 + eps)       (eps_in_sqrt=True)
        u = g / (sqrt(nu_hat - |mu_hat|**2) + eps)     (eps_in_sqrt=False)

    Args: as ``scale_by_rms``.

    References: Graves, "Generating Sequences With Recurrent Neural Networks",
    2013, eq. 38-41.

    Matches: optax.scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt,
    bias_correction), except for float16 leaves: moments in float32.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    _api = "jgd.scale_by_stddev"

    def init(self, params: Any) -> Any:
        mu = _moment_like(params)
        nu = _moment_like(params, self.initial_scale)
        if self.bias_correction:
            return ScaleByRStdDevWithCountState(count=_count0(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        d = self.decay
        mu = jax.tree.map(lambda g, m: _ema(g, m, d), updates, state.mu)
        nu = jax.tree.map(lambda g, n: _ema(g, n, d, True), updates, state.nu)
        if self.bias_correction:
            count = tree.safe_increment(state.count)
            mu_hat = tree.bias_correction(mu, d, count)
            nu_hat = tree.bias_correction(nu, d, count)
        else:
            mu_hat, nu_hat = mu, nu

        def step(g, m, n, g0):
            m, n = tree.promote(m, n)
            s = _rms_scaling(n - _abs_sq(m).astype(n.dtype), self.eps, self.eps_in_sqrt)
            s, g = tree.promote(s, g)
            return _down(s * g, g0.dtype)

        updates = jax.tree.map(step, updates, mu_hat, nu_hat, grads)
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
        sum_of_squares = sum_of_squares + |g|**2
        u = g / sqrt(sum_of_squares + eps)   (0 where sum_of_squares == 0)

    Args:
        initial_accumulator_value: starting sum, >= 0, default 0.1.
        eps: >= 0, default 1e-7.

    References: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", 2011, Figure 1 (diagonal form).

    Matches: optax.scale_by_rss(initial_accumulator_value, eps), except for
    float16 leaves: the sum in float32 (optax's overflows to inf, a zero step).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    initial_accumulator_value: Scalar = 0.1
    eps: Scalar = 1e-7

    _api = "jgd.scale_by_rss"

    def check(self):
        check_number(
            self, "initial_accumulator_value", self.initial_accumulator_value, 0
        )
        check_number(self, "eps", self.eps, 0)

    def init(self, params: Any) -> Any:
        return ScaleByRssState(
            sum_of_squares=_moment_like(params, self.initial_accumulator_value)
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.sum_of_squares, "state")

        def accumulate(g, s):
            g, s = tree.promote(_up(g), s)
            return _abs_sq(g).astype(s.dtype) + s

        sos = jax.tree.map(accumulate, updates, state.sum_of_squares)

        def step(g, s):
            inv = jnp.where(s > 0, jax.lax.rsqrt(s + tree.coef(self.eps, s.dtype)), 0)
            return _down(inv.astype(s.dtype) * g.astype(s.dtype), g.dtype)

        return jax.tree.map(step, updates, sos), ScaleByRssState(sum_of_squares=sos)


scale_by_rss = ScaleByRss


class ScaleByAdamState(NamedTuple):
    """Adam's step count and moments (matches ``optax.ScaleByAdamState``)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax
    mu: Any
    nu: Any


@register
class ScaleByAdam(Transform):
    """Rescale updates by Adam's bias-corrected moment estimates.

    Update:
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g|**2
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

    Matches: optax.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=),
    except for float16 leaves: moments in float32 (``mu`` in ``mu_dtype`` if
    given), so a zero gradient gives 0, not optax's NaN.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)
    nesterov: bool = static_field(default=False, kw_only=True)

    _api = "jgd.scale_by_adam"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "eps_root", self.eps_root, 0)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )

    def init(self, params: Any) -> Any:
        return ScaleByAdamState(
            count=_count0(),
            mu=_moment_like(params, dtype=self.mu_dtype),
            nu=_moment_like(params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
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

        def step(m, v, g0):
            m, v = tree.promote(m, v)
            root = jnp.sqrt(v + tree.coef(self.eps_root, v.dtype))
            return _down(m / (root + tree.coef(self.eps, v.dtype)), g0.dtype)

        updates = jax.tree.map(step, mu_hat, nu_hat, grads)
        mu = tree.cast(mu, self.mu_dtype)
        nu = jax.tree.map(lambda v, old: v.astype(old.dtype), nu, state.nu)
        return updates, ScaleByAdamState(count=t, mu=mu, nu=nu)


scale_by_adam = ScaleByAdam
