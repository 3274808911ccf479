"""MoMo, as ``optax.contrib`` has it: momentum methods whose step size comes
from a model of the loss (a Polyak step capped by the learning rate).

Holds ``momo`` (SGD with momentum) with ``MomoState`` and ``momo_adam``
(Adam) with ``MomoAdamState``. Both read the loss: pass it to ``update`` as
``value=`` (``jax.value_and_grad`` gives it; ``jgd.train.make_step`` passes
it).
"""

# No ``from __future__ import annotations``: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgd import tree
from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    Transform,
    check_number,
    owner_name,
    register,
    static_field,
)

__all__ = ["MomoAdamState", "MomoState", "momo", "momo_adam"]

# optax compares the squared momentum norm with jnp.finfo(float).eps, float64's
# epsilon whatever the params' dtype: below it MoMo takes no Polyak step.
_TINY = float(jnp.finfo(float).eps)


def _check_call(owner: Any, params: Any, value: Any) -> None:
    name = owner_name(owner)
    if params is None:
        raise ValueError(
            f"{name}: update needs params (the model of the loss is linear in "
            "them); call update(grads, state, params, value=loss)."
        )
    if value is None:
        raise ValueError(
            f"{name}: update needs value=, the loss at params (jax.value_and_grad "
            "gives it); call update(grads, state, params, value=loss)."
        )


def _scalar(x: Any, dtype: Any) -> jax.Array:
    """A scalar (a Python number as exactly as optax's weak constant, or an
    array) as ``dtype``."""
    return (
        jnp.asarray(x).astype(dtype) if hasattr(x, "dtype") else jnp.asarray(x, dtype)
    )


# --------------------------------------------------------------------------
# MoMo.
# --------------------------------------------------------------------------


class MomoState(NamedTuple):
    """MoMo's momentum, loss and inner-product averages, lower bound and count
    (matches ``optax.contrib.MomoState``)."""

    exp_avg: Any
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax


@register
class Momo(Transform):
    """MoMo: SGD with momentum whose step is the Polyak step of a model of the
    loss, capped by the learning rate.

    The averages start at the first gradient and loss (``beta`` is 0 at the
    first step). With ``adapt_lower_bound`` the lower bound ``lb`` of the loss
    is estimated on the fly (lowered when the model says it is too high).

    Update (f the loss given as ``value=``, lr the learning rate at count,
    k = 1 + lr * weight_decay):
        f_bar = beta * f_bar + (1 - beta) * f
        d = beta * d + (1 - beta) * g
        gamma = beta * gamma + (1 - beta) * <g, w>
        lb = max((k * (f_bar - gamma) + <d, w>) / (2 k), lower_bound)
             when that model is below k * lb         (adapt_lower_bound)
        tau = min(lr, max(k * (f_bar - lb - gamma) + <d, w>, 0) / |d|**2)
        tau = 0 when |d|**2 <= float64 eps
        u = -(lr * weight_decay) / k * w - tau * d
        lb = max(f_bar + <d, w> - gamma - tau * |d|**2 / 2, lower_bound)
                                                        (adapt_lower_bound)

    Args:
        learning_rate: the cap on the step, float >= 0 or a schedule, default
            1.0 (rather large, as the Polyak step usually decides).
        beta: momentum in [0, 1), default 0.9.
        lower_bound: a lower bound of the loss, finite, default 0.
        weight_decay: >= 0, default 0.
        adapt_lower_bound: estimate the lower bound online (static).

    State: ``MomoState``; ``f_bar``, ``gamma`` and ``lb`` are scalars of the
    params' lowest dtype.

    Raises:
        ValueError: when ``update`` gets no ``params`` or no ``value=``.

    Example:
        >>> import jgd, jax, jax.numpy as jnp
        >>> f = lambda w: jnp.sum(w**2)
        >>> opt, w = jgd.contrib.momo(), jnp.array([1.0, 2.0])
        >>> loss, g = jax.value_and_grad(f)(w)
        >>> jgd.apply_updates(w, opt.update(g, opt.init(w), w, value=loss)[0])
        Array([0.5, 1. ], dtype=float32)

    References: Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum
    Models for Adaptive Learning Rates", ICML 2024, Algorithm 1 (MoMo) and
    Algorithm 3 (online lower bound).

    Matches: optax.contrib.momo(learning_rate, beta, lower_bound,
    weight_decay, adapt_lower_bound).
    """

    # Element-wise except for tree-wide inner products and norms: the same
    # numbers on packed buckets.
    packable = True

    learning_rate: ScalarOrSchedule = 1.0
    beta: Scalar = 0.9
    lower_bound: Scalar = 0.0
    weight_decay: Scalar = 0.0
    adapt_lower_bound: bool = static_field(default=False)

    _api = "jgd.contrib.momo"

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        check_number(self, "beta", self.beta, 0, 1, hi_open=True)
        check_number(self, "lower_bound", self.lower_bound)
        check_number(self, "weight_decay", self.weight_decay, 0)

    def init(self, params: Any) -> Any:
        dt = tree.dtype(params, "lowest")
        return MomoState(
            exp_avg=tree.zeros_like(params),
            barf=jnp.zeros([], dt),
            gamma=jnp.zeros([], dt),
            lb=_scalar(self.lower_bound, dt),
            count=jnp.zeros([], jnp.int32),
        )

    def update(
        self,
        updates: Any,
        state: Any,
        params: Any = None,
        *,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, Any]:
        _check_call(self, params, value)
        tree.check_same_structure(self, updates, state.exp_avg, "state")
        tree.check_same_structure(self, updates, params, "params")
        count, dt = state.count, state.barf.dtype
        fdt = tree.default_float()
        # optax's jnp.where(count == 0, 0.0, beta): a default-float scalar.
        bt = jnp.where(count == 0, jnp.zeros([], fdt), tree.coef(self.beta, fdt))
        bt1 = 1 - bt

        def ema(old, new):
            a = bt.astype(old.dtype) * old
            b = bt1.astype(new.dtype) * new
            a, b = tree.promote(a, b)
            return (a + b).astype(old.dtype)

        barf = ema(state.barf, jnp.asarray(value, dt))
        exp_avg = jax.tree.map(ema, state.exp_avg, updates)
        gamma = ema(state.gamma, jnp.asarray(tree.vdot(updates, params)))
        norm = jnp.asarray(tree.norm(exp_avg, squared=True))
        iprod = jnp.asarray(tree.vdot(exp_avg, params))
        lr = self.learning_rate
        alpha = lr(count) if callable(lr) else lr
        wd = self.weight_decay
        k = 1 + alpha * wd
        kk = _scalar(k, dt)
        lower = _scalar(self.lower_bound, dt)
        if self.adapt_lower_bound:
            cap = kk * (barf - gamma) + iprod.astype(dt)
            lowered = jnp.maximum(cap / _scalar(2 * k, dt), lower)
            lb = jnp.where(cap < kk * state.lb, lowered, state.lb)
        else:
            lb = state.lb
        t1 = jnp.maximum(kk * (barf - lb - gamma) + iprod.astype(dt), 0) / norm.astype(
            dt
        )
        t1 = jnp.where(norm <= _scalar(_TINY, norm.dtype), jnp.zeros([], dt), t1)
        tau = jnp.minimum(_scalar(alpha, dt), t1)
        shrink = -(alpha * wd) / (1 + alpha * wd)

        def step(d, p):
            return _scalar(shrink, p.dtype) * p - tau.astype(d.dtype) * d

        updates = jax.tree.map(step, exp_avg, params)
        if self.adapt_lower_bound:
            model = (barf + iprod.astype(dt) - gamma) - _scalar(
                0.5, dt
            ) * tau * norm.astype(dt)
            lb = jnp.maximum(model, lower)
        else:
            lb = state.lb
        return updates, MomoState(
            exp_avg=exp_avg,
            barf=barf,
            gamma=gamma,
            lb=lb.astype(dt),
            count=tree.safe_increment(count),
        )


momo = Momo


# --------------------------------------------------------------------------
# MoMo-Adam.
# --------------------------------------------------------------------------


class MomoAdamState(NamedTuple):
    """MoMo-Adam's moments, loss and inner-product averages, lower bound and
    count (matches ``optax.contrib.MomoAdamState``)."""

    exp_avg: Any
    exp_avg_sq: Any
    barf: jax.Array
    gamma: jax.Array
    lb: jax.Array
    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax


@register
class MomoAdam(Transform):
    """MoMo-Adam: Adam(W) whose step is the Polyak step of a model of the loss
    in Adam's metric, capped by the learning rate.

    Update (t = step, 1-based; f the loss given as ``value=``, lr the learning
    rate at t - 1, k = 1 + lr * weight_decay, bc1 = 1 - b1**t):
        f_bar = b1 * f_bar + (1 - b1) * f
        d = b1 * d + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * conj(g)      (g * g for real g)
        D = eps + sqrt(v / (1 - b2**t))                 (Adam's preconditioner)
        gamma = b1 * gamma + (1 - b1) * <g, w>
        lb = max((k * (f_bar - gamma) + <d, w>) / (2 bc1 k), lower_bound)
             when that model is below k * bc1 * lb   (adapt_lower_bound)
        tau = min(lr / bc1, max(k * (f_bar - bc1 lb - gamma) + <d, w>, 0) / <d, d / D>)
        tau = 0 when <d, d / D> <= float64 eps
        u = -(lr * weight_decay) / k * w - tau * d / D
        lb = max((f_bar + <d, w> - gamma - tau * <d, d / D> / 2) / bc1, lower_bound)
                                                        (adapt_lower_bound)

    Args:
        learning_rate: the cap on the step, float >= 0 or a schedule, default
            1e-2.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps: >= 0, default 1e-8.
        lower_bound: a lower bound of the loss, finite, default 0.
        weight_decay: >= 0, default 0 (decoupled, as AdamW).
        adapt_lower_bound: estimate the lower bound online (static).

    Raises:
        ValueError: when ``update`` gets no ``params`` or no ``value=``.

    Example:
        >>> import jgd, jax, jax.numpy as jnp
        >>> f = lambda w: jnp.sum(w**2)
        >>> opt, w = jgd.contrib.momo_adam(), jnp.array([1.0, 2.0])
        >>> loss, g = jax.value_and_grad(f)(w)
        >>> u, state = opt.update(g, opt.init(w), w, value=loss)
        >>> int(state.count)
        1

    References: Schaipp, Ohana, Eickenberg, Defazio & Gower, "MoMo: Momentum
    Models for Adaptive Learning Rates", ICML 2024, Algorithm 2 (MoMo-Adam).

    Matches: optax.contrib.momo_adam(learning_rate, b1, b2, eps, lower_bound,
    weight_decay, adapt_lower_bound) on real parameters; for complex ones the
    second moment accumulates ``|g|**2`` where optax's accumulates ``g * g``
    (tests/catalogue/contrib_b.py KNOWN_DIFFERENCES['complex second moments']).
    """

    # Element-wise except for tree-wide inner products: the same numbers on
    # packed buckets.
    packable = True

    learning_rate: ScalarOrSchedule = 1e-2
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    lower_bound: Scalar = 0.0
    weight_decay: Scalar = 0.0
    adapt_lower_bound: bool = static_field(default=False)

    _api = "jgd.contrib.momo_adam"

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "lower_bound", self.lower_bound)
        check_number(self, "weight_decay", self.weight_decay, 0)

    def init(self, params: Any) -> Any:
        dt = tree.dtype(params, "lowest")
        return MomoAdamState(
            exp_avg=tree.zeros_like(params),
            exp_avg_sq=tree.zeros_like(params),
            barf=jnp.zeros([], dt),
            gamma=jnp.zeros([], dt),
            lb=_scalar(self.lower_bound, dt),
            count=jnp.zeros([], jnp.int32),
        )

    def update(
        self,
        updates: Any,
        state: Any,
        params: Any = None,
        *,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, Any]:
        _check_call(self, params, value)
        tree.check_same_structure(self, updates, state.exp_avg, "state")
        tree.check_same_structure(self, updates, params, "params")
        count, dt = state.count, state.barf.dtype
        fdt = tree.default_float()
        t = tree.safe_increment(count)
        b1, b2 = self.b1, self.b2

        def ema(old, new, decay, square=False):
            a = tree.coef(decay, old.dtype) * old
            b = tree.coef(1 - decay, new.dtype) * new
            if square:  # optax's (1 - b2) * g * g, left to right; |g|^2 if complex
                b = b * (jnp.conj(new) if jnp.iscomplexobj(new) else new)
            a, b = tree.promote(a, b)
            return (a + b).astype(old.dtype)

        barf = ema(state.barf, jnp.asarray(value, dt), b1)
        exp_avg = jax.tree.map(lambda d, g: ema(d, g, b1), state.exp_avg, updates)
        exp_avg_sq = jax.tree.map(
            lambda v, g: ema(v, g, b2, square=True), state.exp_avg_sq, updates
        )
        # 1 - b**t as optax: a default-float power of the int32 count.
        bc2 = (1 - jax.lax.pow(tree.coef(b2, fdt), t)).astype(dt)
        bc1 = (1 - jax.lax.pow(tree.coef(b1, fdt), t)).astype(dt)

        def precondition(v):
            v, c = tree.promote(v, bc2)
            return tree.coef(self.eps, v.dtype) + jnp.sqrt(v / c)

        precond = jax.tree.map(precondition, exp_avg_sq)
        weighted = jax.tree.map(lambda d, D: d / D, exp_avg, precond)
        norm = jnp.asarray(tree.vdot(exp_avg, weighted))
        gamma = ema(state.gamma, jnp.asarray(tree.vdot(updates, params)), b1)
        iprod = jnp.asarray(tree.vdot(exp_avg, params)).astype(dt)
        lr = self.learning_rate
        alpha = lr(count) if callable(lr) else lr
        wd = self.weight_decay
        k = 1 + alpha * wd
        kk = _scalar(k, dt)
        lower = _scalar(self.lower_bound, dt)
        if self.adapt_lower_bound:
            cap = kk * (barf - gamma) + iprod
            lowered = jnp.maximum(cap / (_scalar(2, dt) * bc1 * kk), lower)
            lb = jnp.where(cap < kk * bc1 * state.lb, lowered, state.lb)
        else:
            lb = state.lb
        t1 = jnp.maximum(kk * (barf - bc1 * lb - gamma) + iprod, 0) / norm.astype(dt)
        t1 = jnp.where(norm <= _scalar(_TINY, norm.dtype), jnp.zeros([], dt), t1)
        tau = jnp.minimum(_scalar(alpha, dt) / bc1, t1)
        shrink = -(alpha * wd) / (1 + alpha * wd)

        def step(d, D, p):
            return _scalar(shrink, p.dtype) * p - tau.astype(d.dtype) * d / D

        updates = jax.tree.map(step, exp_avg, precond, params)
        if self.adapt_lower_bound:
            n = norm.astype(dt)
            model = (barf + iprod - gamma) - _scalar(0.5, dt) * tau * n
            lb = jnp.maximum(model / bc1, lower)
        else:
            lb = state.lb
        return updates, MomoAdamState(
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            barf=barf,
            gamma=gamma,
            lb=lb.astype(dt),
            count=t,
        )


momo_adam = MomoAdam
