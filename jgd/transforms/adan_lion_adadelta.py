"""Adam's relatives that are not Adam-shaped, with their states.

Holds ``scale_by_adan`` (Nesterov on gradient differences), ``scale_by_lion``
(sign of an interpolation) and ``scale_by_adadelta`` (the ratio of update and
gradient RMS). For complex updates every second moment accumulates ``|g|**2``
(real-valued), as in optax. Adan and Adadelta keep the moments of float16
leaves in float32 and compute there (``jgd.transforms.lowp``); Lion does not.
The shared helpers are ``jgd.transforms.adam_family``'s.
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
from jgd.transforms.adam_family import (
    _adam_step,
    _cast_like,
    _check_decay,
    _check_nonneg,
    _down_like,
)
from jgd.transforms.basic import _count0, _ema
from jgd.transforms.lowp import _moment_like, _up

__all__ = [
    "ScaleByAdaDeltaState",
    "ScaleByAdanState",
    "ScaleByLionState",
    "scale_by_adadelta",
    "scale_by_adan",
    "scale_by_lion",
]


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
