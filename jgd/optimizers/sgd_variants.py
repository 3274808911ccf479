"""Sign, noise, step-size and optimistic variants of SGD, under optax 0.2.8's
names: ``sign_sgd``, ``signum``, ``noisy_sgd``, ``polyak_sgd``, ``rprop``,
``optimistic_gradient_descent`` and ``optimistic_adam_v2``. Each is a short
``chain`` of the building blocks in ``jgd.transforms.elementwise``; its state
is the chain's, field by field optax's.
"""

# No ``from __future__ import annotations`` here: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

from dataclasses import KW_ONLY
from typing import Any

from jax.typing import DTypeLike

from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    chain,
    check_number,
    register,
    static_field,
)
from jgd.optimizers.classic import sgd
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import scale, scale_by_adam, scale_by_learning_rate
from jgd.transforms.elementwise import (
    _check_seed,
    add_noise,
    ema,
    scale_by_optimistic_gradient,
    scale_by_polyak,
    scale_by_rprop,
    scale_by_sign,
)

__all__ = [
    "noisy_sgd",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "rprop",
    "sign_sgd",
    "signum",
]


class _Descent(Optimizer):
    """Checks ``learning_rate`` first and refuses ``None``, which
    ``scale_by_learning_rate`` takes as "no scaling": the raw gradient would
    be the step, and ``apply_updates`` adds it, uphill (issue 13)."""

    learning_rate: ScalarOrSchedule  # each subclass's first field

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        Optimizer.check(self)


@register
class SignSgd(_Descent):
    """signSGD: step by the learning rate against the sign of each gradient
    element.

    Update:
        w = w - learning_rate * sign(g)

    Args:
        learning_rate: float >= 0 or a schedule (sign methods converge only
            with a decaying one).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.sign_sgd(0.1)
        >>> u, _ = opt.update(jnp.array([3.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u
        Array([-0.1,  0.1], dtype=float32)

    References: Bernstein et al., "signSGD: Compressed Optimisation for
    Non-Convex Problems", 2018, Algorithm 1; Balles, Pedregosa & Le Roux,
    "The Geometry of Sign Gradient Descent", 2020.

    Matches: optax.sign_sgd(learning_rate).
    """

    learning_rate: ScalarOrSchedule

    _api = "jgd.sign_sgd"

    def recipe(self):
        return chain(scale_by_sign(), scale_by_learning_rate(self.learning_rate))


sign_sgd = SignSgd


@register
class Signum(_Descent):
    """Signum: signSGD on a momentum (an EMA of the gradients, not debiased:
    the sign does not see the scale).

    Update:
        m = beta * m + (1 - beta) * g
        w = w - learning_rate * sign(m)

    Args:
        learning_rate: float >= 0 or a schedule.
        beta: the EMA decay, in [0, 1), default 0.9.
        accumulator_dtype: dtype of ``m`` (static), default the params'.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.signum(0.1)
        >>> u, _ = opt.update(jnp.array([3.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u
        Array([-0.1,  0.1], dtype=float32)

    References: Bernstein et al., "signSGD: Compressed Optimisation for
    Non-Convex Problems", 2018 (Signum); Zhao et al., "Deconstructing
    What Makes a Good Optimizer for Language Models", 2024.

    Matches: optax.signum(learning_rate, beta, accumulator_dtype).
    """

    learning_rate: ScalarOrSchedule
    beta: Scalar = 0.9
    accumulator_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.signum"

    def check(self):
        # beta is ema's decay: check it under its own name first.
        check_number(self, "beta", self.beta, 0, 1, hi_open=True)
        _Descent.check(self)

    def recipe(self):
        return chain(
            ema(self.beta, debias=False, accumulator_dtype=self.accumulator_dtype),
            scale_by_sign(),
            scale_by_learning_rate(self.learning_rate),
        )


signum = Signum


@register
class NoisySgd(_Descent):
    """SGD on gradients plus annealed Gaussian noise.

    Update:
        sigma = sqrt(eta / t**gamma)       (t = 1, 2, ...)
        w = w - learning_rate * (g + sigma * N(0, 1))

    Args:
        learning_rate: float >= 0 or a schedule.
        eta: the initial noise variance, >= 0, default 0.01.
        gamma: the annealing exponent, >= 0, default 0.55.
        key: a ``jax.random.key`` (or raw ``PRNGKey``) or an integer seed;
            ``None`` is seed 0, as in optax (which warns).
        seed: deprecated, as in optax: an integer seed when ``key`` is None.

    Example:
        >>> import jax, jgd, jax.numpy as jnp
        >>> opt = jgd.noisy_sgd(0.1, eta=0.0, key=jax.random.key(0))
        >>> u, _ = opt.update(jnp.array([3.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u
        Array([-0.3 ,  0.05], dtype=float32)

    References: Neelakantan et al., "Adding Gradient Noise Improves Learning
    for Very Deep Networks", 2015, Section 2.

    Matches: optax.noisy_sgd(learning_rate, eta, gamma, key, seed=seed): the
    same key gives the same numbers.
    """

    learning_rate: ScalarOrSchedule
    eta: Scalar = 0.01
    gamma: Scalar = 0.55
    key: Any = None
    seed: int | None = static_field(default=None, kw_only=True)

    _api = "jgd.noisy_sgd"

    def check(self):
        # Once, here: the recipe, rebuilt at every update, gets the seed as key.
        _check_seed(self, self.key, self.seed)
        _Descent.check(self)

    def recipe(self):
        key = self.key if self.seed is None else self.seed
        return chain(
            add_noise(self.eta, self.gamma, key),
            scale_by_learning_rate(self.learning_rate),
        )


noisy_sgd = NoisySgd


@register
class PolyakSgd(Optimizer):
    """SGD with Polyak's step size, from the loss value passed as ``value=``.

    ``update(grads, state, params, value=loss)``: the loss is an extra keyword
    argument (optax's ``GradientTransformationExtraArgs`` protocol).

    Update:
        gap = f(w) - f_min                   (sps+: max(gap, 0))
        step = min(gap / (||g||**2 + eps), max_learning_rate)
        step = 0                             if ||g||**2 + eps <= 2**-52
        w = w - scaling * step * g

    Args:
        max_learning_rate: the largest step, >= 0, default 1.
        scaling: float >= 0 or a schedule, default 1: a factor on the step.
        f_min: a lower bound of the loss, finite, default 0.
        eps: >= 0, default 0, added to the squared norm.
        variant: ``"sps"`` or ``"sps+"`` (static).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.polyak_sgd()
        >>> w = jnp.array([1.0, 2.0])      # f(w) = sum(w**2) = 5, g = 2w
        >>> u, _ = opt.update(2 * w, opt.init(w), w, value=jnp.sum(w**2))
        >>> jgd.apply_updates(w, u)
        Array([0.5, 1. ], dtype=float32)

    References: Loizou et al., "Stochastic Polyak Step-size for SGD: An
    Adaptive Learning Rate for Fast Convergence", 2021 (SPS_max);
    Garrigos et al., "Function value learning: Adaptive learning rates based
    on the Polyak stepsize and function splitting in ERM", 2023 (sps+).

    Matches: optax.polyak_sgd(...) when ``scaling`` is 1 (the default). With
    another scaling optax computes the Polyak step from the already scaled
    gradient, ``min(gap / (s**2 ||g||**2 + eps), max) * s``, which divides an
    uncapped step by ``s`` instead of multiplying it; jgd follows optax's
    documented formula ``s * min(gap / (||g||**2 + eps), max)``. The state is
    optax's with the two parts in the other order.
    """

    max_learning_rate: Scalar = 1.0
    scaling: ScalarOrSchedule = 1.0
    f_min: Scalar = 0.0
    eps: Scalar = 0.0
    variant: str = static_field(default="sps")

    _api = "jgd.polyak_sgd"

    def check(self):
        # scaling is sgd's learning rate: check it under its own name first.
        check_number(self, "scaling", self.scaling, 0, schedule=True)
        Optimizer.check(self)

    def recipe(self):
        return chain(
            scale_by_polyak(
                f_min=self.f_min,
                max_learning_rate=self.max_learning_rate,
                eps=self.eps,
                variant=self.variant,
            ),
            sgd(self.scaling),
        )


polyak_sgd = PolyakSgd


@register
class Rprop(Optimizer):
    """Rprop: per-element step sizes grown while the gradient keeps its sign
    and shrunk when it flips (iRprop-: the flipped element rests a step).

    Update (per element, s = g * g_prev, g_prev = 0 at first):
        step = clip(step * eta_plus, min_step_size, max_step_size)    (s > 0)
        step = clip(step * eta_minus, min_step_size, max_step_size)   (s < 0)
        w = w - step * sign(g)       (s >= 0)
        g_prev = g, or 0 where s < 0 (that element does not move this step)

    Args:
        learning_rate: the initial step size, >= 0 (not a schedule, as optax).
        eta_minus: in [0, 1], default 0.5.
        eta_plus: >= 1, default 1.2.
        min_step_size: >= 0, default 1e-6.
        max_step_size: >= min_step_size, default 50.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.rprop(0.1)
        >>> state = opt.init(jnp.zeros(2))
        >>> u, state = opt.update(jnp.array([3.0, -0.5]), state)
        >>> u
        Array([-0.1,  0.1], dtype=float32)
        >>> u, state = opt.update(jnp.array([1.0, -2.0]), state)  # same signs
        >>> u
        Array([-0.12,  0.12], dtype=float32)

    References: Riedmiller & Braun, "A Direct Adaptive Method for Faster
    Backpropagation Learning: The RPROP Algorithm", 1993; Igel & Hüsken,
    "Empirical evaluation of the improved Rprop learning algorithms", 2003
    (the iRprop- variant).

    Matches: optax.rprop(...) in its state at every step; optax 0.2.8's update
    is the previous step's (zero on the first step; optax PR #1725), jgd's is
    this step's, as the paper and ``torch.optim.Rprop``: jgd's first step is
    ``-learning_rate * sign(g)``.
    """

    learning_rate: Scalar
    eta_minus: Scalar = 0.5
    eta_plus: Scalar = 1.2
    min_step_size: Scalar = 1e-6
    max_step_size: Scalar = 50.0

    _api = "jgd.rprop"

    def recipe(self):
        return chain(
            scale_by_rprop(
                self.learning_rate,
                self.eta_minus,
                self.eta_plus,
                self.min_step_size,
                self.max_step_size,
            ),
            scale(-1.0),
        )


rprop = Rprop


@register
class OptimisticGradientDescent(_Descent):
    """Optimistic gradient descent: a step along the gradient extrapolated
    from the previous one (for min-max games, where plain descent cycles).

    Update (g_prev = g on the first step):
        d = (alpha + beta) * g - beta * g_prev
        w = w - learning_rate * d

    Args:
        learning_rate: float >= 0 or a schedule.
        alpha: >= 0, default 1 (a number: optax's annotation says a schedule
            is allowed, but its update cannot take one).
        beta: >= 0, default 1 (a number, as alpha).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.optimistic_gradient_descent(0.1)
        >>> state = opt.init(jnp.zeros(2))
        >>> u, state = opt.update(jnp.array([1.0, 2.0]), state)
        >>> u, state = opt.update(jnp.array([2.0, 2.0]), state)
        >>> u
        Array([-0.3, -0.2], dtype=float32)

    References: Mokhtari, Ozdaglar & Pattathil, "A Unified Analysis of
    Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems:
    Proximal Point Approach", 2020 (generalised OGD).

    Matches: optax.optimistic_gradient_descent(learning_rate, alpha, beta).
    """

    learning_rate: ScalarOrSchedule
    alpha: Scalar = 1.0
    beta: Scalar = 1.0

    _api = "jgd.optimistic_gradient_descent"

    def recipe(self):
        return chain(
            scale_by_optimistic_gradient(self.alpha, self.beta),
            scale_by_learning_rate(self.learning_rate),
        )


optimistic_gradient_descent = OptimisticGradientDescent


@register
class OptimisticAdamV2(_Descent):
    """Optimistic Adam: the optimistic extrapolation applied to Adam's step.

    Update:
        r = scale_by_adam(g)               (NAdam's form when nesterov)
        d = (alpha + beta) * r - beta * r_prev     (r_prev = r at first)
        w = w - learning_rate * d

    Args:
        learning_rate: float >= 0 or a schedule.
        alpha, beta: >= 0, default 1 (keyword-only, as every argument after
            the learning rate).
        b1, b2: Adam's decays in [0, 1), default 0.9 and 0.999.
        eps, eps_root: >= 0, default 1e-8 and 0.
        mu_dtype: dtype of Adam's first moment (static).
        nesterov: Adam's Nesterov form (static), default True.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.optimistic_adam_v2(0.1, alpha=0.5, nesterov=False)
        >>> u, _ = opt.update(jnp.array([3.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u.round(4)  # alpha * lr * g / |g| on the first step, up to eps
        Array([-0.05,  0.05], dtype=float32)

    References: Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with
    Optimism", 2018, Algorithm 1 (Optimistic Adam).

    Matches: optax.optimistic_adam_v2(learning_rate, alpha=, beta=, b1=, b2=,
    eps=, eps_root=, mu_dtype=, nesterov=) (optax 0.2.8's name; its
    ``optimistic_adam`` is the deprecated older interface).
    """

    learning_rate: ScalarOrSchedule
    _: KW_ONLY
    alpha: Scalar = 1.0
    beta: Scalar = 1.0
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)
    nesterov: bool = static_field(default=True)

    _api = "jgd.optimistic_adam_v2"

    def recipe(self):
        return chain(
            scale_by_adam(
                self.b1,
                self.b2,
                self.eps,
                self.eps_root,
                self.mu_dtype,
                nesterov=self.nesterov,
            ),
            scale_by_optimistic_gradient(self.alpha, self.beta),
            scale_by_learning_rate(self.learning_rate),
        )


optimistic_adam_v2 = OptimisticAdamV2
