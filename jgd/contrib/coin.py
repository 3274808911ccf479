"""Coin-betting methods, as ``optax.contrib`` has them: learning rates found by
betting on the gradient's sign.

Holds ``scale_by_cocob`` and ``cocob`` (COCOB-Backprop, per-coordinate
betting) with ``COCOBState``, and ``mechanize`` (Mechanic: wraps any optimizer
and learns one global scale for its updates) with ``MechanicState``.
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
    Static,
    Transform,
    chain,
    check_int,
    check_number,
    is_transform,
    owner_name,
    register,
    static_field,
)
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import add_decayed_weights, scale_by_learning_rate

__all__ = ["COCOBState", "MechanicState", "cocob", "mechanize", "scale_by_cocob"]


def _needs_params(owner: Any, params: Any, why: str) -> None:
    if params is None:
        raise ValueError(
            f"{owner_name(owner)}: update needs params ({why}); "
            "call update(grads, state, params)."
        )


# --------------------------------------------------------------------------
# COCOB.
# --------------------------------------------------------------------------


class COCOBState(NamedTuple):
    """COCOB's starting point and per-coordinate betting statistics (matches
    ``optax.contrib.COCOBState``)."""

    init_particles: Any
    cumulative_gradients: Any
    scale: Any
    subgradients: Any
    reward: Any


@register
class ScaleByCocob(Transform):
    """Replace updates by COCOB-Backprop's bet: each coordinate bets a fraction
    of its wealth (reward) on the sign of the summed negative gradients.

    The output is ``w_new - w`` (the step itself, not a direction to scale):
    put ``scale_by_learning_rate(lr, flip_sign=False)`` before it, as ``cocob``
    does, to scale the gradients it sees.

    Update (per element; p0 the params at init):
        L = max(L, |g|)
        G = G + |g|
        R = max(R - g * (p - p0), 0)
        C = C - g
        u = -p + (p0 + C / (L * max(G + L, alpha * L)) * (L + R))

    Args:
        alpha: > 0, default 100: bounds the first bets (``alpha * L`` in the
            denominator).
        eps: > 0, default 1e-8, the starting ``L`` (so the first division is
            defined).

    Raises:
        ValueError: when ``update`` gets no ``params``.

    References: Orabona & Tommasi, "Training Deep Networks without Learning
    Rates Through Coin Betting", NeurIPS 2017, Algorithm 2 (COCOB-Backprop).

    Matches: optax.contrib.scale_by_cocob(alpha, eps).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    alpha: Scalar = 100.0
    eps: Scalar = 1e-8

    _api = "jgd.contrib.scale_by_cocob"

    def check(self):
        check_number(self, "alpha", self.alpha, 0, lo_open=True)
        check_number(self, "eps", self.eps, 0, lo_open=True)

    def init(self, params: Any) -> Any:
        zeros = tree.zeros_like(params)
        return COCOBState(
            init_particles=params,
            cumulative_gradients=zeros,
            scale=jax.tree.map(lambda p: jnp.full_like(p, self.eps), params),
            subgradients=zeros,
            reward=zeros,
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "COCOB bets from params - init_particles")
        tree.check_same_structure(self, updates, state.scale, "state")
        tree.check_same_structure(self, updates, params, "params")
        p0 = state.init_particles
        scale = jax.tree.map(
            lambda L, g: jnp.maximum(L, jnp.abs(g)), state.scale, updates
        )
        sub = jax.tree.map(lambda G, g: G + jnp.abs(g), state.subgradients, updates)

        def reward(R, g, p, p0):
            return jnp.maximum(R - g * (p - p0), jnp.zeros([], R.dtype))

        rew = jax.tree.map(reward, state.reward, updates, params, p0)
        cum = jax.tree.map(lambda C, g: C - g, state.cumulative_gradients, updates)

        def bet(p, p0, C, L, G, R):
            floor = jnp.maximum(G + L, tree.coef(self.alpha, L.dtype) * L)
            return -p + (p0 + C / (L * floor) * (L + R))

        new = jax.tree.map(bet, params, p0, cum, scale, sub, rew)
        return new, COCOBState(p0, cum, scale, sub, rew)


scale_by_cocob = ScaleByCocob


@register
class Cocob(Optimizer):
    """COCOB-Backprop: a learning-rate-free optimizer that bets on each
    coordinate's gradient sign, from its wealth won so far.

    Update (per element, g = learning_rate * (grad + weight_decay * w)):
        L = max(L, |g|);  G = G + |g|;  C = C - g
        R = max(R - g * (w - w0), 0)
        w = w0 + C / (L * max(G + L, alpha * L)) * (L + R)

    Args:
        learning_rate: float >= 0 or a schedule, default 1.0: scales the
            gradients the bets see (1 for the paper's method).
        alpha: > 0, default 100.
        eps: > 0, default 1e-8.
        weight_decay: >= 0, default 0 (L2, added to the gradient).
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.cocob()
        >>> w = jnp.array([1.0, -2.0])
        >>> u, _ = opt.update(jnp.array([0.5, -4.0]), opt.init(w), w)
        >>> jgd.apply_updates(w, u)  # first bet: w0 - sign(g) / alpha
        Array([ 0.99, -1.99], dtype=float32)

    References: Orabona & Tommasi, "Training Deep Networks without Learning
    Rates Through Coin Betting", NeurIPS 2017, Algorithm 2.

    Matches: optax.contrib.cocob(learning_rate, alpha, eps, weight_decay, mask).
    """

    learning_rate: ScalarOrSchedule = 1.0
    alpha: Scalar = 100.0
    eps: Scalar = 1e-8
    weight_decay: Scalar = 0.0
    mask: Any = None

    _api = "jgd.contrib.cocob"

    def recipe(self):
        return chain(
            add_decayed_weights(self.weight_decay, self.mask),
            scale_by_learning_rate(self.learning_rate, flip_sign=False),
            scale_by_cocob(self.alpha, self.eps),
        )


cocob = Cocob


# --------------------------------------------------------------------------
# Mechanic.
# --------------------------------------------------------------------------


class MechanicState(NamedTuple):
    """The wrapped optimizer's state and Mechanic's betting statistics, one
    per beta (matches ``optax.contrib.MechanicState``)."""

    base_optimizer_state: Any
    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax
    r: jax.Array
    m: jax.Array
    v: jax.Array
    s: jax.Array
    x0: Any


@register
class Mechanize(Transform):
    """Mechanic: learn one global scale for another optimizer's updates by
    betting, so its learning rate needs no tuning.

    The wrapped optimizer's updates are summed into a direction ``Delta``
    (recomputed from the params, the memory-lean form); Mechanic bets on it
    with ``num_betas`` coin-betting learners of decays ``1 - 0.1**k``
    (k = 1..num_betas) and puts the params at ``x0 - sum(s) * Delta``.

    Update (u the inner optimizer's update, t the step):
        x0 = params at the first update
        g' = g + weight_decay * sum(s) * |g| / (|p| + eps) * p     (tree norms)
        Delta_prev = (x0 - p) / (sum(s) + eps)
        Delta = Delta_prev - u
        h = <g', Delta_prev>
        m = max(beta * m, |h| + eps)
        v = beta**2 * v + h**2
        r = beta * r + clip(h, -m_old, m_old) * s
        s = (s_init / num_betas * m + max(r, 0)) / (sqrt(v) + eps)
        u' = x0 - sum(s) * Delta - p

    Args:
        base_optimizer: the optimizer to wrap (jgd's, a pytree child whose
            hyperparameters stay leaves, or optax's, carried as static). Its
            learning rate is a base (1.0 is fine; schedules keep their shape).
            Extra update arguments reach it.
        weight_decay: >= 0, default 1e-2 (Mechanic's own, on the gradient it
            bets with; the inner optimizer's is separate).
        eps: >= 0, default 1e-8.
        s_init: > 0, default 1e-6, the starting scale.
        num_betas: an integer >= 1, default 6 (static: the state's shape).

    State: ``MechanicState``; ``r``, ``m``, ``v``, ``s`` have shape
    ``(num_betas,)`` and the params' lowest dtype.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.mechanize(jgd.sgd(1.0))
        >>> w = jnp.array([1.0, -2.0])
        >>> u, s = opt.update(jnp.array([1.0, 1.0]), opt.init(w), w)
        >>> s.s.shape
        (6,)

    Raises:
        ValueError: when ``update`` gets no ``params``.

    References: Cutkosky, Defazio & Mehta, "Mechanic: A Learning Rate Tuner",
    NeurIPS 2023, Algorithm 1 (with the clipping of h that optax adds).

    Matches: optax.contrib.mechanize(base_optimizer, weight_decay, eps, s_init,
    num_betas).
    """

    base_optimizer: Any
    weight_decay: Scalar = 1e-2
    eps: Scalar = 1e-8
    s_init: Scalar = 1e-6
    num_betas: int = static_field(default=6)

    _api = "jgd.contrib.mechanize"

    def check(self):
        inner = self.base_optimizer
        if not isinstance(inner, (Transform, Static)):
            if not is_transform(inner):
                raise TypeError(
                    f"{owner_name(self)}: base_optimizer must be a transform with "
                    f"init and update (jgd or optax); got {inner!r} "
                    f"({type(inner).__name__})."
                )
            # An optax GradientTransformation is a tuple of functions: static.
            object.__setattr__(self, "base_optimizer", Static(inner))
        check_number(self, "weight_decay", self.weight_decay, 0)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "s_init", self.s_init, 0, lo_open=True)
        check_int(self, "num_betas", self.num_betas, 1)

    def init(self, params: Any) -> Any:
        # optax keeps the scale in the lowest dtype, so no param is promoted.
        dt = tree.dtype(params, "lowest")
        zeros = jnp.zeros([self.num_betas], dt)
        return MechanicState(
            base_optimizer_state=self.base_optimizer.init(params),
            count=jnp.zeros([], jnp.int32),
            r=zeros,
            m=zeros,
            v=zeros,
            s=jnp.ones([self.num_betas], dt) * tree.coef(self.s_init, dt),
            x0=params,
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "Mechanic steps from x0 - params")
        tree.check_same_structure(self, updates, params, "params")
        inner, inner_state = self.base_optimizer.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        # x0 is taken at the first update, not at init: training loops often
        # swap in pre-trained weights after init.
        first = state.count == 0
        x0 = jax.tree.map(lambda p, x: jnp.where(first, p, x), params, state.x0)
        dt = state.s.dtype
        eps = tree.coef(self.eps, dt)
        s_sum = jnp.sum(state.s)
        # Mechanic's weight decay, on the gradient it bets with.
        decay = tree.coef(self.weight_decay, dt) * s_sum * tree.norm(updates).astype(dt)
        decay = decay / (tree.norm(params).astype(dt) + eps)

        def decayed(g, p):
            return g + (decay.astype(p.dtype) * p).astype(g.dtype)

        g = jax.tree.map(decayed, updates, params)
        delta_prev = jax.tree.map(
            lambda p, x: (x - p) / (s_sum + eps).astype(p.dtype), params, x0
        )
        delta = jax.tree.map(lambda d, u: d - u, delta_prev, inner)
        h = jnp.asarray(tree.vdot(g, delta_prev)).astype(dt)
        betas = jnp.array([1.0 - 0.1**k for k in range(1, self.num_betas + 1)], dt)
        clipped_h = jnp.clip(jnp.ones_like(state.m) * h, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = jnp.square(betas) * state.v + jnp.square(h)
        r = betas * state.r + clipped_h * state.s
        wealth = tree.coef(self.s_init / self.num_betas, dt) * m + jnp.maximum(
            jnp.zeros([], dt), r
        )
        s = wealth / (jnp.sqrt(v) + eps)
        s_new = jnp.sum(s)

        def step(x, d, p):
            return (x - s_new.astype(d.dtype) * d) - p

        new_updates = jax.tree.map(step, x0, delta, params)
        return new_updates, MechanicState(
            base_optimizer_state=inner_state,
            count=tree.safe_increment(state.count),
            r=r,
            m=m,
            v=v,
            s=s,
            x0=x0,
        )


mechanize = Mechanize
