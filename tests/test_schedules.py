"""Schedules beyond the optax cross-check (tests/catalogue/schedules.py):
golden numbers worked by hand, the names at the top level, the arguments optax
accepts and jgd rejects, and schedules as values (jit, vmap, grad)."""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import schedules as js
from tests.helpers import standard_promotion

# optax.schedules' names that are not schedules (hyperparameter injection and
# the protocol's types); jgd.train and the transforms' leaves do that job.
_NOT_SCHEDULES = {
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "Schedule",
    "StatefulSchedule",
    "WrappedSchedule",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
}


def _values(schedule, steps):
    return [float(schedule(jnp.int32(t))) for t in steps]


# --------------------------------------------------------------------------
# Names.
# --------------------------------------------------------------------------


def test_every_optax_schedule_is_in_jgd_schedules():
    names = {n for n in dir(optax.schedules) if not n.startswith("_")}
    assert names - _NOT_SCHEDULES <= set(js.__all__)


@pytest.mark.parametrize("name", sorted(js.__all__))
def test_schedule_is_at_the_top_level_as_the_same_object(name):
    assert getattr(jgd, name) is getattr(js, name)
    assert name in jgd.__all__
    if hasattr(optax.schedules, name):  # optax's arguments, in optax's order
        ours = list(inspect.signature(getattr(js, name)).parameters)
        theirs = list(inspect.signature(getattr(optax.schedules, name)).parameters)
        assert ours == theirs


# --------------------------------------------------------------------------
# Golden numbers, worked by hand.
# --------------------------------------------------------------------------


def test_piecewise_interpolate_golden():
    # optax's documented example: the ramps run between 1, 0.1 and 0.01.
    s = js.piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01})
    want = [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001]
    np.testing.assert_allclose(_values(s, range(0, 11, 2)), want, rtol=1e-6)
    # cosine: halfway through a ramp is the midpoint, a quarter is 85%.
    s = js.piecewise_interpolate_schedule("cosine", 2.0, {8: 0.5})
    mid = 1.0 + 1.0 / 2 * (math.cos(math.pi * 2 / 8) + 1)
    np.testing.assert_allclose(_values(s, [0, 2, 4, 8, 9]), [2, mid, 1.5, 1, 1])


def test_linear_onecycle_golden():
    # T = 10, a = 3, b = 8: 0.04 -> 1 over 3 steps, back to 0.04 over 5, then
    # to 0.04 / 1e4 over 2.
    s = js.linear_onecycle_schedule(10, 1.0)
    v, w = 0.04, 0.04 / 1e4
    want = [v, v + 0.96 / 3, v + 2 * 0.96 / 3, 1.0, 1.0 - 0.96 / 5, v, (v + w) / 2, w]
    got = _values(s, [0, 1, 2, 3, 4, 8, 9, 10])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cosine_onecycle_golden():
    # T = 10, a = 4: a cosine from 0.1 up to 2 over 4 steps, down to 0.1 / 100.
    s = js.cosine_onecycle_schedule(
        10, 2.0, pct_start=0.4, div_factor=20.0, final_div_factor=100.0
    )
    v, w = 0.1, 0.001
    want = [v, (v + 2.0) / 2, 2.0, (2.0 + w) / 2, w, w]
    np.testing.assert_allclose(_values(s, [0, 2, 4, 7, 10, 11]), want, rtol=1e-6)


def test_warmup_schedules_golden():
    s = js.warmup_constant_schedule(0.5, 1.5, 4)
    assert _values(s, range(7)) == [0.5, 0.75, 1.0, 1.25, 1.5, 1.5, 1.5]
    # Warm-up over 2 steps, 1 step held, then a quarter every 2 steps
    # (staircase), floored at 0.1.
    s = js.warmup_exponential_decay_schedule(0.0, 1.0, 2, 2, 0.25, 1, True, 0.1)
    want = [0.0, 0.5, 1.0, 1.0, 1.0, 0.25, 0.25, 0.1, 0.1]
    np.testing.assert_allclose(_values(s, range(9)), want, rtol=1e-7)


def test_sgdr_golden():
    # Two cycles: 4 steps (1 of warm-up), then 3 steps with no warm-up.
    s = js.sgdr_schedule(
        [
            {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 1, "decay_steps": 4},
            {"init_value": 0.0, "peak_value": 0.5, "warmup_steps": 0, "decay_steps": 3},
        ]
    )
    c = [0.5 * (1 + math.cos(math.pi * k / 3)) for k in range(4)]
    want = [0.0, c[0], c[1], c[2], 0.5 * c[0], 0.5 * c[1], 0.5 * c[2], 0.0, 0.0]
    np.testing.assert_allclose(_values(s, range(9)), want, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------
# KNOWN_DIFFERENCES['schedule boundaries and phases'].
# --------------------------------------------------------------------------


def _optax_values(schedule, steps):
    with standard_promotion():
        return [float(schedule(jnp.int32(t))) for t in steps]


def test_arguments_optax_accepts_jgd_rejects():
    c = optax.schedules.constant_schedule
    # join: boundaries [10, 5] never run the piece between them.
    joined = optax.schedules.join_schedules([c(1.0), c(2.0), c(3.0)], [10, 5])
    assert 2.0 not in _optax_values(joined, range(20))
    with pytest.raises(ValueError, match="boundaries must be increasing"):
        js.join_schedules([js.constant_schedule(v) for v in (1.0, 2.0, 3.0)], [10, 5])
    # linear one-cycle: a = b = 3 drops the rise; the peak is never reached.
    onecycle = optax.schedules.linear_onecycle_schedule(10, 1.0, 0.3, 0.35)
    assert max(_optax_values(onecycle, range(12))) < 0.1
    with pytest.raises(ValueError, match="phase boundaries"):
        js.linear_onecycle_schedule(10, 1.0, 0.3, 0.35)
    # cosine one-cycle with pct_start=1: ends at peak / 25 / (25 * 1e4), not
    # peak / 25 / 1e4.
    onecycle = optax.schedules.cosine_onecycle_schedule(10, 1.0, pct_start=1.0)
    assert _optax_values(onecycle, [10])[0] == pytest.approx(1 / 25 / 25 / 1e4)
    with pytest.raises(ValueError, match="phase boundaries"):
        js.cosine_onecycle_schedule(10, 1.0, pct_start=1.0)
    # warm-up without steps holds init_value for good.
    warm = optax.schedules.warmup_constant_schedule(0.0, 1.0, 0)
    assert _optax_values(warm, [0, 100]) == [0.0, 0.0]
    with pytest.raises(ValueError, match="warmup_steps must be an integer >= 1"):
        js.warmup_constant_schedule(0.0, 1.0, 0)
    # a negative boundary: optax's ramp then runs from 0 backwards.
    negative = optax.schedules.piecewise_interpolate_schedule("linear", 1.0, {-5: 0.5})
    assert _optax_values(negative, [0, 1]) == [0.5, 0.5]
    with pytest.raises(ValueError, match="key must be an integer >= 0"):
        js.piecewise_interpolate_schedule("linear", 1.0, {-5: 0.5})


# --------------------------------------------------------------------------
# Schedules are values.
# --------------------------------------------------------------------------

_VALUES = {
    "piecewise_interpolate": lambda p: js.piecewise_interpolate_schedule(
        "cosine", p, {3: 0.5, 6: 0.1}
    ),
    "linear_onecycle": lambda p: js.linear_onecycle_schedule(10, p),
    "cosine_onecycle": lambda p: js.cosine_onecycle_schedule(10, p),
    "warmup_constant": lambda p: js.warmup_constant_schedule(0.0, p, 4),
    "warmup_exponential": lambda p: js.warmup_exponential_decay_schedule(
        0.0, p, 2, 3, 0.5, end_value=0.01
    ),
    "sgdr": lambda p: js.sgdr_schedule(
        [{"init_value": 0.0, "peak_value": p, "warmup_steps": 2, "decay_steps": 5}] * 2
    ),
}


@pytest.mark.parametrize("name", sorted(_VALUES))
def test_schedule_is_a_value(name):
    make = _VALUES[name]
    counts = jnp.arange(12, dtype=jnp.int32)
    traces = []

    @jax.jit
    def run(schedule):
        traces.append(1)
        return jax.vmap(schedule)(counts)

    a, b = run(make(1.0)), run(make(2.0))
    assert len(traces) == 1  # a new peak value is a new leaf, not a new program
    np.testing.assert_allclose(b, 2 * np.asarray(a), rtol=1e-6)
    # The values are linear in the peak value: d value / d peak = value / peak.
    grads = jax.vmap(jax.grad(lambda p, t: make(p)(t)), (None, 0))(3.0, counts)
    np.testing.assert_allclose(grads, a, rtol=1e-5, atol=1e-7)
    # vmap over the schedule value itself.
    peaks = jnp.array([1.0, 2.0])
    batched = jax.vmap(lambda p: make(p)(jnp.int32(5)))(peaks)
    np.testing.assert_allclose(batched, [a[5], 2 * a[5]], rtol=1e-6)
    assert repr(make(1.0)).startswith(type(make(1.0)).__name__ + "(")
