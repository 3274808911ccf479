"""Blocks whose math needs each leaf whole (per-leaf norms, factored or
per-axis accumulators), so jgd.train stores them leaf by leaf.

Holds ``scale_by_trust_ratio`` (LARS, LAMB, Fromage), ``scale_by_param_block_norm``
and ``scale_by_param_block_rms``, ``scale_by_sm3`` (``ScaleBySM3State``) and
``scale_by_novograd`` (``ScaleByNovogradState``); Adafactor's
``scale_by_factored_rms`` (``FactoredState``) and its private pieces live in
``factored`` and are re-exported here.
"""

from __future__ import annotations

import functools
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
    empty_state,
    owner_name,
    register,
    static_field,
)
from jgd.transforms.factored import (  # noqa: F401 (as before the split)
    FactoredState,
    ScaleByFactoredRms,
    _ClipByBlockRms,
    _count0,
    _Ema,
    _need_params,
    _times,
    _unzip,
    scale_by_factored_rms,
)

__all__ = [
    "FactoredState",
    "ScaleByNovogradState",
    "ScaleBySM3State",
    "scale_by_factored_rms",
    "scale_by_novograd",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_sm3",
    "scale_by_trust_ratio",
]


# --------------------------------------------------------------------------
# Helpers: per-leaf norms that are safe to differentiate.
# --------------------------------------------------------------------------


def _safe_norm(x: jax.Array, min_norm: Any) -> jax.Array:
    """``max(||x||, min_norm)`` (Frobenius over all axes), with gradient 0
    rather than NaN at ``x = 0`` (optax's ``numerics.safe_norm``)."""
    norm = jnp.linalg.norm(x)
    lo = tree.coef(min_norm, norm.dtype)
    x = jnp.where(norm <= lo, jnp.ones_like(x), x)
    return jnp.where(norm <= lo, lo, jnp.linalg.norm(x))


def _safe_rms(x: jax.Array, min_rms: Any) -> jax.Array:
    """``max(sqrt(mean(|x|**2)), min_rms)``, with gradient 0 rather than NaN
    at ``x = 0`` (optax's ``numerics.safe_root_mean_squares``)."""
    rms = jnp.sqrt(jnp.mean(tree.abs_sq(x)))
    lo = tree.coef(min_rms, rms.dtype)
    x = jnp.where(rms <= lo, jnp.ones_like(x), x)
    return jnp.where(rms <= lo, lo, jnp.sqrt(jnp.mean(tree.abs_sq(x))))


# --------------------------------------------------------------------------
# Scaling by per-leaf norms.
# --------------------------------------------------------------------------


@register
class ScaleByTrustRatio(Transform):
    """Scale each leaf's update by the ratio of its param norm to its update
    norm (the layer-wise trust ratio of LARS and LAMB).

    Update (per leaf):
        pn = max(||p||, min_norm)
        un = max(||g||, min_norm)
        r = trust_coefficient * pn / (un + eps)
        r = 1                   where pn == 0 or un == 0
        u = g * r

    Args:
        min_norm: floor of both norms, >= 0, default 0.
        trust_coefficient: >= 0, default 1.
        eps: added to the update norm, >= 0, default 0.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    References: You, Gitman & Ginsburg, "Large Batch Training of Convolutional
    Networks", 2017, eq. 6; You et al., "Large Batch Optimization for Deep
    Learning: Training BERT in 76 minutes", 2020, Algorithm 2.

    Matches: optax.scale_by_trust_ratio(min_norm, trust_coefficient, eps).
    """

    min_norm: Scalar = 0.0
    trust_coefficient: Scalar = 1.0
    eps: Scalar = 0.0

    _api = "jgd.scale_by_trust_ratio"

    def check(self):
        check_number(self, "min_norm", self.min_norm, 0)
        check_number(self, "trust_coefficient", self.trust_coefficient, 0)
        check_number(self, "eps", self.eps, 0)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _need_params(self, params, "the trust ratio uses the params' norms")
        tree.check_same_structure(self, updates, params, "params")

        def f(g, p):
            pn = _safe_norm(p, self.min_norm)
            un = _safe_norm(g, self.min_norm)
            pn, un = tree.promote(pn, un)
            dt = pn.dtype
            ratio = tree.coef(self.trust_coefficient, dt) * pn
            ratio = ratio / (un + tree.coef(self.eps, dt))
            zero = jnp.logical_or(pn == 0.0, un == 0.0)
            return _times(g, jnp.where(zero, jnp.ones([], dt), ratio))

        return jax.tree.map(f, updates, params), state


scale_by_trust_ratio = ScaleByTrustRatio


@register
class ScaleByParamBlockNorm(Transform):
    """Scale each leaf's update by the norm of its param.

    Update (per leaf):
        u = g * max(||p||, min_scale)

    Args:
        min_scale: floor of the norm, >= 0, default 1e-3.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Matches: optax.scale_by_param_block_norm(min_scale).
    """

    min_scale: Scalar = 1e-3

    _api = "jgd.scale_by_param_block_norm"

    def check(self):
        check_number(self, "min_scale", self.min_scale, 0)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _need_params(self, params, "it scales by the params' norms")
        tree.check_same_structure(self, updates, params, "params")
        s = self.min_scale
        return jax.tree.map(
            lambda g, p: _times(g, _safe_norm(p, s)), updates, params
        ), state


scale_by_param_block_norm = ScaleByParamBlockNorm


@register
class ScaleByParamBlockRms(Transform):
    """Scale each leaf's update by the root mean square of its param.

    Update (per leaf):
        u = g * max(sqrt(mean(p**2)), min_scale)

    Args:
        min_scale: floor of the rms, >= 0, default 1e-3.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    References: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with
    Sublinear Memory Cost", 2018, Algorithm 4 (relative step size).

    Matches: optax.scale_by_param_block_rms(min_scale).
    """

    min_scale: Scalar = 1e-3

    _api = "jgd.scale_by_param_block_rms"

    def check(self):
        check_number(self, "min_scale", self.min_scale, 0)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _need_params(self, params, "it scales by the params' rms")
        tree.check_same_structure(self, updates, params, "params")
        s = self.min_scale
        return jax.tree.map(
            lambda g, p: _times(g, _safe_rms(p, s)), updates, params
        ), state


scale_by_param_block_rms = ScaleByParamBlockRms


# --------------------------------------------------------------------------
# SM3 and NovoGrad.
# --------------------------------------------------------------------------


class ScaleBySM3State(NamedTuple):
    """SM3's per-axis accumulators ``mu`` (a list per leaf, one vector per
    axis) and the momentum ``nu`` (optax's)."""

    mu: Any
    nu: Any


def _py_or_where(b2: Any) -> Any:
    """SM3's coefficient of ``g**2``: ``1 - b2``, or 1 when ``b2 == 1``
    (a running sum); a Python number stays exact, a traced one selects."""
    if isinstance(b2, (int, float)):
        return 1.0 if b2 == 1.0 else 1.0 - b2
    return jnp.where(b2 == 1.0, 1.0, 1.0 - b2)


@register
class ScaleBySm3(Transform):
    """Divide updates by SM3's cover-based accumulator: one running maximum
    per axis (row and column maxima for a matrix), memory O(sum of dims).

    Update (per leaf; a vector or scalar keeps one accumulator per element):
        nu_acc = min over axes k of mu[k], broadcast to g's shape
        acc = c * g**2 + b2 * nu_acc          (c = 1 - b2, or 1 if b2 == 1)
        s = g / sqrt(acc + eps)               (0 where acc == 0)
        nu = (1 - b1) * s + b1 * nu
        mu[k] = max of acc over all axes but k
        u = nu

    Args:
        b1: momentum decay in [0, 1), default 0.9.
        b2: accumulator decay in [0, 1], default 1 (SM3-II's running sum).
        eps: >= 0, default 1e-8.

    Raises:
        ValueError: for complex params (as optax).

    References: Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive
    Optimization", 2019, Algorithm SM3-II.

    Matches: optax.scale_by_sm3(b1, b2, eps), where it runs: optax fails on
    a scalar leaf (IndexError), jgd treats a scalar as a one-element vector
    (its ``mu`` is ``[acc]`` where optax's init gives ``[]``).
    """

    b1: Scalar = 0.9
    b2: Scalar = 1.0
    eps: Scalar = 1e-8

    _api = "jgd.scale_by_sm3"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1)
        check_number(self, "eps", self.eps, 0)

    def init(self, params: Any) -> Any:
        for path, p in jax.tree_util.tree_flatten_with_path(params)[0]:
            if jnp.iscomplexobj(p):
                raise ValueError(
                    f"{owner_name(self)}: complex params are not supported (nor "
                    f"in optax); got {p.dtype} at {jax.tree_util.keystr(path)}."
                )

        def per_axis(p):
            if p.ndim == 0:
                return [jnp.zeros([], p.dtype)]
            return [jnp.zeros((n,), p.dtype) for n in p.shape]

        return ScaleBySM3State(
            mu=jax.tree.map(per_axis, params), nu=tree.zeros_like(params)
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        c, b1, b2 = _py_or_where(self.b2), self.b1, self.b2

        def f(g, mu, nu):
            g, nu = tree.promote(g, nu)
            if g.ndim < 2:
                prev = mu[0].astype(g.dtype)
            else:
                expanded = [
                    m.reshape([1] * k + [n] + [1] * (g.ndim - k - 1)).astype(g.dtype)
                    for k, (m, n) in enumerate(zip(mu, g.shape))
                ]
                prev = functools.reduce(jnp.minimum, expanded)
            acc = tree.coef(c, g.dtype) * g**2 + tree.coef(b2, g.dtype) * prev
            inv = jnp.where(
                acc > 0, jax.lax.rsqrt(acc + tree.coef(self.eps, acc.dtype)), 0.0
            )
            s = g * inv
            nu = tree.coef(1 - b1, s.dtype) * s + tree.coef(b1, nu.dtype) * nu
            if g.ndim < 2:
                return nu, [acc]
            # initial=0 only for an empty leaf (max over nothing), acc >= 0.
            initial = 0.0 if acc.size == 0 else None
            maxima = [
                jnp.max(acc, axis=[j for j in range(g.ndim) if j != k], initial=initial)
                for k in range(g.ndim)
            ]
            return nu, maxima

        nu, mu = _unzip(updates, jax.tree.map(f, updates, state.mu, state.nu), 2)
        return nu, ScaleBySM3State(mu=mu, nu=nu)


scale_by_sm3 = ScaleBySm3


class ScaleByNovogradState(NamedTuple):
    """NovoGrad's step count, first moment ``mu`` and per-leaf scalar
    second moment ``nu`` (optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: Any
    nu: Any


@register
class ScaleByNovograd(Transform):
    """NovoGrad: Adam-like with one second moment per leaf (the squared norm
    of its gradient), weight decay inside the normalised step.

    Update (per leaf; t = 1 starts both moments from the first gradient):
        nu = ||g||**2                                     (t = 1)
        nu = b2 * nu + (1 - b2) * ||g||**2                (t > 1)
        d = g / (sqrt(nu + eps_root) + eps) + weight_decay * p
        mu = d                                            (t = 1)
        mu = b1 * mu + d                                  (t > 1)
        u = mu

    Args:
        b1: first-moment decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.25.
        eps: >= 0, default 1e-8.
        eps_root: >= 0, default 0.
        weight_decay: >= 0, default 0 (a number; optax takes no schedule here).
        mu_dtype: dtype of ``mu`` (static), default the params'.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    References: Ginsburg et al., "Stochastic Gradient Methods with Layer-wise
    Adaptive Moments for Training of Deep Networks", 2019, Algorithm 1.

    Matches: optax.scale_by_novograd(b1, b2, eps, eps_root, weight_decay,
    mu_dtype).
    """

    b1: Scalar = 0.9
    b2: Scalar = 0.25
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    weight_decay: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.scale_by_novograd"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "eps_root", self.eps_root, 0)
        check_number(self, "weight_decay", self.weight_decay, 0)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )

    def init(self, params: Any) -> Any:
        return ScaleByNovogradState(
            count=_count0(),
            mu=tree.zeros_like(params, dtype=self.mu_dtype),
            nu=jax.tree.map(lambda p: jnp.zeros([], p.dtype), params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _need_params(self, params, "weight decay is part of the step")
        tree.check_same_structure(self, updates, params, "params")
        tree.check_same_structure(self, updates, state.mu, "state")
        count = tree.safe_increment(state.count)
        first = count == 1
        b1, b2 = self.b1, self.b2

        def sq_norm(g, n):
            return (jnp.linalg.norm(g) ** 2).astype(n.dtype)

        def nu_first(g, n):
            return sq_norm(g, n)

        def nu_later(g, n):
            sq = sq_norm(g, n)
            return tree.coef(1 - b2, n.dtype) * sq + tree.coef(b2, n.dtype) * n

        def direction(g, p, n):
            g, p, n = tree.promote(g, p, n)
            dt = g.dtype
            root = jnp.sqrt(n + tree.coef(self.eps_root, dt)) + tree.coef(self.eps, dt)
            return g / root + tree.coef(self.weight_decay, dt) * p

        def mu_first(g, p, m, n):
            _, d = tree.promote(m, direction(g, p, n))  # the later branch's dtype
            return d

        def mu_later(g, p, m, n):
            # b1 * m in mu's dtype, as optax's weakly typed b1 gives.
            return jnp.add(
                *tree.promote(tree.coef(b1, m.dtype) * m, direction(g, p, n))
            )

        # lax.cond, as optax: the branches compile apart, and so round alike.
        def over(fn):
            return lambda *trees: jax.tree.map(fn, *trees)

        nu = jax.lax.cond(first, over(nu_first), over(nu_later), updates, state.nu)
        mu = jax.lax.cond(
            first, over(mu_first), over(mu_later), updates, params, state.mu, nu
        )
        mu = tree.cast(mu, self.mu_dtype)
        return mu, ScaleByNovogradState(count=count, mu=mu, nu=nu)


scale_by_novograd = ScaleByNovograd
