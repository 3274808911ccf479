"""jgd.contrib.reduce_on_plateau: hand-computed scales, optax's numbers step
by step (its own runner: update needs value=), and jgd.train's make_step and
fit, which pass the batch loss as value=."""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
import jgd.contrib as jc
import jgd.train as T
from tests.helpers import TOL, assert_trees_close, random_tree, standard_promotion

# One jitted step for every plateau value below: its hyperparameters are
# leaves, so new values reuse the program (counted in test_golden_scales).
TRACES: list = []


@jax.jit
def _step(opt, g, state, value):
    TRACES.append(1)
    return opt.update(g, state, value=value)


def _scales(opt, values):
    state = opt.init(jnp.zeros(2))
    out = []
    for v in values:
        u, state = _step(opt, jnp.ones(2), state, jnp.float32(v))
        out.append(float(u[0]))
        assert float(state.scale) == out[-1]
    return out, state


def test_golden_scales():
    """By hand (module docstring's rules), patience 2, cooldown 1:
    3 best; 2 better; 2 plateau 1; 2 plateau 2 -> halve, cooldown;
    2 cooling; 2 plateau 1; 2 plateau 2 -> halve; 1 better (cooling)."""
    opt = jc.reduce_on_plateau(factor=0.5, patience=2, cooldown=1)
    scales, state = _scales(opt, [3, 2, 2, 2, 2, 2, 2, 1])
    assert scales == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert (int(state.plateau_count), int(state.cooldown_count)) == (0, 0)
    assert float(state.best_value) == 1.0
    # accumulation_size 2: (4 + 2) / 2 = 3 best; 3 plateau 1 -> x0.1; again.
    opt = jc.reduce_on_plateau(patience=1, accumulation_size=2, min_scale=0.05)
    scales, state = _scales(opt, [4, 2, 3, 3, 3, 3])
    np.testing.assert_allclose(scales, [1, 1, 1, 0.1, 0.1, 0.05], rtol=1e-7)
    assert float(state.best_value) == 3.0
    # A value in the middle of an accumulation: count 1, the running mean.
    _, state = _scales(opt, [5.0])
    assert (int(state.count), float(state.avg_value)) == (1, 5.0)
    assert len(TRACES) == 1  # new hyperparameter values, one program


def _stream(n):
    """Values that improve, stall around a level, improve again, and stall:
    every branch (improvement, plateau, reduction, cooldown) runs."""
    rng = np.random.default_rng(0)
    t = np.arange(n)
    level = np.where(t < 8, 1.0 / (1 + t), np.where(t < 24, 0.12, 0.05))
    return level * (1 + 0.002 * rng.standard_normal(n))


# A small nested tree: the plateau's math is one scale for every leaf.
_SHAPES = {"a": [(3,), ()], "b": {"w": (2, 2)}, "e": (0,)}
_KW = {
    "factor": 0.5,
    "patience": 2,
    "rtol": 1e-2,
    "atol": 1e-3,
    "cooldown": 1,
    "accumulation_size": 2,
}


def _run(opt, params, values, promotion):
    dt = jax.tree.leaves(params)[-1].dtype
    step = jax.jit(lambda g, s, p, v: opt.update(g, s, p, value=v))
    with promotion():
        state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    out = []
    for v in values:
        with promotion():
            u, state = step(grads, state, params, jnp.asarray(v, dt))
        out.append(u)
    return out, state


@pytest.mark.parametrize(
    # float64 behind -m slow, as the catalogue's (tests/test_vs_optax.py)
    "dtype",
    ["float32", pytest.param("float64", marks=pytest.mark.slow)],
)
def test_matches_optax_step_by_step(dtype, request):
    """Chained after SGD, on a small nested tree, 40 values; f32 rtol 1e-6,
    f64 rtol 1e-12; states field by field and dtypes at the end."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    params = random_tree(jax.random.key(1), dt, _SHAPES)
    values = _stream(40)
    ours, s1 = _run(
        jgd.chain(jgd.sgd(0.1), jc.reduce_on_plateau(min_scale=0.2, **_KW)),
        params,
        values,
        contextlib.nullcontext,
    )
    theirs, s2 = _run(
        optax.chain(
            optax.sgd(0.1), optax.contrib.reduce_on_plateau(min_scale=0.2, **_KW)
        ),
        params,
        values,
        standard_promotion,
    )
    for t, (u1, u2) in enumerate(zip(ours, theirs)):
        assert_trees_close(u1, u2, TOL[dt.type], where=f"step {t} updates")
    assert s1[1]._fields == s2[1]._fields
    assert_trees_close(s1, s2, TOL[dt.type], where="final state")
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        assert a.dtype == b.dtype
    # reduced three times: 1 -> 0.5 -> 0.25 -> 0.2 (min_scale)
    np.testing.assert_allclose(s1[1].scale, 0.2, rtol=1e-7)


def test_optax_pieces_inside_and_mixed_dtypes():
    """An optax Adam inside a jgd chain; bfloat16 and float32 leaves: the
    scale in the lowest dtype, the values in the highest, as optax's."""
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    values = _stream(12)
    ours, s1 = _run(  # optax's adam needs standard promotion
        jgd.chain(optax.adam(0.1), jc.reduce_on_plateau(**_KW)),
        params,
        values,
        standard_promotion,
    )
    theirs, s2 = _run(
        optax.chain(optax.adam(0.1), optax.contrib.reduce_on_plateau(**_KW)),
        params,
        values,
        standard_promotion,
    )
    for t, (u1, u2) in enumerate(zip(ours, theirs)):
        assert jax.tree.map(lambda x: x.dtype, u1) == jax.tree.map(
            lambda x: x.dtype, u2
        )
        assert_trees_close(u1, u2, 0, where=f"step {t} updates")
    assert (s1[1].scale.dtype, s1[1].best_value.dtype) == (jnp.bfloat16, jnp.float32)
    assert_trees_close(s1, s2, 0, where="final state")


def test_optax_reduces_on_improvement_with_patience_zero():
    """KNOWN_DIFFERENCES['plateau counts']: optax accepts patience=0 and then
    reduces after an improvement (the count is 0 only there), never on a
    plateau; jgd refuses it."""
    opt = optax.contrib.reduce_on_plateau(patience=0)
    state = opt.init(jnp.zeros(1))
    step = jax.jit(opt.update)
    with standard_promotion():
        for _ in range(3):  # the first value improves on inf, then a plateau
            _, state = step(jnp.ones(1), state, value=1.0)
    np.testing.assert_allclose(state.scale, 0.1, rtol=1e-7)
    assert int(state.plateau_count) == 2
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        jc.reduce_on_plateau(patience=0)


def _loss(p, x):
    return jnp.mean((x @ p["w"] + p["b"][None, :]) ** 2)


def test_make_step_passes_the_loss():
    """make_step (leaf by leaf; packed in tests/test_catalogue_train.py)
    equals a hand loop that passes value=loss; the scale falls, and
    current_hyperparams reads it from the TrainState."""
    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
        "b": jnp.zeros(3, jnp.float32),
    }
    x = jnp.asarray(rng.normal(size=(8, 4)), jnp.float32)
    opt = jgd.chain(
        jgd.sgd(0.05), jc.reduce_on_plateau(factor=0.5, patience=1, rtol=0.5)
    )
    state = T.init(params, opt, flat=False)
    step = T.make_step(_loss)
    for _ in range(5):
        state, _ = step(state, x)

    @jax.jit
    def hand(p, s):
        v, g = jax.value_and_grad(_loss)(p, x)
        u, s = opt.update(g, s, p, value=v)
        return jgd.apply_updates(p, u), s

    p, s = params, opt.init(params)
    for _ in range(5):
        p, s = hand(p, s)
    for k in p:
        np.testing.assert_allclose(state.params[k], p[k], rtol=1e-6, err_msg=k)
    assert float(s[1].scale) < 1.0
    assert jgd.current_hyperparams(state)["1/scale"] == s[1].scale


def test_fit_passes_the_loss():
    """fit's scanned epochs read the loss too: the same params as make_step."""
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)}
    x = jnp.asarray(rng.normal(size=(8, 4)), jnp.float32)
    loss = lambda p, batch: jnp.mean((batch @ p["w"]) ** 2)
    opt = jgd.chain(
        jgd.sgd(0.05), jc.reduce_on_plateau(factor=0.5, patience=1, rtol=0.5)
    )
    fitted, _ = T.fit(loss, params, opt, x, epochs=4, shuffle=False, progress=False)
    state, step = T.init(params, opt), T.make_step(loss)
    for _ in range(4):
        state, _ = step(state, x)
    np.testing.assert_allclose(fitted["w"], state.params["w"], rtol=1e-6)
    assert float(state.opt_state[1].scale) < 1.0
