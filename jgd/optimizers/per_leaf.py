"""Optimizers whose math needs each leaf whole (per-matrix norms, trust
ratios, factored or per-axis moments): lamb, lars, fromage, adafactor, sm3,
novograd. Each is a ``chain`` of the blocks in jgd/transforms/per_leaf.py,
composed as optax composes it (masks through ``masked``), so states compare.
None is packable: jgd.train stores their params leaf by leaf.
"""

# No ``from __future__ import annotations`` here: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

from typing import Any

import jax.numpy as jnp
from jax.typing import DTypeLike

from jgd.base import (
    Chain,
    Scalar,
    ScalarOrSchedule,
    chain,
    check_dtype,
    check_int,
    check_number,
    register,
    static_field,
)
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import (
    AddDecayedWeights,
    add_decayed_weights,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    trace,
)
from jgd.transforms.masking import masked, static_mask
from jgd.transforms.per_leaf import (
    _ClipByBlockRms,
    _Ema,
    scale_by_factored_rms,
    scale_by_novograd,
    scale_by_param_block_rms,
    scale_by_sm3,
    scale_by_trust_ratio,
)

__all__ = ["adafactor", "fromage", "lamb", "lars", "novograd", "sm3"]


def _decay(weight_decay: Any, mask: Any) -> Any:
    """optax's ``add_decayed_weights(weight_decay, mask)``: wrapped in
    ``masked`` when a mask is given, so the state is ``MaskedState`` too."""
    decay = add_decayed_weights(weight_decay)
    return decay if mask is None else masked(decay, mask)


def _set_mask(opt: Optimizer, arg: str, none: bool = True) -> None:
    """Hold the mask ``arg`` as static configuration (jit hashes it)."""
    mask = getattr(opt, arg)
    if mask is not None or not none:
        object.__setattr__(opt, arg, static_mask(opt, arg, mask))


class _Descent(Optimizer):
    """Checks ``learning_rate`` first and refuses ``None``, which
    ``scale_by_learning_rate`` takes as "no scaling": the raw gradient would
    be the step, and ``apply_updates`` adds it, uphill (issue 13)."""

    learning_rate: ScalarOrSchedule  # each subclass's first field

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        Optimizer.check(self)


@register
class Lamb(_Descent):
    """LAMB: Adam's direction plus decoupled weight decay, rescaled per leaf
    by the trust ratio ``||p|| / ||d||``.

    Update (per leaf):
        d = adam_direction(g)                  (as ``scale_by_adam``)
        d = d + weight_decay * p               (where mask is True)
        r = ||p|| / ||d||                      (1 if either norm is 0)
        w = w - learning_rate * r * d

    Args:
        learning_rate: float >= 0 or a schedule.
        b1, b2: in [0, 1), defaults 0.9 and 0.999.
        eps: >= 0, default 1e-6 (outside the root).
        eps_root: >= 0, default 0 (inside the root).
        weight_decay: float >= 0 or a schedule, default 0.
        mask: tree of bools (or a prefix of the params) or a callable
            ``params -> tree``, static; None decays every leaf.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt, w = jgd.lamb(0.1), jnp.array([3.0, 4.0])
        >>> u, _ = opt.update(jnp.array([1.0, 0.0]), opt.init(w), w)
        >>> u  # Adam's first direction is sign(g); the trust ratio gives it ||w||
        Array([-0.5, -0. ], dtype=float32)

    References: You et al., "Large Batch Optimization for Deep Learning:
    Training BERT in 76 minutes", 2020, Algorithm 2.

    Matches: optax.lamb(learning_rate, b1, b2, eps, eps_root, weight_decay,
    mask).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-6
    eps_root: Scalar = 0.0
    weight_decay: ScalarOrSchedule = 0.0
    mask: Any = static_field(default=None)

    _api = "jgd.lamb"

    def check(self):
        _set_mask(self, "mask")
        super().check()

    def recipe(self):
        return chain(
            scale_by_adam(self.b1, self.b2, self.eps, self.eps_root),
            _decay(self.weight_decay, self.mask),
            scale_by_trust_ratio(),
            scale_by_learning_rate(self.learning_rate),
        )


lamb = Lamb


@register
class Lars(_Descent):
    """LARS: SGD with momentum whose step per leaf is scaled by the trust
    ratio ``trust_coefficient * ||p|| / ||g + weight_decay * p||``.

    Update (per leaf):
        d = g + weight_decay * p                         (where weight_decay_mask)
        d = d * trust_coefficient * ||p|| / (||d|| + eps)  (where trust_ratio_mask;
                                                          d if either norm is 0)
        trace = -learning_rate * d + momentum * trace
        w = w + trace          (w + (-learning_rate * d + momentum * trace): nesterov)

    Args:
        learning_rate: float >= 0 or a schedule.
        weight_decay: float >= 0 or a schedule, default 0.
        weight_decay_mask: tree of bools (or a prefix), a callable, or None
            for no mask; static, default True.
        trust_coefficient: >= 0, default 0.001.
        eps: >= 0, default 0.
        trust_ratio_mask: tree of bools (or a prefix) or a callable; static,
            default True.
        momentum: in [0, 1], default 0.9.
        nesterov: Nesterov momentum (static).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt, w = jgd.lars(1.0, momentum=0.0), jnp.array([3.0, 4.0])
        >>> u, _ = opt.update(jnp.array([0.0, 2.0]), opt.init(w), w)
        >>> u  # 0.001 * ||w|| / ||g|| * g
        Array([ 0.   , -0.005], dtype=float32)

    References: You, Gitman & Ginsburg, "Large Batch Training of Convolutional
    Networks", 2017, Algorithm 1.

    Matches: optax.lars(learning_rate, weight_decay, weight_decay_mask,
    trust_coefficient, eps, trust_ratio_mask, momentum, nesterov).
    """

    learning_rate: ScalarOrSchedule
    weight_decay: ScalarOrSchedule = 0.0
    weight_decay_mask: Any = static_field(default=True)
    trust_coefficient: Scalar = 0.001
    eps: Scalar = 0.0
    trust_ratio_mask: Any = static_field(default=True)
    momentum: Scalar = 0.9
    nesterov: bool = static_field(default=False)

    _api = "jgd.lars"

    def check(self):
        _set_mask(self, "weight_decay_mask")
        _set_mask(self, "trust_ratio_mask", none=False)
        check_number(self, "momentum", self.momentum, 0, 1)
        super().check()

    def recipe(self):
        ratio = scale_by_trust_ratio(
            trust_coefficient=self.trust_coefficient, eps=self.eps
        )
        return chain(
            _decay(self.weight_decay, self.weight_decay_mask),
            masked(ratio, self.trust_ratio_mask),
            scale_by_learning_rate(self.learning_rate),
            trace(decay=self.momentum, nesterov=self.nesterov),
        )


lars = Lars


@register
class _FromageDecay(AddDecayedWeights):
    """``add_decayed_weights`` with a negative rate: Fromage shrinks the
    params by ``1 / sqrt(1 + lr**2)`` as a decay of ``mult - 1 < 0``."""

    _api = "jgd.fromage"

    def check(self):
        check_number(self, "weight_decay", self.weight_decay, schedule=True)


class _Scheduled:
    """A schedule ``count -> fn(learning_rate(count))``, for Fromage."""

    def __init__(self, learning_rate: Any, fn: Any):
        self.learning_rate, self.fn = learning_rate, fn

    def __call__(self, count: Any) -> Any:
        return self.fn(self.learning_rate(count))


def _fromage_mult(lr: Any) -> Any:
    return 1 / (1 + lr**2) ** 0.5


def _fromage_shrink(lr: Any) -> Any:
    """``mult - 1`` for an array ``lr`` (a schedule's value, or traced by jit
    as jgd.train passes the optimizer), written without cancellation: optax's
    ``mult - 1`` in float32 loses ~1e-3 of it at lr = 0.01 (KNOWN_DIFFERENCES
    'fromage shrink'). A Python float keeps optax's form, exact in double."""
    x = lr**2
    root = (1 + x) ** 0.5
    return -x / (root * (1 + root))


@register
class Fromage(Optimizer):
    """Fromage: a step of relative size ``learning_rate`` per leaf, then a
    shrink that keeps the params' norms from growing.

    Update (per leaf, mult = 1 / sqrt(1 + learning_rate**2)):
        d = g * max(||p||, min_norm) / max(||g||, min_norm)   (g if a norm is 0)
        w = w - learning_rate * mult * d + (mult - 1) * w
          = mult * (w - learning_rate * d)

    Args:
        learning_rate: float >= 0 or a schedule.
        min_norm: floor of both norms, >= 0, default 1e-6.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt, w = jgd.fromage(0.75), jnp.array([3.0, 4.0])
        >>> u, _ = opt.update(jnp.array([0.0, 1.0]), opt.init(w), w)
        >>> jgd.apply_updates(w, u)  # 0.8 * (w - 0.75 * 5 * g)
        Array([2.4       , 0.20000005], dtype=float32)

    References: Bernstein, Vahdat, Yue & Liu, "On the distance between two
    neural networks and the stability of learning", 2020, Algorithm 1.

    Matches: optax.fromage(learning_rate, min_norm); with a schedule (or a
    traced learning rate) jgd computes ``mult - 1`` as
    ``-lr**2 / (s * (1 + s))``, ``s = sqrt(1 + lr**2)``, where optax's
    ``mult - 1`` cancels in float32 (~1e-3 relative error at lr = 0.01).
    """

    learning_rate: ScalarOrSchedule
    min_norm: Scalar = 1e-6

    _api = "jgd.fromage"

    def check(self):
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        check_number(self, "min_norm", self.min_norm, 0)
        super().check()

    def recipe(self):
        lr = self.learning_rate
        if callable(lr):
            step = _Scheduled(lr, lambda x: _fromage_mult(x) * x)
            decay = _Scheduled(lr, _fromage_shrink)
        else:
            mult = _fromage_mult(lr)
            exact = isinstance(lr, (int, float))
            step, decay = lr * mult, mult - 1 if exact else _fromage_shrink(lr)
        return chain(
            scale_by_trust_ratio(self.min_norm),
            scale_by_learning_rate(step),
            _FromageDecay(decay),
        )


fromage = Fromage


@register
class Adafactor(Optimizer):
    """Adafactor: factored second moments (row and column statistics of each
    large matrix), update clipping, and steps relative to the params' scale.

    Update (per leaf):
        d = scale_by_factored_rms(g)     (see there; decay 1 - t**-decay_rate)
        d = d / max(1, rms(d) / clipping_threshold)       (clipping_threshold)
        d = learning_rate * d                             (learning_rate)
        d = d * max(rms(p), 1e-3)                 (multiply_by_parameter_scale)
        m = momentum * m + (1 - momentum) * d; d = m      (momentum)
        d = d + weight_decay_rate * p      (weight_decay_rate, where the mask)
        w = w - d

    Args:
        learning_rate: None (no scaling), float >= 0 or a schedule.
        min_dim_size_to_factor: factor a leaf only if two axes are at least
            this long; int >= 0 (static), default 128.
        decay_rate: second-moment decay exponent, >= 0, default 0.8.
        decay_offset: steps to subtract from the decay's step, >= 0, default 0.
        multiply_by_parameter_scale: relative steps (static), default True.
        clipping_threshold: None or > 0, default 1.
        momentum: None or in [0, 1], default None.
        dtype_momentum: dtype of the momentum (static), default float32;
            None keeps the params' dtype.
        weight_decay_rate: None, float >= 0 or a schedule, default None.
        eps: added to the squared gradients, >= 0, default 1e-30.
        factored: factor large matrices at all (static), default True.
        weight_decay_mask: tree of bools (or a prefix) or a callable; static.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt, w = jgd.adafactor(0.1), jnp.array([3.0, -4.0])
        >>> u, _ = opt.update(jnp.array([2.0, 0.5]), opt.init(w), w)
        >>> u  # first step: -lr * rms(w) * sign(g)
        Array([-0.35355338, -0.35355338], dtype=float32)

    References: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with
    Sublinear Memory Cost", 2018, Algorithms 4-5 and section 7.

    Matches: optax.adafactor(...) with the same arguments.
    """

    learning_rate: ScalarOrSchedule | None = None
    min_dim_size_to_factor: int = static_field(default=128)
    decay_rate: Scalar = 0.8
    decay_offset: Scalar = 0
    multiply_by_parameter_scale: bool = static_field(default=True)
    clipping_threshold: Scalar | None = 1.0
    momentum: Scalar | None = None
    dtype_momentum: DTypeLike | None = static_field(default=jnp.float32)
    weight_decay_rate: ScalarOrSchedule | None = None
    eps: Scalar = 1e-30
    factored: bool = static_field(default=True)
    weight_decay_mask: Any = static_field(default=None)

    _api = "jgd.adafactor"

    def check(self):
        check_number(
            self, "learning_rate", self.learning_rate, 0, schedule=True, none=True
        )
        check_int(self, "min_dim_size_to_factor", self.min_dim_size_to_factor)
        check_number(self, "decay_rate", self.decay_rate, 0)
        check_number(self, "decay_offset", self.decay_offset, 0)
        check_number(
            self,
            "clipping_threshold",
            self.clipping_threshold,
            0,
            lo_open=True,
            none=True,
        )
        check_number(self, "momentum", self.momentum, 0, 1, none=True)
        check_number(
            self,
            "weight_decay_rate",
            self.weight_decay_rate,
            0,
            schedule=True,
            none=True,
        )
        check_number(self, "eps", self.eps, 0)
        object.__setattr__(
            self,
            "dtype_momentum",
            check_dtype(self, "dtype_momentum", self.dtype_momentum),
        )
        _set_mask(self, "weight_decay_mask")
        super().check()

    def recipe(self) -> Chain:
        tx: list[Any] = [
            scale_by_factored_rms(
                self.factored,
                self.decay_rate,
                self.decay_offset,
                self.min_dim_size_to_factor,
                self.eps,
            )
        ]
        if self.clipping_threshold is not None:
            tx.append(_ClipByBlockRms(self.clipping_threshold))
        if self.learning_rate is not None:
            tx.append(scale_by_learning_rate(self.learning_rate, flip_sign=False))
        if self.multiply_by_parameter_scale:
            tx.append(scale_by_param_block_rms())
        if self.momentum is not None:
            tx.append(_Ema(self.momentum, self.dtype_momentum))
        if self.weight_decay_rate is not None:
            tx.append(_decay(self.weight_decay_rate, self.weight_decay_mask))
        tx.append(scale(-1))
        return chain(*tx)


adafactor = Adafactor


@register
class Sm3(_Descent):
    """SM3: AdaGrad-like steps whose accumulator keeps one running maximum
    per axis of each leaf (memory O(rows + columns) for a matrix), with
    momentum.

    Update (per leaf; see ``scale_by_sm3``):
        acc = g**2 + min over axes k of mu[k]
        mu[k] = max of acc over all axes but k
        m = momentum * m + (1 - momentum) * g / sqrt(acc)
        w = w - learning_rate * m

    Args:
        learning_rate: float >= 0, or a schedule (optax takes only a number).
        momentum: in [0, 1), default 0.9.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt, w = jgd.sm3(1.0, momentum=0.0), jnp.zeros((2, 2))
        >>> u, _ = opt.update(jnp.array([[3.0, 0.0], [0.0, 4.0]]), opt.init(w), w)
        >>> u
        Array([[-1., -0.],
               [-0., -1.]], dtype=float32)

    References: Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive
    Optimization", 2019, Algorithm SM3-II.

    Matches: optax.sm3(learning_rate, momentum), which fails on a scalar leaf;
    jgd treats a scalar as a one-element vector (see ``scale_by_sm3``).
    """

    learning_rate: ScalarOrSchedule
    momentum: Scalar = 0.9

    _api = "jgd.sm3"

    def check(self):
        check_number(self, "momentum", self.momentum, 0, 1, hi_open=True)
        super().check()

    def recipe(self):
        return chain(
            scale_by_sm3(self.momentum), scale_by_learning_rate(self.learning_rate)
        )


sm3 = Sm3


@register
class Novograd(_Descent):
    """NovoGrad: momentum on gradients normalised per leaf by a running
    average of the leaf's squared gradient norm, weight decay inside.

    Update (per leaf; see ``scale_by_novograd``):
        nu = b2 * nu + (1 - b2) * ||g||**2        (nu = ||g||**2 at t = 1)
        mu = b1 * mu + g / (sqrt(nu + eps_root) + eps) + weight_decay * p
        w = w - learning_rate * mu

    Args:
        learning_rate: float >= 0 or a schedule.
        b1: in [0, 1), default 0.9.
        b2: in [0, 1), default 0.25.
        eps: >= 0, default 1e-6.
        eps_root: >= 0, default 0.
        weight_decay: a number >= 0, default 0 (optax's update takes no
            schedule here either).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt, w = jgd.novograd(0.1), jnp.array([1.0, 1.0])
        >>> u, _ = opt.update(jnp.array([3.0, 4.0]), opt.init(w), w)
        >>> u  # -0.1 * g / (||g|| + eps)
        Array([-0.05999999, -0.07999998], dtype=float32)

    References: Ginsburg et al., "Stochastic Gradient Methods with Layer-wise
    Adaptive Moments for Training of Deep Networks", 2019, Algorithm 1.

    Matches: optax.novograd(learning_rate, b1, b2, eps, eps_root,
    weight_decay).
    """

    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    b2: Scalar = 0.25
    eps: Scalar = 1e-6
    eps_root: Scalar = 0.0
    weight_decay: Scalar = 0.0

    _api = "jgd.novograd"

    def recipe(self):
        return chain(
            scale_by_novograd(
                self.b1, self.b2, self.eps, self.eps_root, self.weight_decay
            ),
            scale_by_learning_rate(self.learning_rate),
        )


novograd = Novograd
