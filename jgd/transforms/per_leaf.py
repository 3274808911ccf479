"""Blocks whose math needs each leaf whole (per-leaf norms, factored or
per-axis accumulators), so jgd.train stores them leaf by leaf.

Holds ``scale_by_trust_ratio`` (LARS, LAMB, Fromage), ``scale_by_param_block_norm``
and ``scale_by_param_block_rms``, ``scale_by_factored_rms`` (Adafactor,
``FactoredState``), ``scale_by_sm3`` (``ScaleBySM3State``) and
``scale_by_novograd`` (``ScaleByNovogradState``), and two private pieces of
adafactor (optax's ``clip_by_block_rms`` and ``ema`` without debiasing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_dtype,
    check_int,
    check_number,
    empty_state,
    owner_name,
    register,
    static_field,
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


def _count0() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def _need_params(owner: Any, params: Any, why: str) -> None:
    if params is None:
        raise ValueError(
            f"{owner_name(owner)}: update needs params ({why}); call "
            "update(grads, state, params)."
        )


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


def _unzip(like: Any, out: Any, n: int) -> tuple[Any, ...]:
    """Split ``out``, a tree shaped like ``like`` holding an ``n``-tuple at
    each leaf, into ``n`` trees."""
    outer: Any = jax.tree.structure(like)  # jax's stub lacks flatten_up_to
    per_leaf = outer.flatten_up_to(out)
    return tuple(outer.unflatten([o[i] for o in per_leaf]) for i in range(n))


def _times(u: jax.Array, s: jax.Array) -> jax.Array:
    """``u * s`` for a per-leaf scalar ``s``, in the wider dtype."""
    u, s = tree.promote(u, s)
    return u * s


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
# Adafactor: factored second moments, and its two private helpers.
# --------------------------------------------------------------------------


class FactoredState(NamedTuple):
    """Adafactor's step count and row, column or full second moments
    (optax's): a leaf uses ``v_row``/``v_col`` when factored, else ``v``; the
    unused ones hold ``zeros((1,))``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    v_row: Any
    v_col: Any
    v: Any


def _decay_rate_pow(i: ArrayLike, exponent: ArrayLike = 0.8) -> jax.Array:
    """Adafactor's second-moment decay ``1 - (i + 1)**(-exponent)``, in
    float32 as optax computes it (also under x64)."""
    t = jnp.array(i + 1, jnp.float32)  # type: ignore[operator]
    return 1.0 - t ** jnp.asarray(-exponent, jnp.float32)  # type: ignore[operator]


def _factored_dims(shape, factored, min_dim_size_to_factor):
    """The two largest axes ``(d1, d0)`` to factor over, or None when the
    leaf is kept whole (fewer than 2 axes, or the second largest is small)."""
    if not factored or len(shape) < 2:
        return None
    sorted_dims = np.argsort(shape)  # optax's tie-breaking, for the same axes
    if shape[sorted_dims[-2]] < min_dim_size_to_factor:
        return None
    return int(sorted_dims[-2]), int(sorted_dims[-1])


def _mix(decay: jax.Array, v: jax.Array, x: jax.Array) -> jax.Array:
    """``decay * v + (1 - decay) * x`` (decay is float32), each product in
    the wider of its two dtypes and then the sum, as optax's standard
    promotion computes it (a real ``x`` is multiplied before it turns
    complex)."""
    a = jnp.multiply(*tree.promote(decay, v))
    b = jnp.multiply(*tree.promote(1.0 - decay, x))
    return jnp.add(*tree.promote(a, b))


@register
class ScaleByFactoredRms(Transform):
    """Divide updates by a factored estimate of their root mean square
    (Adafactor's second moment, with a step-dependent decay).

    Per leaf with two axes of size >= ``min_dim_size_to_factor`` (rows ``d1``,
    columns ``d0``: the two largest axes), else over the whole leaf:

    Update (i = t - 1 - step_offset):
        b = decay_rate_fn(i, decay_rate)      (default 1 - (i + 1)**-decay_rate)
        g2 = |g|**2 + epsilon
        v_row = b * v_row + (1 - b) * mean(g2, axis=d0)      (factored)
        v_col = b * v_col + (1 - b) * mean(g2, axis=d1)
        u = g * (v_row / mean(v_row))**-0.5 * v_col**-0.5
        v = b * v + (1 - b) * g2                             (not factored)
        u = g * v**-0.5

    Args:
        factored: factor leaves with two large axes (static), default True.
        decay_rate: the decay's exponent, >= 0, default 0.8.
        step_offset: steps to subtract (fine-tuning restarts the decay),
            >= 0, default 0.
        min_dim_size_to_factor: the size both factored axes need, an int
            >= 0 (static), default 128.
        epsilon: added to the squares, >= 0, default 1e-30.
        decay_rate_fn: ``(i, decay_rate) -> decay`` (static), default the
            power schedule above, computed in float32 as in optax.

    Raises:
        ValueError: when ``update`` gets no ``params`` (their shapes and
        dtypes decide the factoring, as in optax).

    References: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with
    Sublinear Memory Cost", 2018, Algorithm 4 and section 7.2.

    Matches: optax.scale_by_factored_rms(factored, decay_rate, step_offset,
    min_dim_size_to_factor, epsilon, decay_rate_fn).
    """

    factored: bool = static_field(default=True)
    decay_rate: Scalar = 0.8
    step_offset: Scalar = 0
    min_dim_size_to_factor: int = static_field(default=128)
    epsilon: Scalar = 1e-30
    decay_rate_fn: Callable[[Any, Any], Any] = static_field(default=_decay_rate_pow)

    _api = "jgd.scale_by_factored_rms"

    def check(self):
        check_number(self, "decay_rate", self.decay_rate, 0)
        check_number(self, "step_offset", self.step_offset, 0)
        check_int(self, "min_dim_size_to_factor", self.min_dim_size_to_factor)
        check_number(self, "epsilon", self.epsilon, 0)
        if not callable(self.decay_rate_fn):
            raise TypeError(
                f"{owner_name(self)}: decay_rate_fn must be a callable "
                f"(step, decay_rate) -> decay; got {self.decay_rate_fn!r}."
            )

    def _dims(self, shape):
        return _factored_dims(shape, self.factored, self.min_dim_size_to_factor)

    def init(self, params: Any) -> Any:
        def one(p):
            return jnp.zeros((1,), p.dtype)

        def without(p, axis):
            return jnp.zeros(np.delete(p.shape, axis).tolist(), p.dtype)

        def row(p):  # the rows' statistics: the column axis d0 removed
            dims = self._dims(p.shape)
            return one(p) if dims is None else without(p, dims[1])

        def col(p):
            dims = self._dims(p.shape)
            return one(p) if dims is None else without(p, dims[0])

        def full(p):
            return jnp.zeros_like(p) if self._dims(p.shape) is None else one(p)

        return FactoredState(
            count=_count0(),
            v_row=jax.tree.map(row, params),
            v_col=jax.tree.map(col, params),
            v=jax.tree.map(full, params),
        )

    def _step_index(self, count: jax.Array) -> jax.Array:
        """``count - step_offset``: int32 for an integer offset, as optax."""
        off = jnp.asarray(self.step_offset)
        if jnp.issubdtype(off.dtype, jnp.integer):
            return count - off.astype(count.dtype)
        fdt = tree.default_float()
        return count.astype(fdt) - off.astype(fdt)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _need_params(self, params, "their shapes decide the factoring")
        tree.check_same_structure(self, updates, params, "params")
        decay = self.decay_rate_fn(self._step_index(state.count), self.decay_rate)
        eps = self.epsilon

        def f(g, v_row, v_col, v, p):
            dt = p.dtype
            g2 = tree.abs_sq(g)
            g2 = g2 + tree.coef(eps, g2.dtype)
            dims = self._dims(p.shape)
            if dims is None:
                v = _mix(decay, v, g2).astype(dt)
                return (_times(g, v**-0.5), v_row, v_col, v)
            d1, d0 = dims
            v_row = _mix(decay, v_row, jnp.mean(g2, axis=d0)).astype(dt)
            v_col = _mix(decay, v_col, jnp.mean(g2, axis=d1)).astype(dt)
            row_mean = jnp.mean(v_row, axis=d1 - 1 if d1 > d0 else d1, keepdims=True)
            row_factor = jnp.expand_dims((v_row / row_mean) ** -0.5, d0)
            col_factor = jnp.expand_dims(v_col**-0.5, d1)
            return (_times(_times(g, row_factor), col_factor), v_row, v_col, v)

        out = jax.tree.map(f, updates, state.v_row, state.v_col, state.v, params)
        u, v_row, v_col, v = _unzip(updates, out, 4)
        new = FactoredState(
            count=tree.safe_increment(state.count), v_row=v_row, v_col=v_col, v=v
        )
        return u, new


scale_by_factored_rms = ScaleByFactoredRms


@register
class _ClipByBlockRms(Transform):
    """Clip each leaf's update to root mean square ``threshold`` (adafactor's
    update clipping).

    Update (per leaf):
        u = g / max(1, sqrt(mean(|g|**2)) / threshold)

    Matches: optax.clip_by_block_rms(threshold). Private here until
    jgd.transforms.clipping has its own.
    """

    threshold: Scalar

    _api = "jgd.clip_by_block_rms"

    def check(self):
        check_number(self, "threshold", self.threshold, 0, lo_open=True)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        def f(g):
            rms = jnp.sqrt(jnp.mean(tree.abs_sq(g)))
            denom = jnp.maximum(1.0, rms / tree.coef(self.threshold, rms.dtype))
            g, denom = tree.promote(g, denom)
            return g / denom

        return jax.tree.map(f, updates), state


class _EmaState(NamedTuple):
    """Step count and moving average (fields of optax's ``EmaState``)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    ema: Any


@register
class _Ema(Transform):
    """An exponential moving average of the updates, not debiased
    (adafactor's momentum).

    Update:
        ema = (1 - decay) * g + decay * ema
        u = ema

    Matches: optax.ema(decay, debias=False, accumulator_dtype). Private here
    until jgd.transforms.elementwise has its own.
    """

    decay: Scalar
    accumulator_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.ema"

    def check(self):
        check_number(self, "decay", self.decay, 0, 1)
        object.__setattr__(
            self,
            "accumulator_dtype",
            check_dtype(self, "accumulator_dtype", self.accumulator_dtype),
        )

    def init(self, params: Any) -> Any:
        return _EmaState(
            count=_count0(), ema=tree.zeros_like(params, dtype=self.accumulator_dtype)
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.ema, "state")
        d = self.decay

        def f(g, m):
            # Each product in its own dtype, as optax's weakly typed Python
            # decay gives (a float32 accumulator's decay * m stays float32).
            return jnp.add(
                *tree.promote(tree.coef(1 - d, g.dtype) * g, tree.coef(d, m.dtype) * m)
            )

        new = jax.tree.map(f, updates, state.ema)
        count = tree.safe_increment(state.count)
        return new, _EmaState(count=count, ema=tree.cast(new, self.accumulator_dtype))


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
