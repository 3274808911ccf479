"""Scaling and momentum: ``scale``, ``scale_by_learning_rate`` (the only
transform that flips the sign) and ``trace`` (heavy-ball and Nesterov
momentum), with their states. Also the helpers the other themes share.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    Schedule,
    Transform,
    check_dtype,
    check_number,
    empty_state,
    register,
    static_field,
)


def _count0() -> jax.Array:
    return jnp.zeros([], jnp.int32)


def _ema(g: jax.Array, m: jax.Array, decay: Any, square: bool = False) -> jax.Array:
    """``(1 - decay) * g**k + decay * m``, each product in its operand's dtype
    and the sum in the wider one, as optax's ``tree.update_moment`` computes
    it (a bf16 ``mu_dtype`` moment is scaled in bf16).

    With ``square``, ``g**2`` is ``|g|**2`` (``(conj(g) * g).real``), so a
    complex second moment is real-valued, as optax's
    ``tree.update_moment_per_elem_norm``; for real ``g`` it is ``g * g``.
    """
    if square:
        g = (jnp.conj(g) * g).real if jnp.iscomplexobj(g) else jnp.square(g)
    new = tree.coef(1 - decay, g.dtype) * g
    old = tree.coef(decay, m.dtype) * m
    return jnp.add(*tree.promote(new, old))


# --------------------------------------------------------------------------
# Scaling by constants and by the learning rate.
# --------------------------------------------------------------------------


@register
class Scale(Transform):
    """Multiply updates by a fixed scalar.

    Update:
        u = step_size * g

    Args:
        step_size: a finite number (may be negative).

    Matches: optax.scale(step_size).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    step_size: Scalar

    _api = "jgd.scale"

    def check(self):
        check_number(self, "step_size", self.step_size)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        s = self.step_size
        return jax.tree.map(lambda g: tree.coef(s, g.dtype) * g, updates), state


scale = Scale


class ScaleByScheduleState(NamedTuple):
    """Step counter for a scheduled scale (matches optax's)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax


@register
class ScaleByLearningRate(Transform):
    """Multiply updates by ``-learning_rate``: the step that ``apply_updates``
    adds goes downhill. The only transform that flips the sign.

    Update:
        u = -lr(t - 1) * g     (lr a float, or a schedule of the step count)

    Args:
        learning_rate: a finite float ``>= 0`` or a schedule (a jgd schedule or
            any callable of the int32 step count; a jgd schedule's known values,
            such as ``init_value`` and ``end_value``, must be ``>= 0`` too).
            ``None`` leaves updates unchanged.
        flip_sign: multiply by ``-learning_rate`` (default) or ``+learning_rate``.

    State: ``EmptyState()`` for a float, ``ScaleByScheduleState(count)`` for a
    schedule, as in optax.

    Matches: optax.scale_by_learning_rate(learning_rate, flip_sign=flip_sign).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    learning_rate: ScalarOrSchedule | None = None
    flip_sign: bool = static_field(default=True, kw_only=True)

    _api = "jgd.scale_by_learning_rate"

    def check(self):
        lr = self.learning_rate
        check_number(self, "learning_rate", lr, 0, schedule=True, none=True)
        # A jgd schedule knows the values it passes through: a negative one
        # would step uphill from some step on, silently.
        if isinstance(lr, Schedule):
            for arg, v in lr.known_values().items():
                check_number(self, f"learning_rate's {arg}", v, 0, none=True)

    def init(self, params: Any) -> Any:
        if callable(self.learning_rate):
            return ScaleByScheduleState(count=_count0())
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        lr = self.learning_rate
        if lr is None:
            return updates, state
        sign = -1 if self.flip_sign else 1
        if callable(lr):
            step = sign * lr(state.count)
            state = ScaleByScheduleState(count=tree.safe_increment(state.count))
        else:
            step = sign * lr
        return jax.tree.map(lambda g: tree.coef(step, g.dtype) * g, updates), state


scale_by_learning_rate = ScaleByLearningRate


# --------------------------------------------------------------------------
# Momentum.
# --------------------------------------------------------------------------


class TraceState(NamedTuple):
    """Momentum buffer (matches ``optax.TraceState``)."""

    trace: Any


@register
class Trace(Transform):
    """Accumulate a momentum trace of past updates (heavy ball or Nesterov).

    Update:
        trace = g + decay * trace
        u     = trace                      (nesterov=False)
        u     = g + decay * trace          (nesterov=True, with the new trace)

    Args:
        decay: momentum coefficient in [0, 1]; 1 makes the trace a running sum
            of all updates, as optax allows.
        nesterov: use Nesterov's look-ahead form.
        accumulator_dtype: dtype of the trace (default: the params' dtype).

    References: Polyak, "Some methods of speeding up the convergence of
    iteration methods", 1964; Sutskever et al., "On the importance of
    initialization and momentum in deep learning", 2013, eq. 3-4.

    Matches: optax.trace(decay, nesterov, accumulator_dtype).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    decay: Scalar
    nesterov: bool = static_field(default=False)
    accumulator_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.trace"

    def check(self):
        check_number(self, "decay", self.decay, 0, 1)
        object.__setattr__(
            self,
            "accumulator_dtype",
            check_dtype(self, "accumulator_dtype", self.accumulator_dtype),
        )

    def init(self, params: Any) -> Any:
        return TraceState(trace=tree.zeros_like(params, dtype=self.accumulator_dtype))

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.trace, "state")
        d = self.decay

        def f(g, t):
            g, t = tree.promote(g, t)
            return g + tree.coef(d, t.dtype) * t

        new_trace = jax.tree.map(f, updates, state.trace)
        updates = jax.tree.map(f, updates, new_trace) if self.nesterov else new_trace
        return updates, TraceState(trace=tree.cast(new_trace, self.accumulator_dtype))


trace = Trace
