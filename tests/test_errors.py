"""Bad input gets a clear error, early, naming the public function, the
argument, the allowed range and the value given; nothing is lost on failure."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
from jgd import schedules as js
from tests import catalogue

# (call, exception type, exact message or regex)
CASES = [
    (
        lambda: jgd.adam(1e-3, b1=1.5),
        ValueError,
        "jgd.adam: b1 must be in [0, 1); got 1.5.",
    ),
    (
        lambda: jgd.adam(1e-3, b2=1.0),
        ValueError,
        "jgd.adam: b2 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.adam(1e-3, eps=-1e-8),
        ValueError,
        "jgd.adam: eps must be finite and >= 0; got -1e-08.",
    ),
    (
        lambda: jgd.adam(1e-3, eps_root=-1.0),
        ValueError,
        "jgd.adam: eps_root must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.adam(-0.1),
        ValueError,
        "jgd.adam: learning_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.adam(math.inf),
        ValueError,
        "jgd.adam: learning_rate must be finite and >= 0; got inf.",
    ),
    (
        lambda: jgd.sgd(math.nan),
        ValueError,
        "jgd.sgd: learning_rate must be finite and >= 0; got nan.",
    ),
    (
        lambda: jgd.adam("fast"),
        TypeError,
        "jgd.adam: learning_rate must be a number or a schedule; got 'fast' (str).",
    ),
    (
        lambda: jgd.adam(True),
        TypeError,
        "jgd.adam: learning_rate must be a number or a schedule; got True (bool).",
    ),
    (
        lambda: jgd.adam(1e-3, mu_dtype="floaty"),
        TypeError,
        "jgd.adam: mu_dtype must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: jgd.adamw(1e-3, weight_decay=-0.1),
        ValueError,
        "jgd.adamw: weight_decay must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.sgd(0.1, momentum=1.5),
        ValueError,
        "jgd.sgd: momentum must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.sgd(0.1, momentum=-0.5),
        ValueError,
        "jgd.sgd: momentum must be in [0, 1]; got -0.5.",
    ),
    (
        lambda: jgd.rmsprop(0.1, decay=1.2),
        ValueError,
        "jgd.rmsprop: decay must be in [0, 1); got 1.2.",
    ),
    (
        lambda: jgd.rmsprop(0.1, momentum=2.0),
        ValueError,
        "jgd.rmsprop: momentum must be in [0, 1]; got 2.0.",
    ),
    (
        lambda: jgd.rmsprop(0.1, initial_scale=-1.0),
        ValueError,
        "jgd.rmsprop: initial_scale must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.adagrad(0.1, initial_accumulator_value=-1.0),
        ValueError,
        "jgd.adagrad: initial_accumulator_value must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.gd(-1.0),
        ValueError,
        "jgd.gd: learning_rate must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_adam(b1=-0.1),
        ValueError,
        "jgd.scale_by_adam: b1 must be in [0, 1); got -0.1.",
    ),
    (
        lambda: jgd.trace(decay=1.01),
        ValueError,
        "jgd.trace: decay must be in [0, 1]; got 1.01.",
    ),
    (
        lambda: jgd.scale_by_rms(eps=-1.0),
        ValueError,
        "jgd.scale_by_rms: eps must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_stddev(decay=-0.1),
        ValueError,
        "jgd.scale_by_stddev: decay must be in [0, 1); got -0.1.",
    ),
    (
        lambda: jgd.clip(-1.0),
        ValueError,
        "jgd.clip: max_delta must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.clip_by_global_norm(0.0),
        ValueError,
        "jgd.clip_by_global_norm: max_norm must be finite and > 0; got 0.0.",
    ),
    (
        lambda: jgd.scale(math.nan),
        ValueError,
        "jgd.scale: step_size must be finite; got nan.",
    ),
    (
        lambda: jgd.scale_by_learning_rate(jnp.array([0.1, -0.1])),
        ValueError,
        r"jgd.scale_by_learning_rate: learning_rate must be finite and >= 0; got Array([ 0.1, -0.1], dtype=float32).",
    ),
    (
        lambda: jgd.chain(jgd.adam(0.1), "sgd"),
        TypeError,
        "jgd.chain: every argument must be a transform with init and update (jgd or optax); got 'sgd' (str).",
    ),
    # schedules
    (
        lambda: js.linear_schedule(1.0, 0.0, 0),
        ValueError,
        "jgd.schedules.polynomial_schedule: transition_steps must be an integer >= 1; got 0.",
    ),
    (
        lambda: js.linear_schedule(1.0, 0.0, 10, transition_begin=-1),
        ValueError,
        "jgd.schedules.polynomial_schedule: transition_begin must be an integer >= 0; got -1.",
    ),
    (
        lambda: js.polynomial_schedule(1.0, 0.0, 2, 10.5),
        TypeError,
        "jgd.schedules.polynomial_schedule: transition_steps must be an integer >= 1; got 10.5 (float).",
    ),
    (
        lambda: js.exponential_decay(1.0, 0, 0.5),
        ValueError,
        "jgd.schedules.exponential_decay: transition_steps must be an integer >= 1; got 0.",
    ),
    (
        lambda: js.exponential_decay(1.0, 10, -0.5),
        ValueError,
        "jgd.schedules.exponential_decay: decay_rate must be finite and > 0; got -0.5.",
    ),
    (
        lambda: js.cosine_decay_schedule(1.0, -5),
        ValueError,
        "jgd.schedules.cosine_decay_schedule: decay_steps must be an integer >= 1; got -5.",
    ),
    (
        lambda: js.cosine_decay_schedule(math.inf, 5),
        ValueError,
        "jgd.schedules.cosine_decay_schedule: init_value must be finite; got inf.",
    ),
    (
        lambda: js.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
        ValueError,
        "jgd.schedules.warmup_cosine_decay_schedule: decay_steps must be an integer >= 11; got 10.",
    ),
    (
        lambda: js.piecewise_constant_schedule(1.0, {10: -0.5}),
        ValueError,
        "jgd.schedules.piecewise_constant_schedule: the scale at boundary 10 must be finite and >= 0; got -0.5.",
    ),
    (
        lambda: js.join_schedules([js.constant_schedule(1.0)], [5]),
        ValueError,
        "jgd.schedules.join_schedules: boundaries must have one entry fewer than schedules; got 1 boundaries for 1 schedules.",
    ),
]
CASES += catalogue.BAD_INPUT


@pytest.mark.parametrize(
    "call,exc,message",
    CASES,
    ids=[m.split(":")[0] + ":" + m.split(":")[1].split()[0] for _, _, m in CASES],
)
def test_bad_argument_message(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value) == message


def test_schedule_as_learning_rate_is_accepted_and_not_range_checked():
    opt = jgd.adam(js.linear_schedule(0.1, 0.0, 10))
    assert isinstance(opt.learning_rate, js.PolynomialSchedule)
    opt = jgd.adam(lambda count: 0.1)  # any callable
    assert callable(opt.learning_rate)


def test_update_with_a_mismatched_gradient_tree_names_the_path():
    params = {"layer": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}}
    opt = jgd.adam(0.1)
    state = opt.init(params)
    bad = {"layer": {"w": jnp.ones((2, 2)), "bias": jnp.ones(2)}}
    with pytest.raises(TypeError) as info:
        opt.update(bad, state, params)
    msg = str(info.value)
    assert msg.startswith(
        "jgd.adam: the updates tree does not match the state tree; first difference at leaf 0"
    )
    assert "updates has ['layer']['bias'], state has ['layer']['b']" in msg
    with pytest.raises(
        TypeError,
        match=r"jgd\.sgd: updates and state differ in shape at \['layer'\]\['b'\]: \(3,\) vs \(2,\)",
    ):
        o = jgd.sgd(0.1, momentum=0.9)
        o.update(
            {"layer": {"w": jnp.ones((2, 2)), "b": jnp.ones(3)}}, o.init(params), params
        )


def test_mismatch_is_reported_under_jit_too():
    params = {"a": jnp.ones(2)}
    opt = jgd.rmsprop(0.1)
    with pytest.raises(
        TypeError, match=r"jgd\.rmsprop: the updates tree does not match"
    ):
        jax.jit(opt.update)({"b": jnp.ones(2)}, opt.init(params))


def test_weight_decay_without_params_says_how_to_call():
    opt = jgd.adamw(0.1)
    with pytest.raises(
        ValueError,
        match=r"^jgd\.adamw: update needs params .* call update\(grads, state, params\)",
    ):
        opt.update({"a": jnp.ones(1)}, opt.init({"a": jnp.ones(1)}))


def test_a_wrong_state_for_a_chain_is_named():
    with pytest.raises(
        TypeError, match=r"jgd\.chain: state must be the tuple of 2 states"
    ):
        jgd.chain(jgd.scale(1.0), jgd.scale(2.0)).update({"a": jnp.ones(1)}, ())


def test_failure_leaves_params_and_state_untouched():
    params = {"w": jnp.arange(3.0)}
    opt = jgd.adam(0.1)
    state = opt.init(params)
    _, state = opt.update({"w": jnp.ones(3)}, state, params)
    snapshot = jax.tree.map(np.array, (params, state))
    with pytest.raises(TypeError):
        opt.update({"v": jnp.ones(3)}, state, params)
    for a, b in zip(jax.tree.leaves((params, state)), jax.tree.leaves(snapshot)):
        np.testing.assert_array_equal(a, b)
    assert int(state.__getitem__(0).count) == 1


def test_tracers_are_not_range_checked():
    # Under vmap/jit the hyperparameter is abstract: construction must not fail.
    def step(lr):
        opt = jgd.sgd(lr)
        return opt.update({"w": jnp.ones(2)}, opt.init(None))[0]["w"]

    out = jax.vmap(step)(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(out, [[-0.1, -0.1], [-0.2, -0.2]], rtol=1e-6)
