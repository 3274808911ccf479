"""Adam variants from recent papers, as ``optax.contrib`` has them.

Holds ``scale_by_adopt`` and ``adopt`` (ADOPT: the step is normalised by the
second moment of the *previous* steps; its state is ``ScaleByAdamState``, as in
optax), ``scale_by_ademamix`` and ``ademamix`` (AdEMAMix: a fast and a slow
momentum mixed), ``scale_by_simplified_ademamix`` and ``simplified_ademamix``
(one accumulated momentum mixed with the gradient), with
``ScaleByAdemamixState`` and ``ScaleBySimplifiedAdEMAMixState``.
"""

# No ``from __future__ import annotations``: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    Transform,
    chain,
    check_dtype,
    check_number,
    owner_name,
    register,
    static_field,
)
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import (
    ScaleByAdamState,
    add_decayed_weights,
    scale_by_learning_rate,
)

__all__ = [
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "ademamix",
    "adopt",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]


def _moment(g: jax.Array, m: jax.Array, decay: Any) -> jax.Array:
    """``(1 - decay) * g + decay * m``, optax's ``tree.update_moment`` order:
    each product in its own operand's dtype (a bf16 ``mu_dtype`` moment is
    scaled in bf16), then the sum in the wider dtype."""
    a = tree.coef(1 - decay, g.dtype) * g
    b = tree.coef(decay, m.dtype) * m
    a, b = tree.promote(a, b)
    return a + b


def _fourth_root(count: jax.Array) -> jax.Array:
    """ADOPT's default clipping bound, ``count**0.25``."""
    return count**0.25


def _check_callable(owner: Any, arg: str, value: Any) -> None:
    if not callable(value):
        raise TypeError(
            f"{owner_name(owner)}: {arg} must be a callable; got {value!r} "
            f"({type(value).__name__})."
        )


# --------------------------------------------------------------------------
# ADOPT.
# --------------------------------------------------------------------------


@register
class ScaleByAdopt(Transform):
    """Rescale updates by ADOPT: normalise by the previous second moment, then
    take momentum.

    At the first step (count 0) ``nu`` is set to ``g**2`` and the update is 0
    (``b1_ = 1``, ``b2_ = 0``, and the clipping bound ``0**0.25`` is 0).

    Update (c = count before this step, 0-based):
        b1_ = b1 if c > 0 else 1;  b2_ = b2 if c > 0 else 0
        x = g / max(sqrt(nu), eps)                  (the old nu)
        x = clip(x, -clip_value_fn(c), clip_value_fn(c))   (use_clipping)
        nu = b2_ * nu + (1 - b2_) * |g|**2
        mu = b1_ * mu + (1 - b1_) * x
        u = mu                                      (nesterov=False)
        u = b1_ * mu + (1 - b1_) * x                (nesterov=True, the new mu)

    Args:
        b1: momentum decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.9999.
        eps: >= 0, default 1e-6, the floor of ``sqrt(nu)``.
        mu_dtype: dtype of ``mu`` (default: the params' dtype), static.
        nesterov: Nesterov momentum (static, keyword-only).
        use_clipping: clip the normalised gradient (static, keyword-only).
        clip_value_fn: the clipping bound as a function of the 0-based step
            count, default ``count**0.25`` (static, keyword-only). It gets the
            count as a float in the default float dtype, so ``x**0.25`` passes
            under strict promotion; optax passes the int32 count (the same
            numbers). Complex updates need ``use_clipping=False`` (complex
            numbers have no order to clip by, in optax too).

    References: Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any
    beta2 with the Optimal Rate", NeurIPS 2024, Algorithm 2 (with clipping).

    Matches: optax.contrib.scale_by_adopt(b1, b2, eps, mu_dtype, nesterov=,
    use_clipping=, clip_value_fn=); the clipping bound is cast to the update's
    dtype.
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.9999
    eps: Scalar = 1e-6
    mu_dtype: DTypeLike | None = static_field(default=None)
    nesterov: bool = static_field(default=False, kw_only=True)
    use_clipping: bool = static_field(default=True, kw_only=True)
    clip_value_fn: Callable[[jax.Array], jax.Array] = static_field(
        default=_fourth_root, kw_only=True
    )

    _api = "jgd.contrib.scale_by_adopt"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )
        _check_callable(self, "clip_value_fn", self.clip_value_fn)

    def init(self, params: Any) -> Any:
        return ScaleByAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=tree.zeros_like(params, dtype=self.mu_dtype),
            nu=tree.zeros_like(params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        fdt = tree.default_float()
        # optax's jnp.where(count > 0, b, 0 or 1) is a default-float scalar,
        # so 1 - b is rounded in that dtype too.
        started = state.count > 0
        b1 = jnp.where(started, tree.coef(self.b1, fdt), 1)
        b2 = jnp.where(started, tree.coef(self.b2, fdt), 0)
        if self.use_clipping:
            bound = self.clip_value_fn(state.count.astype(fdt))

        def normalised(g, v):
            floor = jnp.maximum(jnp.sqrt(v), tree.coef(self.eps, v.dtype))
            g, floor = tree.promote(g, floor)
            x = g / floor
            if self.use_clipping:
                c = tree.coef(bound, x.dtype)
                x = jnp.clip(x, -c, c)
            return x

        x = jax.tree.map(normalised, updates, state.nu)
        nu = jax.tree.map(
            lambda g, v: _moment(tree.abs_sq(g), v, b2), updates, state.nu
        )
        mu = jax.tree.map(lambda x, m: _moment(x, m, b1), x, state.mu)
        if self.nesterov:
            step = jax.tree.map(lambda x, m: _moment(x, m, b1), x, mu)
        else:
            step = mu
        count = tree.safe_increment(state.count)
        mu = tree.cast(mu, self.mu_dtype)
        return step, ScaleByAdamState(count=count, mu=mu, nu=nu)


scale_by_adopt = ScaleByAdopt


@register
class Adopt(Optimizer):
    """ADOPT: Adam with the step normalised by the previous second moment, so
    it converges for any ``b2``.

    Update (c = count before this step, 0-based; nothing moves at c = 0):
        x = clip(g / max(sqrt(nu), eps), -c**0.25, c**0.25)   (the old nu)
        nu = b2 * nu + (1 - b2) * g**2
        mu = b1 * mu + (1 - b1) * x
        w = w - learning_rate * mu

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.9999.
        eps: >= 0, default 1e-6.
        mu_dtype: dtype of the first moment (static).
        nesterov, use_clipping, clip_value_fn: as ``scale_by_adopt``
            (static, keyword-only).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.adopt(0.1)
        >>> g = jnp.array([2.0, -4.0])
        >>> s = opt.update(g, opt.init(g))[1]  # the first step sets nu only
        >>> opt.update(g, s)[0]
        Array([-0.01,  0.01], dtype=float32)

    References: Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any
    beta2 with the Optimal Rate", NeurIPS 2024, Algorithm 2.

    Matches: optax.contrib.adopt(learning_rate, b1, b2, eps, mu_dtype,
    nesterov=, use_clipping=, clip_value_fn=).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.9999
    eps: Scalar = 1e-6
    mu_dtype: DTypeLike | None = static_field(default=None)
    nesterov: bool = static_field(default=False, kw_only=True)
    use_clipping: bool = static_field(default=True, kw_only=True)
    clip_value_fn: Callable[[jax.Array], jax.Array] = static_field(
        default=_fourth_root, kw_only=True
    )

    _api = "jgd.contrib.adopt"

    def recipe(self):
        return chain(
            scale_by_adopt(
                self.b1,
                self.b2,
                self.eps,
                self.mu_dtype,
                nesterov=self.nesterov,
                use_clipping=self.use_clipping,
                clip_value_fn=self.clip_value_fn,
            ),
            scale_by_learning_rate(self.learning_rate),
        )


adopt = Adopt


# --------------------------------------------------------------------------
# AdEMAMix.
# --------------------------------------------------------------------------


class ScaleByAdemamixState(NamedTuple):
    """AdEMAMix's counts, fast and slow momenta and second moment (matches
    ``optax.contrib.ScaleByAdemamixState``)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax
    count_m2: jax.Array  # int32 scalar: the step of the b3 and alpha schedules
    m1: Any
    m2: Any
    nu: Any


@register
class ScaleByAdemamix(Transform):
    """Rescale updates by AdEMAMix: Adam's fast momentum plus ``alpha`` times a
    slow one, over Adam's second moment.

    Update (t = count + 1; b3 and alpha may follow schedules of count_m2):
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        nu = b2 * nu + (1 - b2) * |g|**2
        m1_hat = m1 / (1 - b1**t)
        nu_hat = nu / (1 - b2**t)
        u = (m1_hat + alpha * m2) / (sqrt(nu_hat + eps_root) + eps)

    The slow momentum ``m2`` is not bias-corrected, as in the paper, so that it
    fills slowly.

    Args:
        b1: fast-momentum decay in [0, 1), default 0.9.
        b2: second-moment decay in [0, 1), default 0.999.
        b3: slow-momentum decay in [0, 1) or a schedule, default 0.9999.
        alpha: mixing weight of the slow momentum, >= 0 or a schedule,
            default 6.0.
        eps: >= 0, default 1e-8, added outside the root.
        eps_root: >= 0, default 0, added inside the root.
        mu_dtype: dtype of ``m1``, ``m2`` and ``nu`` (default: the params'),
            static.

    References: Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer:
    Better, Faster, Older", 2024, Algorithm 1.

    Matches: optax.contrib.scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root,
    mu_dtype), except that a ``mu_dtype`` moment stays in ``mu_dtype`` where
    optax's becomes the update's dtype after the first step
    (tests/catalogue/contrib_b.py KNOWN_DIFFERENCES['ademamix mu_dtype']).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.9
    b2: Scalar = 0.999
    b3: ScalarOrSchedule = 0.9999
    alpha: ScalarOrSchedule = 6.0
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.contrib.scale_by_ademamix"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "b3", self.b3, 0, 1, hi_open=True, schedule=True)
        check_number(self, "alpha", self.alpha, 0, schedule=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "eps_root", self.eps_root, 0)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )

    def init(self, params: Any) -> Any:
        zeros = tree.zeros_like(params, dtype=self.mu_dtype)
        return ScaleByAdemamixState(
            count=jnp.zeros([], jnp.int32),
            count_m2=jnp.zeros([], jnp.int32),
            m1=zeros,
            m2=zeros,
            nu=zeros,
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.nu, "state")
        b3 = self.b3(state.count_m2) if callable(self.b3) else self.b3
        alpha = self.alpha(state.count_m2) if callable(self.alpha) else self.alpha
        m1 = jax.tree.map(lambda g, m: _moment(g, m, self.b1), updates, state.m1)
        m2 = jax.tree.map(lambda g, m: _moment(g, m, b3), updates, state.m2)
        nu = jax.tree.map(
            lambda g, v: _moment(tree.abs_sq(g), v, self.b2), updates, state.nu
        )
        count = tree.safe_increment(state.count)
        count_m2 = tree.safe_increment(state.count_m2)
        m1_hat = tree.bias_correction(m1, self.b1, count)
        nu_hat = tree.bias_correction(nu, self.b2, count)

        def step(m1, m2, v):
            mix = tree.coef(alpha, m2.dtype) * m2
            m1, mix = tree.promote(m1, mix)
            num = m1 + mix
            root = jnp.sqrt(v + tree.coef(self.eps_root, v.dtype))
            den = root + tree.coef(self.eps, root.dtype)
            num, den = tree.promote(num, den)
            return num / den

        updates = jax.tree.map(step, m1_hat, m2, nu_hat)
        # Moments keep their dtype (mu_dtype, or bf16), so the state is stable.
        keep = lambda new, old: jax.tree.map(lambda n, o: n.astype(o.dtype), new, old)
        return updates, ScaleByAdemamixState(
            count=count,
            count_m2=count_m2,
            m1=keep(m1, state.m1),
            m2=keep(m2, state.m2),
            nu=keep(nu, state.nu),
        )


scale_by_ademamix = ScaleByAdemamix


@register
class Ademamix(Optimizer):
    """AdEMAMix: AdamW with a slow momentum mixed into the fast one, to use
    much older gradients.

    Update (t = step, 1-based):
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        nu = b2 * nu + (1 - b2) * g**2
        d = (m1 / (1 - b1**t) + alpha * m2) / (sqrt(nu / (1 - b2**t) + eps_root) + eps)
        w = w - learning_rate * (d + weight_decay * w)   (where mask is True)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        b3: in [0, 1) or a schedule, default 0.9999.
        alpha: >= 0 or a schedule, default 5.0.
        eps, eps_root: >= 0, defaults 1e-8 and 0.
        mu_dtype: dtype of the moments (static).
        weight_decay: >= 0, default 0.
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.ademamix(0.1, alpha=0.0)  # alpha 0 is Adam
        >>> w, g = jnp.array([1.0, 1.0]), jnp.array([2.0, -4.0])
        >>> u = opt.update(g, opt.init(w), w)[0]
        >>> (u / 0.1).round(4)  # -lr * sign(g) at step 1, up to eps
        Array([-1.,  1.], dtype=float32)

    References: Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer:
    Better, Faster, Older", 2024, Algorithm 1.

    Matches: optax.contrib.ademamix(learning_rate, b1, b2, b3, alpha, eps,
    eps_root, mu_dtype, weight_decay, mask), except for ``mu_dtype`` (see
    ``scale_by_ademamix``).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    b3: ScalarOrSchedule = 0.9999
    alpha: ScalarOrSchedule = 5.0
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)
    weight_decay: Scalar = 0.0
    mask: Any = None

    _api = "jgd.contrib.ademamix"

    def recipe(self):
        return chain(
            scale_by_ademamix(
                self.b1,
                self.b2,
                self.b3,
                self.alpha,
                self.eps,
                self.eps_root,
                self.mu_dtype,
            ),
            add_decayed_weights(self.weight_decay, self.mask),
            scale_by_learning_rate(self.learning_rate),
        )


ademamix = Ademamix


# --------------------------------------------------------------------------
# Simplified AdEMAMix.
# --------------------------------------------------------------------------


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """Step count, accumulated momentum and second moment (matches
    ``optax.contrib.ScaleBySimplifiedAdEMAMixState``)."""

    t: jax.Array  # int32 scalar
    m: Any
    n: Any


@register
class ScaleBySimplifiedAdemamix(Transform):
    """Rescale updates by simplified AdEMAMix: an accumulated (not averaged)
    momentum plus ``alpha`` times the gradient, over Adam's second moment.

    Update (t = step, 1-based; alpha may follow a schedule of the old t):
        m = g + b1 * m
        n = |g|**2 + b2 * (n - |g|**2)          (= b2 * n + (1 - b2) * |g|**2)
        n_hat = n / (1 - b2**t)
        u = (m + alpha * g) / (sqrt(n_hat + eps_root) + eps)

    Args:
        b1: momentum decay in [0, 1), default 0.99.
        b2: second-moment decay in [0, 1), default 0.95.
        alpha: weight of the gradient, >= 0 or a schedule, default 0.
        eps: >= 0, default 1e-8, added outside the root.
        eps_root: >= 0, default 0, added inside the root.

    References: Morwani, Vyas, Janson, Kakade et al., "Connections between
    Schedule-Free Optimizers, AdEMAMix, and Accelerated SGD Variants", 2025,
    Algorithm 2 (Simplified-AdEMAMix).

    Matches: optax.contrib.scale_by_simplified_ademamix(b1, b2, alpha, eps,
    eps_root) on real parameters; for complex ones ``n`` accumulates
    ``|g|**2`` where optax accumulates ``g * g``
    (tests/catalogue/contrib_b.py KNOWN_DIFFERENCES['complex second moments']).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    b1: Scalar = 0.99
    b2: Scalar = 0.95
    alpha: ScalarOrSchedule = 0.0
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0

    _api = "jgd.contrib.scale_by_simplified_ademamix"

    def check(self):
        check_number(self, "b1", self.b1, 0, 1, hi_open=True)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "alpha", self.alpha, 0, schedule=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "eps_root", self.eps_root, 0)

    def init(self, params: Any) -> Any:
        return ScaleBySimplifiedAdEMAMixState(
            t=jnp.zeros([], jnp.int32),
            m=tree.zeros_like(params),
            n=tree.zeros_like(params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.n, "state")
        alpha = self.alpha(state.t) if callable(self.alpha) else self.alpha

        def momentum(g, m):
            g, m = tree.promote(g, m)
            return g + tree.coef(self.b1, m.dtype) * m

        def second(g, n):
            # optax's lerp: gg + b2 * (n - gg), the order of its rounding.
            gg, n = tree.promote(tree.abs_sq(g), n)
            return gg + tree.coef(self.b2, n.dtype) * (n - gg)

        m = jax.tree.map(momentum, updates, state.m)
        n = jax.tree.map(second, updates, state.n)
        t = tree.safe_increment(state.t)
        n_hat = tree.bias_correction(n, self.b2, t)

        def step(m, g, v):
            m, g = tree.promote(m, g)
            num = m + tree.coef(alpha, g.dtype) * g
            den = jnp.sqrt(v + tree.coef(self.eps_root, v.dtype))
            den = den + tree.coef(self.eps, den.dtype)
            num, den = tree.promote(num, den)
            return num / den

        updates = jax.tree.map(step, m, updates, n_hat)
        return updates, ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n)


scale_by_simplified_ademamix = ScaleBySimplifiedAdemamix


@register
class SimplifiedAdemamix(Optimizer):
    """Simplified AdEMAMix: one accumulated momentum plus ``alpha`` times the
    gradient, with Adam's second moment; ``alpha = 0`` is Adam with a rescaled
    learning rate and momentum.

    Update (t = step, 1-based):
        m = g + b1 * m
        n = b2 * n + (1 - b2) * g**2
        d = (m + alpha * g) / (sqrt(n / (1 - b2**t) + eps_root) + eps)
        w = w - learning_rate * (d + weight_decay * w)   (where mask is True)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1: in [0, 1), default 0.99.
        b2: in [0, 1), default 0.95.
        alpha: >= 0 or a schedule, default 0.
        eps, eps_root: >= 0, defaults 1e-8 and 0.
        weight_decay: >= 0, default 0.
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.simplified_ademamix(0.1)
        >>> w, g = jnp.array([1.0, 1.0]), jnp.array([2.0, -4.0])
        >>> opt.update(g, opt.init(w), w)[0]
        Array([-0.1,  0.1], dtype=float32)

    References: Morwani, Vyas, Janson, Kakade et al., "Connections between
    Schedule-Free Optimizers, AdEMAMix, and Accelerated SGD Variants", 2025,
    Algorithm 2.

    Matches: optax.contrib.simplified_ademamix(learning_rate, b1, b2, alpha,
    eps, eps_root, weight_decay, mask) on real parameters (see
    ``scale_by_simplified_ademamix`` for complex ones).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.99
    b2: Scalar = 0.95
    alpha: ScalarOrSchedule = 0.0
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    weight_decay: Scalar = 0.0
    mask: Any = None

    _api = "jgd.contrib.simplified_ademamix"

    def recipe(self):
        return chain(
            scale_by_simplified_ademamix(
                self.b1, self.b2, self.alpha, self.eps, self.eps_root
            ),
            add_decayed_weights(self.weight_decay, self.mask),
            scale_by_learning_rate(self.learning_rate),
        )


simplified_ademamix = SimplifiedAdemamix
