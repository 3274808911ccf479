"""apply_if_finite, its record of where a NaN came from (nonfinite_paths),
and clip_by_global_norm's record_norm: against optax on streams with NaN and
Inf steps, optax PR #1746's give-up semantics, and issue 13's point (one NaN
spreads through clip_by_global_norm into Adam's state for good; wrapped in
apply_if_finite the state stays clean and the leaf is named).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
import jgd.train as T
from tests.helpers import (
    TOL,
    assert_trees_close,
    gradient_stream,
    random_tree,
    standard_promotion,
)

SHAPES = {"w": (3, 2), "b": [(2,), ()]}  # leaves: b[0], b[1], w
BAD_STEPS = {3: ("nan", 0), 7: ("inf", 2), 8: ("nan", 1), 12: ("-inf", 2)}


def _stream(dtype, steps=14):
    """Random gradients; at BAD_STEPS one element of one leaf is NaN or Inf
    (never more than 2 bad steps in a row)."""
    params = random_tree(jax.random.key(1), dtype, SHAPES)
    grads = gradient_stream(jax.random.key(2), params, steps)
    for t, (value, leaf) in BAD_STEPS.items():
        leaves, treedef = jax.tree.flatten(grads[t])
        flat = leaves[leaf].reshape(-1).at[0].set(float(value))
        leaves[leaf] = flat.reshape(leaves[leaf].shape)
        grads[t] = treedef.unflatten(leaves)
    return params, grads


def _run(opt, params, grads, std=False):
    step = jax.jit(opt.update)
    state = opt.init(params)
    out = []
    for g in grads:
        with standard_promotion() if std else jax.numpy_dtype_promotion("strict"):
            u, state = step(g, state, params)
        out.append(u)
    return out, state


def _optax_fields(state):
    return tuple(state)[:4]


@pytest.mark.parametrize(
    "dtype",
    # float64 (with the mixes) under -m slow, as the catalogue's cross-checks.
    ["float32", pytest.param("float64", marks=pytest.mark.slow)],
)
def test_matches_optax_on_optax_fields(dtype, request):
    """KNOWN_DIFFERENCES['apply_if_finite state']: updates at every step and
    optax's four fields at the end, with NaN and Inf steps skipped; in
    float64 also jgd and optax inside each other."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    params, grads = _stream(jnp.dtype(dtype))
    # max_norm 10 is above the stream's norms: optax's clip rounds
    # differently when it clips (KNOWN_DIFFERENCES['clip rounding']).
    adam = lambda lib: lib.chain(lib.clip_by_global_norm(10.0), lib.adam(0.05))
    opts = {"jgd": jgd.apply_if_finite(adam(jgd), 2)}
    if dtype == "float64":
        opts["jgd over optax"] = jgd.apply_if_finite(adam(optax), 2)
        opts["optax over jgd"] = optax.apply_if_finite(adam(jgd), 2)
    theirs, s2 = _run(optax.apply_if_finite(adam(optax), 2), params, grads, std=True)
    assert int(s2.total_notfinite) == len(BAD_STEPS)
    rtol = TOL[jnp.dtype(dtype).type]
    for mix, opt in opts.items():
        ours, s1 = _run(opt, params, grads, std=mix != "jgd")
        for t, (u1, u2) in enumerate(zip(ours, theirs)):
            assert_trees_close(u1, u2, rtol, where=f"{mix} step {t}")
        assert_trees_close(_optax_fields(s1), _optax_fields(s2), rtol, where=mix)
        if mix != "optax over jgd":  # the latest bad run began at step 12, in w
            assert jgd.nonfinite_paths(s1) == ["['w']"]


def test_give_up_resets_the_count_pr_1746():
    """KNOWN_DIFFERENCES['apply_if_finite give-up']: with one error allowed,
    every second bad step is accepted (the count restarts); optax 0.2.8
    accepts every bad step after the first give-up."""
    bad, good = jnp.array([jnp.nan]), jnp.array([1.0])
    grads = [bad, bad, bad, bad, good, bad]
    ours, s1 = _run(jgd.apply_if_finite(jgd.sgd(1.0), 1), bad, grads)
    theirs, s2 = _run(optax.apply_if_finite(optax.sgd(1.0), 1), bad, grads, std=True)
    accepted = lambda us: [bool(np.isnan(u[0]) or u[0] != 0) for u in us]
    assert accepted(ours) == [False, True, False, True, True, False]
    assert accepted(theirs) == [False, True, True, True, True, False]
    assert (int(s1.notfinite_count), int(s1.total_notfinite)) == (1, 5)
    assert (int(s2.notfinite_count), int(s2.total_notfinite)) == (1, 5)


def test_clip_spreads_one_nan_and_apply_if_finite_contains_it():
    """Issue 13: one NaN in one leaf, through clip_by_global_norm, reaches
    every leaf of Adam's moments and stays; wrapped, the state is the one
    before the bad step, later steps equal a run that never saw it, and the
    leaf is named."""
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3), "s": jnp.array(0.5)}
    g = jax.tree.map(lambda p: jnp.full_like(p, 0.3), params)
    bad = dict(g, b=g["b"].at[1].set(jnp.nan))
    inner = jgd.chain(jgd.clip_by_global_norm(1.0, record_norm=True), jgd.adam(0.1))
    _, spoiled = _run(inner, params, [g, bad, g])
    assert all(np.isnan(x).all() for x in jax.tree.leaves(spoiled[1][0].mu))

    opt = jgd.apply_if_finite(inner, 3)
    step = jax.jit(opt.update)
    state, ref = opt.init(params), opt.init(params)
    _, state = step(g, state, params)
    u1, state = step(bad, state, params)
    u2, state = step(g, state, params)
    _, ref = step(g, ref, params)
    r1, ref = step(g, ref, params)
    assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(u1))
    for a, b in zip(
        jax.tree.leaves((u2, state.inner_state)), jax.tree.leaves((r1, ref.inner_state))
    ):
        np.testing.assert_array_equal(a, b)
    assert jgd.nonfinite_paths(state) == ["['b']"]
    assert state.notfinite_leaves.paths == ("['b']", "['s']", "['w']")


def test_the_record_is_the_start_of_a_run():
    """Bad steps in a row keep the first one's leaves (the later ones may
    have spread); a new run after a finite step replaces them."""
    p = {"a": jnp.ones(2), "b": jnp.ones(2)}
    nan = jnp.array([jnp.nan, 1.0])
    grads = [dict(p, a=nan), {"a": nan, "b": nan}, p, dict(p, b=-jnp.inf * p["b"])]
    opt = jgd.apply_if_finite(jgd.sgd(0.1), 5)
    step, state, seen = jax.jit(opt.update), opt.init(p), []
    for g in grads:
        _, state = step(g, state)
        seen.append(jgd.nonfinite_paths(state))
    assert seen == [["['a']"], ["['a']"], ["['a']"], ["['b']"]]
    assert jgd.nonfinite_paths(opt.init(p)) == []


def test_named_through_make_step_and_on_module_trees():
    """The record survives jgd.train (the paths are the user's) and names
    an equinox module's fields."""
    params = {"w": jnp.ones(3), "b": jnp.zeros(())}
    loss = lambda p, x: jnp.sum(p["w"] * x) + jnp.log(p["b"])
    state = T.init(params, jgd.apply_if_finite(jgd.adam(0.1), 2))
    state, _ = T.make_step(loss)(state, jnp.ones(3))  # log(0): -inf, grad inf
    assert jgd.nonfinite_paths(state.opt_state) == ["['b']"]
    np.testing.assert_array_equal(state.params["w"], params["w"])

    model = eqx.nn.Linear(2, 2, key=jax.random.key(0))
    grads = jax.tree.map(jnp.zeros_like, model)
    grads = eqx.tree_at(lambda m: m.bias, grads, jnp.array([0.0, jnp.inf]))
    opt = jgd.apply_if_finite(jgd.sgd(0.1), 1)
    _, s = opt.update(grads, opt.init(model))
    assert jgd.nonfinite_paths(s) == [".bias"]


def test_record_norm_is_the_pre_clip_norm(x64):
    """KNOWN_DIFFERENCES['clip_by_global_norm record_norm']: the state holds
    optax's global norm of the incoming updates; updates equal record_norm
    off bit for bit; the default state is optax's EmptyState."""
    params = random_tree(jax.random.key(1), jnp.float64, SHAPES)
    grads = gradient_stream(jax.random.key(2), params, 2, scale=2.0)
    plain = jgd.clip_by_global_norm(6.0)  # the two norms: 8.2 and 5.1
    assert plain.init(params) == optax.clip_by_global_norm(6.0).init(params)
    rec = jgd.clip_by_global_norm(6.0, record_norm=True)
    assert rec.init(params) == jgd.ClipByGlobalNormState(jnp.zeros([], jnp.float64))
    both = jax.jit(lambda g, s: (rec.update(g, s), plain.update(g, ())[0]))
    state, clipped = rec.init(params), 0
    for g in grads:
        (u, state), u_plain = both(g, state)
        n = optax.tree.norm(g)
        clipped += float(n) > 6.0
        assert state.global_norm.dtype == jnp.float64
        np.testing.assert_allclose(state.global_norm, n, rtol=TOL[jnp.float64])
        for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(u_plain)):
            np.testing.assert_array_equal(a, b)
    assert 0 < clipped < len(grads)


def test_errors():
    opt = jgd.apply_if_finite(jgd.adam(0.1), 2)
    state = opt.init({"w": jnp.zeros(2), "b": jnp.zeros(1)})
    with pytest.raises(TypeError) as info:
        opt.update({"w": jnp.zeros(2), "bias": jnp.zeros(1)}, state)
    assert str(info.value) == (
        "jgd.apply_if_finite: the updates tree does not match the params tree "
        "given to init; first difference at leaf 0: updates have ['bias'], "
        "params have ['b']."
    )
    with pytest.raises(TypeError, match=r"^jgd\.apply_if_finite: state must be"):
        opt.update({"w": jnp.zeros(2), "b": jnp.zeros(1)}, tuple(state)[:4])
