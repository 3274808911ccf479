"""MultiSteps and apply_every: hand-computed numbers, the inner schedule's
count, k = 1 without an accumulator, the accumulator's dtype, NaN in the
accumulator, Adam inside (bit for bit against a hand loop, and against
optax), and the errors. The table cases are in tests/catalogue/accumulate.py.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from tests.helpers import (
    TOL,
    assert_trees_close,
    gradient_stream,
    random_tree,
    standard_promotion,
)

SHAPES = {"w": (3, 2), "b": [(2,), ()]}


def _updates(opt, grads, params=None, std=False):
    """Run ``opt`` over ``grads`` in one jitted step: (updates, final state)."""
    step = jax.jit(opt.update)
    state = opt.init(grads[0] if params is None else params)
    out = []
    for g in grads:
        with standard_promotion() if std else jax.numpy_dtype_promotion("strict"):
            u, state = step(g, state, params)
        out.append(u)
    return out, state


# --------------------------------------------------------------------------
# Hand-computed numbers.
# --------------------------------------------------------------------------


def test_multi_steps_golden():
    """k = 2 over sgd(1.0): zeros, then minus the mean (or the sum)."""
    grads = [jnp.array([1.0, -2.0]), jnp.array([3.0, 4.0]), jnp.array([5.0, 0.0])]
    mean, s = _updates(jgd.MultiSteps(jgd.sgd(1.0), 2), grads)
    total, _ = _updates(jgd.MultiSteps(jgd.sgd(1.0), 2, use_grad_mean=False), grads)
    np.testing.assert_array_equal(mean[0], [0.0, 0.0])
    np.testing.assert_array_equal(mean[1], [-2.0, -1.0])
    np.testing.assert_array_equal(mean[2], [0.0, 0.0])
    np.testing.assert_array_equal(total[1], [-4.0, -2.0])
    assert (int(s.mini_step), int(s.gradient_step)) == (1, 1)
    np.testing.assert_array_equal(s.acc_grads, [5.0, 0.0])


def test_has_updated_and_optax_interface():
    opt = jgd.MultiSteps(jgd.sgd(1.0), 2)
    assert opt.gradient_transformation() is opt
    assert opt.inner_opt == jgd.sgd(1.0)
    inner = optax.sgd(1.0)
    assert jgd.MultiSteps(inner, 2).inner_opt is inner
    state, step, seen = opt.init(jnp.zeros(1)), jax.jit(opt.update), []
    for _ in range(4):
        _, state = step(jnp.ones(1), state)
        seen.append(bool(opt.has_updated(state)))
    assert seen == [False, True, False, True]


def test_apply_every_golden():
    """k = 3: zeros twice, then the sum; the state restarts from the next g."""
    grads = [jnp.array([float(i)]) for i in (1, 2, 4, 8, 16, 32)]
    out, s = _updates(jgd.apply_every(3), grads)
    assert [float(u[0]) for u in out] == [0.0, 0.0, 7.0, 0.0, 0.0, 56.0]
    assert int(s.count) == 0 and float(s.grad_acc[0]) == 56.0


def test_inner_schedule_counts_optimizer_steps():
    """The inner learning rate's schedule sees gradient_step, not mini-steps:
    with k = 3 the second update uses schedule(1)."""
    opt = jgd.MultiSteps(jgd.sgd(jgd.schedules.linear_schedule(1.0, 0.0, 4)), 3)
    out, s = _updates(opt, [jnp.ones(1)] * 6)
    assert [float(u[0]) for u in out] == [0.0, 0.0, -1.0, 0.0, 0.0, -0.75]
    assert int(s.gradient_step) == 2


# --------------------------------------------------------------------------
# The accumulator: k = 1, its dtype, NaN.
# --------------------------------------------------------------------------


def test_k1_keeps_no_accumulator():
    """KNOWN_DIFFERENCES['accumulate k=1']: no second param-sized buffer, the
    same updates and other fields as optax."""
    params = random_tree(jax.random.key(1), shapes=SHAPES)
    grads = gradient_stream(jax.random.key(2), params, 3)
    ours, s1 = _updates(jgd.MultiSteps(jgd.sgd(0.1, momentum=0.9), 1), grads, params)
    theirs, s2 = _updates(
        optax.MultiSteps(optax.sgd(0.1, momentum=0.9), 1), grads, params, std=True
    )
    assert s1.acc_grads == ()
    for u1, u2 in zip(ours, theirs):
        assert_trees_close(u1, u2, TOL[jnp.float32], where="k=1 updates")
    assert_trees_close(s1._replace(acc_grads=()), s2._replace(acc_grads=()), 0)
    every = jgd.apply_every(1)
    state = every.init(params)
    assert state.grad_acc == ()
    assert every.update(grads[0], state)[0] is grads[0]


def test_default_accumulator_dtype(x64):
    """KNOWN_DIFFERENCES['multisteps accumulator dtype']: float32 for bf16 and
    float32 gradients, as optax's default; the gradient's own dtype where it
    is wider. An explicit dtype is used as given, as in optax: a float64
    gradient carried between mini-steps is rounded to float32 (at k = 1
    nothing is carried)."""
    params = {
        "h": jnp.ones(2, jnp.bfloat16),
        "f": jnp.ones(2, jnp.float32),
        "d": jnp.ones(2, jnp.float64),
        "c": jnp.ones(2, jnp.complex64),
    }
    acc = jgd.MultiSteps(jgd.sgd(0.1), 2).init(params).acc_grads
    assert {k: v.dtype.name for k, v in acc.items()} == {
        "h": "float32",
        "f": "float32",
        "d": "float64",
        "c": "complex64",
    }
    g = jnp.array([1 / 3], jnp.float64)
    for k in (1, 2):
        ours = jgd.MultiSteps(jgd.sgd(1.0), k, accumulator_dtype=jnp.float32)
        theirs = optax.MultiSteps(optax.sgd(1.0), k)
        u1, u2 = (
            _updates(ours, [g] * k)[0][-1],
            _updates(theirs, [g] * k, std=True)[0][-1],
        )
        assert u1.dtype == jnp.float64
        np.testing.assert_array_equal(u1, u2)
        assert (float(u1[0]) == -1 / 3) == (k == 1)
    u = _updates(jgd.MultiSteps(jgd.sgd(1.0), 2), [g] * 2)[0][-1]
    assert float(u[0]) == -1 / 3


def test_nan_does_not_stick_in_the_accumulator():
    """KNOWN_DIFFERENCES['multisteps inner runs on the k-th mini-step only']:
    a NaN mini-step spoils its own update only; optax's (1 - emit) * acc
    keeps the NaN for every later update. With skip_not_finite the NaN
    mini-step is dropped, as if it never happened."""
    grads = [jnp.array([jnp.nan]), jnp.ones(1), jnp.ones(1), jnp.ones(1)]
    ours, s = _updates(jgd.MultiSteps(jgd.sgd(1.0), 2), grads)
    theirs, _ = _updates(optax.MultiSteps(optax.sgd(1.0), 2), grads, std=True)
    got = [float(u[0]) for u in ours]
    assert got[0] == 0.0 and np.isnan(got[1]) and got[2:] == [0.0, -1.0]
    assert np.isnan(float(theirs[3][0]))  # optax: the NaN stays
    skip = jgd.MultiSteps(jgd.sgd(1.0), 2, should_skip_update_fn=jgd.skip_not_finite)
    out, s = _updates(skip, grads)
    assert [float(u[0]) for u in out] == [0.0, 0.0, -1.0, 0.0]
    assert bool(s.skip_state["should_skip"]) is False
    assert (int(s.mini_step), int(s.gradient_step)) == (1, 1)


# --------------------------------------------------------------------------
# Adam inside: the k-th mini-step's update is the inner optimizer's own.
# --------------------------------------------------------------------------


def test_adam_inside_equals_a_hand_loop_bit_for_bit():
    """KNOWN_DIFFERENCES['multisteps fma']: jgd.MultiSteps(adam) gives, bit
    for bit, what adam alone gives on the mean gradients; optax's MultiSteps
    (inner computed every mini-step and selected) lets XLA fuse Adam's
    moment updates with the selection and contract a different product into
    an FMA, 1 ulp apart."""
    params = random_tree(jax.random.key(1), shapes=SHAPES)
    grads = gradient_stream(jax.random.key(2), params, 12)
    ours = _updates(jgd.MultiSteps(jgd.adam(0.05), 3), grads, params)[0][2::3]
    theirs = _updates(optax.MultiSteps(optax.adam(0.05), 3), grads, params, std=True)[
        0
    ][2::3]
    inner = jgd.adam(0.05)
    step, state = jax.jit(inner.update), inner.init(params)
    # Welford's step as MultiSteps and optax write it (n + 1 from an int32).
    welford = jax.jit(
        lambda a, g, n: jax.tree.map(
            lambda a, g: a + (g - a) / (n + 1).astype(a.dtype), a, g
        )
    )
    for t, (u1, u2) in enumerate(zip(ours, theirs)):
        acc = jax.tree.map(jnp.zeros_like, params)
        for i in range(3):
            acc = welford(acc, grads[3 * t + i], jnp.int32(i))
        u, state = step(acc, state, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u)):
            np.testing.assert_array_equal(a, b, err_msg=f"update {t}")
        assert_trees_close(u2, u, 1e-5, where=f"optax update {t}")


@pytest.mark.slow  # float64 cross-checks run under -m slow, as the catalogue's
def test_adam_inside_matches_optax_float64(x64):
    """In float64 the FMA's rounding is far below rtol 1e-12: jgd's and optax
    over jgd.adam give optax.MultiSteps(optax.adam)'s numbers (jgd over an
    optax inner: the CASES)."""
    params = random_tree(jax.random.key(1), jnp.float64, SHAPES)
    grads = gradient_stream(jax.random.key(2), params, 9)
    f64 = {"accumulator_dtype": jnp.float64}
    theirs, s2 = _updates(
        optax.MultiSteps(optax.adam(0.05), 3, **f64), grads, params, std=True
    )
    for mix, opt in {
        "jgd": jgd.MultiSteps(jgd.adam(0.05), 3),
        "optax over jgd": optax.MultiSteps(jgd.adam(0.05), 3, **f64),
    }.items():
        ours, s1 = _updates(opt, grads, params, std=mix != "jgd")
        for t, (u1, u2) in enumerate(zip(ours, theirs)):
            assert_trees_close(u1, u2, TOL[jnp.float64], where=f"{mix} step {t}")
        assert_trees_close(s1, s2, TOL[jnp.float64], where=f"{mix} state")


# --------------------------------------------------------------------------
# A value: hyperparameters are leaves, callables static.
# --------------------------------------------------------------------------


def test_a_pytree_value_that_does_not_recompile():
    skip = functools.partial(jgd.skip_large_updates, max_squared_norm=4.0)
    opt = jgd.MultiSteps(jgd.adam(0.1), 2, should_skip_update_fn=skip)
    assert 0.1 in jax.tree.leaves(opt)
    assert hash(opt.replace(opt=jgd.adam(0.2))) is not None
    traces = []

    @jax.jit
    def step(opt, g, state):
        traces.append(1)
        return opt.update(g, state)

    state = opt.init(jnp.zeros(2))
    for lr_ in (0.1, 0.2):
        _, state = step(opt.replace(opt=jgd.adam(lr_)), jnp.ones(2), state)
    assert len(traces) == 1
    assert "every_k_schedule=2" in repr(opt)


# --------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------


def test_errors_in_update():
    opt = jgd.MultiSteps(jgd.sgd(0.1), 2)
    state = opt.init({"w": jnp.zeros(2), "b": jnp.zeros(1)})
    with pytest.raises(
        TypeError, match=r"^jgd\.MultiSteps: the updates tree .* \['bias'\]"
    ):
        opt.update({"w": jnp.zeros(2), "bias": jnp.zeros(1)}, state)
    with pytest.raises(TypeError, match=r"^jgd\.MultiSteps: state must be the Multi"):
        opt.update({"w": jnp.zeros(2), "b": jnp.zeros(1)}, state[:4])
    bad = jgd.MultiSteps(jgd.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (1, ()))
    with pytest.raises(ValueError) as info:
        bad.update(jnp.zeros(1), bad.init(jnp.zeros(1)))
    assert str(info.value) == (
        "jgd.MultiSteps: should_skip_update_fn must return a boolean scalar array "
        "first; got dtype int32 and shape ()."
    )
    every = jgd.apply_every(2)
    with pytest.raises(TypeError, match=r"^jgd\.apply_every: the updates tree"):
        every.update([jnp.zeros(1)], every.init({"a": jnp.zeros(1)}))
