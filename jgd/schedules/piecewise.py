"""Piecewise schedules: ``piecewise_constant_schedule`` (jumps at boundaries),
``piecewise_interpolate_schedule`` (linear or cosine ramps between them) and
the one-cycle schedules built on it, ``linear_onecycle_schedule`` and
``cosine_onecycle_schedule``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgd import tree
from jgd.base import (
    Schedule,
    check_int,
    check_number,
    owner_name,
    register,
    static_field,
)

__all__ = [
    "cosine_onecycle_schedule",
    "linear_onecycle_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
]

_INTERPOLATE_TYPES = ("linear", "cosine")


def _float(count: Any) -> Any:
    """The step count in the default float dtype (float64 under x64)."""
    return jnp.asarray(count).astype(tree.default_float())


def _check_boundaries(owner: Any, scales: tuple, boundaries: tuple) -> None:
    """Boundaries: increasing integers >= 0, one per scale; scales >= 0."""
    if len(scales) != len(boundaries):
        raise ValueError(
            f"{owner_name(owner)}: scales and boundaries must have one entry each "
            f"per boundary; got {len(scales)} scales for {len(boundaries)} "
            "boundaries."
        )
    for b, s in zip(boundaries, scales):
        check_int(owner, "boundaries_and_scales key", b, 0)
        check_number(owner, f"the scale at boundary {b}", s, 0)
    if any(b1 >= b2 for b1, b2 in itertools.pairwise(boundaries)):
        raise ValueError(
            f"{owner_name(owner)}: boundaries must be increasing; "
            f"got {list(boundaries)}."
        )


def _sorted_items(boundaries_and_scales: dict | None) -> tuple[tuple, tuple]:
    """``(scales, boundaries)`` of a ``{boundary: scale}`` dict, by boundary."""
    items = sorted((boundaries_and_scales or {}).items())
    return tuple(s for _, s in items), tuple(b for b, _ in items)


@register
class PiecewiseConstantSchedule(Schedule):
    """What ``piecewise_constant_schedule`` builds: ``init_value`` and
    ``scales`` (leaves), ``boundaries`` (static), sorted."""

    init_value: Any
    scales: tuple = ()
    boundaries: tuple = static_field(default=())

    _api = "jgd.schedules.piecewise_constant_schedule"

    def check(self):
        check_number(self, "init_value", self.init_value)
        _check_boundaries(self, self.scales, self.boundaries)

    def known_values(self) -> dict[str, Any]:
        # Scales are >= 0: every value has init_value's sign (or is 0).
        return {"init_value": self.init_value}

    def __call__(self, count: ArrayLike) -> jax.Array:
        v = self.init_value
        for b, s in zip(self.boundaries, self.scales):
            v = jnp.where(count < b, v, s * v)
        return v


def piecewise_constant_schedule(
    init_value: Any, boundaries_and_scales: dict[int, Any] | None = None
) -> PiecewiseConstantSchedule:
    """``init_value`` multiplied by each scale once its boundary is reached.

    Update:
        value(t) = init_value * prod(scale_i for boundary_i <= t)

    Args:
        init_value: a finite number (leaf).
        boundaries_and_scales: ``{boundary: scale}`` with integer boundaries
            >= 0 (static) and finite scales >= 0 (leaves); None: a constant.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.5})
        >>> [float(s(t)) for t in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]

    Matches: optax.piecewise_constant_schedule(init_value, boundaries_and_scales).
    """
    return PiecewiseConstantSchedule(init_value, *_sorted_items(boundaries_and_scales))


def _interpolate(
    kind: str, init_value: Any, scales: Sequence, boundaries: Sequence, count: Any
) -> jax.Array:
    """optax's piecewise interpolation, term for term.

    ``v_0 = init_value``, ``v_i = v_{i-1} * scales[i-1]`` (optax's cumprod);
    on ``[b_i, b_{i+1})`` (``b_0 = 0``) the value runs from ``v_i`` to
    ``v_{i+1}``; from the last boundary on it is the last ``v``; 0 before 0.
    """
    fdt = tree.default_float()
    values = [jnp.asarray(init_value).astype(fdt)]
    for s in scales:
        values.append(values[-1] * jnp.asarray(s).astype(fdt))
    count = jnp.asarray(count)
    bounds = (0, *boundaries)
    out = jnp.where(count >= bounds[-1], values[-1], 0.0)
    # At most one interval holds the count: optax's one-hot dot product.
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        pct = _float(count - lo) / max(hi - lo, 1)
        start, end = values[i], values[i + 1]
        if kind == "linear":
            value = (end - start) * pct + start
        else:
            value = end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)
        out = jnp.where((lo <= count) & (count < hi), value, out)
    return out


@register
class PiecewiseInterpolateSchedule(Schedule):
    """What ``piecewise_interpolate_schedule`` builds: ``interpolate_type``
    (static), ``init_value`` and ``scales`` (leaves), ``boundaries`` (static),
    sorted."""

    interpolate_type: str = static_field()
    init_value: Any
    scales: tuple = ()
    boundaries: tuple = static_field(default=())

    _api = "jgd.schedules.piecewise_interpolate_schedule"

    def check(self):
        if self.interpolate_type not in _INTERPOLATE_TYPES:
            raise ValueError(
                f"{owner_name(self)}: interpolate_type must be 'linear' or "
                f"'cosine'; got {self.interpolate_type!r}."
            )
        check_number(self, "init_value", self.init_value)
        _check_boundaries(self, self.scales, self.boundaries)

    def known_values(self) -> dict[str, Any]:
        # Scales are >= 0: every value has init_value's sign (or is 0).
        return {"init_value": self.init_value}

    def __call__(self, count: ArrayLike) -> jax.Array:
        return _interpolate(
            self.interpolate_type, self.init_value, self.scales, self.boundaries, count
        )


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: Any,
    boundaries_and_scales: dict[int, Any] | None = None,
) -> PiecewiseInterpolateSchedule:
    """``init_value`` multiplied by each scale in turn, each new value reached
    by a linear or cosine ramp from the previous boundary.

    Update (b_1 < b_2 < ... the boundaries, s_i their scales; b_0 = 0, v_0 = init_value):
        v_i = v_{i-1} * s_i
        pct = (t - b_i) / max(b_{i+1} - b_i, 1)                  for b_i <= t < b_{i+1}
        value(t) = (v_{i+1} - v_i) * pct + v_i                      ('linear')
        value(t) = v_{i+1} + (v_i - v_{i+1}) / 2 * (cos(pi * pct) + 1)  ('cosine')
        value(t) = v_n                                               for t >= b_n

    The ramps run between the accumulated values ``v_i``, not between the
    scales themselves.

    Args:
        interpolate_type: ``'linear'`` or ``'cosine'`` (static).
        init_value: a finite number (leaf), the value at step 0.
        boundaries_and_scales: ``{boundary: scale}`` with integer boundaries
            >= 0 (static) and finite scales >= 0 (leaves); None: a constant.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.piecewise_interpolate_schedule(
        ...     "linear", 1.0, {4: 0.1, 8: 0.01})
        >>> [round(float(s(t)), 6) for t in range(0, 11, 2)]
        [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001]

    Matches: optax.piecewise_interpolate_schedule(interpolate_type, init_value,
    boundaries_and_scales).
    """
    return PiecewiseInterpolateSchedule(
        interpolate_type, init_value, *_sorted_items(boundaries_and_scales)
    )


def _check_phases(owner: Any, names: str, bounds: tuple[int, ...]) -> None:
    """One-cycle phases must each hold a step: optax builds them as a dict
    keyed by boundary, so two on one step silently drop a phase."""
    if any(b1 >= b2 for b1, b2 in itertools.pairwise(bounds)):
        raise ValueError(
            f"{owner_name(owner)}: the phase boundaries {names} must be "
            f"increasing; got {', '.join(map(str, bounds))}."
        )


@register
class LinearOnecycleSchedule(Schedule):
    """One cycle in three linear phases: up from ``peak_value / div_factor`` to
    ``peak_value``, back down, then down to ``peak_value / div_factor /
    final_div_factor``, held from ``transition_steps`` on.

    Update (T = transition_steps, a = int(pct_start * T), b = int(pct_final * T)):
        v = peak_value / div_factor
        value(t) = v + (peak_value - v) * t / a                      for t < a
        value(t) = peak_value + (v - peak_value) * (t - a) / (b - a)  for a <= t < b
        value(t) = v + (v / final_div_factor - v) * (t - b) / (T - b)  for b <= t < T
        value(t) = v / final_div_factor                                for t >= T
    that is, piecewise_interpolate_schedule('linear', v, {a: div_factor,
    b: 1 / div_factor, T: 1 / final_div_factor}).

    Args:
        transition_steps: integer >= 1 (static), the length of the cycle.
        peak_value: a finite number (leaf), the value at step ``a``.
        pct_start: in [0, 1] (static), default 0.3: the fraction of the cycle
            spent rising.
        pct_final: in [0, 1] (static), default 0.85: the fraction at which the
            descent back to ``v`` ends. ``a < b < T`` must hold.
        div_factor: > 0 (leaf), default 25: ``v = peak_value / div_factor``.
        final_div_factor: > 0 (leaf), default 1e4.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.linear_onecycle_schedule(10, 1.0, div_factor=10.0)
        >>> [round(float(s(t)), 4) for t in (0, 3, 8, 10)]
        [0.1, 1.0, 0.1, 0.0]

    References: Smith & Topin, "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates", 2017 (arXiv:1708.07120), the "1cycle"
    policy.

    Matches: optax.linear_onecycle_schedule(...), except that ``a``, ``b`` and
    ``T`` must differ (in optax a boundary that falls on another's step
    overwrites it, dropping a phase).
    """

    transition_steps: int = static_field()
    peak_value: Any
    pct_start: float = static_field(default=0.3)
    pct_final: float = static_field(default=0.85)
    div_factor: Any = 25.0
    final_div_factor: Any = 1e4

    _api = "jgd.schedules.linear_onecycle_schedule"

    def _boundaries(self) -> tuple[int, int, int]:
        steps = self.transition_steps
        return int(self.pct_start * steps), int(self.pct_final * steps), steps

    def check(self):
        check_int(self, "transition_steps", self.transition_steps, 1)
        check_number(self, "peak_value", self.peak_value)
        check_number(self, "pct_start", self.pct_start, 0, 1)
        check_number(self, "pct_final", self.pct_final, 0, 1)
        check_number(self, "div_factor", self.div_factor, 0, lo_open=True)
        check_number(self, "final_div_factor", self.final_div_factor, 0, lo_open=True)
        _check_phases(
            self,
            "int(pct_start * transition_steps), int(pct_final * transition_steps), "
            "transition_steps",
            self._boundaries(),
        )

    def known_values(self) -> dict[str, Any]:
        # Divided by positive factors: every value has peak_value's sign.
        return {"peak_value": self.peak_value}

    def __call__(self, count: ArrayLike) -> jax.Array:
        div, final_div = self.div_factor, self.final_div_factor
        scales = (div, 1.0 / div, 1.0 / final_div)
        return _interpolate(
            "linear", self.peak_value / div, scales, self._boundaries(), count
        )


linear_onecycle_schedule = LinearOnecycleSchedule


@register
class CosineOnecycleSchedule(Schedule):
    """One cycle in two cosine phases: up from ``peak_value / div_factor`` to
    ``peak_value``, then down to ``peak_value / div_factor /
    final_div_factor``, held from ``transition_steps`` on.

    Update (T = transition_steps, a = int(pct_start * T)):
        v = peak_value / div_factor
        value(t) = peak_value + (v - peak_value) / 2 * (cos(pi * t / a) + 1)   for t < a
        w = v / final_div_factor
        value(t) = w + (peak_value - w) / 2 * (cos(pi * (t - a) / (T - a)) + 1)  for a <= t < T
        value(t) = w                                                             for t >= T
    that is, piecewise_interpolate_schedule('cosine', v, {a: div_factor,
    T: 1 / (div_factor * final_div_factor)}).

    Args:
        transition_steps: integer >= 1 (static), the length of the cycle.
        peak_value: a finite number (leaf), the value at step ``a``.
        pct_start: in [0, 1] (static), default 0.3: the fraction of the cycle
            spent rising; ``a < T`` must hold.
        div_factor: > 0 (leaf), default 25: ``v = peak_value / div_factor``.
        final_div_factor: > 0 (leaf), default 1e4.

    Example:
        >>> from jgd import schedules
        >>> s = schedules.cosine_onecycle_schedule(10, 1.0, pct_start=0.5)
        >>> [round(float(s(t)), 4) for t in (0, 5, 10)]
        [0.04, 1.0, 0.0]

    References: Smith & Topin, "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates", 2017 (arXiv:1708.07120), the "1cycle"
    policy, with cosine ramps as fastai's ``fit_one_cycle`` (Howard & Gugger,
    "Fastai: A Layered API for Deep Learning", 2020).

    Matches: optax.cosine_onecycle_schedule(...), except that ``a < T`` must
    hold (in optax ``a = T`` overwrites the last phase).
    """

    transition_steps: int = static_field()
    peak_value: Any
    pct_start: float = static_field(default=0.3)
    div_factor: Any = 25.0
    final_div_factor: Any = 1e4

    _api = "jgd.schedules.cosine_onecycle_schedule"

    def _boundaries(self) -> tuple[int, int]:
        steps = self.transition_steps
        return int(self.pct_start * steps), steps

    def check(self):
        check_int(self, "transition_steps", self.transition_steps, 1)
        check_number(self, "peak_value", self.peak_value)
        check_number(self, "pct_start", self.pct_start, 0, 1)
        check_number(self, "div_factor", self.div_factor, 0, lo_open=True)
        check_number(self, "final_div_factor", self.final_div_factor, 0, lo_open=True)
        _check_phases(
            self,
            "int(pct_start * transition_steps), transition_steps",
            self._boundaries(),
        )

    def known_values(self) -> dict[str, Any]:
        # Divided by positive factors: every value has peak_value's sign.
        return {"peak_value": self.peak_value}

    def __call__(self, count: ArrayLike) -> jax.Array:
        div, final_div = self.div_factor, self.final_div_factor
        scales = (div, 1.0 / (div * final_div))
        return _interpolate(
            "cosine", self.peak_value / div, scales, self._boundaries(), count
        )


cosine_onecycle_schedule = CosineOnecycleSchedule
