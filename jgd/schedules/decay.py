"""The single-curve schedules: ``constant_schedule``, ``polynomial_schedule``,
``linear_schedule``, ``exponential_decay`` and ``cosine_decay_schedule``.

The other themes (``piecewise``, ``joined``) build on these.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgd import tree
from jgd.base import Schedule, check_int, check_number, register, static_field

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "linear_schedule",
    "polynomial_schedule",
]


def _float(count: Any) -> Any:
    """The step count in the default float dtype (float64 under x64)."""
    return jnp.asarray(count).astype(tree.default_float())


@register
class ConstantSchedule(Schedule):
    """The same value at every step.

    Update:
        value(t) = value

    Matches: optax.constant_schedule(value).
    """

    value: Any

    _api = "jgd.schedules.constant_schedule"

    def check(self):
        check_number(self, "value", self.value)

    def __call__(self, count: ArrayLike) -> jax.Array:
        return self.value

    def known_values(self) -> dict[str, Any]:
        return {"value": self.value}


constant_schedule = ConstantSchedule


@register
class PolynomialSchedule(Schedule):
    """Polynomial interpolation from ``init_value`` to ``end_value``.

    Update:
        k = clip(t - transition_begin, 0, transition_steps)
        value(t) = (init_value - end_value) * (1 - k / transition_steps)**power + end_value

    Args:
        init_value, end_value: finite numbers (leaves).
        power: the exponent, >= 0 (static).
        transition_steps: integer >= 1 (static).
        transition_begin: integer >= 0 (static), steps held at ``init_value``.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.linear_schedule(1.0, 0.0, transition_steps=4)
        >>> [float(s(t)) for t in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]

    Matches: optax.polynomial_schedule(...), except that transition_steps <= 0,
    transition_begin < 0 and power < 0 (inf at the end) raise.
    """

    init_value: Any
    end_value: Any
    power: Any = static_field()
    transition_steps: int = static_field()
    transition_begin: int = static_field(default=0)

    _api = "jgd.schedules.polynomial_schedule"

    def check(self):
        check_number(self, "init_value", self.init_value)
        check_number(self, "end_value", self.end_value)
        # 0**power ends the transition: a negative power gives inf there.
        check_number(self, "power", self.power, 0)
        check_int(self, "transition_steps", self.transition_steps, 1)
        check_int(self, "transition_begin", self.transition_begin, 0)

    def known_values(self) -> dict[str, Any]:
        return {"init_value": self.init_value, "end_value": self.end_value}

    def __call__(self, count: ArrayLike) -> jax.Array:
        k = jnp.clip(count - self.transition_begin, 0, self.transition_steps)
        frac = 1 - _float(k) / self.transition_steps
        return (self.init_value - self.end_value) * frac**self.power + self.end_value


polynomial_schedule = PolynomialSchedule


def linear_schedule(
    init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0
) -> PolynomialSchedule:
    """Linear interpolation from ``init_value`` to ``end_value``:
    ``polynomial_schedule`` with ``power=1``.

    Update:
        k = clip(t - transition_begin, 0, transition_steps)
        value(t) = (init_value - end_value) * (1 - k / transition_steps) + end_value

    Args:
        init_value, end_value: finite numbers (leaves).
        transition_steps: integer >= 1 (static).
        transition_begin: integer >= 0 (static), steps held at ``init_value``.

    Matches: optax.linear_schedule(...), except that transition_steps <= 0
    and transition_begin < 0 raise.
    """
    return PolynomialSchedule(
        init_value, end_value, 1, transition_steps, transition_begin
    )


@register
class ExponentialDecay(Schedule):
    """Exponential decay by ``decay_rate`` every ``transition_steps`` steps.

    Update:
        k = t - transition_begin
        p = k / transition_steps           (floor(p) when staircase)
        value(t) = init_value                         if k <= 0
        value(t) = init_value * decay_rate**p         otherwise
        then clipped at end_value (a floor when decay_rate < 1, a ceiling > 1)

    Args:
        init_value: finite number; decay_rate: > 0; end_value: None or finite.
        transition_steps (>= 1), transition_begin (>= 0), staircase: static.

    Matches: optax.exponential_decay(...), except that transition_steps <= 0,
    transition_begin < 0 and decay_rate <= 0 raise.
    """

    init_value: Any
    transition_steps: int = static_field()
    decay_rate: Any
    transition_begin: int = static_field(default=0)
    staircase: bool = static_field(default=False)
    end_value: Any = None

    _api = "jgd.schedules.exponential_decay"

    def check(self):
        check_number(self, "init_value", self.init_value)
        check_int(self, "transition_steps", self.transition_steps, 1)
        check_number(self, "decay_rate", self.decay_rate, 0, lo_open=True)
        check_int(self, "transition_begin", self.transition_begin, 0)
        check_number(self, "end_value", self.end_value, none=True)

    def known_values(self) -> dict[str, Any]:
        # decay_rate > 0: every value has init_value's sign, end_value clips.
        out = {"init_value": self.init_value}
        if self.end_value is not None:
            out["end_value"] = self.end_value
        return out

    def __call__(self, count: ArrayLike) -> jax.Array:
        k = count - self.transition_begin
        p = _float(k) / self.transition_steps
        if self.staircase:
            p = jnp.floor(p)
        value = jnp.where(
            jnp.asarray(k) <= 0,
            self.init_value,
            self.init_value * jnp.power(self.decay_rate, p),
        )
        if self.end_value is not None:
            value = jnp.where(
                jnp.asarray(self.decay_rate) < 1,
                jnp.maximum(value, self.end_value),
                jnp.minimum(value, self.end_value),
            )
        return value


exponential_decay = ExponentialDecay


@register
class CosineDecaySchedule(Schedule):
    """Cosine decay from ``init_value`` to ``alpha * init_value``.

    Update:
        k = min(t, decay_steps)
        c = 0.5 * (1 + cos(pi * k / decay_steps))
        value(t) = init_value * ((1 - alpha) * c**exponent + alpha)

    Args:
        init_value, alpha: finite numbers (leaves).
        exponent: finite, >= 0 (leaf).
        decay_steps: integer >= 1 (static).

    References: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with
    Warm Restarts", 2017, eq. 5.

    Matches: optax.cosine_decay_schedule(init_value, decay_steps, alpha, exponent),
    except that exponent < 0 (inf at the end) raises.
    """

    init_value: Any
    decay_steps: int = static_field()
    alpha: Any = 0.0
    exponent: Any = 1.0

    _api = "jgd.schedules.cosine_decay_schedule"

    def check(self):
        check_number(self, "init_value", self.init_value)
        check_int(self, "decay_steps", self.decay_steps, 1)
        check_number(self, "alpha", self.alpha)
        # c**exponent at c = 0 (the end): a negative exponent gives inf there.
        check_number(self, "exponent", self.exponent, 0)

    def known_values(self) -> dict[str, Any]:
        return {"init_value": self.init_value, "alpha * init_value": _product(self)}

    def __call__(self, count: ArrayLike) -> jax.Array:
        steps = float(self.decay_steps)
        k = jnp.minimum(_float(count), steps)
        c = 0.5 * (1 + jnp.cos(jnp.pi * k / steps))
        return self.init_value * ((1 - self.alpha) * c**self.exponent + self.alpha)


cosine_decay_schedule = CosineDecaySchedule


def _product(s: CosineDecaySchedule) -> Any:
    """``alpha * init_value``, or None where either is traced."""
    if isinstance(s.alpha, jax.core.Tracer) or isinstance(
        s.init_value, jax.core.Tracer
    ):
        return None
    return s.alpha * s.init_value
