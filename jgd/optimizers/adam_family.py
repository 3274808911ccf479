"""Adam's relatives, each a short ``chain`` under its equations.

Holds ``nadam`` and ``nadamw`` (Adam and AdamW with Nesterov on by default),
``radam``, ``amsgrad``, ``adamax``, ``adamaxw``, ``adabelief``, ``adadelta``,
``yogi``, ``lion`` and ``adan``. Their building blocks are in
``jgd.transforms.adam_family`` and ``jgd.transforms.adan_lion_adadelta``.
Arguments, defaults and states are optax 0.2.8's; the deliberate differences
are ``adadelta(learning_rate=None)``, which descends (see its docstring), and
float16 leaves, whose moments are float32 so that no step is NaN or inf (all
but ``lion``).
"""

# No ``from __future__ import annotations`` here: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

from typing import Any, Optional

from jax.typing import DTypeLike

from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    chain,
    check_number,
    register,
    static_field,
)
from jgd.optimizers.classic import Adam, Adamw
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import add_decayed_weights, scale_by_learning_rate
from jgd.transforms.adam_family import (
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_belief,
    scale_by_radam,
    scale_by_yogi,
)
from jgd.transforms.adan_lion_adadelta import (
    scale_by_adadelta,
    scale_by_adan,
    scale_by_lion,
)

__all__ = [
    "adabelief",
    "adadelta",
    "adamax",
    "adamaxw",
    "adan",
    "amsgrad",
    "lion",
    "nadam",
    "nadamw",
    "radam",
    "yogi",
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
class Nadam(Adam):
    """NAdam: Adam with Dozat's Nesterov momentum (``adam(..., nesterov=True)``).

    Update (t = step, 1-based):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g|**2
        mu_hat = b1 * mu / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)
        w = w - learning_rate * mu_hat / (sqrt(nu / (1 - b2**t) + eps_root) + eps)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps, eps_root: >= 0, defaults 1e-8 and 0.
        mu_dtype: dtype of the first moment (static).
        nesterov: default True (static, keyword-only); False is plain Adam.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.nadam(0.1)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u
        Array([-0.14736743,  0.14736743], dtype=float32)

    References: Dozat, "Incorporating Nesterov Momentum into Adam", 2016,
    Algorithm 2 (without its extra ``b2`` factor on ``nu_hat``, as optax).

    Matches: optax.nadam(learning_rate, b1, b2, eps, eps_root, mu_dtype,
    nesterov=True).
    """

    nesterov: bool = static_field(default=True, kw_only=True)

    _api = "jgd.nadam"


nadam = Nadam


@register
class Nadamw(Adamw):
    """NAdamW: NAdam with decoupled weight decay (``adamw(..., nesterov=True)``).

    Update:
        d = nadam_direction(g)                           (as in ``nadam``)
        w = w - learning_rate * (d + weight_decay * w)   (where mask is True)

    Args:
        as ``nadam``, plus
        weight_decay: float >= 0 or a schedule, default 1e-4.
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.nadamw(0.1, weight_decay=0.5)
        >>> p = jnp.array([1.0, 1.0])
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(p), p)
        >>> u
        Array([-0.19736743,  0.09736743], dtype=float32)

    References: Dozat, 2016; Loshchilov & Hutter, "Decoupled Weight Decay
    Regularization", 2019, Algorithm 2.

    Matches: optax.nadamw(learning_rate, b1, b2, eps, eps_root, mu_dtype,
    weight_decay, mask, nesterov=True).
    """

    nesterov: bool = static_field(default=True, kw_only=True)

    _api = "jgd.nadamw"


nadamw = Nadamw


@register
class Radam(_Descent):
    """RAdam: Adam with its step rectified while ``nu``'s variance is too wide.

    Update (t = step, 1-based; see ``scale_by_radam``):
        ro = ro_inf - 2 * t * b2**t / (1 - b2**t),  ro_inf = 2 / (1 - b2) - 1
        d = r(ro) * mu_hat / (sqrt(nu_hat + eps_root) + eps)   (ro >= threshold)
        d = mu_hat                                             (otherwise)
        w = w - learning_rate * d

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps, eps_root: >= 0, defaults 1e-8 and 0.
        threshold: finite, >= 4 (see ``scale_by_radam``), default 5.
        nesterov: Dozat's Nesterov form (static, keyword-only).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.radam(0.1)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u  # ro < 5 on the first steps: momentum SGD
        Array([-0.19999997,  0.04999999], dtype=float32)

    References: Liu et al., "On the Variance of the Adaptive Learning Rate and
    Beyond", 2020, Algorithm 2.

    Matches: optax.radam(learning_rate, b1, b2, eps, eps_root, threshold,
    nesterov=).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    threshold: Scalar = 5.0
    nesterov: bool = static_field(default=False, kw_only=True)

    _api = "jgd.radam"

    def recipe(self):
        return chain(
            scale_by_radam(
                self.b1,
                self.b2,
                self.eps,
                self.eps_root,
                self.threshold,
                nesterov=self.nesterov,
            ),
            scale_by_learning_rate(self.learning_rate),
        )


radam = Radam


@register
class Amsgrad(_Descent):
    """AMSGrad: Adam whose denominator is a running max, so it never shrinks.

    Update (t = step, 1-based; see ``scale_by_amsgrad``):
        nu_max = max(nu_max, nu / (1 - b2**t))
        w = w - learning_rate * (mu / (1 - b1**t)) / (sqrt(nu_max + eps_root) + eps)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps, eps_root: >= 0, defaults 1e-8 and 0.
        mu_dtype: dtype of the first moment (static).
        bias_correction_mu, bias_correction_nu: static flags, default True.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.amsgrad(0.1)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u
        Array([-0.09999934,  0.09999934], dtype=float32)

    References: Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond",
    2018, Algorithm 2.

    Matches: optax.amsgrad(learning_rate, b1, b2, eps, eps_root, mu_dtype,
    bias_correction_mu, bias_correction_nu).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)
    bias_correction_mu: bool = static_field(default=True)
    bias_correction_nu: bool = static_field(default=True)

    _api = "jgd.amsgrad"

    def recipe(self):
        return chain(
            scale_by_amsgrad(
                self.b1,
                self.b2,
                self.eps,
                self.eps_root,
                self.mu_dtype,
                self.bias_correction_mu,
                self.bias_correction_nu,
            ),
            scale_by_learning_rate(self.learning_rate),
        )


amsgrad = Amsgrad


@register
class Adamax(_Descent):
    """AdaMax: Adam with the infinity norm in place of the root mean square.

    Update (t = step, 1-based):
        mu = b1 * mu + (1 - b1) * g
        nu = max(|g| + eps, b2 * nu)
        w = w - learning_rate * (mu / (1 - b1**t)) / nu

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps: >= 0, default 1e-8.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.adamax(0.1)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u
        Array([-0.09999999,  0.09999999], dtype=float32)

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    2014, Algorithm 2.

    Matches: optax.adamax(learning_rate, b1, b2, eps).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8

    _api = "jgd.adamax"

    def _scale_by_adamax(self):
        return scale_by_adamax(self.b1, self.b2, self.eps)

    def recipe(self):
        return chain(
            self._scale_by_adamax(), scale_by_learning_rate(self.learning_rate)
        )


adamax = Adamax


@register
class Adamaxw(Adamax):
    """AdaMaxW: AdaMax with decoupled weight decay.

    Update:
        d = adamax_direction(g)                          (as in ``adamax``)
        w = w - learning_rate * (d + weight_decay * w)   (where mask is True)

    Args:
        as ``adamax``, plus
        weight_decay: float >= 0 or a schedule, default 1e-4.
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.adamaxw(0.1, weight_decay=0.5)
        >>> p = jnp.array([1.0, 1.0])
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(p), p)
        >>> u
        Array([-0.14999998,  0.04999998], dtype=float32)

    References: Kingma & Ba, 2014, Algorithm 2; Loshchilov & Hutter,
    "Decoupled Weight Decay Regularization", 2019.

    Matches: optax.adamaxw(learning_rate, b1, b2, eps, weight_decay, mask).
    """

    weight_decay: ScalarOrSchedule = 1e-4
    mask: Any = None

    _api = "jgd.adamaxw"

    def recipe(self):
        return chain(
            self._scale_by_adamax(),
            add_decayed_weights(self.weight_decay, self.mask),
            scale_by_learning_rate(self.learning_rate),
        )


adamaxw = Adamaxw


@register
class Adabelief(_Descent):
    """AdaBelief: Adam whose denominator is the spread of g around its EMA.

    Update (t = step, 1-based):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * |g - mu|**2 + eps_root
        w = w - learning_rate * (mu / (1 - b1**t)) / (sqrt(nu / (1 - b2**t)) + eps)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps, eps_root: >= 0, defaults 1e-16 and 1e-16 (the paper: 1e-8, 0).
        nesterov: Dozat's Nesterov form (static, keyword-only).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.adabelief(0.1)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u  # nu = (1 - b2) * (b1 * g)**2: the first step is lr / b1
        Array([-0.11111038,  0.11111038], dtype=float32)

    References: Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the
    Belief in Observed Gradients", 2020, Algorithm 2.

    Matches: optax.adabelief(learning_rate, b1, b2, eps, eps_root, nesterov=).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-16
    eps_root: Scalar = 1e-16
    nesterov: bool = static_field(default=False, kw_only=True)

    _api = "jgd.adabelief"

    def recipe(self):
        return chain(
            scale_by_belief(
                self.b1, self.b2, self.eps, self.eps_root, nesterov=self.nesterov
            ),
            scale_by_learning_rate(self.learning_rate),
        )


adabelief = Adabelief


@register
class Adadelta(Optimizer):
    """Adadelta: steps sized by the RMS of past steps over the RMS of gradients.

    Update:
        g = g + weight_decay * w                         (where mask is True)
        e_g = rho * e_g + (1 - rho) * |g|**2
        d = (sqrt(e_x + eps) / sqrt(e_g + eps)) * g
        e_x = rho * e_x + (1 - rho) * |d|**2
        w = w - learning_rate * d                        (learning_rate None: 1)

    Args:
        learning_rate: None (default: the paper's step, a factor 1), a float
            >= 0 or a schedule.
        rho: in [0, 1), default 0.9.
        eps: > 0, default 1e-6.
        weight_decay: float >= 0 or a schedule, default 0 (added to the
            gradient before the scaling, as optax).
        weight_decay_mask: pytree of bools or callable ``params -> pytree``;
            None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.adadelta()
        >>> p = jnp.zeros(1)
        >>> u, _ = opt.update(jnp.array([2.0]), opt.init(p), p)
        >>> u  # -sqrt(eps / (0.1 * 4 + eps)) * 2
        Array([-0.00316227], dtype=float32)

    References: Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012,
    Algorithm 1.

    Matches: optax.adadelta(learning_rate, rho, eps, weight_decay,
    weight_decay_mask) when ``learning_rate`` is given. With the default
    ``None`` optax scales by nothing, so its update is ``+d`` and
    ``apply_updates`` climbs the loss; jgd takes the paper's ``-d``
    (KNOWN_DIFFERENCES['adadelta learning_rate=None']). Complex updates:
    KNOWN_DIFFERENCES['adadelta complex'] (see ``scale_by_adadelta``).
    """

    learning_rate: Optional[ScalarOrSchedule] = None  # noqa: UP045 (kept an object)
    rho: Scalar = 0.9
    eps: Scalar = 1e-6
    weight_decay: ScalarOrSchedule = 0.0
    weight_decay_mask: Any = None

    _api = "jgd.adadelta"

    def recipe(self):
        lr = 1.0 if self.learning_rate is None else self.learning_rate
        return chain(
            add_decayed_weights(self.weight_decay, self.weight_decay_mask),
            scale_by_adadelta(self.rho, self.eps),
            scale_by_learning_rate(lr),
        )


adadelta = Adadelta


@register
class Yogi(_Descent):
    """Yogi: Adam whose second moment moves additively, by at most
    ``(1 - b2) g**2`` a step.

    Update (t = step, 1-based; mu, nu start at 1e-6):
        mu = b1 * mu + (1 - b1) * g
        nu = nu - (1 - b2) * sign(nu - |g|**2) * |g|**2
        w = w - learning_rate * (mu / (1 - b1**t)) / (sqrt(nu / (1 - b2**t)) + eps)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps: >= 0, default 1e-3.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.yogi(0.1)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(jnp.zeros(2)))
        >>> u
        Array([-0.09993734,  0.09959934], dtype=float32)

    References: Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for
    Nonconvex Optimization", 2018, Algorithm 2.

    Matches: optax.yogi(learning_rate, b1, b2, eps).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-3

    _api = "jgd.yogi"

    def recipe(self):
        return chain(
            scale_by_yogi(self.b1, self.b2, self.eps),
            scale_by_learning_rate(self.learning_rate),
        )


yogi = Yogi


@register
class Lion(_Descent):
    """Lion: a step of the same size in every coordinate, the sign of an
    interpolation between the gradient and its momentum.

    Update:
        d = sign((1 - b1) * g + b1 * mu)
        mu = b2 * mu + (1 - b2) * g
        w = w - learning_rate * (d + weight_decay * w)   (where mask is True)

    Args:
        learning_rate: float >= 0 or a schedule (typically 3-10x smaller than
            Adam's).
        b1: in [0, 1], default 0.9.
        b2: in [0, 1], default 0.99.
        mu_dtype: dtype of the momentum (static).
        weight_decay: float >= 0 or a schedule, default 1e-3.
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.lion(0.1)
        >>> p = jnp.zeros(2)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(p), p)
        >>> u
        Array([-0.1,  0.1], dtype=float32)

    References: Chen et al., "Symbolic Discovery of Optimization Algorithms",
    2023, Algorithm 2.

    Matches: optax.lion(learning_rate, b1, b2, mu_dtype, weight_decay, mask).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.99
    mu_dtype: DTypeLike | None = static_field(default=None)
    weight_decay: ScalarOrSchedule = 1e-3
    mask: Any = None

    _api = "jgd.lion"

    def recipe(self):
        return chain(
            scale_by_lion(self.b1, self.b2, self.mu_dtype),
            add_decayed_weights(self.weight_decay, self.mask),
            scale_by_learning_rate(self.learning_rate),
        )


lion = Lion


@register
class Adan(_Descent):
    """Adan: Adam's moments plus a moment of gradient differences (Nesterov).

    Update (t = step, 1-based; see ``scale_by_adan``):
        d = g - g_prev                                   (0 on the first step)
        m, v, n = EMAs of g, d and |g + (1 - b2) * d|**2, bias-corrected
        u = (m + (1 - b2) * v) / (sqrt(n + eps_root) + eps)
        w = w - learning_rate * (u + weight_decay * w)   (where mask is True)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2, b3: in [0, 1), defaults 0.98, 0.92 and 0.99.
        eps: >= 0, default 1e-8.
        eps_root: >= 0, default 1e-8.
        weight_decay: float >= 0 or a schedule, default 0.
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.adan(0.1)
        >>> p = jnp.zeros(2)
        >>> u, _ = opt.update(jnp.array([2.0, -0.5]), opt.init(p), p)
        >>> u
        Array([-0.10000005,  0.10000005], dtype=float32)

    References: Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum
    Algorithm for Faster Optimizing Deep Models", 2022, Algorithm 1 (weight
    decay decoupled, not the paper's proximal step, as optax).

    Matches: optax.adan(learning_rate, b1, b2, b3, eps, eps_root,
    weight_decay, mask).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.98
    b2: Scalar = 0.92
    b3: Scalar = 0.99
    eps: Scalar = 1e-8
    eps_root: Scalar = 1e-8
    weight_decay: ScalarOrSchedule = 0.0
    mask: Any = None

    _api = "jgd.adan"

    def recipe(self):
        return chain(
            scale_by_adan(self.b1, self.b2, self.b3, self.eps, self.eps_root),
            add_decayed_weights(self.weight_decay, self.mask),
            scale_by_learning_rate(self.learning_rate),
        )


adan = Adan
