"""Optimizers are values: what follows from being frozen pytree dataclasses.

Printing, no retrace when a hyperparameter changes, vmap over learning rates,
grad with respect to the learning rate, mixing with optax in both directions,
flax's nnx.Optimizer, and apply_updates' dtype rule.
"""

from __future__ import annotations

import dataclasses
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from tests.helpers import (
    assert_trees_close,
    gradient_stream,
    random_tree,
    standard_promotion,
)


def _quadratic_loss(params):
    return sum(jnp.sum(jnp.square(x - 1.0)) for x in jax.tree.leaves(params))


def _run_steps(opt, params, k):
    """k steps of `opt` on the quadratic loss, as one traced program."""

    def body(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(_quadratic_loss)(p), s, p)
        return (jgd.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(body, (params, opt.init(params)), None, length=k)
    return params


def test_print_shows_hyperparameters():
    text = str(jgd.adam(1e-3))
    assert text.startswith("Adam(")
    for field in [
        "learning_rate=0.001",
        "b1=0.9",
        "b2=0.999",
        "eps=1e-08",
        "nesterov=False",
    ]:
        assert field in text
    assert "momentum=0.9" in repr(jgd.sgd(0.1, momentum=0.9))
    assert "decay_steps=100" in repr(jgd.schedules.cosine_decay_schedule(0.1, 100))


def test_values_are_frozen_and_comparable():
    opt = jgd.adam(1e-3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.learning_rate = 0.1
    assert opt == jgd.adam(1e-3)
    assert opt.replace(learning_rate=0.1) == jgd.adam(0.1)
    assert opt.replace(learning_rate=0.1).b2 == 0.999


def test_hyperparameters_are_leaves_and_flags_are_static():
    leaves = jax.tree.leaves(jgd.adam(1e-3, b1=0.8))
    assert leaves == [1e-3, 0.8, 0.999, 1e-8, 0.0]
    assert jax.tree.structure(jgd.adam(0.1)) == jax.tree.structure(jgd.adam(0.2))
    assert jax.tree.structure(jgd.adam(0.1)) != jax.tree.structure(
        jgd.adam(0.1, nesterov=True)
    )
    schedule = jgd.schedules.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)
    assert jax.tree.leaves(jgd.sgd(schedule)) == [0.0, 1.0, 0.0, 1.0]


def test_jitted_step_does_not_retrace_when_a_hyperparameter_changes():
    params = random_tree(jax.random.key(0))
    grads = random_tree(jax.random.key(1))

    @jax.jit
    @chex.assert_max_traces(n=2)
    def step(opt, state, params, grads):
        updates, state = opt.update(grads, state, params)
        return jgd.apply_updates(params, updates), state

    chex.clear_trace_counter()
    outs = []
    for lr, b1 in [(0.1, 0.9), (0.2, 0.9), (0.3, 0.5)]:
        opt = jgd.adam(lr, b1=b1)
        outs.append(step(opt, opt.init(params), params, grads)[0])
    # The three calls used one trace; they still computed different things.
    assert not np.allclose(outs[0]["head"]["v"], outs[1]["head"]["v"])
    # A static flag is configuration: it makes the second (and last allowed) trace.
    opt = jgd.adam(0.1, nesterov=True)
    step(opt, opt.init(params), params, grads)
    with pytest.raises(AssertionError, match="trace"):
        opt = jgd.adam(0.1, mu_dtype=jnp.bfloat16)
        step(opt, opt.init(params), params, grads)


def test_schedule_values_do_not_retrace():
    traces = []

    @jax.jit
    def value(schedule, count):
        traces.append(1)
        return schedule(count)

    for peak in [0.1, 0.5, 1.0]:
        s = jgd.schedules.warmup_cosine_decay_schedule(0.0, peak, 5, 50)
        np.testing.assert_allclose(value(s, jnp.int32(5)), peak, rtol=1e-6)
    assert len(traces) == 1


def test_vmap_over_learning_rates_equals_one_by_one():
    params = random_tree(jax.random.key(0))
    lrs = jnp.array([0.001, 0.01, 0.1, 0.3], jnp.float32)
    swept = jax.jit(jax.vmap(lambda lr: _run_steps(jgd.adam(lr), params, 20)))(lrs)
    for i, lr in enumerate(lrs.tolist()):
        single = jax.jit(lambda p, lr=lr: _run_steps(jgd.adam(lr), p, 20))(params)
        assert_trees_close(
            jax.tree.map(lambda x, i=i: x[i], swept),
            single,
            rtol=1e-6,
            where=f"lr={lr}",
        )


def test_vmap_over_whole_optimizer_values():
    """Stacking optimizer values (not just one field) also vmaps."""
    opts = [jgd.sgd(0.1, momentum=0.5), jgd.sgd(0.05, momentum=0.9)]
    stacked = jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32), *opts)
    x0 = {"w": jnp.full(3, 4.0)}
    swept = jax.vmap(lambda o: _run_steps(o, x0, 10))(stacked)
    for i, o in enumerate(opts):
        assert_trees_close(
            jax.tree.map(lambda x, i=i: x[i], swept), _run_steps(o, x0, 10), 1e-6
        )


def test_grad_with_respect_to_learning_rate_matches_finite_difference(x64):
    params = jax.tree.map(
        lambda x: x.astype(jnp.float64), random_tree(jax.random.key(0))
    )

    @jax.jit  # one compile for the four differences (eager, each dispatches ~500 ops)
    def loss_after(lr, b1):
        return _quadratic_loss(_run_steps(jgd.adam(lr, b1=b1), params, 5))

    lr, b1, h = 0.05, 0.9, 1e-6
    d_lr, d_b1 = jax.grad(loss_after, argnums=(0, 1))(lr, b1)
    fd_lr = (loss_after(lr + h, b1) - loss_after(lr - h, b1)) / (2 * h)
    fd_b1 = (loss_after(lr, b1 + h) - loss_after(lr, b1 - h)) / (2 * h)
    assert float(d_lr) < 0  # a larger step helps on the bowl
    np.testing.assert_allclose(d_lr, fd_lr, rtol=1e-6)
    np.testing.assert_allclose(d_b1, fd_b1, rtol=1e-6)


def test_grad_through_a_schedule_value(x64):
    params = {"w": jnp.array([3.0, -2.0], jnp.float64)}

    def loss_after(peak):
        s = jgd.schedules.warmup_cosine_decay_schedule(0.0, peak, 3, 10)
        return _quadratic_loss(_run_steps(jgd.sgd(s, momentum=0.9), params, 8))

    h = 1e-6
    fd = (loss_after(0.1 + h) - loss_after(0.1 - h)) / (2 * h)
    np.testing.assert_allclose(jax.grad(loss_after)(0.1), fd, rtol=1e-6)


def test_traced_hyperparameters_equal_constant_ones_in_float64(x64):
    """KNOWN_DIFFERENCES['traced float32 hyperparameters'], float64 side."""
    params = jax.tree.map(
        lambda x: x.astype(jnp.float64), random_tree(jax.random.key(0))
    )
    opt = jgd.adamw(0.01, b2=0.999, weight_decay=0.1, nesterov=True)
    as_argument = jax.jit(lambda o, p: _run_steps(o, p, 30))(opt, params)
    as_constant = jax.jit(lambda p: _run_steps(opt, p, 30))(params)
    assert_trees_close(as_argument, as_constant, rtol=1e-12)


def test_built_inside_jit_with_a_traced_learning_rate():
    params = {"w": jnp.array([2.0, -1.0])}
    out = jax.jit(lambda lr: _run_steps(jgd.rmsprop(lr, momentum=0.9), params, 10))(
        0.01
    )
    ref = _run_steps(jgd.rmsprop(0.01, momentum=0.9), params, 10)
    assert_trees_close(out, ref, rtol=1e-6)


# --------------------------------------------------------------------------
# Mixing with optax.
# --------------------------------------------------------------------------


def _stream_run(opt, params, grads):
    state = opt.init(params)
    out = []
    for g in grads:
        with standard_promotion():
            u, state = opt.update(g, state, params)
        params = jgd.apply_updates(params, u)
        out.append(params)
    return out


@pytest.mark.parametrize(
    "mixed",
    [
        lambda: optax.chain(
            jgd.clip_by_global_norm(2.0),
            optax.scale_by_adam(),
            jgd.add_decayed_weights(0.1),
            optax.scale(-0.01),
        ),
        lambda: jgd.chain(
            optax.clip_by_global_norm(2.0),
            jgd.scale_by_adam(),
            optax.add_decayed_weights(0.1),
            jgd.scale(-0.01),
        ),
        lambda: optax.chain(
            jgd.chain(jgd.clip_by_global_norm(2.0), optax.scale_by_adam()),
            optax.add_decayed_weights(0.1),
            jgd.scale(-0.01),
        ),
    ],
    ids=["jgd-in-optax", "optax-in-jgd", "nested"],
)
def test_jgd_and_optax_mix_in_one_chain(mixed):
    params = random_tree(jax.random.key(0))
    grads = gradient_stream(jax.random.key(1), params, 10)
    pure = optax.chain(
        optax.clip_by_global_norm(2.0),
        optax.scale_by_adam(),
        optax.add_decayed_weights(0.1),
        optax.scale(-0.01),
    )
    for t, (a, b) in enumerate(
        zip(_stream_run(mixed(), params, grads), _stream_run(pure, params, grads))
    ):
        assert_trees_close(a, b, rtol=1e-6, where=f"step {t}")


def test_chain_with_optax_passes_through_jit_as_an_argument():
    params = {"w": jnp.array([1.0, 2.0])}
    opt = jgd.chain(optax.scale_by_adam(), jgd.scale_by_learning_rate(0.1))
    step = jax.jit(lambda o, g, s: o.update(g, s))
    with standard_promotion():
        u, _ = step(opt, params, opt.init(params))
        ref, _ = optax.adam(0.1).update(params, optax.adam(0.1).init(params))
    assert_trees_close(u, ref, rtol=1e-6)


def test_extra_args_reach_optax_transforms_that_take_them():
    seen = {}

    def update(updates, state, params=None, **extra):
        seen.update(extra)
        return updates, state

    tx = jgd.chain(
        jgd.scale(2.0), optax.GradientTransformationExtraArgs(lambda p: (), update)
    )
    tx.update({"w": jnp.ones(2)}, tx.init(None), value=jnp.float32(3.0))
    assert float(seen["value"]) == 3.0


def test_flax_nnx_optimizer_accepts_jgd_and_matches_optax():
    nnx = pytest.importorskip("flax.nnx")

    def train(tx):
        model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
        x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))
        for _ in range(5):
            grads = nnx.grad(lambda m: jnp.mean(jnp.square(m(x) - y)))(model)
            if "model" in inspect.signature(opt.update).parameters:
                opt.update(model, grads)
            else:  # flax < 0.11 (with the jax floor): update(grads)
                opt.update(grads)
        return nnx.state(model, nnx.Param)

    with standard_promotion():  # flax itself does not pass strict promotion
        ours = train(jgd.adamw(0.05, weight_decay=0.1))
        theirs = train(optax.adamw(0.05, weight_decay=0.1))
    assert_trees_close(jax.tree.leaves(ours), jax.tree.leaves(theirs), rtol=1e-6)


# --------------------------------------------------------------------------
# apply_updates.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("p_dtype", [jnp.bfloat16, jnp.float32, jnp.float16])
@pytest.mark.parametrize("u_dtype", [jnp.bfloat16, jnp.float32])
def test_apply_updates_keeps_param_dtype(p_dtype, u_dtype):
    params = {"a": jnp.ones(3, p_dtype), "b": [jnp.zeros((), p_dtype)]}
    updates = {"a": jnp.full(3, 0.5, u_dtype), "b": [jnp.ones((), u_dtype)]}
    out = jgd.apply_updates(params, updates)
    assert all(x.dtype == p_dtype for x in jax.tree.leaves(out))
    np.testing.assert_allclose(np.float32(out["a"]), 1.5)


def test_apply_updates_rounds_once_in_the_wider_dtype():
    p = jnp.array([1.0], jnp.bfloat16)
    u = jnp.array([0.00390625 + 0.001], jnp.float32)  # just over half a bf16 ulp at 1
    # bf16(1 + u) rounds up once; rounding u to bf16 first would not change the sum.
    assert float(jgd.apply_updates(p, u)[0]) == float(
        jnp.asarray(1.0078125, jnp.bfloat16)
    )


def test_apply_updates_names_the_mismatch():
    with pytest.raises(TypeError, match=r"jgd\.apply_updates: .*\['b'\]"):
        jgd.apply_updates(
            {"a": jnp.ones(1), "b": jnp.ones(1)}, {"a": jnp.ones(1), "c": jnp.ones(1)}
        )
    with pytest.raises(
        TypeError, match=r"differ in shape at \['a'\]: \(2,\) vs \(1,\)"
    ):
        jgd.apply_updates({"a": jnp.ones(1)}, {"a": jnp.ones(2)})


def test_equinox_training_loop_runs_unchanged_and_matches_optax():
    eqx = pytest.importorskip("equinox")

    def train(opt):
        model = eqx.nn.MLP(2, 1, 8, 1, key=jax.random.key(0))
        x = jnp.linspace(-1, 1, 16).reshape(8, 2)
        y = jnp.sum(x, axis=1, keepdims=True)
        state = opt.init(eqx.filter(model, eqx.is_array))

        @eqx.filter_jit
        def step(model, state):
            loss = lambda m: jnp.mean(jnp.square(jax.vmap(m)(x) - y))
            grads = eqx.filter_grad(loss)(model)
            updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
            return eqx.apply_updates(model, updates), state

        for _ in range(5):
            model, state = step(model, state)
        return eqx.filter(model, eqx.is_array)

    with standard_promotion():  # equinox's MLP does not pass strict promotion
        ours = train(jgd.adam(0.05))
        theirs = train(optax.adam(0.05))
    assert_trees_close(jax.tree.leaves(ours), jax.tree.leaves(theirs), rtol=1e-6)
