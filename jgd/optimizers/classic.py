"""The tutorials' optimizers: each a short ``chain`` under its equations.

Holds ``gd`` (plain gradient descent, as the tutorials write it), ``sgd``
(momentum, Nesterov), ``rmsprop`` (centered, momentum, Nesterov), ``adagrad``,
``adam`` and ``adamw``.

An optimizer is a value: a frozen dataclass whose fields are optax's
arguments, printable (``print(jgd.adam(1e-3))``), a pytree whose numeric
hyperparameters are leaves, and a transform whose ``init``/``update`` run the
chain that ``recipe()`` returns. ``learning_rate`` is a float or a schedule
everywhere. Its state is exactly the chain's state, so it equals optax's.
"""

# No ``from __future__ import annotations`` here: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

from typing import Any

from jax.typing import DTypeLike

from jgd.base import (
    Identity,
    Scalar,
    ScalarOrSchedule,
    chain,
    check_number,
    register,
    static_field,
)
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import (
    add_decayed_weights,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    trace,
)

__all__ = ["adagrad", "adam", "adamw", "gd", "rmsprop", "sgd"]


class _Classic(Optimizer):
    """Checks the learning rate first: ``None`` (which optax's
    ``scale_by_learning_rate`` takes as "no scaling") would leave the raw
    gradient as the step, which ``apply_updates`` adds: uphill."""

    learning_rate: ScalarOrSchedule  # each subclass's first field

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        Optimizer.check(self)


def _check_momentum(opt: "Sgd | Rmsprop") -> None:
    """``momentum`` is ``trace``'s ``decay``: check it under its own name first."""
    check_number(opt, "momentum", opt.momentum, 0, 1, none=True)
    _Classic.check(opt)


@register
class Gd(_Classic):
    """Plain (full-batch) gradient descent, as the tutorials write it.

    Update:
        w = w - learning_rate * dL/dw

    Args:
        learning_rate: float >= 0 or a schedule.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.gd(0.01)
        >>> u, _ = opt.update(jnp.array(-24.0), opt.init(jnp.array(2.0)))
        >>> jgd.apply_updates(jnp.array(2.0), u)
        Array(2.24, dtype=float32)

    Matches: optax.sgd(learning_rate) (state without optax's empty momentum
    slot).
    """

    learning_rate: ScalarOrSchedule

    _api = "jgd.gd"

    def recipe(self):
        return chain(scale_by_learning_rate(self.learning_rate))


gd = Gd


@register
class Sgd(_Classic):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Update:
        trace = g + momentum * trace                (momentum given)
        d = trace, or g + momentum * trace (nesterov), or g (no momentum)
        w = w - learning_rate * d

    Args:
        learning_rate: float >= 0 or a schedule.
        momentum: None (plain SGD) or in [0, 1] (1: a running sum, as optax).
        nesterov: Nesterov momentum (static).
        accumulator_dtype: dtype of the momentum buffer (static).

    References: Robbins & Monro, 1951; Polyak, 1964; Sutskever et al., 2013.

    Matches: optax.sgd(learning_rate, momentum, nesterov, accumulator_dtype).
    """

    learning_rate: ScalarOrSchedule
    momentum: Scalar | None = None
    nesterov: bool = static_field(default=False)
    accumulator_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.sgd"

    def check(self):
        _check_momentum(self)

    def recipe(self):
        if self.momentum is None:
            first = Identity()
        else:
            first = trace(self.momentum, self.nesterov, self.accumulator_dtype)
        return chain(first, scale_by_learning_rate(self.learning_rate))


sgd = Sgd


@register
class Rmsprop(_Classic):
    """RMSprop: divide by a running root-mean-square of the gradients.

    Update:
        nu = decay * nu + (1 - decay) * g**2
        d = g / sqrt(nu + eps)                 (centered: nu - mu**2 inside)
        trace = -learning_rate * d + momentum * trace   (momentum given)
        w = w + trace   (or w - learning_rate * d without momentum)

    Args:
        learning_rate: float >= 0 or a schedule.
        decay: in [0, 1), default 0.9.
        eps: >= 0, default 1e-8.
        initial_scale: >= 0, default 0.
        eps_in_sqrt, centered, nesterov, bias_correction: static flags.
        momentum: None or in [0, 1] (1: a running sum, as optax).

    References: Hinton et al., lecture 6e, 2012; Graves, 2013 (centered).

    Matches: optax.rmsprop(...) with the same arguments.
    """

    learning_rate: ScalarOrSchedule
    decay: Scalar = 0.9
    eps: Scalar = 1e-8
    initial_scale: Scalar = 0.0
    eps_in_sqrt: bool = static_field(default=True)
    centered: bool = static_field(default=False)
    momentum: Scalar | None = None
    nesterov: bool = static_field(default=False)
    bias_correction: bool = static_field(default=False)

    _api = "jgd.rmsprop"

    def check(self):
        _check_momentum(self)

    def recipe(self):
        kind = scale_by_stddev if self.centered else scale_by_rms
        rescale = kind(
            self.decay,
            self.eps,
            self.initial_scale,
            self.eps_in_sqrt,
            self.bias_correction,
        )
        last = (
            Identity() if self.momentum is None else trace(self.momentum, self.nesterov)
        )
        return chain(rescale, scale_by_learning_rate(self.learning_rate), last)


rmsprop = Rmsprop


@register
class Adagrad(_Classic):
    """AdaGrad: divide by the root of the sum of all squared gradients.

    Update:
        s = s + g**2
        w = w - learning_rate * g / sqrt(s + eps)

    Args:
        learning_rate: float >= 0 or a schedule.
        initial_accumulator_value: >= 0, default 0.1.
        eps: >= 0, default 1e-7.

    References: Duchi, Hazan & Singer, 2011.

    Matches: optax.adagrad(learning_rate, initial_accumulator_value, eps).
    """

    learning_rate: ScalarOrSchedule
    initial_accumulator_value: Scalar = 0.1
    eps: Scalar = 1e-7

    _api = "jgd.adagrad"

    def recipe(self):
        return chain(
            scale_by_rss(self.initial_accumulator_value, self.eps),
            scale_by_learning_rate(self.learning_rate),
        )


adagrad = Adagrad


@register
class Adam(_Classic):
    """Adam: momentum on the gradient, RMSprop on its square, bias-corrected.

    Update (t = step, 1-based):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g**2
        w = w - learning_rate * (mu / (1 - b1**t)) / (sqrt(nu / (1 - b2**t) + eps_root) + eps)

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps, eps_root: >= 0, defaults 1e-8 and 0.
        mu_dtype: dtype of the first moment (static).
        nesterov: NAdam (static, keyword-only).

    Example:
        >>> import jgd
        >>> print(jgd.adam(1e-3))
        Adam(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, nesterov=False)

    References: Kingma & Ba, 2014, Algorithm 1.

    Matches: optax.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    eps_root: Scalar = 0.0
    mu_dtype: DTypeLike | None = static_field(default=None)
    nesterov: bool = static_field(default=False, kw_only=True)

    _api = "jgd.adam"

    def _scale_by_adam(self):
        return scale_by_adam(
            self.b1,
            self.b2,
            self.eps,
            self.eps_root,
            self.mu_dtype,
            nesterov=self.nesterov,
        )

    def recipe(self):
        return chain(self._scale_by_adam(), scale_by_learning_rate(self.learning_rate))


adam = Adam


@register
class Adamw(Adam):
    """AdamW: Adam with weight decay decoupled from the gradient.

    Update:
        d = adam_direction(g)                       (as in ``adam``)
        w = w - learning_rate * (d + weight_decay * w)   (where mask is True)

    Args:
        as ``adam``, plus
        weight_decay: float >= 0 or a schedule, default 1e-4.
        mask: pytree of bools or callable ``params -> pytree``; None decays all.

    References: Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
    2019, Algorithm 2.

    Matches: optax.adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype,
    weight_decay, mask, nesterov=).
    """

    weight_decay: ScalarOrSchedule = 1e-4
    mask: Any = None

    _api = "jgd.adamw"

    def recipe(self):
        return chain(
            self._scale_by_adam(),
            add_decayed_weights(self.weight_decay, self.mask),
            scale_by_learning_rate(self.learning_rate),
        )


adamw = Adamw
