"""Learning-rate-free methods that step by a distance travelled over a sum of
gradient norms: ``prodigy`` (D-Adaptation's faster AdamW), ``dog`` (Distance
over Gradients) and ``dowg`` (Distance over Weighted Gradients), with
``ProdigyState``, ``DoGState`` and ``DoWGState``.

They use tree-wide sums only (global norms and inner products), so they are
packable: packed 1-D buckets give the same sums (up to summation order).
Their building blocks ``ScaleByDog``/``ScaleByDowg`` are not exported, as
optax.contrib exports no ``scale_by_dog``/``scale_by_dowg``.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgd import tree
from jgd.base import (
    Identity,
    Scalar,
    ScalarOrSchedule,
    Static,
    Transform,
    chain,
    check_number,
    owner_name,
    register,
    static_field,
)
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import add_decayed_weights, scale_by_learning_rate

__all__ = [
    "DoGState",
    "DoWGState",
    "ProdigyState",
    "dog",
    "dowg",
    "prodigy",
]


# --------------------------------------------------------------------------
# Tree-wide sums, as optax.tree computes them (left to right, leaf by leaf).
# --------------------------------------------------------------------------


def _total(parts: list) -> jax.Array:
    """Sum of scalars in the widest dtype among them (0 for none)."""
    if not parts:
        return jnp.zeros([], tree.default_float())
    dt = tree.wider_dtype(*[p.dtype for p in parts])
    return functools.reduce(jnp.add, [p.astype(dt) for p in parts])


def _sq_norm(t: Any) -> jax.Array:
    """sum over leaves of sum(|x|**2) (optax: tree.norm(t, squared=True))."""

    def sq(x):
        if jnp.iscomplexobj(x):
            return jnp.sum(jnp.square(x.real) + jnp.square(x.imag))
        return jnp.sum(jnp.square(x))

    return _total([sq(x) for x in jax.tree.leaves(t)])


def _vdot(a: Any, b: Any) -> jax.Array:
    """sum over leaves of <conj(a), b> at highest precision (optax.tree.vdot)."""

    def dot(x, y):
        x, y = tree.promote(x, y)
        x = jnp.conj(x) if jnp.iscomplexobj(x) else x
        return jnp.tensordot(x, y, x.ndim, precision=jax.lax.Precision.HIGHEST)

    return _total([dot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))])


def _needs_params(owner: Any, params: Any, why: str) -> None:
    if params is None:
        raise ValueError(
            f"{owner_name(owner)}: update needs params ({why}); call "
            "update(grads, state, params)."
        )


def _scaled(s: jax.Array, updates: Any) -> Any:
    return jax.tree.map(lambda g: s.astype(g.dtype) * g, updates)


# --------------------------------------------------------------------------
# Prodigy.
# --------------------------------------------------------------------------


class ProdigyState(NamedTuple):
    """Prodigy's moments, the weighted gradient sum, the starting point, the
    distance estimate (optax's fields)."""

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax


@register
class Prodigy(Transform):
    """Prodigy: AdamW whose step size d is learnt from the distance travelled.

    Update (t = count + 1, lr = learning_rate at count, d = estim_lr):
        dlr = d * lr * sqrt(1 - beta2**t) / (1 - beta1**t)
        m = beta1 * m + (1 - beta1) * d * g
        v = beta2 * v + (1 - beta2) * (d * g)**2
        s = beta3 * s + dlr * d * g / estim_lr0          (d * d * g / estim_lr0 with safeguard_warmup)
        r = beta3 * r + (d / estim_lr0) * dlr * <g, params0 - w>
        d = max(d, estim_lr_coef * r / sum|s|)
        u = -weight_decay * dlr * w - dlr * m / (sqrt(v) + d * eps)    (the new d)

    Args:
        learning_rate: float >= 0 or a schedule, default 1.0: a multiplier
            of the learnt step (a schedule from 1.0 down, with warm-up).
        betas: (beta1, beta2), each in [0, 1), default (0.9, 0.999).
        beta3: None (sqrt(beta2)) or in [0, 1).
        eps: >= 0, default 1e-8.
        estim_lr0: > 0, default 1e-6, the first (under-)estimate of d.
        estim_lr_coef: >= 0, default 1.0, multiplies every estimate.
        weight_decay: >= 0, default 0, decoupled (AdamW's).
        safeguard_warmup: leave lr out of s (static), for warm-up.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.prodigy()
        >>> w = jnp.array([1.0, -2.0]); s = opt.init(w)
        >>> for _ in range(40):  # the gradient of |w|**2 / 2 is w
        ...     u, s = opt.update(w, s, w); w = jgd.apply_updates(w, u)
        >>> round(float(s.estim_lr), 2)  # d grew from estim_lr0 = 1e-6
        0.69

    References: Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive
    Parameter-Free Learner", 2023, Algorithm 4 (Prodigy Adam).

    Matches: optax.contrib.prodigy(learning_rate, betas, beta3, eps,
    estim_lr0, estim_lr_coef, weight_decay, safeguard_warmup).
    """

    packable = True  # element-wise but for tree-wide sums: same on packed buckets

    learning_rate: ScalarOrSchedule = 1.0
    betas: tuple = (0.9, 0.999)
    beta3: Scalar | None = None
    eps: Scalar = 1e-8
    estim_lr0: Scalar = 1e-6
    estim_lr_coef: Scalar = 1.0
    weight_decay: Scalar = 0.0
    safeguard_warmup: bool = static_field(default=False)

    _api = "jgd.contrib.prodigy"

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise TypeError(
                f"{owner_name(self)}: betas must be a pair (beta1, beta2); "
                f"got {self.betas!r}."
            )
        object.__setattr__(self, "betas", tuple(self.betas))
        check_number(self, "betas[0]", self.betas[0], 0, 1, hi_open=True)
        check_number(self, "betas[1]", self.betas[1], 0, 1, hi_open=True)
        check_number(self, "beta3", self.beta3, 0, 1, hi_open=True, none=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "estim_lr0", self.estim_lr0, 0, lo_open=True)
        check_number(self, "estim_lr_coef", self.estim_lr_coef, 0)
        check_number(self, "weight_decay", self.weight_decay, 0)

    def init(self, params: Any) -> Any:
        dt = tree.dtype(params, "lowest")
        return ProdigyState(
            exp_avg=tree.zeros_like(params),
            exp_avg_sq=tree.zeros_like(params),
            grad_sum=tree.zeros_like(params),
            params0=params,
            estim_lr=jnp.asarray(self.estim_lr0, dt),
            numerator_weighted=jnp.zeros([], dt),
            count=jnp.zeros([], jnp.int32),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "Prodigy measures the distance from params0")
        tree.check_same_structure(self, updates, params, "params")
        beta1, beta2 = self.betas
        beta3 = beta2**0.5 if self.beta3 is None else self.beta3
        d0 = self.estim_lr0
        t = tree.safe_increment(state.count)
        lr: Any = self.learning_rate
        lr = lr(state.count) if callable(lr) else lr
        d = state.estim_lr
        dt = d.dtype
        # optax's order of operations throughout, each product in the dtype
        # standard promotion would give it (Python numbers weak).
        bc = tree.correction(beta2, t) ** 0.5 / tree.correction(beta1, t)
        dlr = jnp.multiply(*tree.promote(_times(d, lr), bc)).astype(dt)
        dg = jax.tree.map(lambda g: d.astype(g.dtype) * g, updates)
        numerator = _vdot(updates, jax.tree.map(_diff, state.params0, params))

        def ema1(m, x):
            return tree.coef(beta1, m.dtype) * m + tree.coef(1 - beta1, x.dtype) * x

        def ema2(v, x):
            # ((1 - beta2) * x) * x, optax's rounding; |x|**2 for complex x.
            sq = tree.coef(1 - beta2, x.dtype) * x
            sq = (sq * jnp.conj(x)).real if jnp.iscomplexobj(x) else sq * x
            return tree.coef(beta2, v.dtype) * v + sq.astype(v.dtype)

        exp_avg = jax.tree.map(ema1, state.exp_avg, dg)
        exp_avg_sq = jax.tree.map(ema2, state.exp_avg_sq, dg)
        scale = d if self.safeguard_warmup else dlr

        def accumulate(s, x):
            step = scale.astype(x.dtype) * x / tree.coef(d0, x.dtype)
            return tree.coef(beta3, s.dtype) * s + step

        grad_sum = jax.tree.map(accumulate, state.grad_sum, dg)
        r = tree.coef(beta3, dt) * state.numerator_weighted
        r = r + ((d / tree.coef(d0, dt)) * dlr * numerator.astype(dt)).astype(dt)
        denominator = _total([jnp.sum(jnp.abs(s)) for s in jax.tree.leaves(grad_sum)])
        estimate = tree.coef(self.estim_lr_coef, dt) * r / denominator.astype(dt)
        new_d = jnp.maximum(d, estimate)
        wd = self.weight_decay

        def step(m, v, p):
            decay = (tree.coef(-wd, dt) * dlr).astype(p.dtype) * p
            m, v = tree.promote(m, v)
            root = jnp.sqrt(v) + new_d.astype(v.dtype) * tree.coef(self.eps, v.dtype)
            return (decay - dlr.astype(m.dtype) * m / root).astype(p.dtype)

        new_updates = jax.tree.map(step, exp_avg, exp_avg_sq, params)
        return new_updates, ProdigyState(
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            grad_sum=grad_sum,
            params0=state.params0,
            estim_lr=new_d,
            numerator_weighted=r,
            count=t,
        )


prodigy = Prodigy


def _diff(a: jax.Array, b: jax.Array) -> jax.Array:
    a, b = tree.promote(a, b)
    return a - b


def _times(x: jax.Array, s: Any) -> jax.Array:
    """``x * s`` as standard promotion does it: a Python number takes x's
    dtype, an array promotes."""
    if isinstance(s, (int, float)):
        return x * tree.coef(s, x.dtype)
    s = jnp.asarray(s)
    x, s = tree.promote(x, s)
    return x * s


# --------------------------------------------------------------------------
# DoG and DoWG.
# --------------------------------------------------------------------------


class DoGState(NamedTuple):
    """DoG's state (optax's fields): whether no step was taken yet, the
    starting point, the largest distance from it, the sum of squared
    gradient norms."""

    is_init_step: jax.Array  # bool, as optax's
    init_params: Any
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


_INIT_STEPS = ("distance", "learning_rate", "heuristic")


def _init_step(value: Any) -> tuple:
    """The (kind, value) pair of a static ``init_step`` field."""
    return tuple(value.value if isinstance(value, Static) else value)


def _static_init_step(owner: Any) -> None:
    """Check ``init_step`` and store it hashable: a tuple, in ``Static`` when
    its value is an array (a static field is part of jit's cache key)."""
    _check_init_step(owner, owner.init_step)
    pair = tuple(owner.init_step)
    try:
        hash(pair)
    except TypeError:
        pair = Static(pair)  # type: ignore[assignment]
    object.__setattr__(owner, "init_step", pair)


def _check_init_step(owner: Any, init_step: Any) -> None:
    if isinstance(init_step, Static):
        init_step = init_step.value
    if (
        not isinstance(init_step, (tuple, list))
        or len(init_step) != 2
        or init_step[0] not in _INIT_STEPS
    ):
        raise ValueError(
            f"{owner_name(owner)}: init_step must be a pair (kind, value) with "
            f"kind one of {', '.join(map(repr, _INIT_STEPS))}; got {init_step!r}."
        )
    check_number(owner, "init_step value", init_step[1], 0)


@register
class ScaleByDog(Transform):
    """Scale updates by DoG's step: the largest distance from the start over
    the root of the summed squared gradient norms.

    Update (norms are tree-wide l2 norms; x0 the params at init):
        max_dist = max(max_dist, ||x0 - w||)
        G = G + ||g||**2
        u = max_dist / sqrt(G + eps) * g       (the first step init_step's
                                                value * g with "learning_rate")

    The first max_dist (r_eps in the paper): ``value`` ("distance"),
    ``value * (1 + ||x0||)`` ("heuristic"), 0 ("learning_rate").

    Matches: optax.contrib._dog.scale_by_dog(init_step, eps) (not exported by
    optax.contrib).
    """

    packable = True  # tree-wide norms only: the same on packed buckets

    init_step: tuple = static_field(default=("heuristic", 1e-6))
    eps: Scalar = 1e-8

    _api = "jgd.contrib.distance.ScaleByDog"

    def check(self):
        _static_init_step(self)  # static: the kind picks the program
        check_number(self, "eps", self.eps, 0)

    def init(self, params: Any) -> Any:
        dt = tree.dtype(params, "lowest")
        kind, value = _init_step(self.init_step)
        if kind == "distance":
            r_eps: Any = value
        elif kind == "heuristic":
            norm = jnp.sqrt(_sq_norm(params))
            r_eps = tree.coef(value, norm.dtype) * (1 + norm)
        else:
            r_eps = 0.0
        return DoGState(
            is_init_step=jnp.asarray(True),
            init_params=params,
            max_dist=jnp.asarray(r_eps, dt),
            sum_sq_norm_grads=jnp.asarray(0.0, dt),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "DoG measures the distance from the start")
        tree.check_same_structure(self, updates, params, "params")
        dt = state.max_dist.dtype
        dist = jnp.sqrt(_sq_norm(jax.tree.map(_diff, state.init_params, params)))
        max_dist = jnp.maximum(state.max_dist, dist.astype(dt))
        sum_sq = state.sum_sq_norm_grads + _sq_norm(updates).astype(dt)
        lr = max_dist / jnp.sqrt(sum_sq + tree.coef(self.eps, dt))
        kind, value = _init_step(self.init_step)
        if kind == "learning_rate":
            lr = jnp.where(state.is_init_step, tree.coef(value, dt), lr)
        return _scaled(lr, updates), DoGState(
            is_init_step=jnp.asarray(False),
            init_params=state.init_params,
            max_dist=max_dist,
            sum_sq_norm_grads=sum_sq,
        )


class DoWGState(NamedTuple):
    """DoWG's state (optax's fields): the starting point, the weighted sum of
    squared gradient norms, the squared distance estimate."""

    init_params: Any
    weighted_sq_norm_grads: jax.Array
    estim_sq_dist: jax.Array


@register
class ScaleByDowg(Transform):
    """Scale updates by DoWG's step: the squared distance estimate over the
    root of the distance-weighted sum of squared gradient norms.

    Update (norms are tree-wide l2 norms; x0 the params at init):
        r2 = max(r2, ||x0 - w||**2)
        V = V + r2 * ||g||**2
        u = r2 / (sqrt(V) + eps) * g

    Matches: optax.contrib._dog.scale_by_dowg(init_estim_sq_dist, eps) (not
    exported by optax.contrib).
    """

    packable = True  # tree-wide norms only: the same on packed buckets

    init_estim_sq_dist: Scalar | None = None
    eps: Scalar = 1e-4

    _api = "jgd.contrib.distance.ScaleByDowg"

    def check(self):
        check_number(self, "init_estim_sq_dist", self.init_estim_sq_dist, 0, none=True)
        check_number(self, "eps", self.eps, 0)

    def init(self, params: Any) -> Any:
        dt = tree.dtype(params, "lowest")
        r2 = self.eps if self.init_estim_sq_dist is None else self.init_estim_sq_dist
        return DoWGState(
            init_params=params,
            weighted_sq_norm_grads=jnp.asarray(0.0, dt),
            estim_sq_dist=jnp.asarray(r2, dt),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "DoWG measures the distance from the start")
        tree.check_same_structure(self, updates, params, "params")
        dt = state.estim_sq_dist.dtype
        dist = _sq_norm(jax.tree.map(_diff, state.init_params, params)).astype(dt)
        r2 = jnp.maximum(state.estim_sq_dist, dist)
        weighted = r2 * _sq_norm(updates).astype(dt) + state.weighted_sq_norm_grads
        lr = r2 / (jnp.sqrt(weighted) + tree.coef(self.eps, dt))
        return _scaled(lr, updates), DoWGState(
            init_params=state.init_params,
            weighted_sq_norm_grads=weighted,
            estim_sq_dist=r2,
        )


def _decay_or_identity(weight_decay: Any, mask: Any) -> Any:
    if weight_decay is None:
        return Identity()
    return add_decayed_weights(weight_decay, mask)


@register
class Dog(Optimizer):
    """DoG (Distance over Gradients): SGD with the step size
    max distance travelled / root of the summed squared gradient norms.

    Update (norms are tree-wide l2 norms; x0 the params at init):
        g = g + weight_decay * w                      (weight_decay given, where mask)
        r = max(r, ||x0 - w||)                        (r starts at r_eps, see init_step)
        G = G + ||g||**2
        w = w - learning_rate * r / sqrt(G + eps) * g

    Args:
        learning_rate: float >= 0 or a schedule, default 1.0 (a multiplier).
        init_step: (kind, value), static: ``("heuristic", a)`` (default
            a = 1e-6; r_eps = a * (1 + ||x0||); 1e-4 with batch norm),
            ``("distance", r_eps)`` or ``("learning_rate", eta0)`` (the first
            step's size); value >= 0.
        eps: >= 0, default 1e-8, inside the root.
        weight_decay: None or a float >= 0 (or a schedule), added to the
            gradient.
        mask: weight decay's mask (a pytree of bools or a callable).

    ``init`` must see the real params: x0 is taken there.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.dog(init_step=("distance", 0.5))
        >>> w = jnp.array([3.0, 4.0])
        >>> u, s = opt.update(w, opt.init(w), w)
        >>> u
        Array([-0.3, -0.4], dtype=float32)

    References: Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A
    Parameter-Free Dynamic Step Size Schedule", 2023, Algorithm 1.

    Matches: optax.contrib.dog(learning_rate, init_step, eps, weight_decay,
    mask).
    """

    learning_rate: ScalarOrSchedule = 1.0
    init_step: tuple = static_field(default=("heuristic", 1e-6))
    eps: Scalar = 1e-8
    weight_decay: ScalarOrSchedule | None = None
    mask: Any = None

    _api = "jgd.contrib.dog"

    def check(self):
        _static_init_step(self)
        check_number(
            self, "weight_decay", self.weight_decay, 0, schedule=True, none=True
        )
        Optimizer.check(self)

    def recipe(self):
        return chain(
            _decay_or_identity(self.weight_decay, self.mask),
            ScaleByDog(self.init_step, self.eps),
            scale_by_learning_rate(self.learning_rate),
        )


dog = Dog


@register
class Dowg(Optimizer):
    """DoWG (Distance over Weighted Gradients): SGD with the step size
    squared distance estimate / root of the distance-weighted sum of squared
    gradient norms.

    Update (norms are tree-wide l2 norms; x0 the params at init):
        g = g + weight_decay * w                      (weight_decay given, where mask)
        r2 = max(r2, ||x0 - w||**2)                   (r2 starts at init_estim_sq_dist)
        V = V + r2 * ||g||**2
        w = w - learning_rate * r2 / (sqrt(V) + eps) * g

    Args:
        learning_rate: float >= 0 or a schedule, default 1.0 (a multiplier).
        init_estim_sq_dist: None (then eps) or >= 0, the first squared
            distance estimate.
        eps: >= 0, default 1e-4, in the denominator.
        weight_decay: None or a float >= 0 (or a schedule), added to the
            gradient.
        mask: weight decay's mask (a pytree of bools or a callable).

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.dowg(init_estim_sq_dist=1.0, eps=0.0)
        >>> w = jnp.array([3.0, 4.0])
        >>> u, s = opt.update(w, opt.init(w), w)
        >>> u
        Array([-0.6, -0.8], dtype=float32)

    References: Khaled, Mishchenko & Jin, "DoWG Unleashed: An Efficient
    Universal Parameter-Free Gradient Descent Method", 2023, Algorithm 1.

    Matches: optax.contrib.dowg(learning_rate, init_estim_sq_dist, eps,
    weight_decay, mask).
    """

    learning_rate: ScalarOrSchedule = 1.0
    init_estim_sq_dist: Scalar | None = None
    eps: Scalar = 1e-4
    weight_decay: ScalarOrSchedule | None = None
    mask: Any = None

    _api = "jgd.contrib.dowg"

    def check(self):
        check_number(
            self, "weight_decay", self.weight_decay, 0, schedule=True, none=True
        )
        Optimizer.check(self)

    def recipe(self):
        return chain(
            _decay_or_identity(self.weight_decay, self.mask),
            ScaleByDowg(self.init_estim_sq_dist, self.eps),
            scale_by_learning_rate(self.learning_rate),
        )


dowg = Dowg
