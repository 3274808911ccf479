"""Golden numbers for the per-leaf optimizers, and the cross-checks that the
shared runner cannot make.

NumPy recomputes the first two steps of lamb, lars, fromage, adafactor (its
factored path), sm3 and novograd on tiny inputs, independent of optax. optax
fails on sm3's scalar leaf, so sm3 is cross-checked on a tree without one
(KNOWN_DIFFERENCES['sm3 on a scalar leaf']); adafactor's decay_offset needs a
restored step count; complex params and a mask held as static configuration
(the optimizer a jit argument) are checked here too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from tests.catalogue.per_leaf import cross_check
from tests.helpers import lr, random_tree, standard_promotion

GOLDEN_RTOL = 1e-10  # NumPy and XLA order a few float64 operations differently

W = np.array([0.5, -1.5])
G1 = np.array([0.3, 0.4])
G2 = np.array([-0.2, 0.1])


def _steps(opt, w, grads):
    """Run ``opt`` on ``w`` (float64) over ``grads``; the params after each."""
    w = jnp.asarray(w, jnp.float64)
    state = opt.init(w)
    out = []
    for g in grads:
        u, state = opt.update(jnp.asarray(g, jnp.float64), state, w)
        w = jgd.apply_updates(w, u)
        out.append(np.asarray(w))
    return out


def _check(opt, w, grads, expected):
    for t, (got, want) in enumerate(zip(_steps(opt, w, grads), expected)):
        np.testing.assert_allclose(got, want, rtol=GOLDEN_RTOL, err_msg=f"step {t}")


def _norm(x):
    return np.sqrt(np.sum(x * x))


# --------------------------------------------------------------------------
# Golden numbers.
# --------------------------------------------------------------------------


def test_lamb_golden(x64):
    lr_, b1, b2, eps, wd = 0.1, 0.9, 0.999, 1e-6, 0.01
    w, m, v, want = W.copy(), 0.0, 0.0, []
    for t, g in enumerate([G1, G2], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        d = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * w
        w = w - lr_ * _norm(w) / _norm(d) * d
        want.append(w)
    _check(jgd.lamb(lr_, weight_decay=wd), W, [G1, G2], want)


def test_lars_golden(x64):
    lr_, wd, tc, mom = 0.5, 0.1, 0.01, 0.9
    w, trace, want = W.copy(), 0.0, []
    for g in [G1, G2]:
        d = g + wd * w
        d = tc * _norm(w) / _norm(d) * d
        trace = -lr_ * d + mom * trace
        w = w + trace
        want.append(w)
    opt = jgd.lars(lr_, weight_decay=wd, trust_coefficient=tc, momentum=mom)
    _check(opt, W, [G1, G2], want)


def test_fromage_golden(x64):
    lr_ = 0.2
    mult = 1 / np.sqrt(1 + lr_**2)
    w, want = W.copy(), []
    for g in [G1, G2]:
        w = mult * (w - lr_ * _norm(w) / _norm(g) * g)
        want.append(w)
    _check(jgd.fromage(lr_), W, [G1, G2], want)


def test_adafactor_factored_golden(x64):
    """A 2x3 matrix, factored (rows: axis 0, columns: axis 1), with update
    clipping, relative steps and momentum."""
    w0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    grads = [
        np.array([[0.3, -0.1, 0.2], [0.05, 0.4, -0.6]]),
        np.array([[-0.2, 0.3, 0.1], [0.7, -0.1, 0.2]]),
    ]
    lr_, eps, mom = 0.1, 1e-30, 0.5
    w, r, c, m, want = w0.copy(), 0.0, 0.0, 0.0, []
    for t, g in enumerate(grads, start=1):
        # The decay 1 - t**-0.8 is float32 in optax and jgd.
        b = np.float64(np.float32(1) - np.float32(t) ** np.float32(-0.8))
        g2 = g * g + eps
        r = b * r + (1 - b) * g2.mean(axis=1)
        c = b * c + (1 - b) * g2.mean(axis=0)
        d = g * (r / r.mean())[:, None] ** -0.5 * c[None, :] ** -0.5
        d = d / max(1.0, np.sqrt(np.mean(d * d)) / 1.0)
        d = lr_ * d * max(np.sqrt(np.mean(w * w)), 1e-3)
        m = mom * m + (1 - mom) * d
        w = w - m
        want.append(w)
    opt = jgd.adafactor(
        lr_, min_dim_size_to_factor=2, momentum=mom, dtype_momentum=None
    )
    _check(opt, w0, grads, want)


def test_adafactor_unfactored_golden(x64):
    lr_ = 0.1
    w, v, want = W.copy(), 0.0, []
    for t, g in enumerate([G1, G2], start=1):
        b = np.float64(np.float32(1) - np.float32(t) ** np.float32(-0.8))
        v = b * v + (1 - b) * (g * g + 1e-30)
        d = g / np.sqrt(v)
        d = d / max(1.0, np.sqrt(np.mean(d * d)))
        w = w - lr_ * d * np.sqrt(np.mean(w * w))
        want.append(w)
    _check(jgd.adafactor(lr_), W, [G1, G2], want)


def test_sm3_golden(x64):
    w0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    grads = [np.array([[0.3, -0.1], [0.2, 0.4]]), np.array([[-0.5, 0.2], [0.1, 0.3]])]
    lr_, b1, eps = 0.1, 0.9, 1e-8
    w, rows, cols, nu, want = w0.copy(), np.zeros(2), np.zeros(2), 0.0, []
    for g in grads:
        acc = g * g + np.minimum(rows[:, None], cols[None, :])
        s = np.where(acc > 0, g / np.sqrt(acc + eps), 0.0)
        nu = (1 - b1) * s + b1 * nu
        rows, cols = acc.max(axis=1), acc.max(axis=0)
        w = w - lr_ * nu
        want.append(w)
    _check(jgd.sm3(lr_, momentum=b1), w0, grads, want)


def test_novograd_golden(x64):
    lr_, b1, b2, eps, wd = 0.1, 0.9, 0.25, 1e-6, 0.01
    w, m, v, want = W.copy(), 0.0, 0.0, []
    for t, g in enumerate([G1, G2], start=1):
        v = _norm(g) ** 2 if t == 1 else b2 * v + (1 - b2) * _norm(g) ** 2
        d = g / (np.sqrt(v) + eps) + wd * w
        m = d if t == 1 else b1 * m + d
        w = w - lr_ * m
        want.append(w)
    _check(jgd.novograd(lr_, weight_decay=wd), W, [G1, G2], want)


# --------------------------------------------------------------------------
# SM3: optax fails on a scalar leaf.
# --------------------------------------------------------------------------

# tests.helpers.TREE_SHAPES without its scalar leaf.
NO_SCALAR = {
    "layers": [{"w": (3, 4), "b": (4,)}, ((2, 3, 2), (0,))],
    "head": {"v": (7,)},
}


def test_optax_sm3_fails_on_a_scalar_leaf():
    """Why sm3 is not in CASES (KNOWN_DIFFERENCES['sm3 on a scalar leaf'])."""
    opt = optax.sm3(0.1)
    p = {"s": jnp.array(1.0)}
    with standard_promotion(), pytest.raises(IndexError):
        opt.update({"s": jnp.array(0.5)}, opt.init(p), p)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "name,ours,theirs",
    [
        ("sm3", lambda: jgd.sm3(0.05), lambda: optax.sm3(0.05)),
        ("sm3_momentum", lambda: jgd.sm3(0.05, 0.5), lambda: optax.sm3(0.05, 0.5)),
        ("scale_by_sm3", lambda: jgd.scale_by_sm3(), lambda: optax.scale_by_sm3()),
        (
            "scale_by_sm3_flags",
            lambda: jgd.scale_by_sm3(0.5, 0.9, 1e-3),
            lambda: optax.scale_by_sm3(0.5, 0.9, 1e-3),
        ),
    ],
)
def test_sm3_matches_optax_without_scalar_leaf(name, ours, theirs, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    params = random_tree(jax.random.key(1), jnp.dtype(dtype), NO_SCALAR)
    cross_check(ours(), theirs(), params, name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sm3_schedule_matches_optax_chain(dtype, request):
    """KNOWN_DIFFERENCES['sm3 learning-rate schedule']: optax.sm3 takes no
    schedule; jgd.sm3's equals optax's blocks chained with one."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    params = random_tree(jax.random.key(1), jnp.dtype(dtype), NO_SCALAR)
    theirs = optax.chain(
        optax.scale_by_sm3(0.9), optax.scale_by_learning_rate(lr(True, False))
    )
    cross_check(jgd.sm3(lr(True, True)), theirs, params, "sm3-sched")


def test_sm3_scalar_leaf_is_a_vector():
    """KNOWN_DIFFERENCES['sm3 on a scalar leaf']: a 0-d leaf takes the same
    steps as the same number held as shape (1,)."""
    opt = jgd.sm3(0.1)
    s, v = jnp.array(0.7), jnp.array([0.7])
    ss, sv = opt.init(s), opt.init(v)
    assert [x.shape for x in ss[0].mu] == [()]
    for g in [0.5, -0.25, 1.0]:
        us, ss = opt.update(jnp.array(g), ss, s)
        uv, sv = opt.update(jnp.array([g]), sv, v)
        s, v = jgd.apply_updates(s, us), jgd.apply_updates(v, uv)
        np.testing.assert_array_equal(np.asarray(s)[None], np.asarray(v))


def test_sm3_empty_matrix_leaf():
    """A zero-size matrix (no maximum to take; optax fails) keeps its shapes."""
    opt = jgd.sm3(0.1)
    p = {"e": jnp.zeros((0, 3)), "w": jnp.ones((2, 3))}
    state = opt.init(p)
    u, state = jax.jit(opt.update)(
        {"e": jnp.zeros((0, 3)), "w": jnp.ones((2, 3))}, state, p
    )
    assert u["e"].shape == (0, 3)
    assert [m.shape for m in state[0].mu["e"]] == [(0,), (3,)]
    np.testing.assert_array_equal(state[0].mu["e"][1], np.zeros(3))


# --------------------------------------------------------------------------
# Adafactor's decay_offset, complex params, static masks.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adafactor_decay_offset_from_a_restored_count(dtype, request):
    """decay_offset counts the decay from a fine-tuning start: it only makes
    sense with a count past it (fresh, 0 - offset gives NaN in optax too)."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    params = random_tree(jax.random.key(1), jnp.dtype(dtype))
    kw: dict = {"decay_offset": 5, "min_dim_size_to_factor": 3}
    ours, theirs = jgd.adafactor(0.05, **kw), optax.adafactor(0.05, **kw)

    def restored(opt):
        class Restored:
            def init(self, p):
                s = opt.init(p)
                return (s[0]._replace(count=jnp.asarray(12, jnp.int32)),) + s[1:]

            def update(self, g, s, p=None):
                return opt.update(g, s, p)

        return Restored()

    cross_check(restored(ours), restored(theirs), params, "adafactor-offset")


COMPLEX_CASES = [
    (
        "scale_by_trust_ratio",
        lambda: jgd.scale_by_trust_ratio(0.1, 0.5, 0.01),
        lambda: optax.scale_by_trust_ratio(0.1, 0.5, 0.01),
    ),
    (
        "scale_by_param_block_rms",
        lambda: jgd.scale_by_param_block_rms(),
        lambda: optax.scale_by_param_block_rms(),
    ),
    (
        "scale_by_param_block_norm",
        lambda: jgd.scale_by_param_block_norm(),
        lambda: optax.scale_by_param_block_norm(),
    ),
    (
        "scale_by_factored_rms",
        lambda: jgd.scale_by_factored_rms(min_dim_size_to_factor=2),
        lambda: optax.scale_by_factored_rms(min_dim_size_to_factor=2),
    ),
    (
        "adafactor",
        lambda: jgd.adafactor(
            0.05, min_dim_size_to_factor=3, momentum=0.9, dtype_momentum=None
        ),
        lambda: optax.adafactor(
            0.05, min_dim_size_to_factor=3, momentum=0.9, dtype_momentum=None
        ),
    ),
    ("novograd", lambda: jgd.novograd(0.05), lambda: optax.novograd(0.05)),
    ("fromage", lambda: jgd.fromage(0.05), lambda: optax.fromage(0.05)),
]


@pytest.mark.parametrize(
    "name,ours,theirs", COMPLEX_CASES, ids=[c[0] for c in COMPLEX_CASES]
)
def test_complex_params_match_optax(name, ours, theirs):
    """Norms and second moments of complex leaves are real (|g|**2)."""
    params = random_tree(jax.random.key(1), jnp.complex64, NO_SCALAR)
    cross_check(ours(), theirs(), params, name, steps=10)


def test_sm3_rejects_complex_params_as_optax():
    with pytest.raises(ValueError, match="complex"):
        optax.sm3(0.1).init({"w": jnp.zeros(2, jnp.complex64)})


def test_tree_masks_are_static_and_hashable():
    """A mask tree is static configuration that jit can hash: with the
    optimizer a jit argument (as jgd.train passes it), an equal mask built
    again does not retrace."""
    params = random_tree(jax.random.key(0))
    mask = jax.tree.map(lambda p: p.ndim >= 2, params)
    traces = []

    @jax.jit
    def step(opt, g, s, p):
        traces.append(1)
        return opt.update(g, s, p)

    for _ in range(2):
        for make in [
            lambda m: jgd.lamb(0.1, weight_decay=0.1, mask=m),
            lambda m: jgd.lars(0.1, weight_decay_mask=m, trust_ratio_mask=m),
            lambda m: jgd.adafactor(0.1, weight_decay_rate=0.1, weight_decay_mask=m),
        ]:
            opt = make(jax.tree.map(bool, mask))
            step(opt, params, opt.init(params), params)
    assert len(traces) == 3


def test_optimizers_print():
    assert repr(jgd.lamb(0.1, mask={"w": True, "b": False})) == (
        "Lamb(learning_rate=0.1, b1=0.9, b2=0.999, eps=1e-06, eps_root=0.0, "
        "weight_decay=0.0, mask={'b': False, 'w': True})"
    )


def test_fromage_schedule_is_optax_schedule_golden(x64):
    """fromage with a schedule: learning rate and shrink follow the schedule
    at each step (optax's lambdas, recomputed here)."""
    sched = jgd.schedules.linear_schedule(0.3, 0.1, 2)
    w, want = W.copy(), []
    for t, g in enumerate([G1, G2]):
        lr_ = 0.3 - 0.1 * t
        mult = 1 / np.sqrt(1 + lr_**2)
        w = mult * (w - lr_ * _norm(w) / _norm(g) * g)
        want.append(w)
    _check(jgd.fromage(sched), W, [G1, G2], want)


# --------------------------------------------------------------------------
# Fromage's shrink with a schedule (KNOWN_DIFFERENCES['fromage shrink']).
# --------------------------------------------------------------------------


def _optax_fromage_exact_shrink(schedule, min_norm=1e-6):
    """optax.fromage's recipe for a schedule, but with mult - 1 written
    without cancellation, as jgd writes it."""

    def mult(c):
        return 1 / (1 + schedule(c) ** 2) ** 0.5

    def shrink(c):
        x = schedule(c) ** 2
        root = (1 + x) ** 0.5
        return -x / (root * (1 + root))

    return optax.chain(
        optax.scale_by_trust_ratio(min_norm),
        optax.scale_by_learning_rate(lambda c: mult(c) * schedule(c)),
        optax.add_decayed_weights(shrink),
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fromage_schedule_is_optax_recipe_with_exact_shrink(dtype, request):
    """jgd.fromage(schedule) is optax's chain, the shrink alone rewritten."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    params = random_tree(jax.random.key(1), jnp.dtype(dtype))
    theirs = _optax_fromage_exact_shrink(lr(True, False))
    cross_check(jgd.fromage(lr(True, True)), theirs, params, "fromage-sched")


@pytest.mark.parametrize("rate", [0.01, 0.003])
def test_fromage_shrink_float32_golden(rate):
    """One float32 step against the float64 formula: jgd's update is right
    to float32 rounding in every element; optax's mult - 1 cancels, and the
    elements where the shrink dominates are off by ~1e-4 and more."""
    rng = np.random.default_rng(0)
    p = jnp.asarray(rng.normal(size=64), jnp.float32)
    g = jnp.asarray(rng.normal(size=64), jnp.float32)
    ours = jgd.fromage(jgd.schedules.linear_schedule(rate, rate, 10))
    theirs = optax.fromage(optax.schedules.linear_schedule(rate, rate, 10))
    u_ours, _ = ours.update(g, ours.init(p), p)
    with standard_promotion():
        u_theirs, _ = theirs.update(g, theirs.init(p), p)
    p64, g64, r = np.float64(p), np.float64(g), np.float64(np.float32(rate))
    shrink = np.expm1(-0.5 * np.log1p(r * r))  # 1 / sqrt(1 + r**2) - 1
    want = -r * (1 + shrink) * _norm(p64) / _norm(g64) * g64 + shrink * p64

    def worst(u):
        return np.max(np.abs(np.float64(u) - want) / np.abs(want))

    assert worst(u_ours) < 5e-7
    assert worst(u_theirs) > 1e-4
