"""The composing wrappers (issue 12): hand-computed steps, the semantics the
shared tables cannot reach (extra arguments, LookaheadParams, jgd pieces in
optax's wrappers, fit), and that a new inner hyperparameter is a new value,
not a new program. The cross-checks on the standard tree are in
tests/catalogue/combine.py.
"""

from __future__ import annotations

import collections
import contextlib
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
import jgd.train as T
from tests.catalogue.combine import every_third_skipped, from_step_two
from tests.helpers import (
    TOL,
    assert_trees_close,
    standard_promotion,
)

# A small nested tree (dict, list; vector, matrix, scalar, zero-size): fewer
# leaves compile faster than tests.helpers.TREE_SHAPES.
SMALL = {"a": (3,), "b": [(2, 2), ()], "c": (0,)}


def _random(shapes, seed, dtype=jnp.float32):
    """A tree shaped like ``shapes`` from NumPy: no eager jax.random kernels
    to compile for these shapes (tests.helpers.random_tree's would)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: jnp.asarray(rng.normal(size=s), dtype),
        shapes,
        is_leaf=lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s),
    )


def odd_steps(step):
    return step % 2 == 1


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


# Built once: an optax transform is static, compared by identity, so a new
# optax.clip(10.0) would be a new program.
_CLIP = jgd.with_extra_args_support(optax.clip(10.0))


def _nested(lr, slow_step_size=0.5, sync_period=2, fn=every_third_skipped):
    """Every wrapper at once, an optax piece inside."""
    fast = jgd.lookahead(jgd.sgd(lr), sync_period, slow_step_size)
    inner = jgd.conditionally_mask(jgd.conditionally_transform(fast, fn), odd_steps)
    return jgd.named_chain(
        ("clip", _CLIP),
        ("rest", jgd.flatten(inner)),
    )


def test_values_keep_inner_hyperparameters_as_leaves_and_print():
    opt = _nested(0.125, 0.75, 3)
    assert jax.tree.leaves(opt) == [0.125, 3, 0.75]  # lr, sync_period, a
    hash(jax.tree.structure(opt))  # static parts hash (jit's cache needs it)
    text = repr(opt)
    for part in (
        "NamedChain(",
        "names=('clip', 'rest')",
        "Flatten(inner=",
        "sync_period=3",
    ):
        assert part in text
    assert "should_transform_fn=<function every_third_skipped" in text
    assert _nested(0.125) == _nested(0.125)


def test_a_new_inner_learning_rate_does_not_recompile():
    traces = []

    @jax.jit
    def step(opt, g, s, p):
        traces.append(None)
        return opt.update(g, s, p, value=jnp.zeros([]))

    p = {"w": jnp.ones((2, 2)), "b": jnp.ones(3)}
    g = jax.tree.map(lambda x: 2 * x, p)
    s = _nested(0.1).init(p)
    for _ in range(2):  # the mask runs its inner at step 1 (odd), whose step 0 ...
        u1, s1 = step(_nested(0.1), g, s, p)
        u2, _ = step(_nested(0.2, 0.25, 3), g, s, p)
        s = s1
    assert len(traces) == 1
    # ... runs lookahead's sgd (every_third_skipped(0)): the rates count.
    np.testing.assert_allclose(u1["b"], -0.2 * np.ones(3), rtol=1e-6)
    np.testing.assert_allclose(u2["b"], -0.4 * np.ones(3), rtol=1e-6)
    step(_nested(0.1, fn=from_step_two), g, s, p)  # a new static condition
    assert len(traces) == 2


# --------------------------------------------------------------------------
# named_chain, flatten
# --------------------------------------------------------------------------


def test_named_chain_by_hand():
    tx = jgd.named_chain(("clip", jgd.clip(1.0)), ("mom", jgd.trace(0.5)))
    g = jnp.array([3.0, -0.5])
    state = tx.init(g)
    assert type(state) is collections.OrderedDict and list(state) == ["clip", "mom"]
    u, state = tx.update(g, state)
    u, state = tx.update(g, state)
    np.testing.assert_array_equal(u, [1.5, -0.75])  # 0.5 * [1, -.5] + [1, -.5]
    np.testing.assert_array_equal(state["mom"].trace, [1.5, -0.75])


def _arange_scale():
    """An optax transform that multiplies the flat vector by 0, 1, 2, ...:
    shows the order in which flatten concatenates the leaves."""

    def update(updates, state, params=None):
        return updates * jnp.arange(updates.size, dtype=updates.dtype), state

    return optax.GradientTransformation(lambda p: optax.EmptyState(), update)


def test_flatten_by_hand():
    g = {"b": jnp.ones(2), "a": jnp.ones((2, 2))}  # leaves in order a, b
    tx = jgd.flatten(_arange_scale())
    u, _ = tx.update(g, tx.init(g), g)
    np.testing.assert_array_equal(u["a"], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(u["b"], [4, 5])
    assert jgd.flatten(jgd.scale_by_adam()).init(g).mu.shape == (6,)


def test_flatten_mixed_dtypes_and_empty():
    """KNOWN_DIFFERENCES['flatten dtypes']."""
    g = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones(3, jnp.float32)}
    tx = jgd.flatten(jgd.scale(2.0))
    u, _ = tx.update(g, tx.init(g))
    assert (u["a"].dtype, u["b"].dtype) == (jnp.bfloat16, jnp.float32)
    np.testing.assert_array_equal(u["a"].astype(jnp.float32), [2, 2])
    adam = jgd.flatten(jgd.adam(0.1))
    state = adam.init({})
    assert state[0].mu.shape == (0,)
    assert adam.update({}, state, {})[0] == {}


def test_flatten_names_the_mismatched_params_path():
    tx = jgd.flatten(jgd.sgd(0.1))
    g = {"a": jnp.ones(2), "b": jnp.ones(1)}
    with pytest.raises(TypeError, match=r"jgd.flatten: .*\['b'\]"):
        tx.update(g, tx.init(g), {"a": jnp.ones(2), "c": jnp.ones(1)})


# --------------------------------------------------------------------------
# conditionally_transform, conditionally_mask
# --------------------------------------------------------------------------


def test_conditionally_by_hand():
    g = jnp.ones(1)
    expect = {  # trace(0.5) runs at steps 1 and 3: trace 1, then 0.5 + 1
        jgd.conditionally_transform: [1.0, 1.0, 1.0, 1.5],
        jgd.conditionally_mask: [0.0, 1.0, 0.0, 1.5],
    }
    for wrap, want in expect.items():
        tx = wrap(jgd.trace(0.5), odd_steps)
        update, state, got = jax.jit(tx.update), tx.init(g), []
        for _ in range(4):
            u, state = update(g, state)
            got.append(float(u[0]))
        assert got == want, wrap
        assert int(state.step) == 4 and float(state.inner_state.trace[0]) == 1.5
    assert jgd.ConditionallyTransformState._fields == ("inner_state", "step")
    assert jgd.ConditionallyMaskState._fields == ("step", "inner_state")


def test_forward_extra_args_reach_the_condition_as_optax():
    def big_loss(step, value):
        return value > 1.0

    ours = jgd.conditionally_transform(jgd.scale(10.0), big_loss, True)
    theirs = optax.conditionally_transform(optax.scale(10.0), big_loss, True)
    g = jnp.ones(2)
    for tx, promotion in (
        (ours, jax.numpy_dtype_promotion("strict")),
        (theirs, standard_promotion()),
    ):
        with promotion:
            update = jax.jit(tx.update)
            s = tx.init(g)
            low, s = update(g, s, None, value=jnp.asarray(0.5))
            high, s = update(g, s, None, value=jnp.asarray(2.0))
        np.testing.assert_array_equal(low, [1, 1])
        np.testing.assert_array_equal(high, [10, 10])
        assert int(s.step) == 2


# --------------------------------------------------------------------------
# with_extra_args_support
# --------------------------------------------------------------------------


def test_with_extra_args_support():
    tx = jgd.scale(2.0)
    assert jgd.with_extra_args_support(tx) is tx  # jgd updates take them
    chained = optax.chain(optax.clip(1.0))
    assert jgd.with_extra_args_support(chained) is chained  # ExtraArgs: as optax

    def update(updates, state, params=None):  # refuses extra arguments
        return updates, state

    plain = optax.GradientTransformation(lambda p: optax.EmptyState(), update)
    wrapped = jgd.with_extra_args_support(plain)
    assert isinstance(wrapped, jgd.transforms.combine.WithExtraArgsSupport)
    u, _ = wrapped.update(jnp.ones(1), wrapped.init(None), None, value=1.0)
    np.testing.assert_array_equal(u, [1.0])
    # A plain optax transform whose update takes **kwargs still gets none, as
    # optax's wrapper drops them.
    seen = []
    spy = optax.GradientTransformation(
        lambda p: optax.EmptyState(),
        lambda u, s, p=None, **kw: (seen.append(kw), (u, s))[1],
    )
    jgd.with_extra_args_support(spy).update(jnp.ones(1), None, None, value=1.0)
    assert seen == [{}]


# --------------------------------------------------------------------------
# lookahead
# --------------------------------------------------------------------------


def test_lookahead_by_hand_with_reset():
    """sgd(0.5, momentum=0.5) on x**2 / 2 from 4, sync every 2 steps, a = 0.5."""
    opt = jgd.lookahead(jgd.sgd(0.5, momentum=0.5), 2, 0.5, reset_state=True)
    x = jnp.array([4.0])
    state = opt.init(x)
    xs = []
    for _ in range(3):
        u, state = opt.update(x, state, x)
        x = jgd.apply_updates(x, u)
        xs.append(float(x[0]))
    # 4 - 2; landing 2 - 2 = 0, slow 4 + 0.5 (0 - 4) = 2; momentum reset: 2 - 1
    assert xs == [2.0, 2.0, 1.0]
    assert float(state.slow[0]) == 2.0 and int(state.steps_since_sync) == 1
    assert float(state.fast_state[0].trace[0]) == 2.0  # not 0.5 * 4 + 2


def test_lookahead_keeps_bf16():
    p = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32)}
    opt = jgd.lookahead(jgd.sgd(0.1, momentum=0.9), 1, 0.5, reset_state=True)
    u, s = opt.update(p, opt.init(p), p)
    assert (u["a"].dtype, s.slow["a"].dtype) == (jnp.bfloat16, jnp.bfloat16)
    assert s.fast_state[0].trace["a"].dtype == jnp.bfloat16
    assert (u["b"].dtype, s.slow["b"].dtype) == (jnp.float32, jnp.float32)


def _lookahead_loop(opt, params, grads, pairs, promotion):
    @jax.jit
    def step(g, s, p):
        with promotion():
            u, s = opt.update(g, s, p)
            return u, s, jgd.apply_updates(p, u)

    params = pairs.init_synced(params)
    state, history = opt.init(params), []
    for g in grads:
        u, state, params = step(g, state, params)
        history.append((u, params))
    return history, state


@pytest.mark.parametrize(
    "dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)]
)
def test_lookahead_params_match_optax(dtype, request):
    """Given LookaheadParams, optax's updates: 12 steps on a small tree,
    sync every 3 with the fast state reset, compared at every step."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dtype = jnp.dtype(dtype)
    params = _random(SMALL, 1, dtype)
    grads = [_random(SMALL, 2 + t, dtype) for t in range(12)]
    ours = jgd.lookahead(jgd.adam(0.05), 3, 0.4, reset_state=True)
    theirs = optax.lookahead(optax.adam(0.05), 3, 0.4, reset_state=True)
    a, sa = _lookahead_loop(
        ours, params, grads, jgd.LookaheadParams, contextlib.nullcontext
    )
    b, sb = _lookahead_loop(
        theirs, params, grads, optax.LookaheadParams, standard_promotion
    )
    rtol = TOL[dtype.type]
    for t, ((u1, p1), (u2, p2)) in enumerate(zip(a, b)):
        assert type(u1) is jgd.LookaheadParams
        assert_trees_close(tuple(u1), tuple(u2), rtol, where=f"step {t} updates")
        assert_trees_close(tuple(p1), tuple(p2), rtol, where=f"step {t} params")
    assert sa.slow is None
    assert_trees_close(sa, sb, rtol, where="final state")


def test_lookahead_takes_optax_params_and_lives_in_optax_lookahead():
    """optax.LookaheadParams in jgd.lookahead; a jgd optimizer in optax.lookahead."""
    x = optax.LookaheadParams.init_synced(jnp.array([4.0, -2.0]))
    runs = {
        "jgd": jgd.lookahead(jgd.sgd(0.5, momentum=0.5), 2, 0.5),
        "optax(jgd)": optax.lookahead(jgd.sgd(0.5, momentum=0.5), 2, 0.5),
        "optax": optax.lookahead(optax.sgd(0.5, momentum=0.5), 2, 0.5),
    }
    out = {}
    for name, opt in runs.items():
        p, s = x, opt.init(x)
        with standard_promotion():
            for _ in range(3):
                u, s = opt.update(p.fast, s, p)
                assert type(u) is optax.LookaheadParams
                p = optax.apply_updates(p, u)
        out[name] = p
    for name in ("jgd", "optax(jgd)"):
        assert_trees_close(tuple(out[name]), tuple(out["optax"]), 1e-6, where=name)


def test_lookahead_init_plain_update_pair():
    """optax's warned path: init on the fast params, update on LookaheadParams.
    The updates are optax's, and the state's slow params follow params.slow."""
    opt = jgd.lookahead(jgd.sgd(0.5), 2, 0.5)
    x = jnp.array([4.0])
    p, s = jgd.LookaheadParams.init_synced(x), opt.init(x)
    ref_p, ref_s = p, opt.init(p)
    for _ in range(3):
        u, s = opt.update(p.fast, s, p)
        ref_u, ref_s = opt.update(ref_p.fast, ref_s, ref_p)
        p, ref_p = jgd.apply_updates(p, u), jgd.apply_updates(ref_p, ref_u)
        np.testing.assert_array_equal(s.slow, p.slow)
    assert_trees_close(tuple(p), tuple(ref_p), 0)
    np.testing.assert_array_equal(p.slow, [2.5])


def test_lookahead_reset_drops_a_nonfinite_state():
    """KNOWN_DIFFERENCES['lookahead arguments and reset']: at a sync the fresh
    state replaces an inf; optax's blend gives NaN."""
    x = jnp.array([1.0])
    fast = jgd.trace(0.5)
    opt = jgd.lookahead(fast, 1, 0.5, reset_state=True)
    state = opt.init(x)._replace(fast_state=jgd.TraceState(trace=jnp.array([jnp.inf])))
    _, state = opt.update(x, state, x)
    np.testing.assert_array_equal(state.fast_state.trace, [0.0])
    theirs = optax.lookahead(optax.trace(0.5), 1, 0.5, reset_state=True)
    pair = optax.LookaheadParams.init_synced(x)
    s = theirs.init(pair)._replace(
        fast_state=optax.TraceState(trace=jnp.array([jnp.inf]))
    )
    with standard_promotion():
        _, s = theirs.update(x, s, pair)
    assert np.isnan(s.fast_state.trace[0])


def test_lookahead_names_the_mismatched_path():
    opt = jgd.lookahead(jgd.sgd(0.1), 2, 0.5)
    p = {"a": jnp.ones(2), "b": jnp.ones(1)}
    with pytest.raises(TypeError, match=r"jgd.lookahead: .*\['c'\]"):
        opt.update({"a": jnp.ones(2), "c": jnp.ones(1)}, opt.init(p), p)


def _loss(p, batch):
    return jnp.mean((batch @ p["w"] + p["b"]) ** 2)


def test_lookahead_through_fit(x64):
    """fit on plain params equals a hand loop: wrappers are not packable, so
    fit's default stores them leaf by leaf, and flat=True refuses them,
    saying how."""
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3,))), "b": jnp.asarray(0.3)}
    data = jnp.asarray(rng.normal(size=(8, 3)))
    opt = jgd.lookahead(jgd.adam(0.1), 2, 0.5)
    got, _ = T.fit(_loss, params, opt, data, epochs=5, progress=False)

    @jax.jit
    def step(p, s):
        u, s = opt.update(jax.grad(_loss)(p, data), s, p)
        return jgd.apply_updates(p, u), s

    p, s = params, opt.init(params)
    for _ in range(5):
        p, s = step(p, s)
    assert_trees_close(got, p, 1e-12, where="fit")
    with pytest.raises(ValueError, match="Lookahead needs leaf boundaries"):
        T.fit(_loss, params, opt, data, epochs=1, progress=False, flat=True)


# --------------------------------------------------------------------------
# Mixing and `import jgd as optax`
# --------------------------------------------------------------------------


def test_jgd_pieces_inside_optax_wrappers():
    def build(lib):
        return optax.named_chain(
            ("flat", optax.flatten(lib.adam(0.1))),
            ("cm", optax.conditionally_mask(lib.trace(0.5), from_step_two)),
        )

    params = _random(SMALL, 3)
    grads = [_random(SMALL, 4 + t) for t in range(5)]
    runs = []
    for lib in (jgd, optax):
        opt = build(lib)
        with standard_promotion():
            update, state, us = jax.jit(opt.update), opt.init(params), []
            for g in grads:
                u, state = update(g, state, params)
                us.append(u)
        runs.append(us)
    for t, (a, b) in enumerate(zip(*runs)):
        assert_trees_close(a, b, 1e-6, where=f"step {t}")


def test_optax_docstring_examples_run_with_jgd_as_optax():
    optax_ = jgd  # import jgd as optax
    # optax.named_chain's example (array leaves: jgd.scale wants arrays)
    opt1 = optax_.scale(0.1)
    opt2 = optax_.polyak_sgd()
    chained = optax_.named_chain(("scale", opt1), ("sgd", opt2))
    state = chained.init(jnp.asarray(0.5))
    _, new_state = chained.update(
        jnp.asarray(0.7), state, jnp.asarray(0.7), value=jnp.asarray(1.0)
    )
    assert tuple(new_state.keys()) == ("scale", "sgd")
    # optax.lookahead's example
    opt = optax_.lookahead(optax_.sgd(1e-2), sync_period=5, slow_step_size=0.5)
    params = optax_.LookaheadParams.init_synced(jnp.ones((2,)))
    state = opt.init(params)

    def loss_fn(p):
        return jnp.sum(p**2)

    grads = jax.grad(loss_fn)(params.fast)
    updates, state = opt.update(grads, state, params)
    params = optax_.apply_updates(params, updates)
    assert loss_fn(params.slow) == 2.0


def _signature(fn):
    return [
        (p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
    ]


@pytest.mark.parametrize(
    "name",
    [
        "named_chain",
        "flatten",
        "conditionally_transform",
        "conditionally_mask",
        "with_extra_args_support",
        "lookahead",
    ],
)
def test_signature_matches_optax(name):
    assert _signature(getattr(jgd, name)) == _signature(getattr(optax, name))


def test_state_fields_match_optax():
    for name in ("ConditionallyTransformState", "ConditionallyMaskState"):
        assert getattr(jgd, name)._fields == getattr(optax, name)._fields
    assert jgd.LookaheadParams._fields == optax.LookaheadParams._fields
    # jgd's addition: the slow params, when init is given plain params
    assert jgd.LookaheadState._fields == (*optax.LookaheadState._fields, "slow")
