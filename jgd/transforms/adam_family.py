"""Moment-based blocks of Adam's relatives, with their states.

Holds ``scale_by_amsgrad`` (a running max of ``nu``), ``scale_by_adamax``
(the infinity norm), ``scale_by_belief`` (AdaBelief), ``scale_by_radam``
(rectified Adam) and ``scale_by_yogi`` (additive ``nu``), and the helpers
they share with ``jgd.transforms.adan_lion_adadelta`` (Adan, Lion, Adadelta).
AdaMax, RAdam and Yogi keep optax's ``ScaleByAdamState``. For complex updates
every second moment accumulates ``|g|**2`` (real-valued), as in optax. All
keep the moments of float16 leaves in float32 and compute there
(``jgd.transforms.lowp``).
"""

from __future__ import annotations

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
from jgd.transforms.adaptive import ScaleByAdamState, _abs_sq
from jgd.transforms.basic import _count0, _ema
from jgd.transforms.lowp import _down, _moment_like, _up

__all__ = [
    "ScaleByAmsgradState",
    "ScaleByBeliefState",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_radam",
    "scale_by_yogi",
]


# --------------------------------------------------------------------------
# Shared pieces of the Adam-like updates.
# --------------------------------------------------------------------------


def _check_decay(owner: Any, **decays: Any) -> None:
    for name, value in decays.items():
        check_number(owner, name, value, 0, 1, hi_open=True)


def _check_nonneg(owner: Any, **values: Any) -> None:
    for name, value in values.items():
        check_number(owner, name, value, 0)


def _nesterov_mu_hat(mu: Any, updates: Any, b1: Any, t: jax.Array) -> Any:
    """Dozat's look-ahead first moment, as optax writes it:
    ``b1 * mu / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)``."""

    def f(m, g):
        m, g = tree.promote(m, g)
        return tree.coef(b1, m.dtype) * m + tree.coef(1 - b1, g.dtype) * g

    return jax.tree.map(
        f,
        tree.bias_correction(mu, b1, tree.safe_increment(t)),
        tree.bias_correction(updates, b1, t),
    )


def _adam_step(mu_hat: Any, nu_hat: Any, eps: Any, eps_root: Any) -> Any:
    """``mu_hat / (sqrt(nu_hat + eps_root) + eps)`` leaf by leaf (no
    ``eps_root`` term when it is None)."""

    def f(m, v):
        m, v = tree.promote(m, v)
        if eps_root is not None:
            v = v + tree.coef(eps_root, v.dtype)
        return m / (jnp.sqrt(v) + tree.coef(eps, v.dtype))

    return jax.tree.map(f, mu_hat, nu_hat)


def _cast_like(new: Any, old: Any) -> Any:
    """``new`` in the dtypes of ``old`` (state dtypes stay fixed across steps)."""
    return jax.tree.map(lambda x, o: x.astype(o.dtype), new, old)


def _down_like(updates: Any, grads: Any) -> Any:
    """Updates computed in float32 for float16 gradients back in float16,
    saturated (``lowp._down``); other dtypes unchanged."""
    return jax.tree.map(lambda u, g: _down(u, g.dtype), updates, grads)


# --------------------------------------------------------------------------
# AMSGrad and AdaMax.
# --------------------------------------------------------------------------


class ScaleByAmsgradState(NamedTuple):
    """AMSGrad's count, moments and running max (matches optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: Any
    nu: Any
    nu_max: Any


@register
class ScaleByAmsgrad(Transform):
    """Adam whose denominator never shrinks: a running max of ``nu``.

    Update (t = count + 1):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g|**2
        mu_hat = mu / (1 - b1**t)          (bias_correction_mu, else mu)
        nu_eff = nu / (1 - b2**t)          (bias_correction_nu, else nu)
        nu_max = max(nu_max, nu_eff)
        u = mu_hat / (sqrt(nu_max + eps_root) + eps)

    Args:
        b1: first-moment decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.999.
        eps: >= 0, default 1e-8, added outside the root.
        eps_root: >= 0, default 0, added inside the root.
        mu_dtype: dtype of ``mu`` (default: the params' dtype), static.
        bias_correction_mu: divide ``mu`` by ``1 - b1**t`` (static), default True.
        bias_correction_nu: divide ``nu`` by ``1 - b2**t`` before the max
            (static), default True.

    References: Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond",
    2018, Algorithm 2 (with Adam's bias correction, as optax).

    Matches: optax.scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype,
    bias_correction_mu, bias_correction_nu), except for float16 leaves:
    moments in float32 (``mu`` in ``mu_dtype`` if given), finite where
    optax's float16 math gives NaN or inf.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)
    bias_correction_mu: bool = static_field(default=True)
    bias_correction_nu: bool = static_field(default=True)

    _api = "jgd.scale_by_amsgrad"

    def check(self):
        _check_decay(self, b1=self.b1, b2=self.b2)
        _check_nonneg(self, eps=self.eps, eps_root=self.eps_root)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )

    def init(self, params: Any) -> Any:
        return ScaleByAmsgradState(
            count=_count0(),
            mu=_moment_like(params, dtype=self.mu_dtype),
            nu=_moment_like(params),
            nu_max=_moment_like(params),
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
        mu_hat = tree.bias_correction(mu, b1, t) if self.bias_correction_mu else mu
        nu_eff = tree.bias_correction(nu, b2, t) if self.bias_correction_nu else nu
        nu_max = jax.tree.map(
            lambda old, v: jnp.maximum(*tree.promote(old, v)), state.nu_max, nu_eff
        )
        updates = _adam_step(mu_hat, nu_max, self.eps, self.eps_root)
        return _down_like(updates, grads), ScaleByAmsgradState(
            count=t,
            mu=tree.cast(mu, self.mu_dtype),
            nu=_cast_like(nu, state.nu),
            nu_max=_cast_like(nu_max, state.nu_max),
        )


scale_by_amsgrad = ScaleByAmsgrad


@register
class ScaleByAdamax(Transform):
    """Adam with the infinity norm in place of the root mean square.

    Update (t = count + 1):
        mu = b1 * mu + (1 - b1) * g
        nu = max(|g| + eps, b2 * nu)
        u = (mu / (1 - b1**t)) / nu

    Args:
        b1: first-moment decay in [0, 1), default 0.9.
        b2: decay of the infinity norm in [0, 1), default 0.999.
        eps: >= 0, default 1e-8, added to ``|g|`` (keeps ``nu`` positive).

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    2014, Algorithm 2 (AdaMax), with eps inside the max as optax.

    Matches: optax.scale_by_adamax(b1, b2, eps); state ``ScaleByAdamState``;
    except for float16 leaves: moments in float32.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8

    _api = "jgd.scale_by_adamax"

    def check(self):
        _check_decay(self, b1=self.b1, b2=self.b2)
        _check_nonneg(self, eps=self.eps)

    def init(self, params: Any) -> Any:
        zeros = _moment_like(params)
        return ScaleByAdamState(count=_count0(), mu=zeros, nu=zeros)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        b1, b2, eps = self.b1, self.b2, self.eps
        t = tree.safe_increment(state.count)
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)

        def infinity_norm(g, v):
            a = jnp.abs(g)
            a = a + tree.coef(eps, a.dtype)
            return jnp.maximum(*tree.promote(a, tree.coef(b2, v.dtype) * v))

        nu = jax.tree.map(infinity_norm, updates, state.nu)
        mu_hat = tree.bias_correction(mu, b1, t)
        updates = jax.tree.map(lambda m, v: jnp.divide(*tree.promote(m, v)), mu_hat, nu)
        updates = _down_like(updates, grads)
        return updates, ScaleByAdamState(count=t, mu=mu, nu=_cast_like(nu, state.nu))


scale_by_adamax = ScaleByAdamax


# --------------------------------------------------------------------------
# AdaBelief, RAdam and Yogi.
# --------------------------------------------------------------------------


class ScaleByBeliefState(NamedTuple):
    """AdaBelief's count, first moment and prediction-error moment (optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: Any
    nu: Any


@register
class ScaleByBelief(Transform):
    """Divide by the spread of gradients around their EMA (AdaBelief).

    Update (t = count + 1):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g - mu|**2 + eps_root
        mu_hat = mu / (1 - b1**t)
        mu_hat = b1 * mu / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)  (nesterov)
        nu_hat = nu / (1 - b2**t)
        u = mu_hat / (sqrt(nu_hat) + eps)

    Args:
        b1: first-moment decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.999.
        eps: >= 0, default 1e-16, added outside the root.
        eps_root: >= 0, default 1e-16, added to ``nu`` every step.
        nesterov: Dozat's Nesterov form (static, keyword-only).

    References: Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the
    Belief in Observed Gradients", 2020, Algorithm 2.

    Matches: optax.scale_by_belief(b1, b2, eps, eps_root, nesterov=), except
    for float16 leaves: moments in float32 (eps = 1e-16 is 0 in float16).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-16
    eps_root: Scalar = 1e-16
    nesterov: bool = static_field(default=False, kw_only=True)

    _api = "jgd.scale_by_belief"

    def check(self):
        _check_decay(self, b1=self.b1, b2=self.b2)
        _check_nonneg(self, eps=self.eps, eps_root=self.eps_root)

    def init(self, params: Any) -> Any:
        zeros = _moment_like(params)
        return ScaleByBeliefState(count=_count0(), mu=zeros, nu=zeros)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        b1, b2 = self.b1, self.b2
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)
        error = jax.tree.map(
            lambda g, m: jnp.subtract(*tree.promote(g, m)), updates, mu
        )

        def belief(e, v):
            v = _ema(e, v, b2, True)
            return v + tree.coef(self.eps_root, v.dtype)

        nu = jax.tree.map(belief, error, state.nu)
        t = tree.safe_increment(state.count)
        if self.nesterov:
            mu_hat = _nesterov_mu_hat(mu, updates, b1, t)
        else:
            mu_hat = tree.bias_correction(mu, b1, t)
        nu_hat = tree.bias_correction(nu, b2, t)
        updates = _adam_step(mu_hat, nu_hat, self.eps, None)
        return _down_like(updates, grads), ScaleByBeliefState(count=t, mu=mu, nu=nu)


scale_by_belief = ScaleByBelief


@register
class ScaleByRadam(Transform):
    """Adam with its step rectified while the variance of ``nu`` is too wide.

    Update (t = count + 1; ro, r scalars in the default float dtype):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g|**2
        ro_inf = 2 / (1 - b2) - 1
        ro = ro_inf - 2 * t * b2**t / (1 - b2**t)
        mu_hat = mu / (1 - b1**t)          (nesterov: as ``scale_by_adam``'s)
        nu_hat = nu / (1 - b2**t)
        r = sqrt((ro - 4) * (ro - 2) * ro_inf / ((ro_inf - 4) * (ro_inf - 2) * ro))
        u = r * mu_hat / (sqrt(nu_hat + eps_root) + eps)   (ro >= threshold)
        u = mu_hat                                         (otherwise)

    Args:
        b1: first-moment decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.999.
        eps: >= 0, default 1e-8, added outside the root.
        eps_root: >= 0, default 0, added inside the root.
        threshold: finite, >= 4; the rectified step is taken once ``ro``
            reaches it, default 5 (the paper's 4 plus a margin, as optax).
            Below 4, r is the root of a negative number for 2 < ro < 4 (NaN)
            and meaningless below 2, so jgd refuses what optax accepts.
        nesterov: Dozat's Nesterov form (static, keyword-only).

    References: Liu et al., "On the Variance of the Adaptive Learning Rate and
    Beyond", 2020, Algorithm 2.

    Matches: optax.scale_by_radam(b1, b2, eps, eps_root, threshold,
    nesterov=); state ``ScaleByAdamState``; except for float16 leaves:
    moments in float32.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    threshold: Scalar = 5.0
    nesterov: bool = static_field(default=False, kw_only=True)

    _api = "jgd.scale_by_radam"

    def check(self):
        _check_decay(self, b1=self.b1, b2=self.b2)
        _check_nonneg(self, eps=self.eps, eps_root=self.eps_root)
        # r's root is of a negative number for 2 < ro < 4 (NaN params from
        # then on) and meaningless below 2; optax accepts any threshold.
        check_number(self, "threshold", self.threshold, 4)

    def init(self, params: Any) -> Any:
        zeros = _moment_like(params)
        return ScaleByAdamState(count=_count0(), mu=zeros, nu=zeros)

    def rectifier(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(ro, r)`` at step ``t``: the length of the approximated simple
        moving average and the variance rectification term (NaN for ro < 4,
        where it is not used)."""
        fdt = tree.default_float()
        b2 = self.b2
        # Python arithmetic while b2 is a float (as optax's closure): ro_inf
        # and its product below are rounded once, to fdt.
        ro_inf = 2.0 / (1.0 - b2) - 1.0
        b2t = jax.lax.pow(jnp.asarray(b2, fdt), t.astype(fdt))
        ro = tree.coef(ro_inf, fdt) - (2 * t).astype(fdt) * b2t / (1 - b2t)
        num = (ro - 4.0) * (ro - 2.0) * tree.coef(ro_inf, fdt)
        den = tree.coef((ro_inf - 4.0) * (ro_inf - 2.0), fdt) * ro
        return ro, jnp.sqrt(num / den)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        b1, b2 = self.b1, self.b2
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)
        nu = jax.tree.map(lambda g, v: _ema(g, v, b2, True), updates, state.nu)
        t = tree.safe_increment(state.count)
        ro, r = self.rectifier(t)
        if self.nesterov:
            mu_hat = _nesterov_mu_hat(mu, updates, b1, t)
        else:
            mu_hat = tree.bias_correction(mu, b1, t)
        nu_hat = tree.bias_correction(nu, b2, t)
        rectify = ro >= tree.coef(self.threshold, ro.dtype)

        def step(m, v):
            u = _adam_step(r.astype(m.dtype) * m, v, self.eps, self.eps_root)
            return jnp.where(rectify, u, m)

        updates = jax.tree.map(step, mu_hat, nu_hat)
        return _down_like(updates, grads), ScaleByAdamState(count=t, mu=mu, nu=nu)


scale_by_radam = ScaleByRadam


@register
class ScaleByYogi(Transform):
    """Adam whose second moment moves additively, by at most ``(1 - b2) g**2``.

    Update (t = count + 1):
        mu = b1 * mu + (1 - b1) * g
        nu = nu - (1 - b2) * sign(nu - |g|**2) * |g|**2
        u = (mu / (1 - b1**t)) / (sqrt(nu / (1 - b2**t) + eps_root) + eps)

    Args:
        b1: first-moment decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.999.
        eps: >= 0, default 1e-3, added outside the root.
        eps_root: >= 0, default 0, added inside the root.
        initial_accumulator_value: starting value of ``mu`` and ``nu``, >= 0,
            default 1e-6.

    References: Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for
    Nonconvex Optimization", 2018, Algorithm 2 (with Adam's bias correction
    and ``mu`` started at ``initial_accumulator_value``, as optax).

    Matches: optax.scale_by_yogi(b1, b2, eps, eps_root,
    initial_accumulator_value); state ``ScaleByAdamState``; except for float16
    leaves: moments in float32.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-3
    eps_root: Scalar = 0.0
    initial_accumulator_value: Scalar = 1e-6

    _api = "jgd.scale_by_yogi"

    def check(self):
        _check_decay(self, b1=self.b1, b2=self.b2)
        _check_nonneg(
            self,
            eps=self.eps,
            eps_root=self.eps_root,
            initial_accumulator_value=self.initial_accumulator_value,
        )

    def init(self, params: Any) -> Any:
        value = self.initial_accumulator_value
        return ScaleByAdamState(
            count=_count0(),
            mu=_moment_like(params, value),
            nu=_moment_like(params, value),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        b1, b2 = self.b1, self.b2
        mu = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.mu)

        def additive(g, v):
            g, v = tree.promote(g, v)
            a = _abs_sq(g).astype(v.dtype)
            return v - tree.coef(1 - b2, v.dtype) * jnp.sign(v - a) * a

        nu = jax.tree.map(additive, updates, state.nu)
        t = tree.safe_increment(state.count)
        mu_hat = tree.bias_correction(mu, b1, t)
        nu_hat = tree.bias_correction(nu, b2, t)
        updates = _adam_step(mu_hat, nu_hat, self.eps, self.eps_root)
        return _down_like(updates, grads), ScaleByAdamState(count=t, mu=mu, nu=nu)


scale_by_yogi = ScaleByYogi
