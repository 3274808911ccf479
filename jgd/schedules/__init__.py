"""Schedules: a hyperparameter (mostly the step size) as a function of the step.

optax 0.2.8's schedules, with its names, arguments and values, in three themes:
``decay`` (constant, linear, polynomial, exponential, cosine), ``piecewise``
(constant jumps, linear or cosine ramps, the one-cycle schedules) and ``joined``
(``join_schedules``, the warm-ups, ``sgdr_schedule``). A schedule is a value, a
frozen dataclass pytree whose numbers are leaves: it prints, passes through
``jit`` without recompiling when a value changes, ``vmap``s and differentiates;
``schedule(count) -> value``. Arguments with which optax silently gives a
constant schedule or skips a piece raise ``ValueError`` (KNOWN_DIFFERENCES).
"""

from __future__ import annotations

from jgd.schedules.decay import ConstantSchedule as ConstantSchedule
from jgd.schedules.decay import CosineDecaySchedule as CosineDecaySchedule
from jgd.schedules.decay import ExponentialDecay as ExponentialDecay
from jgd.schedules.decay import PolynomialSchedule as PolynomialSchedule
from jgd.schedules.decay import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
    polynomial_schedule,
)
from jgd.schedules.joined import JoinSchedules as JoinSchedules
from jgd.schedules.joined import SGDRSchedule as SGDRSchedule
from jgd.schedules.joined import WarmupConstantSchedule as WarmupConstantSchedule
from jgd.schedules.joined import WarmupCosineDecaySchedule as WarmupCosineDecaySchedule
from jgd.schedules.joined import (
    WarmupExponentialDecaySchedule as WarmupExponentialDecaySchedule,
)
from jgd.schedules.joined import (
    join_schedules,
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from jgd.schedules.piecewise import CosineOnecycleSchedule as CosineOnecycleSchedule
from jgd.schedules.piecewise import LinearOnecycleSchedule as LinearOnecycleSchedule
from jgd.schedules.piecewise import (
    PiecewiseConstantSchedule as PiecewiseConstantSchedule,
)
from jgd.schedules.piecewise import (
    PiecewiseInterpolateSchedule as PiecewiseInterpolateSchedule,
)
from jgd.schedules.piecewise import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
)

# The schedule functions: re-exported flat by jgd/__init__.py (jgd.sgdr_schedule).
__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]
