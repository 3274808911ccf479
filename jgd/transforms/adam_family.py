"""Moment-based blocks of Adam's relatives, with their states.

Holds ``scale_by_amsgrad`` (a running max of ``nu``), ``scale_by_adamax``
(the infinity norm), ``scale_by_belief`` (AdaBelief), ``scale_by_radam``
(rectified Adam), ``scale_by_yogi`` (additive ``nu``), ``scale_by_adan``
(Nesterov on gradient differences), ``scale_by_lion`` (sign of an
interpolation) and ``scale_by_adadelta``. AdaMax, RAdam and Yogi keep
optax's ``ScaleByAdamState``. For complex updates every second moment
accumulates ``|g|**2`` (real-valued), as in optax. All but Lion keep the
moments of float16 leaves in float32 and compute there (``jgd.transforms.lowp``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_dtype,
    check_number,
    owner_name,
    register,
    static_field,
)
from jgd.transforms.adaptive import ScaleByAdamState, _abs_sq
from jgd.transforms.basic import _count0, _ema
from jgd.transforms.lowp import _down, _moment_like, _up

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByBeliefState",
    "ScaleByLionState",
    "scale_by_adadelta",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_lion",
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


# --------------------------------------------------------------------------
# Adan, Lion and Adadelta.
# --------------------------------------------------------------------------


class ScaleByAdanState(NamedTuple):
    """Adan's moments, the previous gradient and the step (optax's names)."""

    m: Any
    v: Any
    n: Any
    g: Any
    t: jax.Array


@register
class ScaleByAdan(Transform):
    """Adan: Adam's moments plus a moment of gradient differences (Nesterov).

    Update (t = the new step, 1-based; d = 0 on the first step):
        d = g - g_prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * d
        n = b3 * n + (1 - b3) * |g + (1 - b2) * d|**2
        (m_hat, v_hat, n_hat) = (m, v, n) / (1 - (b1, b2, b3)**t)
        u = (m_hat + (1 - b2) * v_hat) / (sqrt(n_hat + eps_root) + eps)
        g_prev = g

    Args:
        b1: decay of the gradient moment in [0, 1), default 0.98.
        b2: decay of the difference moment in [0, 1), default 0.92.
        b3: decay of the second moment in [0, 1), default 0.99.
        eps: >= 0, default 1e-8, added outside the root.
        eps_root: >= 0, default 0, added inside the root.

    References: Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum
    Algorithm for Faster Optimizing Deep Models", 2022, Algorithm 1 (with bias
    correction, as the authors' code and optax).

    Matches: optax.scale_by_adan(b1, b2, b3, eps, eps_root), except for
    float16 leaves: ``m``, ``v``, ``n`` in float32 (``g`` stays float16).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.98
    b2: Scalar = 0.92
    b3: Scalar = 0.99
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0

    _api = "jgd.scale_by_adan"

    def check(self):
        _check_decay(self, b1=self.b1, b2=self.b2, b3=self.b3)
        _check_nonneg(self, eps=self.eps, eps_root=self.eps_root)

    def init(self, params: Any) -> Any:
        zeros = _moment_like(params)
        # The previous gradient stays in its own dtype: exact, and half the
        # memory of float32 for float16 leaves.
        g = tree.zeros_like(params)
        return ScaleByAdanState(m=zeros, v=zeros, n=zeros, g=g, t=_count0())

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.n, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        b1, b2, b3 = self.b1, self.b2, self.b3
        first = state.t == 0

        def difference(g, prev):
            g, prev = tree.promote(g, prev)
            return jnp.where(first, jnp.zeros_like(g), g - prev)

        diff = jax.tree.map(difference, updates, state.g)
        m = jax.tree.map(lambda g, m: _ema(g, m, b1), updates, state.m)
        v = jax.tree.map(lambda d, v: _ema(d, v, b2), diff, state.v)

        def nesterov_grad(g, d):
            g, d = tree.promote(g, d)
            return g + tree.coef(1 - b2, d.dtype) * d

        sq = jax.tree.map(nesterov_grad, updates, diff)
        n = jax.tree.map(lambda s, n: _ema(s, n, b3, True), sq, state.n)
        t = tree.safe_increment(state.t)
        m_hat = tree.bias_correction(m, b1, t)
        v_hat = tree.bias_correction(v, b2, t)
        n_hat = tree.bias_correction(n, b3, t)
        direction = jax.tree.map(nesterov_grad, m_hat, v_hat)
        step = _adam_step(direction, n_hat, self.eps, self.eps_root)
        g_prev = _cast_like(grads, state.g)
        step = _down_like(step, grads)
        return step, ScaleByAdanState(m=m, v=v, n=n, g=g_prev, t=t)


scale_by_adan = ScaleByAdan


class ScaleByLionState(NamedTuple):
    """Lion's step count and momentum (matches optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: Any


_LION_MODES = ("hard", "smooth", "refined")


@register
class ScaleByLion(Transform):
    """The sign of an interpolation between the gradient and its momentum.

    Update:
        x = (1 - b1) * g + b1 * mu
        u = sign(x)                         (mode="hard")
        u = tanh(smooth_beta * x)           (mode="smooth")
        u = x if |x| < 1 else sign(x)       (mode="refined")
        mu = b2 * mu + (1 - b2) * g

    Args:
        b1: interpolation weight of the momentum in [0, 1], default 0.9.
        b2: momentum decay in [0, 1], default 0.99.
        mu_dtype: dtype of ``mu`` (default: the params' dtype), static.
        mode: "hard" (the paper's sign), "smooth" or "refined"; static,
            keyword-only.
        smooth_beta: > 0, default 1, the slope of "smooth" (keyword-only).

    References: Chen et al., "Symbolic Discovery of Optimization Algorithms",
    2023, Algorithm 2 (mode="hard").

    Matches: optax.scale_by_lion(b1, b2, mu_dtype, mode=, smooth_beta=).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.99
    mu_dtype: DTypeLike | None = static_field(default=None)
    mode: Literal["hard", "smooth", "refined"] = static_field(
        default="hard", kw_only=True
    )
    smooth_beta: Scalar = dataclasses.field(default=1.0, kw_only=True)

    _api = "jgd.scale_by_lion"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1)
        check_number(self, "b2", self.b2, 0, 1)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )
        if self.mode not in _LION_MODES:
            raise ValueError(
                f"{owner_name(self)}: mode must be one of 'hard', 'smooth', "
                f"'refined'; got {self.mode!r}."
            )
        check_number(self, "smooth_beta", self.smooth_beta, 0, lo_open=True)

    def init(self, params: Any) -> Any:
        mu = tree.zeros_like(params, dtype=self.mu_dtype)
        return ScaleByLionState(count=_count0(), mu=mu)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.mu, "state")
        b1, b2 = self.b1, self.b2

        def direction(g, m):
            x = _ema(g, m, b1)  # (1 - b1) * g + b1 * m
            if self.mode == "smooth":
                return jnp.tanh(tree.coef(self.smooth_beta, x.dtype) * x)
            if self.mode == "refined":
                return jnp.where(jnp.abs(x) < 1, x, jnp.sign(x))
            return jnp.sign(x)

        step = jax.tree.map(direction, updates, state.mu)
        mu = jax.tree.map(lambda g, m: _ema(g, m, b2), updates, state.mu)
        mu = tree.cast(mu, self.mu_dtype)
        return step, ScaleByLionState(count=tree.safe_increment(state.count), mu=mu)


scale_by_lion = ScaleByLion


class ScaleByAdaDeltaState(NamedTuple):
    """EMAs of squared gradients and of squared updates (optax's names)."""

    e_g: Any
    e_x: Any


@register
class ScaleByAdadelta(Transform):
    """Scale by the ratio of the RMS of past updates to the RMS of gradients.

    Update:
        e_g = rho * e_g + (1 - rho) * |g|**2
        u = (sqrt(e_x + eps) / sqrt(e_g + eps)) * g      (e_x of the last step)
        e_x = rho * e_x + (1 - rho) * |u|**2

    Args:
        rho: decay of both EMAs in [0, 1), default 0.9.
        eps: > 0, default 1e-6 (with 0, ``e_x`` and every step stay 0).

    References: Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012,
    Algorithm 1.

    Matches: optax.scale_by_adadelta(rho, eps) for real updates. For complex
    ones jgd accumulates ``|g|**2`` where optax takes ``g**2`` (complex, and
    then a complex root): KNOWN_DIFFERENCES['adadelta complex']. For float16
    leaves ``e_g`` and ``e_x`` are float32.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    rho: Scalar = 0.9
    eps: Scalar = 1e-6

    _api = "jgd.scale_by_adadelta"

    def check(self):
        _check_decay(self, rho=self.rho)
        check_number(self, "eps", self.eps, 0, lo_open=True)

    def init(self, params: Any) -> Any:
        zeros = _moment_like(params)
        return ScaleByAdaDeltaState(e_g=zeros, e_x=zeros)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.e_g, "state")
        grads, updates = updates, jax.tree.map(_up, updates)
        rho, eps = self.rho, self.eps
        e_g = jax.tree.map(lambda g, e: _ema(g, e, rho, True), updates, state.e_g)

        def step(g, eg, ex):
            eg, ex = tree.promote(eg, ex)
            e = tree.coef(eps, eg.dtype)
            ratio, g = tree.promote(jnp.sqrt(ex + e) / jnp.sqrt(eg + e), g)
            return ratio * g

        updates = jax.tree.map(step, updates, e_g, state.e_x)
        e_x = jax.tree.map(lambda u, e: _ema(u, e, rho, True), updates, state.e_x)
        return _down_like(updates, grads), ScaleByAdaDeltaState(
            e_g=_cast_like(e_g, state.e_g), e_x=_cast_like(e_x, state.e_x)
        )


scale_by_adadelta = ScaleByAdadelta
