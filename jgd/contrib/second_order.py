"""Sophia, as ``optax.contrib`` has it: momentum divided by an estimate of the
Hessian's diagonal, clipped element-wise.

Holds ``sophia`` with ``SophiaState``, and ``hutchinson_estimator_diag_hessian``
(Hutchinson's estimator ``r * (H r)`` from one Hessian-vector product of
``obj_fn``) with ``HutchinsonState``. With the default estimator, ``update``
needs ``obj_fn=``, the loss as a function of the params alone.
"""

# No ``from __future__ import annotations``: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    Static,
    Transform,
    chain,
    check_dtype,
    check_int,
    check_number,
    is_transform,
    owner_name,
    register,
    static_field,
)
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import add_decayed_weights, scale_by_learning_rate

__all__ = [
    "HutchinsonState",
    "SophiaState",
    "hutchinson_estimator_diag_hessian",
    "sophia",
]


def _moment(g: jax.Array, m: jax.Array, decay: Any) -> jax.Array:
    """``(1 - decay) * g + decay * m``, optax's ``tree.update_moment`` order
    (a private twin of jgd.contrib.adam_variants')."""
    a = tree.coef(1 - decay, g.dtype) * g
    b = tree.coef(decay, m.dtype) * m
    a, b = tree.promote(a, b)
    return a + b


def _as_transform(owner: Any, arg: str, value: Any) -> Any:
    """A jgd transform as it is, an optax one wrapped in ``Static``."""
    if isinstance(value, (Transform, Static)):
        return value
    if not is_transform(value):
        raise TypeError(
            f"{owner_name(owner)}: {arg} must be a transform with init and update "
            f"(jgd or optax); got {value!r} ({type(value).__name__})."
        )
    return Static(value)


# --------------------------------------------------------------------------
# Hutchinson's estimator of the Hessian diagonal.
# --------------------------------------------------------------------------


class HutchinsonState(NamedTuple):
    """The random key, split every step (matches
    ``optax.contrib.HutchinsonState``)."""

    key: jax.Array


@register
class HutchinsonEstimatorDiagHessian(Transform):
    """Estimate the Hessian's diagonal with Hutchinson's estimator: a random
    sign vector times its Hessian-vector product (unbiased, high variance).

    The incoming updates are ignored; ``update`` needs the params and
    ``obj_fn``, the loss as a function of the params alone
    (``lambda p: loss_fn(p, batch)``).

    Update (one Rademacher draw per leaf, from a split of the key):
        key, sub = split(key)
        r = rademacher(sub)            (drawn in float32, cast to the params')
        u = r * jvp(grad(obj_fn), params, r)        (= r * (H r))

    Args:
        random_seed: the PRNG key (``jax.random.PRNGKey(0)`` or
            ``jax.random.key(0)``), default ``None``: ``PRNGKey(0)``.

    Raises:
        ValueError: when ``update`` gets no ``params`` or no ``obj_fn=``.

    References: Hutchinson, "A stochastic estimator of the trace of the
    influence matrix for Laplacian smoothing splines", 1989; Bekas, Kokiopoulou
    & Saad, "An estimator for the diagonal of a matrix", 2007.

    Matches: optax.contrib.hutchinson_estimator_diag_hessian(random_seed).
    """

    random_seed: jax.Array | None = None

    _api = "jgd.contrib.hutchinson_estimator_diag_hessian"

    def check(self):
        key = self.random_seed
        if key is None or isinstance(key, jax.core.Tracer):
            return
        dtype = getattr(key, "dtype", None)
        typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
        raw = dtype == jnp.uint32 and jnp.shape(key) == (2,)
        if not (typed or raw):
            raise TypeError(
                f"{owner_name(self)}: random_seed must be a PRNG key "
                "(jax.random.key(0) or jax.random.PRNGKey(0)) or None; "
                f"got {key!r}."
            )

    def init(self, params: Any) -> Any:
        key = self.random_seed
        return HutchinsonState(key=jax.random.PRNGKey(0) if key is None else key)

    def update(
        self,
        updates: Any,
        state: Any,
        params: Any = None,
        obj_fn: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, Any]:
        name = owner_name(self)
        if params is None:
            raise ValueError(
                f"{name}: update needs params (the Hessian is taken there); call "
                "update(grads, state, params, obj_fn=...)."
            )
        if obj_fn is None:
            raise ValueError(
                f"{name}: update needs obj_fn=, the loss as a function of the "
                "params alone (lambda p: loss_fn(p, batch))."
            )
        key, sub = jax.random.split(state.key)
        # optax's draw: one key per leaf, signs in float32, cast to the
        # params' lowest dtype.
        signs = tree.random_like(sub, params, jax.random.rademacher, jnp.float32)
        signs = tree.cast(signs, tree.dtype(params, "lowest"))
        hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        product = jax.tree.map(lambda h, r: h * r.astype(h.dtype), hvp, signs)
        return product, HutchinsonState(key=key)


hutchinson_estimator_diag_hessian = HutchinsonEstimatorDiagHessian


# --------------------------------------------------------------------------
# Sophia.
# --------------------------------------------------------------------------


class SophiaState(NamedTuple):
    """Sophia's count, momentum, Hessian-diagonal EMA and the estimator's state
    (matches ``optax.contrib.SophiaState``)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax
    mu: Any
    nu: Any
    hessian_fn_state: Any


@register
class _ScaleBySophia(Transform):
    """Sophia's direction: momentum over the clipped Hessian-diagonal EMA.
    See ``sophia`` (optax keeps ``scale_by_sophia`` out of ``optax.contrib``'s
    names, so it is private here too)."""

    b1: Scalar = 0.965
    b2: Scalar = 0.99
    eps: Scalar = 1e-8
    gamma: Scalar = 0.01
    clip_threshold: Scalar | None = 1.0
    update_interval: int = static_field(default=10)
    hessian_diagonal_fn: Any = dataclasses.field(
        default_factory=HutchinsonEstimatorDiagHessian
    )
    mu_dtype: DTypeLike | None = static_field(default=None)
    verbose: bool = static_field(default=False)
    print_win_rate_every_n_steps: int = static_field(default=0)

    _api = "jgd.contrib.sophia"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "gamma", self.gamma, 0)
        check_number(
            self, "clip_threshold", self.clip_threshold, 0, lo_open=True, none=True
        )
        check_int(self, "update_interval", self.update_interval, 1)
        every = self.print_win_rate_every_n_steps
        check_int(self, "print_win_rate_every_n_steps", every, 1 if self.verbose else 0)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )
        fn = _as_transform(self, "hessian_diagonal_fn", self.hessian_diagonal_fn)
        object.__setattr__(self, "hessian_diagonal_fn", fn)

    def init(self, params: Any) -> Any:
        return SophiaState(
            count=jnp.zeros([], jnp.int32),
            mu=tree.zeros_like(params, dtype=self.mu_dtype),
            nu=tree.zeros_like(params),
            hessian_fn_state=self.hessian_diagonal_fn.init(params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if params is None:
            raise ValueError(
                f"{owner_name(self)}: update needs params (the Hessian estimate "
                "is taken there); call update(grads, state, params, obj_fn=...)."
            )
        tree.check_same_structure(self, updates, state.nu, "state")
        grads = updates
        count = tree.safe_increment(state.count)
        mu = jax.tree.map(lambda g, m: _moment(g, m, self.b1), updates, state.mu)
        mu_hat = tree.bias_correction(mu, self.b1, count)

        def direction(m, h):
            floor = jnp.maximum(
                tree.coef(self.gamma, h.dtype) * h, tree.coef(self.eps, h.dtype)
            )
            m, floor = tree.promote(m, floor)
            return m / floor

        updates = jax.tree.map(direction, mu_hat, state.nu)
        ct = self.clip_threshold
        if ct is not None:
            if self.verbose:
                self._print_win_rate(updates, ct, count)
            updates = jax.tree.map(
                lambda u: jnp.clip(u, -tree.coef(ct, u.dtype), tree.coef(ct, u.dtype)),
                updates,
            )

        def refresh(fn_state, nu):
            diag, fn_state = self.hessian_diagonal_fn.update(
                grads, fn_state, params, **extra_args
            )
            nu = jax.tree.map(
                lambda d, n: _moment(d, n, self.b2).astype(n.dtype), diag, nu
            )
            return fn_state, nu

        # The estimate (a Hessian-vector product) is refreshed every
        # update_interval steps, at counts 0, k, 2k, ...
        fn_state, nu = jax.lax.cond(
            state.count % self.update_interval == 0,
            refresh,
            lambda s, n: (s, n),
            state.hessian_fn_state,
            state.nu,
        )
        mu = tree.cast(mu, self.mu_dtype)
        return updates, SophiaState(
            count=count, mu=mu, nu=nu, hessian_fn_state=fn_state
        )

    def _print_win_rate(self, updates: Any, ct: Any, count: jax.Array) -> None:
        """Print the share of unclipped elements (the paper's "win rate",
        best kept between 0.1 and 0.5) every n steps."""
        leaves = jax.tree.leaves(updates)
        size = sum(jnp.size(u) for u in leaves)
        kept = functools.reduce(
            jnp.add,
            [jnp.sum(jnp.abs(u) < tree.coef(ct, u.dtype)) for u in leaves],
            jnp.zeros([], jnp.int32),
        )
        rate = kept.astype(tree.default_float()) / size
        jax.lax.cond(
            count % self.print_win_rate_every_n_steps == 0,
            lambda: jax.debug.print("Sophia optimizer win rate: {}", rate),
            lambda: None,
        )


@register
class Sophia(Optimizer):
    """Sophia: momentum divided by an EMA of the Hessian's diagonal, clipped
    element-wise, so each coordinate moves at most ``learning_rate``.

    The Hessian diagonal comes from ``hessian_diagonal_fn`` (Hutchinson's
    estimator by default: ``update`` then needs ``obj_fn=``, the loss as a
    function of the params), refreshed every ``update_interval`` steps; other
    extra update arguments reach the estimator too.

    Update (t = step, 1-based; h_t the estimate, taken at t = 1, 1 + k, ...):
        mu = b1 * mu + (1 - b1) * g
        d = (mu / (1 - b1**t)) / max(gamma * nu, eps)      (the previous nu)
        d = clip(d, -clip_threshold, clip_threshold)       (unless None)
        nu = b2 * nu + (1 - b2) * h_t                      (when refreshed)
        w = w - learning_rate * (d + weight_decay * w)     (where mask is True)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1: momentum decay in [0, 1), default 0.965.
        b2: Hessian EMA decay in [0, 1), default 0.99 (per refresh: about
            ``1 - (1 - b2) / update_interval`` per step).
        eps: >= 0, default 1e-8.
        weight_decay: >= 0, default 1e-4 (decoupled).
        weight_decay_mask: pytree of bools or callable ``params -> pytree``;
            None decays all.
        gamma: > 0 scales the Hessian, >= 0, default 0.01.
        clip_threshold: > 0 or None (no clipping), default 1.0.
        update_interval: an integer >= 1, default 10 (static).
        hessian_diagonal_fn: a jgd or optax transform returning the diagonal,
            default ``hutchinson_estimator_diag_hessian()``.
        mu_dtype: dtype of the momentum (static).
        verbose: print the win rate (unclipped share) every
            ``print_win_rate_every_n_steps`` (>= 1 then) steps (static).
        print_win_rate_every_n_steps: an integer >= 0, default 0 (static).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> f = lambda w: jnp.sum(w**2)
        >>> opt, w = jgd.contrib.sophia(0.1, weight_decay=0.0), jnp.array([1.0, -2.0])
        >>> u, s = opt.update(2 * w, opt.init(w), w, obj_fn=f)
        >>> u  # nu was 0: the step is clipped to -lr * sign(g)
        Array([-0.1,  0.1], dtype=float32)
        >>> s[0].nu  # Hutchinson's estimate of diag(H) = 2, (1 - b2) * 2
        Array([0.02, 0.02], dtype=float32)

    References: Liu, Li, Hall, Liang & Ma, "Sophia: A Scalable Stochastic
    Second-order Optimizer for Language Model Pre-training", ICLR 2024,
    Algorithm 1 (Sophia-H, with Rademacher instead of Gaussian probes, as
    optax).

    Matches: optax.contrib.sophia(learning_rate, b1, b2, eps, weight_decay,
    weight_decay_mask, gamma, clip_threshold, update_interval,
    hessian_diagonal_fn, mu_dtype, verbose, print_win_rate_every_n_steps).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.965
    b2: Scalar = 0.99
    eps: Scalar = 1e-8
    weight_decay: Scalar = 1e-4
    weight_decay_mask: Any = None
    gamma: Scalar = 0.01
    clip_threshold: Scalar | None = 1.0
    update_interval: int = static_field(default=10)
    hessian_diagonal_fn: Any = dataclasses.field(
        default_factory=HutchinsonEstimatorDiagHessian
    )
    mu_dtype: DTypeLike | None = static_field(default=None)
    verbose: bool = static_field(default=False)
    print_win_rate_every_n_steps: int = static_field(default=0)

    _api = "jgd.contrib.sophia"

    def check(self):
        fn = _as_transform(self, "hessian_diagonal_fn", self.hessian_diagonal_fn)
        object.__setattr__(self, "hessian_diagonal_fn", fn)
        Optimizer.check(self)

    def recipe(self):
        return chain(
            _ScaleBySophia(
                self.b1,
                self.b2,
                self.eps,
                self.gamma,
                self.clip_threshold,
                self.update_interval,
                self.hessian_diagonal_fn,
                self.mu_dtype,
                self.verbose,
                self.print_win_rate_every_n_steps,
            ),
            add_decayed_weights(self.weight_decay, self.weight_decay_mask),
            scale_by_learning_rate(self.learning_rate),
        )


sophia = Sophia
