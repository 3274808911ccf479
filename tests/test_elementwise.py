"""SGD variants, element-wise blocks and extra clipping: golden numbers and the
cross-checks the generic tables cannot run.

Golden tests compute a step or two by hand (or with NumPy), without optax.
Cross-checks against optax 0.2.8 use tests/test_vs_optax.py's stream (50
random gradients on the nested tree, f32 rtol 1e-6, f64 rtol 1e-12) with a
runner that passes ``value=`` (polyak), compares keys as key data (noise), or
reshapes optax's scalar-leaf update (distance over gradients). The optimizers
whose state holds a bool or a key (tests/test_conformance.py wants float and
int32 leaves only) run the conformance checks here.
"""

from __future__ import annotations

import contextlib
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd.train.layout import needs_leaves
from tests.catalogue import KNOWN_DIFFERENCES
from tests.helpers import (
    TOL,
    assert_trees_close,
    bowl,
    gradient_stream,
    lr,
    random_tree,
    rosenbrock,
    standard_promotion,
)

STEPS = 50
DTYPES = ["float32", "float64"]


@pytest.fixture(params=DTYPES)
def dtype(request):
    """float32, or float64 with x64 on for the test body."""
    if request.param == "float64":
        with jax.enable_x64(True):
            yield jnp.float64
    else:
        yield jnp.float32


def _run(opt, params, grads, promotion, extra=None, reshape=False):
    """``STEPS`` jitted updates; ``extra(params)`` gives keyword arguments."""
    step = jax.jit(lambda g, s, p, kw: opt.update(g, s, p, **kw))
    state = opt.init(params)
    history = []
    for g in grads:
        kw = extra(params) if extra else {}
        with promotion():
            updates, state = step(g, state, params, kw)
        if reshape:  # KNOWN_DIFFERENCES['scale_by_distance_over_gradients ...']
            updates = jax.tree.map(lambda u, p: u.reshape(p.shape), updates, params)
        params = jgd.apply_updates(params, updates)
        history.append((updates, params))
    return history, state


def _cross_check(ours, theirs, dtype, extra=None, grads=None, steps=STEPS):
    params = random_tree(jax.random.key(1), dtype)
    if grads is None:
        grads = gradient_stream(jax.random.key(2), params, steps)
    h1, s1 = _run(ours, params, grads, contextlib.nullcontext, extra)
    h2, s2 = _run(theirs, params, grads, standard_promotion, extra)
    rtol = TOL[dtype]
    for t, ((u1, p1), (u2, p2)) in enumerate(zip(h1, h2)):
        assert_trees_close(u1, u2, rtol, where=f"step {t} updates")
        assert_trees_close(p1, p2, rtol, where=f"step {t} params")
    return s1, s2


def _states_close(s1, s2, dtype):
    assert_trees_close(s1, s2, TOL[dtype], where="final state")
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        assert a.dtype == b.dtype


def _step(opt, grads, state, params=None, **kw):
    return opt.update(jnp.asarray(grads), state, params, **kw)


# --------------------------------------------------------------------------
# Golden numbers.
# --------------------------------------------------------------------------


def test_sign_sgd_golden():
    opt = jgd.sign_sgd(0.1)
    u, _ = _step(opt, [3.0, -0.5, 0.0], opt.init(jnp.zeros(3)))
    np.testing.assert_array_equal(u, np.float32([-0.1, 0.1, 0.0]))


def test_signum_golden():
    # m1 = 0.5 * g1 = [0.5, -0.5]; m2 = 0.5 * m1 + 0.5 * g2 = [-1.25, -0.75]
    opt = jgd.signum(0.1, beta=0.5)
    state = opt.init(jnp.zeros(2))
    u1, state = _step(opt, [1.0, -1.0], state)
    u2, state = _step(opt, [-3.0, -1.0], state)
    np.testing.assert_array_equal(u1, np.float32([-0.1, 0.1]))
    np.testing.assert_array_equal(u2, np.float32([0.1, 0.1]))
    np.testing.assert_array_equal(state[0].ema, np.float32([-1.25, -0.75]))


def test_noisy_sgd_golden():
    """u_t = -lr * (g + sqrt(eta / t**gamma) * noise_t), the noise drawn from
    the key as optax does: split the state key, then one key per leaf."""
    key = jax.random.key(7)
    params = {"a": jnp.zeros(3), "b": jnp.zeros(())}
    g = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array(3.0)}
    opt = jgd.noisy_sgd(0.1, eta=0.04, gamma=0.5, key=key)
    state = opt.init(params)
    for t in (1, 2):
        u, state = opt.update(g, state)
        key, sample = jax.random.split(key)
        ka, kb = jax.random.split(sample, 2)
        sigma = np.sqrt(0.04 / t**0.5)
        for name, k in (("a", ka), ("b", kb)):
            noise = np.asarray(jax.random.normal(k, g[name].shape), np.float64)
            want = -0.1 * (np.asarray(g[name], np.float64) + sigma * noise)
            np.testing.assert_allclose(u[name], want, rtol=1e-6)
    assert int(state[0].count) == 2


def test_polyak_sgd_golden():
    # f(w) = sum(w**2) = 5 at w = [1, 2]; g = 2w, ||g||**2 = 20.
    w = jnp.array([1.0, 2.0])
    g, value = 2 * w, jnp.sum(w**2)

    def new_w(**kw):
        opt = jgd.polyak_sgd(**kw)
        u, _ = opt.update(g, opt.init(w), w, value=value)
        return np.asarray(jgd.apply_updates(w, u))

    np.testing.assert_allclose(new_w(), [0.5, 1.0], rtol=1e-7)  # step 5/20
    np.testing.assert_allclose(new_w(max_learning_rate=0.1), [0.8, 1.6], rtol=1e-7)
    np.testing.assert_allclose(new_w(eps=5.0), [0.6, 1.2], rtol=1e-7)  # 5/25
    # f_min above the value: sps steps uphill (gap < 0), sps+ does not move.
    np.testing.assert_allclose(new_w(f_min=7.0), [1.2, 2.4], rtol=1e-7)
    np.testing.assert_allclose(new_w(f_min=7.0, variant="sps+"), [1.0, 2.0])
    # A zero gradient gives a zero step, not NaN.
    opt = jgd.polyak_sgd()
    u, _ = opt.update(jnp.zeros(2), opt.init(w), w, value=value)
    np.testing.assert_array_equal(u, np.zeros(2, np.float32))


def test_polyak_needs_value():
    opt = jgd.polyak_sgd()
    with pytest.raises(
        TypeError,
        match=r"^jgd\.polyak_sgd: update needs value= \(the loss at params\); "
        r"call update\(grads, state, params, value=loss\)\.$",
    ):
        opt.update(jnp.ones(2), opt.init(jnp.ones(2)), jnp.ones(2))


def test_rprop_golden_steps():
    """KNOWN_DIFFERENCES['rprop returns this step']: optax PR #1725's example,
    the numbers of Riedmiller & Braun's rule and torch.optim.Rprop."""
    block = jgd.scale_by_rprop(learning_rate=0.1, eta_minus=0.5, eta_plus=1.2)
    opt = jgd.rprop(0.1, eta_minus=0.5, eta_plus=1.2)
    sb, so = block.init(jnp.zeros(1)), opt.init(jnp.zeros(1))
    got_b, got_o = [], []
    for g in [1.0, 1.0, 1.0, -1.0, 1.0]:
        u, sb = _step(block, [g], sb)
        got_b.append(float(u[0]))
        u, so = _step(opt, [g], so)
        got_o.append(float(u[0]))
    want = [0.1, 0.12, 0.144, 0.0, 0.072]
    np.testing.assert_allclose(got_b, want, rtol=1e-6)
    np.testing.assert_allclose(got_o, [-w for w in want], rtol=1e-6)
    # The step sizes are clipped to [min_step_size, max_step_size].
    opt = jgd.rprop(
        0.5, eta_minus=0.1, eta_plus=2.0, min_step_size=0.2, max_step_size=0.8
    )
    state = opt.init(jnp.zeros(2))
    for g, want in [([1.0, 1.0], [-0.5, -0.5]), ([1.0, -1.0], [-0.8, 0.0])]:
        u, state = _step(opt, g, state)
        np.testing.assert_allclose(u, want, rtol=1e-7)
    np.testing.assert_allclose(state[0].step_sizes, [0.8, 0.2], rtol=1e-7)
    assert "rprop returns this step" in KNOWN_DIFFERENCES


def test_optimistic_gradient_descent_golden():
    opt = jgd.optimistic_gradient_descent(0.1, alpha=0.5, beta=0.25)
    state = opt.init(jnp.zeros(2))
    # First step: the previous gradient is the current one, u = -lr * alpha * g.
    u1, state = _step(opt, [1.0, 2.0], state)
    u2, state = _step(opt, [2.0, 2.0], state)
    np.testing.assert_allclose(u1, [-0.05, -0.1], rtol=1e-6)
    # (0.75 * [2, 2] - 0.25 * [1, 2]) * -0.1
    np.testing.assert_allclose(u2, [-0.125, -0.1], rtol=1e-6)
    assert not bool(state[0].is_initial_step)


@pytest.mark.parametrize("nesterov", [False, True])
def test_optimistic_adam_v2_golden(nesterov, x64):
    """In float64: in float32, 1 - 0.999 alone is 1e-5 off."""
    b1, b2, eps, alpha, beta, lr_ = 0.9, 0.999, 1e-8, 0.5, 0.3, 0.1
    grads = [np.array([1.0, -2.0]), np.array([0.5, 1.0]), np.array([-1.0, 3.0])]
    m = v = prev = np.zeros(2)
    want = []
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        if nesterov:  # Dozat's NAdam form, as optax.scale_by_adam(nesterov=True)
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        r = m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
        prev = r if t == 1 else prev
        want.append(-lr_ * ((alpha + beta) * r - beta * prev))
        prev = r
    opt = jgd.optimistic_adam_v2(lr_, alpha=alpha, beta=beta, nesterov=nesterov)
    state = opt.init(jnp.zeros(2))
    for g, w in zip(grads, want):
        u, state = _step(opt, g, state)
        np.testing.assert_allclose(u, w, rtol=1e-12)


def test_small_blocks_golden():
    g = {"m": jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), "v": jnp.array([1.0, 2.0])}
    u, _ = jgd.centralize().update(g, jgd.centralize().init(g))
    np.testing.assert_array_equal(u["m"], [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(u["v"], g["v"])  # vectors pass unchanged

    u, _ = jgd.set_to_zero().update(g, jgd.set_to_zero().init(g))
    assert all(not np.any(x) for x in jax.tree.leaves(u))

    nan = {"a": jnp.array([1.0, jnp.nan]), "b": jnp.array(2.0)}
    tx = jgd.zero_nans()
    u, s = tx.update(nan, tx.init(nan))
    np.testing.assert_array_equal(u["a"], [1.0, 0.0])
    assert bool(s.found_nan["a"]) and not bool(s.found_nan["b"])

    p = {"a": jnp.array([1.0, 0.5]), "b": None}
    tx = jgd.keep_params_nonnegative()
    u, _ = tx.update({"a": jnp.array([-2.0, 0.25]), "b": None}, tx.init(p), p)
    np.testing.assert_array_equal(u["a"], [-1.0, 0.25])
    assert u["b"] is None
    with pytest.raises(
        ValueError, match=r"^jgd\.keep_params_nonnegative: update needs params"
    ):
        tx.update({"a": jnp.ones(2)}, tx.init(p))

    tx = jgd.ema(0.5)  # debiased: the first output is the gradient itself
    s = tx.init(g["v"])
    u, s = tx.update(g["v"], s)
    np.testing.assert_allclose(u, g["v"], rtol=1e-7)
    u, s = tx.update(jnp.array([3.0, 0.0]), s)  # (0.25 * g1 + 0.5 * g2) / 0.75
    np.testing.assert_allclose(u, [7 / 3, 2 / 3], rtol=1e-6)

    tx = jgd.normalize_by_update_norm(scale_factor=-2.0, eps=0.0)
    u, _ = tx.update({"a": jnp.array([3.0]), "b": jnp.array(4.0)}, tx.init(None))
    np.testing.assert_allclose([u["a"][0], u["b"]], [-1.2, -1.6], rtol=1e-6)

    tx = jgd.clip_by_block_rms(1.0)  # rms of [3, 4] / sqrt(2) ... = 3.536
    u, _ = tx.update({"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.5])}, tx.init(None))
    np.testing.assert_allclose(u["a"], np.array([3.0, 4.0]) / np.sqrt(12.5), rtol=1e-6)
    np.testing.assert_array_equal(u["b"], [0.5])

    # AGC on a matrix: units are columns; column 0 is clipped to 0.5 * ||p_0||.
    p = jnp.array([[3.0, 1.0], [4.0, 0.0]])
    gm = jnp.array([[6.0, 0.1], [8.0, 0.0]])
    tx = jgd.adaptive_grad_clip(0.5)
    u, _ = tx.update(gm, tx.init(p), p)
    np.testing.assert_allclose(u, [[1.5, 0.1], [2.0, 0.0]], rtol=1e-6)


@contextlib.contextmanager
def _optax_broadcasts():
    """optax's scalar-leaf update broadcasts (1,) against the leaf's shape."""
    with standard_promotion(), jax.numpy_rank_promotion("allow"):
        yield


def test_distance_over_gradients_golden():
    # One leaf: x0 = [3, 4] (||x0|| = 5), d0 = 1e-2 * 6; at p = x0 + [0, 1],
    # d = max(0.06, 1) = 1; G = ||g||**2 = 4, u = 1 / sqrt(4 + 0) * g.
    x0 = jnp.array([3.0, 4.0])
    tx = jgd.scale_by_distance_over_gradients(reps_rel=1e-2, eps=0.0)
    s = tx.init(x0)
    np.testing.assert_allclose(s.max_dist, 0.06, rtol=1e-6)
    assert s.grad_sum_of_squares.shape == (1,)
    u, s = tx.update(jnp.array([0.0, 2.0]), s, x0)  # still at x0: d = 0.06
    np.testing.assert_allclose(u, [0.0, 0.06], rtol=1e-6)
    u, s = tx.update(jnp.array([0.0, 2.0]), s, x0 + jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(u, [0.0, 2.0 / np.sqrt(8.0)], rtol=1e-6)


def test_distance_over_gradients_scalar_leaf_keeps_its_shape():
    """KNOWN_DIFFERENCES['scale_by_distance_over_gradients scalar leaves']."""
    p = {"s": jnp.array(2.0)}
    ours, theirs = (
        jgd.scale_by_distance_over_gradients(),
        optax.scale_by_distance_over_gradients(),
    )
    g = {"s": jnp.array(0.5)}
    u1, _ = ours.update(g, ours.init(p), p)
    with standard_promotion():
        u2, _ = theirs.update(g, theirs.init(p), p)
    assert u1["s"].shape == () and u2["s"].shape == (1,)
    np.testing.assert_array_equal(u1["s"], u2["s"][0])


def test_per_example_global_norm_clip_golden():
    grads = [
        jnp.array([[0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]])
    ]  # norms 0, 5, 5, 5
    for clip, want, n in [(jnp.inf, 7.0, 0), (0.0, 0.0, 3), (1.25, 1.75, 3)]:
        s, k = jgd.per_example_global_norm_clip(grads, clip)
        np.testing.assert_allclose(s[0], [want] * 3, rtol=1e-7)
        assert int(k) == n and s[0].dtype == jnp.float32


# --------------------------------------------------------------------------
# Cross-checks against optax that the generic runner cannot do.
# --------------------------------------------------------------------------


def test_rprop_against_optax_one_step_behind(dtype):
    """KNOWN_DIFFERENCES['rprop returns this step'], against optax.rprop
    itself: the states agree at every step, optax's first update is zero and
    its step t+1 is jgd's step t wherever the gradient kept its sign."""
    args = (0.05, 0.4, 1.3, 1e-3, 0.2)
    ours, theirs = jgd.rprop(*args), optax.rprop(*args)
    params = random_tree(jax.random.key(1), dtype)
    grads = gradient_stream(jax.random.key(2), params, 20)
    s1, s2 = ours.init(params), theirs.init(params)
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    rtol = TOL[dtype]
    before = None
    held = jax.jit(
        lambda g, prev, before: jax.tree.map(
            lambda g, p, b: jnp.where(g * p < 0, jnp.zeros_like(b), b), g, prev, before
        )
    )
    for t, g in enumerate(grads):
        prev = s1[0].prev_updates
        u1, s1 = step1(g, s1)
        with standard_promotion():
            u2, s2 = step2(g, s2)
        assert_trees_close(s1, s2, rtol, where=f"step {t} state")
        if before is None:
            assert all(not np.any(x) for x in jax.tree.leaves(u2))
        else:
            assert_trees_close(u2, held(g, prev, before), rtol, where=f"step {t}")
        before = u1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"f_min": -3.0, "max_learning_rate": 0.02, "eps": 1e-3},
        {"f_min": 25.0, "variant": "sps+"},
        {"f_min": 25.0, "variant": "sps"},
    ],
    ids=["default", "capped", "sps+", "sps"],
)
def test_polyak_matches_optax(kwargs, dtype):
    """value= is an extra argument of update, which the generic runner does
    not pass. The loss is 0.5 * ||params||**2 (about 20 on the tree); step 5
    has a zero gradient. 20 steps."""
    params = random_tree(jax.random.key(1), dtype)
    grads = gradient_stream(jax.random.key(2), params, 20)
    grads[5] = jax.tree.map(jnp.zeros_like, grads[5])

    def extra(p):
        return {"value": 0.5 * sum(jnp.sum(x * x) for x in jax.tree.leaves(p))}

    s1, s2 = _cross_check(
        jgd.scale_by_polyak(**kwargs),
        optax.scale_by_polyak(**kwargs),
        dtype,
        extra,
        grads=grads,
    )
    _states_close(s1, s2, dtype)
    if kwargs.get("variant") is None:  # the optimizer: the block after sgd(1.0)
        s1, s2 = _cross_check(
            jgd.polyak_sgd(**kwargs),
            optax.polyak_sgd(**kwargs),
            dtype,
            extra,
            grads=grads,
        )
        _states_close(s1, s2, dtype)


@pytest.mark.parametrize("sched", [False, True])
def test_polyak_sgd_scaling_follows_the_documented_formula(sched, dtype):
    """KNOWN_DIFFERENCES['polyak_sgd scaling']: with scaling s, jgd is optax's
    documented s * min(gap / ||g||**2, max) (optax's blocks in that order),
    while optax.polyak_sgd divides an uncapped step by s."""
    s_jgd = lr(True, True) if sched else 2.5
    s_optax = lr(True, False) if sched else 2.5

    def extra(p):
        return {"value": 0.5 * sum(jnp.sum(x * x) for x in jax.tree.leaves(p))}

    documented = optax.chain(
        optax.scale_by_polyak(max_learning_rate=0.3), optax.sgd(s_optax)
    )
    s1, s2 = _cross_check(
        jgd.polyak_sgd(max_learning_rate=0.3, scaling=s_jgd), documented, dtype, extra
    )
    _states_close(s1, s2, dtype)
    # optax.polyak_sgd itself on a hand-sized case: w = [1, 2], f = 5, g = 2w.
    w = jnp.array([1.0, 2.0], dtype)
    ours, theirs = jgd.polyak_sgd(scaling=2.0), optax.polyak_sgd(scaling=2.0)
    u1, _ = ours.update(2 * w, ours.init(w), w, value=jnp.sum(w * w))
    with standard_promotion():
        u2, _ = theirs.update(2 * w, theirs.init(w), w, value=jnp.sum(w * w))
    np.testing.assert_allclose(u1, [-1.0, -2.0], rtol=1e-7)  # 2 * (5 / 20) * g
    np.testing.assert_allclose(u2, [-0.25, -0.5], rtol=1e-7)  # (5 / 80) * 2 * g


@pytest.mark.parametrize("how", ["int", "key", "raw_key", "none", "seed"])
def test_noisy_sgd_key_handling_matches_optax(how):
    """Every way of giving the key starts from optax's state, so the updates
    (test_noise_matches_optax) draw the same numbers."""
    key = jax.random.key(5) if how in ("key", "raw_key") else 5
    ours_key = jax.random.key_data(key) if how == "raw_key" else key
    if how == "none":
        ours = jgd.noisy_sgd(0.05, key=None)
        with pytest.warns(UserWarning, match="Specifying a key"):
            theirs = optax.noisy_sgd(0.05, key=None)
    elif how == "seed":
        with pytest.warns(DeprecationWarning):
            ours = jgd.noisy_sgd(0.05, seed=9)
        with pytest.warns(DeprecationWarning):
            theirs = optax.noisy_sgd(0.05, seed=9)
    else:
        ours = jgd.noisy_sgd(0.05, key=ours_key)
        theirs = optax.noisy_sgd(0.05, key=key)
    params = {"a": jnp.zeros(3)}
    s1, s2 = ours.init(params), theirs.init(params)
    k1, k2 = s1[0].rng_key, s2[0].rng_key
    assert k1.dtype == k2.dtype  # typed keys of the default implementation
    np.testing.assert_array_equal(jax.random.key_data(k1), jax.random.key_data(k2))


def test_noise_matches_optax(dtype):
    """The same key gives the same numbers; states agree (keys as key data).
    The learning rate is a schedule in float64, a constant in float32."""
    unwrap = optax.tree_utils.tree_unwrap_random_key_data
    sched = dtype == jnp.float64
    s1, s2 = _cross_check(
        jgd.noisy_sgd(lr(sched, True), key=jax.random.key(4)),
        optax.noisy_sgd(lr(sched, False), key=jax.random.key(4)),
        dtype,
    )
    _states_close(unwrap(s1), unwrap(s2), dtype)
    if dtype == jnp.float64:
        return  # the block in float32 only: each noise program is slow to compile
    # The building block alone, a schedule after it.
    s1, s2 = _cross_check(
        jgd.chain(
            jgd.add_noise(0.5, 0.0, key=3), jgd.scale_by_learning_rate(lr(True, True))
        ),
        optax.chain(
            optax.add_noise(0.5, 0.0, key=3),
            optax.scale_by_learning_rate(lr(True, False)),
        ),
        dtype,
        steps=10,
    )
    _states_close(unwrap(s1), unwrap(s2), dtype)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"reps_rel": 1e-2, "eps": 1e-4, "global_scale": -1.0},
        {"param_dtype": None},
        {"param_dtype": jnp.bfloat16, "global_scale": 0.5},
    ],
    ids=["default", "args", "param_dtype_none", "param_dtype_bf16"],
)
def test_distance_over_gradients_matches_optax(kwargs, dtype):
    """KNOWN_DIFFERENCES['scale_by_distance_over_gradients scalar leaves']:
    optax's scalar-leaf update has shape (1,); it is reshaped to the leaf's
    shape (the same number) before it is applied."""
    ours = jgd.chain(jgd.scale_by_distance_over_gradients(**kwargs), jgd.scale(-0.5))
    theirs = optax.chain(
        optax.scale_by_distance_over_gradients(**kwargs), optax.scale(-0.5)
    )
    params = random_tree(jax.random.key(1), dtype)
    grads = gradient_stream(jax.random.key(2), params, STEPS)
    h1, s1 = _run(ours, params, grads, contextlib.nullcontext)
    h2, s2 = _run(theirs, params, grads, _optax_broadcasts, reshape=True)
    rtol = TOL[dtype]
    for t, ((u1, p1), (u2, p2)) in enumerate(zip(h1, h2)):
        assert_trees_close(u1, u2, rtol, where=f"step {t} updates")
        assert_trees_close(p1, p2, rtol, where=f"step {t} params")
    _states_close(s1, s2, dtype)


def test_per_example_global_norm_clip_matches_optax(dtype):
    batch = {
        "w": random_tree(jax.random.key(3), dtype, {"a": (6, 3, 2), "b": (6,)}),
        "e": jnp.zeros((6, 0), dtype),
    }
    batch["w"]["b"] = batch["w"]["b"].at[2].set(0.0) * 0.1
    ours = jax.jit(jgd.per_example_global_norm_clip)
    theirs = jax.jit(optax.per_example_global_norm_clip)
    for clip in [0.0, 0.5, 2.0, float("inf")]:
        s1, n1 = ours(batch, clip)
        with standard_promotion():
            s2, n2 = theirs(batch, clip)
        assert_trees_close(s1, s2, TOL[dtype], where=f"clip {clip}")
        assert int(n1) == int(n2) and n1.dtype == n2.dtype
        assert all(
            a.dtype == b.dtype for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2))
        )


@pytest.mark.parametrize("axis", [0, 1, (0, 1), None])
def test_adaptive_grad_clip_axes_and_ranks_match_optax(axis):
    """Axes other than () need leaves that have them (the generic tree has a
    scalar); with axis=None the 4-D and 5-D kernels take their default units.
    In float32 (the CASES run both dtypes)."""
    dtype = jnp.float32
    shapes = {"m": (4, 3), "t": (2, 3, 2), "k": (2, 2, 3, 4), "c": (1, 2, 2, 3, 2)}
    params = random_tree(jax.random.key(1), dtype, shapes)
    grads = gradient_stream(jax.random.key(2), params, 3, scale=2.0)
    h1, _ = _run(
        jgd.adaptive_grad_clip(0.3, axis=axis), params, grads, contextlib.nullcontext
    )
    h2, _ = _run(
        optax.adaptive_grad_clip(0.3, axis=axis), params, grads, standard_promotion
    )
    for t, ((u1, _), (u2, _)) in enumerate(zip(h1, h2)):
        assert_trees_close(u1, u2, TOL[dtype], where=f"axis {axis} step {t}")


def test_adaptive_grad_clip_rank_6_needs_axis():
    p = jnp.ones((2, 2, 1, 1, 1, 2))
    tx = jgd.adaptive_grad_clip(0.1)
    with pytest.raises(
        ValueError,
        match=r"^jgd\.adaptive_grad_clip: a leaf of shape \(2, 2, 1, 1, 1, 2\) has no "
        r"default units \(ranks 0 to 5 have\); pass axis=",
    ):
        tx.update(p, tx.init(p), p)
    u, _ = jgd.adaptive_grad_clip(0.1, axis=[0, 5]).update(p, tx.init(p), p)
    assert u.shape == p.shape


def test_complex_leaves_match_optax():
    """|g|**2 is (conj(g) * g).real, as optax, in every norm taken here."""
    key = jax.random.key(4)
    re, im = random_tree(key), random_tree(jax.random.key(5))
    g = jax.tree.map(lambda a, b: jax.lax.complex(a, b), re, im)
    p = jax.tree.map(lambda a: a * (1 - 2j), g)
    for ours, theirs, kw in [
        (jgd.normalize_by_update_norm(-0.5), optax.normalize_by_update_norm(-0.5), {}),
        (jgd.clip_by_block_rms(0.7), optax.clip_by_block_rms(0.7), {}),
        (jgd.adaptive_grad_clip(0.2), optax.adaptive_grad_clip(0.2), {}),
        (jgd.scale_by_polyak(), optax.scale_by_polyak(), {"value": jnp.float32(3.0)}),
    ]:
        u1, _ = jax.jit(ours.update)(g, ours.init(p), p, **kw)
        with standard_promotion():
            u2, _ = jax.jit(theirs.update)(g, theirs.init(p), p, **kw)
        assert_trees_close(jax.tree.map(jnp.real, u1), jax.tree.map(jnp.real, u2), 1e-6)
        assert_trees_close(jax.tree.map(jnp.imag, u1), jax.tree.map(jnp.imag, u2), 1e-6)


# --------------------------------------------------------------------------
# Conformance for the optimizers tests/test_conformance.py cannot take.
# --------------------------------------------------------------------------

# name -> (factory of the learning rate, lr on the bowl, lr on Rosenbrock,
# steps on Rosenbrock). Plain SGD-speed methods take gd's 20000 steps (a scan
# of a 2-vector: cheap). polyak_sgd's "learning rate" is its scaling.
PRIVATE_CONFORMANCE = {
    "noisy_sgd": (lambda lr: jgd.noisy_sgd(lr, key=0), 0.5, 1e-3, 20000),
    "polyak_sgd": (lambda lr: jgd.polyak_sgd(scaling=lr), 1.0, 1.0, 5000),
    "optimistic_gradient_descent": (
        lambda lr: jgd.optimistic_gradient_descent(lr, beta=0.5),
        0.3,
        1e-3,
        20000,
    ),
    "optimistic_adam_v2": (lambda lr: jgd.optimistic_adam_v2(lr), 0.05, 0.01, 5000),
}
NAMES = sorted(PRIVATE_CONFORMANCE)
STATE_DTYPES = (jnp.int32, jnp.bool_)  # and the key of noisy_sgd


def _descend(opt, f, x0, steps):
    def body(carry, _):
        x, s = carry
        v, g = jax.value_and_grad(f)(x)
        u, s = opt.update(g, s, x, value=v)  # others ignore value=
        return (jgd.apply_updates(x, u), s), None

    run = jax.jit(lambda x: jax.lax.scan(body, (x, opt.init(x)), None, length=steps))
    return run(x0)[0][0]


@pytest.mark.parametrize("name", NAMES)
def test_private_conformance_converges(name):
    make, lr_bowl, lr_rosen, steps = PRIVATE_CONFORMANCE[name]
    x0 = random_tree(jax.random.key(0), scale=2.0)
    x = _descend(make(lr_bowl), bowl, x0, 1000)
    assert float(bowl(x)) < 1e-3 * float(bowl(x0))
    assert max(float(jnp.max(jnp.abs(v), initial=0)) for v in jax.tree.leaves(x)) < 0.05
    x = _descend(make(lr_rosen), rosenbrock, jnp.array([-1.2, 1.0]), steps)
    assert float(rosenbrock(x)) < 1e-3
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=0.06)


@pytest.mark.parametrize("dt", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize("name", NAMES)
def test_private_conformance_dtypes_and_no_retrace(name, dt, request):
    if dt == jnp.float64:
        request.getfixturevalue("x64")
    make, lr_, _, _ = PRIVATE_CONFORMANCE[name]
    opt = make(lr_)
    params = random_tree(jax.random.key(0), dt)
    state = opt.init(params)
    structure = (
        jax.tree.structure(state),
        [(x.shape, x.dtype) for x in jax.tree.leaves(state)],
    )
    for leaf in jax.tree.leaves(state):
        key = jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)
        assert key or leaf.dtype in (dt, *STATE_DTYPES), leaf.dtype
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params, value=jnp.asarray(1.0, dt))
        return jgd.apply_updates(params, updates), updates, state

    for i in range(3):
        params, updates, state = step(
            params, state, random_tree(jax.random.key(i + 1), dt)
        )
        now = (
            jax.tree.structure(state),
            [(x.shape, x.dtype) for x in jax.tree.leaves(state)],
        )
        assert now == structure
        for tree in (updates, params):
            assert all(x.dtype == dt for x in jax.tree.leaves(tree))
            assert all(
                bool(jnp.all(jnp.isfinite(x.astype(jnp.float32))))
                for x in jax.tree.leaves(tree)
            )


@pytest.mark.parametrize("name", NAMES)
def test_private_conformance_builds_inside_jit(name):
    make, lr_, _, _ = PRIVATE_CONFORMANCE[name]
    params, grads = random_tree(jax.random.key(0)), random_tree(jax.random.key(1))

    def step(lr_):
        opt = make(lr_)
        return opt.update(grads, opt.init(params), params, value=jnp.float32(2.0))[0]

    for a, b in zip(jax.tree.leaves(jax.jit(step)(lr_)), jax.tree.leaves(step(lr_))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


# --------------------------------------------------------------------------
# Static functions, dtypes, packing.
# --------------------------------------------------------------------------


def test_stateless_function_is_static():
    """The same function reuses the compiled step; a new one retraces."""
    traces = []

    def step(tx, g):
        traces.append(1)
        return tx.update(g, tx.init(g))[0]

    step = jax.jit(step)
    f = lambda u, p: jax.tree.map(lambda x: 2 * x, u)
    g = {"a": jnp.ones(2)}
    step(jgd.stateless(f), g)
    step(jgd.stateless(f), g)
    assert len(traces) == 1
    step(jgd.stateless(lambda u, p: u), g)
    assert len(traces) == 2
    # Without params the tree-mapped function gets None.
    seen = []
    tx = jgd.stateless_with_tree_map(lambda u, p: seen.append(p) or u)
    tx.update(g, tx.init(g))
    assert seen == [None]


BLOCKS = {
    "scale_by_sign": lambda: jgd.scale_by_sign(),
    "scale_by_rprop": lambda: jgd.scale_by_rprop(0.1),
    "scale_by_optimistic_gradient": lambda: jgd.scale_by_optimistic_gradient(),
    "scale_by_polyak": lambda: jgd.scale_by_polyak(),
    "scale_by_schedule": lambda: jgd.scale_by_schedule(lambda c: 0.5),
    "scale_by_distance_over_gradients": lambda: jgd.scale_by_distance_over_gradients(),
    "normalize_by_update_norm": lambda: jgd.normalize_by_update_norm(),
    "add_noise": lambda: jgd.add_noise(0.01, 0.55, key=0),
    "ema": lambda: jgd.ema(0.9),
    "centralize": lambda: jgd.centralize(),
    "keep_params_nonnegative": lambda: jgd.keep_params_nonnegative(),
    "zero_nans": lambda: jgd.zero_nans(),
    "set_to_zero": lambda: jgd.set_to_zero(),
    "stateless": lambda: jgd.stateless(lambda u, p: u),
    "stateless_with_tree_map": lambda: jgd.stateless_with_tree_map(lambda u, p: u),
    "clip_by_block_rms": lambda: jgd.clip_by_block_rms(1.0),
    "adaptive_grad_clip": lambda: jgd.adaptive_grad_clip(0.1),
}
PACKABLE = {
    "scale_by_sign",
    "scale_by_rprop",
    "scale_by_optimistic_gradient",
    "scale_by_polyak",  # one global sum
    "scale_by_schedule",
    "normalize_by_update_norm",  # one global norm
    "ema",
    "keep_params_nonnegative",
    "zero_nans",
    "set_to_zero",
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_blocks_keep_bf16_and_say_whether_they_pack(name):
    tx = BLOCKS[name]()
    assert type(tx).packable == (name in PACKABLE)
    params = jax.tree.map(jnp.abs, random_tree(jax.random.key(0), jnp.bfloat16))
    state = tx.init(params)
    u, new = jax.jit(lambda g, s, p: tx.update(g, s, p, value=jnp.float32(1.0)))(
        random_tree(jax.random.key(1), jnp.bfloat16), state, params
    )
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
    assert [x.dtype for x in jax.tree.leaves(new)] == [
        x.dtype for x in jax.tree.leaves(state)
    ]


def test_which_optimizers_pack():
    """Element-wise recipes pack in jgd.train; noise drawn per leaf does not."""
    assert needs_leaves(jgd.sign_sgd(0.1)) is None
    assert needs_leaves(jgd.signum(0.1)) is None
    assert needs_leaves(jgd.rprop(0.1)) is None
    assert needs_leaves(jgd.optimistic_adam_v2(0.1)) is None
    assert needs_leaves(jgd.polyak_sgd()) is None
    assert needs_leaves(jgd.noisy_sgd(0.1, key=0)) == "AddNoise"


SIGNATURES = [
    "sign_sgd",
    "signum",
    "noisy_sgd",
    "polyak_sgd",
    "rprop",
    "optimistic_gradient_descent",
    "optimistic_adam_v2",
    *sorted(BLOCKS),
    "per_example_global_norm_clip",
]


@pytest.mark.parametrize("name", SIGNATURES)
def test_signature_matches_optax(name):
    """Argument names, order, kinds and defaults are optax 0.2.8's."""

    def describe(fn):
        return [
            (p.name, p.kind, p.default)
            for p in inspect.signature(fn).parameters.values()
        ]

    assert describe(getattr(jgd, name)) == describe(getattr(optax, name))


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_state_class_and_fields_match_optax(name):
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}
    ours = BLOCKS[name]().init(params)
    args = {
        "scale_by_rprop": (0.1,),
        "scale_by_schedule": (lambda c: 0.5,),
        "add_noise": (0.01, 0.55, 0),
        "ema": (0.9,),
        "stateless": (lambda u, p: u,),
        "stateless_with_tree_map": (lambda u, p: u,),
        "clip_by_block_rms": (1.0,),
        "adaptive_grad_clip": (0.1,),
    }.get(name, ())
    theirs = getattr(optax, name)(*args).init(params)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours._fields == theirs._fields
