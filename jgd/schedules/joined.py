"""Schedules joined from pieces: ``join_schedules``, the warm-ups
(``warmup_constant_schedule``, ``warmup_cosine_decay_schedule``,
``warmup_exponential_decay_schedule``: a linear ramp, then the curve) and
``sgdr_schedule`` (warm restarts: warm-up cosine cycles one after another).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgd.base import (
    Schedule,
    Static,
    Value,
    api_name,
    check_int,
    check_number,
    register,
    static_field,
)
from jgd.schedules.decay import CosineDecaySchedule, ExponentialDecay, linear_schedule

__all__ = [
    "join_schedules",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]


@register
class JoinSchedules(Schedule):
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, its count restarting at 0.

    Update:
        value(t) = schedules[0](t)                        for t < boundaries[0]
        value(t) = schedules[i](t - boundaries[i-1])      between boundaries

    Args:
        schedules: callables (jgd schedules are leaves; other callables, optax's
            schedules included, are static).
        boundaries: increasing integers >= 0 (static), one fewer than
            schedules.

    Matches: optax.join_schedules(schedules, boundaries), except that
    boundaries that do not increase raise (in optax the later piece takes
    over first and the one between never runs).
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
        if not self.schedules:
            raise ValueError(
                f"{self._api}: schedules must hold at least one schedule; got none."
            )
        for s in self.schedules:
            # A non-callable was wrapped in Static too: look inside.
            if not callable(s.value if isinstance(s, Static) else s):
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
        # optax lets a later piece start first, so an earlier one never runs.
        if any(b1 >= b2 for b1, b2 in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(
                f"{self._api}: boundaries must be increasing; "
                f"got {list(self.boundaries)}."
            )

    def known_values(self) -> dict[str, Any]:
        return _joined_values(self.schedules)

    def __call__(self, count: ArrayLike) -> jax.Array:
        out = self.schedules[0](count)
        for b, s in zip(self.boundaries, self.schedules[1:]):
            out = jnp.where(count < b, out, s(count - b))
        return out


join_schedules = JoinSchedules


@register
class WarmupConstantSchedule(Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value``, then
    ``peak_value`` for good.

    Update:
        value(t) = init_value + (peak_value - init_value) * t / warmup_steps   (t < warmup_steps)
        value(t) = peak_value                                                  (t >= warmup_steps)

    Args:
        init_value, peak_value: finite numbers (leaves).
        warmup_steps: integer >= 1 (static).

    Example:
        >>> from jgd import schedules
        >>> s = schedules.warmup_constant_schedule(0.0, 1.0, warmup_steps=4)
        >>> [float(s(t)) for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]

    References: Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet
    in 1 Hour", 2017, Sec. 2.2 (gradual warm-up).

    Matches: optax.warmup_constant_schedule(...), except that warmup_steps <= 0
    raises (optax then holds init_value for good, never reaching peak_value).
    """

    init_value: Any
    peak_value: Any
    warmup_steps: int = static_field()

    _api = "jgd.schedules.warmup_constant_schedule"

    def check(self):
        check_number(self, "init_value", self.init_value)
        check_number(self, "peak_value", self.peak_value)
        check_int(self, "warmup_steps", self.warmup_steps, 1)

    def known_values(self) -> dict[str, Any]:
        return {"init_value": self.init_value, "peak_value": self.peak_value}

    def __call__(self, count: ArrayLike) -> jax.Array:
        return linear_schedule(self.init_value, self.peak_value, self.warmup_steps)(
            count
        )


warmup_constant_schedule = WarmupConstantSchedule


@register
class WarmupCosineDecaySchedule(Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay
    to ``end_value`` at ``decay_steps`` (which counts the warm-up).

    Update:
        value(t) = init_value + (peak_value - init_value) * t / warmup_steps   (t < warmup_steps)
        value(t) = cosine_decay(peak_value, decay_steps - warmup_steps,
                                alpha=end_value / peak_value)(t - warmup_steps)

    Args:
        init_value, peak_value, end_value: finite numbers (leaves).
        exponent: finite, >= 0 (leaf).
        warmup_steps: integer >= 0; decay_steps: integer > warmup_steps (static).

    References: Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet
    in 1 Hour", 2017, Sec. 2.2 (gradual warm-up); Loshchilov & Hutter, "SGDR:
    Stochastic Gradient Descent with Warm Restarts", 2017, eq. 5 (the decay).

    Matches: optax.warmup_cosine_decay_schedule(...), except that exponent < 0
    (inf at the end) raises.
    """

    init_value: Any
    peak_value: Any
    warmup_steps: int = static_field()
    decay_steps: int = static_field()
    end_value: Any = 0.0
    exponent: Any = 1.0

    _api = "jgd.schedules.warmup_cosine_decay_schedule"

    def check(self):
        for arg in ("init_value", "peak_value", "end_value"):
            check_number(self, arg, getattr(self, arg))
        # c**exponent at c = 0 (the end): a negative exponent gives inf there.
        check_number(self, "exponent", self.exponent, 0)
        check_int(self, "warmup_steps", self.warmup_steps, 0)
        check_int(self, "decay_steps", self.decay_steps, self.warmup_steps + 1)

    def known_values(self) -> dict[str, Any]:
        return {
            "init_value": self.init_value,
            "peak_value": self.peak_value,
            "end_value": self.end_value,
        }

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
class WarmupExponentialDecaySchedule(Schedule):
    """Linear warm-up from ``init_value`` to ``peak_value``, then exponential
    decay from ``peak_value``, its count starting at the end of the warm-up.

    Update (w = warmup_steps):
        value(t) = init_value + (peak_value - init_value) * t / w      (t < w)
        value(t) = exponential_decay(peak_value, transition_steps, decay_rate,
                                     transition_begin, staircase, end_value)(t - w)

    Args:
        init_value, peak_value: finite numbers (leaves).
        warmup_steps: integer >= 0 (static); 0 starts the decay at once.
        transition_steps: integer >= 1 (static).
        decay_rate: > 0 (leaf).
        transition_begin: integer >= 0 (static), steps after the warm-up held
            at ``peak_value``.
        staircase: decay at whole multiples of transition_steps (static).
        end_value: None or a finite number (leaf): a floor when
            decay_rate < 1, a ceiling when > 1.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.warmup_exponential_decay_schedule(0.0, 1.0, 2, 1, 0.5)
        >>> [float(s(t)) for t in range(6)]
        [0.0, 0.5, 1.0, 0.5, 0.25, 0.125]

    References: Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet
    in 1 Hour", 2017, Sec. 2.2 (gradual warm-up).

    Matches: optax.warmup_exponential_decay_schedule(...), except that
    transition_steps <= 0, transition_begin < 0 and decay_rate <= 0 raise, as
    for exponential_decay.
    """

    init_value: Any
    peak_value: Any
    warmup_steps: int = static_field()
    transition_steps: int = static_field()
    decay_rate: Any
    transition_begin: int = static_field(default=0)
    staircase: bool = static_field(default=False)
    end_value: Any = None

    _api = "jgd.schedules.warmup_exponential_decay_schedule"

    def check(self):
        check_number(self, "init_value", self.init_value)
        check_number(self, "peak_value", self.peak_value)
        check_int(self, "warmup_steps", self.warmup_steps, 0)
        check_int(self, "transition_steps", self.transition_steps, 1)
        check_number(self, "decay_rate", self.decay_rate, 0, lo_open=True)
        check_int(self, "transition_begin", self.transition_begin, 0)
        check_number(self, "end_value", self.end_value, none=True)

    def known_values(self) -> dict[str, Any]:
        out = {"init_value": self.init_value, "peak_value": self.peak_value}
        if self.end_value is not None:
            out["end_value"] = self.end_value
        return out

    def __call__(self, count: ArrayLike) -> jax.Array:
        decay = ExponentialDecay(
            self.peak_value,
            self.transition_steps,
            self.decay_rate,
            self.transition_begin,
            self.staircase,
            self.end_value,
        )
        if self.warmup_steps == 0:
            return decay(count)
        warm = linear_schedule(self.init_value, self.peak_value, self.warmup_steps)
        w = self.warmup_steps
        return jnp.where(jnp.asarray(count) < w, warm(count), decay(count - w))


warmup_exponential_decay_schedule = WarmupExponentialDecaySchedule


def _joined_values(schedules: tuple) -> dict[str, Any]:
    """The pieces' known values, named ``schedules[i].arg``; empty when one
    piece is a callable whose values are not known."""
    out: dict[str, Any] = {}
    for i, s in enumerate(schedules):
        values = s.known_values() if isinstance(s, Schedule) else {}
        if not values:
            return {}
        out.update({f"schedules[{i}].{k}": v for k, v in values.items()})
    return out


# warmup_cosine_decay_schedule's arguments: what one SGDR cycle takes.
_CYCLE_ARGS = ("init_value", "peak_value", "warmup_steps", "decay_steps")
_CYCLE_OPTIONAL = ("end_value", "exponent")


@register
class SGDRSchedule(Schedule):
    """What ``sgdr_schedule`` builds: ``schedules``, a non-empty tuple of
    ``WarmupCosineDecaySchedule`` values (leaves), one per cycle."""

    schedules: tuple

    _api = "jgd.schedules.sgdr_schedule"

    def check(self):
        if not self.schedules:
            raise ValueError(
                f"{self._api}: schedules must hold at least one cycle; got none."
            )
        for s in self.schedules:
            if not isinstance(s, WarmupCosineDecaySchedule):
                raise TypeError(
                    f"{self._api}: every cycle must be a "
                    f"warmup_cosine_decay_schedule; got {s!r}."
                )

    def known_values(self) -> dict[str, Any]:
        return _joined_values(self.schedules)

    def __call__(self, count: ArrayLike) -> jax.Array:
        out = self.schedules[0](count)
        boundary = 0
        for before, s in zip(self.schedules[:-1], self.schedules[1:]):
            boundary += before.decay_steps
            out = jnp.where(count < boundary, out, s(count - boundary))
        return out


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Any]]) -> SGDRSchedule:
    """Warm restarts: warm-up cosine cycles one after another, each counting
    from its own step 0; the last one runs on past its end.

    Update (D_k = cosine_kwargs[k]['decay_steps'], S_k = D_0 + ... + D_{k-1}):
        value(t) = warmup_cosine_decay_schedule(**cosine_kwargs[k])(t - S_k)   (S_k <= t < S_{k+1})

    Args:
        cosine_kwargs: one dict of ``warmup_cosine_decay_schedule``'s
            arguments per cycle (``init_value``, ``peak_value``,
            ``warmup_steps``, ``decay_steps``, optionally ``end_value``,
            ``exponent``), at least one; each is checked as that schedule.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.sgdr_schedule(
        ...     [dict(init_value=0.0, peak_value=1.0, warmup_steps=1, decay_steps=3)] * 2)
        >>> [round(float(s(t)), 4) for t in range(7)]
        [0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0]

    References: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with
    Warm Restarts", 2017, eq. 5 (each cycle; there without warm-up).

    Matches: optax.sgdr_schedule(cosine_kwargs).
    """
    api = SGDRSchedule._api
    cycles = []
    for i, kwargs in enumerate(cosine_kwargs):
        where = f"cosine_kwargs[{i}]"
        if not isinstance(kwargs, Mapping):
            raise TypeError(
                f"{api}: {where} must be a dict of warmup_cosine_decay_schedule's "
                f"arguments; got {kwargs!r} ({type(kwargs).__name__})."
            )
        unknown = [k for k in kwargs if k not in _CYCLE_ARGS + _CYCLE_OPTIONAL]
        missing = [k for k in _CYCLE_ARGS if k not in kwargs]
        if unknown or missing:
            raise TypeError(
                f"{api}: {where} must hold warmup_cosine_decay_schedule's "
                f"arguments {', '.join(_CYCLE_ARGS)} (and optionally "
                f"{', '.join(_CYCLE_OPTIONAL)}); got {sorted(map(str, kwargs))}."
            )
        with api_name(f"{api} ({where})"):
            cycles.append(WarmupCosineDecaySchedule(**kwargs))
    if not cycles:
        raise ValueError(
            f"{api}: cosine_kwargs must hold at least one cycle; got none."
        )
    return SGDRSchedule(tuple(cycles))
