"""Schedules: step-size (or any hyperparameter) as a function of the step count.

Holds ``constant_schedule``, ``linear_schedule``, ``polynomial_schedule``,
``exponential_decay``, ``piecewise_constant_schedule``,
``cosine_decay_schedule``, ``warmup_cosine_decay_schedule`` and
``join_schedules``, with optax 0.2.8's names, arguments and values.

A schedule is a value like an optimizer: a frozen dataclass and a pytree whose
values (``init_value``, ``end_value``, ...) are leaves, so it prints, passes
through ``jit`` without recompiling when a value changes, can be ``vmap``-ed
and differentiated; step counts are static. Call it with the int32 step
count: ``schedule(count) -> value``.

Deliberate differences from optax (listed with reasons in
``tests/test_vs_optax.py::KNOWN_DIFFERENCES``): non-positive step counts,
negative ``transition_begin`` and non-positive ``decay_rate`` raise
``ValueError`` instead of silently giving a constant schedule.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgd import tree
from jgd.base import (
    Schedule,
    Static,
    Value,
    check_int,
    check_number,
    register,
    static_field,
)

__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_schedule",
    "piecewise_constant_schedule",
    "polynomial_schedule",
    "warmup_cosine_decay_schedule",
]


def _float(count: Any) -> Any:
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


constant_schedule = ConstantSchedule


@register
class PolynomialSchedule(Schedule):
    """Polynomial interpolation from ``init_value`` to ``end_value``.

    Update:
        k = clip(t - transition_begin, 0, transition_steps)
        value(t) = (init_value - end_value) * (1 - k / transition_steps)**power + end_value

    Args:
        init_value, end_value: finite numbers (leaves).
        power: the exponent (static).
        transition_steps: integer >= 1 (static).
        transition_begin: integer >= 0 (static), steps held at ``init_value``.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.linear_schedule(1.0, 0.0, transition_steps=4)
        >>> [float(s(t)) for t in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]

    Matches: optax.polynomial_schedule(...), except that transition_steps <= 0
    and transition_begin < 0 raise.
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
        check_number(self, "power", self.power)
        check_int(self, "transition_steps", self.transition_steps, 1)
        check_int(self, "transition_begin", self.transition_begin, 0)

    def __call__(self, count: ArrayLike) -> jax.Array:
        k = jnp.clip(count - self.transition_begin, 0, self.transition_steps)
        frac = 1 - _float(k) / self.transition_steps
        return (self.init_value - self.end_value) * frac**self.power + self.end_value


polynomial_schedule = PolynomialSchedule


def linear_schedule(
    init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0
) -> PolynomialSchedule:
    """Linear interpolation: ``polynomial_schedule`` with ``power=1``.

    Matches: optax.linear_schedule(...), with the same exceptions.
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
class PiecewiseConstantSchedule(Schedule):
    """A constant multiplied by ``scales[i]`` from step ``boundaries[i]`` on.

    Update:
        value(t) = init_value * prod(scale_i for boundary_i <= t)

    Build with ``piecewise_constant_schedule(init_value, {boundary: scale})``.

    Matches: optax.piecewise_constant_schedule(init_value, boundaries_and_scales).
    """

    init_value: Any
    scales: tuple = ()
    boundaries: tuple = static_field(default=())

    _api = "jgd.schedules.piecewise_constant_schedule"

    def check(self):
        check_number(self, "init_value", self.init_value)
        for b, s in zip(self.boundaries, self.scales):
            check_int(self, "boundaries_and_scales key", b, 0)
            check_number(self, f"the scale at boundary {b}", s, 0)

    def __call__(self, count: ArrayLike) -> jax.Array:
        v = self.init_value
        for b, s in zip(self.boundaries, self.scales):
            v = jnp.where(count < b, v, s * v)
        return v


def piecewise_constant_schedule(
    init_value: Any, boundaries_and_scales: dict[int, Any] | None = None
) -> PiecewiseConstantSchedule:
    """Multiply ``init_value`` by each scale once its boundary is reached."""
    items = sorted((boundaries_and_scales or {}).items())
    return PiecewiseConstantSchedule(
        init_value, tuple(s for _, s in items), tuple(b for b, _ in items)
    )


@register
class CosineDecaySchedule(Schedule):
    """Cosine decay from ``init_value`` to ``alpha * init_value``.

    Update:
        k = min(t, decay_steps)
        c = 0.5 * (1 + cos(pi * k / decay_steps))
        value(t) = init_value * ((1 - alpha) * c**exponent + alpha)

    Args:
        init_value, alpha, exponent: finite numbers (leaves).
        decay_steps: integer >= 1 (static).

    References: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with
    Warm Restarts", 2017, eq. 5.

    Matches: optax.cosine_decay_schedule(init_value, decay_steps, alpha, exponent).
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
        check_number(self, "exponent", self.exponent)

    def __call__(self, count: ArrayLike) -> jax.Array:
        steps = float(self.decay_steps)
        k = jnp.minimum(_float(count), steps)
        c = 0.5 * (1 + jnp.cos(jnp.pi * k / steps))
        return self.init_value * ((1 - self.alpha) * c**self.exponent + self.alpha)


cosine_decay_schedule = CosineDecaySchedule


@register
class WarmupCosineDecaySchedule(Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay
    to ``end_value`` at ``decay_steps`` (which counts the warm-up).

    Update:
        value(t) = init_value + (peak_value - init_value) * t / warmup_steps   (t < warmup_steps)
        value(t) = cosine_decay(peak_value, decay_steps - warmup_steps,
                                alpha=end_value / peak_value)(t - warmup_steps)

    Args:
        init_value, peak_value, end_value, exponent: finite numbers (leaves).
        warmup_steps: integer >= 0; decay_steps: integer > warmup_steps (static).

    Matches: optax.warmup_cosine_decay_schedule(...).
    """

    init_value: Any
    peak_value: Any
    warmup_steps: int = static_field()
    decay_steps: int = static_field()
    end_value: Any = 0.0
    exponent: Any = 1.0

    _api = "jgd.schedules.warmup_cosine_decay_schedule"

    def check(self):
        for arg in ("init_value", "peak_value", "end_value", "exponent"):
            check_number(self, arg, getattr(self, arg))
        check_int(self, "warmup_steps", self.warmup_steps, 0)
        check_int(self, "decay_steps", self.decay_steps, self.warmup_steps + 1)

    def __call__(self, count: ArrayLike) -> jax.Array:
        peak, end = self.peak_value, self.end_value
        alpha: float | jax.Array
        if isinstance(peak, (int, float)) and isinstance(end, (int, float)):
            alpha = 0.0 if peak == 0.0 else end / peak
        else:
            alpha = jnp.where(peak == 0, 0.0, end / jnp.where(peak == 0, 1, peak))
        decay = CosineDecaySchedule(
            peak, self.decay_steps - self.warmup_steps, alpha, self.exponent
        )
        if self.warmup_steps == 0:
            return decay(count)
        warm = linear_schedule(self.init_value, peak, self.warmup_steps)
        w = self.warmup_steps
        return jnp.where(jnp.asarray(count) < w, warm(count), decay(count - w))


warmup_cosine_decay_schedule = WarmupCosineDecaySchedule


@register
class JoinSchedules(Schedule):
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, its count restarting at 0.

    Update:
        value(t) = schedules[0](t)                        for t < boundaries[0]
        value(t) = schedules[i](t - boundaries[i-1])      between boundaries

    Matches: optax.join_schedules(schedules, boundaries).
    """

    schedules: tuple
    boundaries: tuple = static_field()

    _api = "jgd.schedules.join_schedules"

    def __post_init__(self):
        items = tuple(
            s if isinstance(s, (Value, Static)) else Static(s) for s in self.schedules
        )
        object.__setattr__(self, "schedules", items)
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        self.check()

    def check(self):
        for s in self.schedules:
            if not callable(s):
                raise TypeError(
                    f"{self._api}: every schedule must be callable; got {s!r}."
                )
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"{self._api}: boundaries must have one entry fewer than schedules; "
                f"got {len(self.boundaries)} boundaries for {len(self.schedules)} schedules."
            )
        for b in self.boundaries:
            check_int(self, "boundaries", b, 0)

    def __call__(self, count: ArrayLike) -> jax.Array:
        out = self.schedules[0](count)
        for b, s in zip(self.boundaries, self.schedules[1:]):
            out = jnp.where(count < b, out, s(count - b))
        return out


join_schedules = JoinSchedules
