"""Every catalogue optimizer gives the same numbers through ``jgd.train``.

Each ``THROUGH_TRAIN`` entry (tests/catalogue/) runs three steps of
``jgd.train.make_step`` and three steps of a hand-written jitted loop
(``value_and_grad``, ``update`` given ``value=``, ``grad=`` and ``value_fn=`` as optax's line
searches take them, ``apply_updates``) on a small model with a
matrix, a 3-D tensor, a vector and a scalar. Compared in float64, where the
optimizer travelling as a traced argument costs nothing
(KNOWN_DIFFERENCES['traced float32 hyperparameters']). Per-matrix methods
(lamb, lars, adafactor, muon, ...) must be stored leaf by leaf, element-wise
ones may be packed: both must match the loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
import jgd.train as T
from tests import catalogue

# CI's short version: what make_step must treat apart (per-leaf methods, kept
# leaf by leaf; wrappers; methods given the loss, its gradient or a line
# search; keys and schedule-free state) and two element-wise ones; the other
# element-wise Adam and sign relatives go into the same packed buckets as
# those, and run under -m slow with lbfgs's other configurations (the line
# searches compile for seconds).
ELEMENTWISE_SLOW = {
    "adadelta",
    "adamax",
    "adamaxw",
    "adan",
    "amsgrad",
    "contrib.ademamix",
    "contrib.adopt",
    "contrib.cocob",
    "contrib.simplified_ademamix",
    "lion",
    "nadam",
    "nadamw",
    "optimistic_adam_v2",
    "radam",
    "sign_sgd",
    "signum",
    "yogi",
}
NAMES = [
    pytest.param(
        n,
        marks=pytest.mark.slow
        if n in ELEMENTWISE_SLOW or ("lbfgs" in n and n != "lbfgs")
        else (),
    )
    for n in sorted(catalogue.THROUGH_TRAIN)
]


def _params():
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(8, 6)), jnp.float64),
        "k": jnp.asarray(rng.normal(size=(2, 3, 6)), jnp.float64),
        "b": jnp.asarray(rng.normal(size=(6,)), jnp.float64),
        "s": jnp.asarray(0.5, jnp.float64),
    }


def _loss(p, x):
    h = jnp.tanh(x @ p["w"] + p["b"][None, :])
    return jnp.mean(h**2) + jnp.sum(p["k"] ** 2) * p["s"] ** 2 + p["s"] ** 2


def _batch():
    return jnp.asarray(np.random.default_rng(1).normal(size=(5, 8)), jnp.float64)


def _hand_written(opt, params, x, n):
    def f(p):
        return _loss(p, x)

    @jax.jit
    def step(p, s):
        v, g = jax.value_and_grad(f)(p)
        # optax's extra arguments, as make_step passes them (line searches,
        # methods that read the loss).
        u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
        return jgd.apply_updates(p, u), s

    s = opt.init(params)
    for _ in range(n):
        params, s = step(params, s)
    return params


@pytest.mark.parametrize("name", NAMES)
def test_make_step_matches_the_hand_written_loop(name, x64):
    make = catalogue.THROUGH_TRAIN[name]
    params, x = _params(), _batch()
    state = T.init(params, make())
    step = T.make_step(_loss)
    for _ in range(3):
        state, _ = step(state, x)
    expected = _hand_written(make(), params, x, 3)
    for k in expected:
        np.testing.assert_allclose(
            state.params[k], expected[k], rtol=1e-12, atol=0, err_msg=f"{name}: {k}"
        )


def test_sophia_gets_obj_fn_and_matches_the_hand_written_loop(x64):
    """Sophia's default Hutchinson estimator needs ``obj_fn`` (the loss of the
    params alone): make_step passes it to optimizers that name it, and only
    to those (lbfgs above runs without it)."""
    from jgd import contrib

    def make():
        return contrib.sophia(0.05, update_interval=1)

    params, x = _params(), _batch()
    state = T.init(params, make())
    step = T.make_step(_loss)
    for _ in range(3):
        state, _ = step(state, x)

    opt = make()

    @jax.jit
    def hand(p, s):
        g = jax.grad(_loss)(p, x)
        u, s = opt.update(g, s, p, obj_fn=lambda q: _loss(q, x))
        return jgd.apply_updates(p, u), s

    p, s = params, opt.init(params)
    for _ in range(3):
        p, s = hand(p, s)
    for k in p:
        np.testing.assert_allclose(state.params[k], p[k], rtol=1e-12, atol=0)
    # the Hessian estimate moved the params away from a plain momentum step
    assert not np.allclose(state.params["w"], params["w"])
