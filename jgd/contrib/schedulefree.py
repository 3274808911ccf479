"""Schedule-free optimizers: interpolation and averaging in place of momentum
and of a decaying learning rate.

Holds ``schedule_free`` (wraps any optimizer), ``schedule_free_sgd`` and
``schedule_free_adamw`` (the two common wrappings, with optax's arguments),
``schedule_free_eval_params`` (the averaged point ``x`` to evaluate at) and
``ScheduleFreeState``. The averaging is element-wise: the two named wrappers
are packable, the general one is not (see ``ScheduleFree``).
"""

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Identity,
    Scalar,
    ScalarOrSchedule,
    Static,
    Transform,
    api_name,
    chain,
    check_dtype,
    check_int,
    check_number,
    is_transform,
    owner_name,
    register,
    static_field,
)
from jgd.optimizers.classic import sgd
from jgd.schedules import warmup_constant_schedule
from jgd.transforms import add_decayed_weights, scale_by_learning_rate, scale_by_rms

__all__ = [
    "ScheduleFreeState",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
]


class ScheduleFreeState(NamedTuple):
    """State of the schedule-free methods (optax's fields).

    ``b1``, ``weight_sum`` and ``max_lr`` have the params' lowest dtype;
    ``step_count`` is int32 and starts at 1, as optax's; ``z`` is the base
    optimizer's sequence.
    """

    b1: jax.Array
    weight_sum: jax.Array
    step_count: jax.Array
    max_lr: jax.Array
    base_optimizer_state: Any
    z: Any


def _sub(a: jax.Array, b: jax.Array) -> jax.Array:
    a, b = tree.promote(a, b)
    return a - b


def _mul(a: jax.Array, b: jax.Array) -> jax.Array:
    a, b = tree.promote(a, b)
    return a * b


def _add(a: jax.Array, b: jax.Array) -> jax.Array:
    a, b = tree.promote(a, b)
    return a + b


class _ScheduleFreeBase(Transform):
    """The schedule-free step around a base optimizer; subclasses say which
    (``_base()``) and give ``learning_rate``, ``b1``, ``weight_lr_power`` and
    ``state_dtype``."""

    if TYPE_CHECKING:  # the subclasses' fields, for type checkers only
        learning_rate: ScalarOrSchedule
        b1: Scalar
        weight_lr_power: Scalar
        state_dtype: DTypeLike | None

    def _base(self) -> Any:
        raise NotImplementedError

    def _schedule_free_lr(self) -> Any:
        return self.learning_rate

    def _check_common(self) -> None:
        check_number(self, "b1", self.b1, 0, 1, lo_open=True)
        check_number(self, "weight_lr_power", self.weight_lr_power, 0)
        object.__setattr__(
            self,
            "state_dtype",
            check_dtype(self, "state_dtype", self.state_dtype),
        )

    def init(self, params: Any) -> Any:
        with api_name(self._api):
            dt = tree.dtype(params, "lowest")
            z = tree.cast(params, self.state_dtype)
            # A copy, so z and the params are distinct buffers (both donatable).
            z = jax.tree.map(jnp.copy, z)
            return ScheduleFreeState(
                b1=jnp.asarray(self.b1, dt),
                weight_sum=jnp.zeros([], dt),
                step_count=jnp.ones([], jnp.int32),
                max_lr=jnp.zeros([], dt),
                base_optimizer_state=self._base().init(params),
                z=z,
            )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        with api_name(self._api):
            return self._update(updates, state, params, **extra_args)

    def _update(self, updates, state, params, **extra_args):
        if params is None:
            raise ValueError(
                f"{owner_name(self)}: update needs params (the step interpolates "
                "between params and z); call update(grads, state, params)."
            )
        tree.check_same_structure(self, updates, params, "params")
        b1 = self.b1
        dt = state.max_lr.dtype
        lr = self._schedule_free_lr()
        lr = lr(state.step_count) if callable(lr) else lr
        max_lr = jnp.maximum(state.max_lr, tree.coef(lr, dt))
        p = self.weight_lr_power
        # A Python power stays a Python number, as in optax's max_lr ** p.
        weight = max_lr ** (p if isinstance(p, (int, float)) else tree.coef(p, dt))
        total = state.weight_sum + weight
        # c_t = weight / total, 0 while both are 0 (a zero learning rate).
        ck = jnp.where(
            jnp.logical_or(jnp.isnan(weight), jnp.isnan(total)),
            jnp.full(weight.shape, jnp.nan, dt),
            jnp.nan_to_num(weight / total, nan=0.0, posinf=jnp.inf),
        )
        base_updates, base_state = self._base().update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        z = jax.tree.map(lambda z, u: _add(z, u).astype(z.dtype), state.z, base_updates)

        def step(y, z_old, z_new):
            # x recomputed from y and the old z (optax: memory, and exact
            # when something else moved y), then averaged towards z.
            x = _sub(y, tree.coef(1.0 - b1, z_old.dtype) * z_old)
            x = x / tree.coef(b1, x.dtype)
            # 1 - c in c's dtype, each product in the wider dtype (as optax).
            x = _add(_mul(tree.coef(1.0, ck.dtype) - ck, x), _mul(ck, z_new))
            new_y = _add(
                tree.coef(b1, x.dtype) * x, tree.coef(1.0 - b1, z_new.dtype) * z_new
            )
            return _sub(new_y, y).astype(y.dtype)

        new_updates = jax.tree.map(step, params, state.z, z)
        return new_updates, ScheduleFreeState(
            b1=state.b1,
            weight_sum=total,
            step_count=tree.safe_increment(state.step_count),
            max_lr=max_lr,
            base_optimizer_state=base_state,
            z=z,
        )


@register
class ScheduleFree(_ScheduleFreeBase):
    """Make any optimizer schedule-free: its steps move ``z``; the params
    ``y`` interpolate between ``z`` and the running average ``x``.

    Update (t = step_count, from 1; base = base_optimizer's update):
        lr_max = max(lr_max, lr(t))               (lr: learning_rate, or its schedule at t)
        w = lr_max**weight_lr_power;  W = W + w;  c = w / W   (0 when W = 0)
        z_new = z + base(g)
        x = (y - (1 - b1) * z) / b1
        x = (1 - c) * x + c * z_new
        u = b1 * x + (1 - b1) * z_new - y

    The base optimizer should have no momentum of its own (``b1=0`` for
    Adam): interpolation replaces it. Evaluate at
    ``schedule_free_eval_params(state, params)``, the average ``x``.

    Args:
        base_optimizer: the optimizer whose steps move ``z`` (jgd's, a pytree
            child whose hyperparameters stay leaves, or optax's, carried as
            static). Extra update arguments reach it.
        learning_rate: the base optimizer's learning rate, float >= 0 or a
            schedule (evaluated at step_count, from 1): it weighs the average.
        b1: interpolation in (0, 1], default 0.9.
        weight_lr_power: >= 0, default 2.0.
        state_dtype: dtype of ``z`` (default: the params'), static.

    Not packable: ``packable`` is a class attribute and ``jgd.train`` does not
    look inside the wrapped optimizer, so the general wrapper keeps leaf
    boundaries; ``schedule_free_sgd``/``schedule_free_adamw`` (element-wise
    inside) are packable.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.schedule_free(jgd.sgd(0.5), 0.5)
        >>> w = jnp.array([1.0, -2.0])
        >>> u, s = opt.update(w, opt.init(w), w)
        >>> jgd.apply_updates(w, u)  # z = w - 0.5 w; first step: y = x = z
        Array([ 0.5, -1. ], dtype=float32)

    References: Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The
    Road Less Scheduled", 2024, Algorithm 1 (with the warm-up weighting
    c_t = lr_max**2 / sum of them, Sec. 3.1).

    Matches: optax.contrib.schedule_free(base_optimizer, learning_rate, b1,
    weight_lr_power, state_dtype); its updates have the params' dtype.
    """

    base_optimizer: Any
    learning_rate: ScalarOrSchedule
    b1: Scalar = 0.9
    weight_lr_power: Scalar = 2.0
    state_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.contrib.schedule_free"

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
        check_number(self, "learning_rate", self.learning_rate, 0, schedule=True)
        self._check_common()

    def _base(self) -> Any:
        return self.base_optimizer


schedule_free = ScheduleFree


def _warmup(learning_rate: Any, warmup_steps: int | None) -> Any:
    """The learning rate, or optax's linear warm-up to it from 0."""
    if warmup_steps is None:
        return learning_rate
    return warmup_constant_schedule(0.0, learning_rate, warmup_steps)


def _check_warmup(owner: Any) -> None:
    if owner.warmup_steps is None:
        check_number(owner, "learning_rate", owner.learning_rate, 0, schedule=True)
        return
    check_int(owner, "warmup_steps", owner.warmup_steps, 1)
    # The warm-up ends at learning_rate: a number, not a schedule.
    check_number(owner, "learning_rate", owner.learning_rate, 0)


@register
class ScheduleFreeSgd(_ScheduleFreeBase):
    """Schedule-free SGD: ``schedule_free`` around plain SGD.

    Update (lr = learning_rate, warmed up linearly from 0 over warmup_steps):
        z_new = z - lr * (g + weight_decay * y)     (weight_decay given)
        then as ``schedule_free``.

    Args:
        learning_rate: float >= 0, default 1.0, or a schedule (without
            ``warmup_steps``).
        warmup_steps: None, or an integer >= 1 (static): linear warm-up.
        b1: interpolation in (0, 1], default 0.9.
        weight_decay: None or a float >= 0 (or a schedule), decay of ``y``
            added to the gradient (so multiplied by the learning rate).
        weight_lr_power: >= 0, default 2.0.
        state_dtype: dtype of ``z`` (default: the params'), static.

    Packable: SGD, the weight decay and the averaging are element-wise.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.schedule_free_sgd(0.5)
        >>> w = jnp.array([1.0, -2.0])
        >>> u, s = opt.update(w, opt.init(w), w)
        >>> jgd.apply_updates(w, u)
        Array([ 0.5, -1. ], dtype=float32)

    References: Defazio et al., "The Road Less Scheduled", 2024, Algorithm 1.

    Matches: optax.contrib.schedule_free_sgd(learning_rate, warmup_steps, b1,
    weight_decay, weight_lr_power, state_dtype).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    learning_rate: ScalarOrSchedule = 1.0
    warmup_steps: int | None = static_field(default=None)
    b1: Scalar = 0.9
    weight_decay: ScalarOrSchedule | None = None
    weight_lr_power: Scalar = 2.0
    state_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.contrib.schedule_free_sgd"

    def check(self):
        _check_warmup(self)
        check_number(
            self, "weight_decay", self.weight_decay, 0, schedule=True, none=True
        )
        self._check_common()

    def _schedule_free_lr(self) -> Any:
        return _warmup(self.learning_rate, self.warmup_steps)

    def _base(self) -> Any:
        lr = self._schedule_free_lr()
        decay = (
            Identity()
            if self.weight_decay is None
            else add_decayed_weights(self.weight_decay)
        )
        return chain(decay, sgd(lr))


schedule_free_sgd = ScheduleFreeSgd


@register
class ScheduleFreeAdamw(_ScheduleFreeBase):
    """Schedule-free AdamW: ``schedule_free`` around AdamW without momentum.

    Update (t = step from 1, lr warmed up linearly from 0 over warmup_steps):
        nu = b2 * nu + (1 - b2) * g**2
        z_new = z - lr * (g / (sqrt(nu / (1 - b2**t)) + eps) + weight_decay * y)
        then as ``schedule_free``.

    Args:
        learning_rate: float >= 0, default 0.0025, or a schedule (without
            ``warmup_steps``).
        warmup_steps: None, or an integer >= 1 (static): linear warm-up.
        b1: interpolation in (0, 1], default 0.9 (Adam's own b1 is 0).
        b2: in [0, 1), default 0.999.
        eps: >= 0, default 1e-8, outside the root.
        weight_decay: float >= 0 or a schedule, default 0.
        weight_lr_power: >= 0, default 2.0.
        state_dtype: dtype of ``z`` (default: the params'), static.

    Packable: RMS scaling, weight decay and averaging are element-wise.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.schedule_free_adamw(0.1)
        >>> w = jnp.array([1.0, -2.0])
        >>> u, s = opt.update(w, opt.init(w), w)
        >>> jgd.apply_updates(w, u).round(4)  # z = w - 0.1 * sign(w)
        Array([ 0.9, -1.9], dtype=float32)

    References: Defazio et al., "The Road Less Scheduled", 2024, Algorithm 1
    (AdamW form); Loshchilov & Hutter, "Decoupled Weight Decay
    Regularization", 2019.

    Matches: optax.contrib.schedule_free_adamw(learning_rate, warmup_steps,
    b1, b2, eps, weight_decay, weight_lr_power, state_dtype).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    learning_rate: ScalarOrSchedule = 0.0025
    warmup_steps: int | None = static_field(default=None)
    b1: Scalar = 0.9
    b2: Scalar = 0.999
    eps: Scalar = 1e-8
    weight_decay: ScalarOrSchedule = 0.0
    weight_lr_power: Scalar = 2.0
    state_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.contrib.schedule_free_adamw"

    def check(self):
        _check_warmup(self)
        check_number(self, "b2", self.b2, 0, 1, hi_open=True)
        check_number(self, "eps", self.eps, 0)
        check_number(self, "weight_decay", self.weight_decay, 0, schedule=True)
        self._check_common()

    def _schedule_free_lr(self) -> Any:
        return _warmup(self.learning_rate, self.warmup_steps)

    def _base(self) -> Any:
        # AdamW without its first moment: optax's scale_by_rms with Adam's
        # bias correction and eps outside the root.
        return chain(
            scale_by_rms(
                self.b2, self.eps, 0.0, eps_in_sqrt=False, bias_correction=True
            ),
            add_decayed_weights(self.weight_decay),
            scale_by_learning_rate(self._schedule_free_lr()),
        )


schedule_free_adamw = ScheduleFreeAdamw


def schedule_free_eval_params(state: Any, params: Any) -> Any:
    """The point to evaluate a schedule-free model at: the average ``x``.

    Update:
        x = (y - (1 - b1) * z) / b1      (y: params; b1, z: from the state)

    Args:
        state: a ``ScheduleFreeState``, or an optimizer state holding exactly
            one (e.g. a ``chain``'s tuple).
        params: the current params ``y``.

    Raises:
        TypeError: when ``state`` holds no ``ScheduleFreeState`` (or several).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.schedule_free_sgd(0.5)
        >>> w = jnp.array([1.0, -2.0])
        >>> u, s = opt.update(w, opt.init(w), w)
        >>> jgd.contrib.schedule_free_eval_params(s, jgd.apply_updates(w, u))
        Array([ 0.5, -1. ], dtype=float32)

    Matches: optax.contrib.schedule_free_eval_params(state, params), which
    takes only the ``ScheduleFreeState`` itself (and raises ValueError).
    """
    is_sf = lambda x: isinstance(x, ScheduleFreeState)
    found = [x for x in jax.tree.leaves(state, is_leaf=is_sf) if is_sf(x)]
    if len(found) != 1:
        raise TypeError(
            "jgd.contrib.schedule_free_eval_params: state must be a "
            "ScheduleFreeState or hold exactly one; got "
            f"{type(state).__name__} holding {len(found)}."
        )
    b1, z = found[0].b1, found[0].z

    def average(y, z):
        x = _sub(y, (1.0 - b1).astype(z.dtype) * z)
        return (x / b1.astype(x.dtype)).astype(y.dtype)

    return jax.tree.map(average, params, z)
