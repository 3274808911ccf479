"""jgd.contrib's adopt, ademamix, simplified_ademamix, cocob, mechanize, momo
and sophia: the optax cross-checks the shared runner cannot do (momo's
``value=`` and sophia's ``obj_fn=``), golden first steps recomputed in NumPy
without optax, and the known differences (tests/catalogue/contrib_b.py).
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import schedules as js
from tests.helpers import (
    TOL,
    assert_trees_close,
    decay_mask,
    f64_count,
    gradient_stream,
    random_tree,
    standard_promotion,
)

C = jgd.contrib
OC = optax.contrib
STEPS = 50


# --------------------------------------------------------------------------
# Cross-checks with extra update arguments, step by step as test_vs_optax.
# --------------------------------------------------------------------------


def _objective(p):
    """A loss with a dense Hessian per leaf (so Hutchinson's random signs
    matter) that is constant (so it does not amplify rounding): per leaf,
    k/2 |p|^2 + (sum p)^2 / 20 with k the leaf's position."""
    total = jnp.zeros([], jax.tree.leaves(p)[0].dtype)
    for k, x in enumerate(jax.tree.leaves(p), start=1):
        total = total + k / 2 * jnp.sum(jnp.square(x)) + jnp.square(jnp.sum(x)) / 20
    return total


def _lr_schedule(jgd_side):
    if jgd_side:
        return js.warmup_cosine_decay_schedule(0.0, 0.5, 10, 40, end_value=0.05)
    return f64_count(
        optax.schedules.warmup_cosine_decay_schedule(0.0, 0.5, 10, 40, end_value=0.05)
    )


# name -> (jgd factory, optax factory, extra argument kind)
EXTRA_CASES = {
    "momo": (lambda: C.momo(), lambda: OC.momo(), "value"),
    "momo_args": (
        lambda: C.momo(0.5, 0.8, 0.2, 0.01, adapt_lower_bound=True),
        lambda: OC.momo(0.5, 0.8, 0.2, 0.01, adapt_lower_bound=True),
        "value",
    ),
    "momo_schedule": (
        lambda: C.momo(_lr_schedule(True), weight_decay=0.05, adapt_lower_bound=True),
        lambda: OC.momo(_lr_schedule(False), weight_decay=0.05, adapt_lower_bound=True),
        "value",
    ),
    "momo_adam": (lambda: C.momo_adam(), lambda: OC.momo_adam(), "value"),
    "momo_adam_args": (
        lambda: C.momo_adam(0.05, 0.8, 0.99, 1e-6, 0.1, 0.01, adapt_lower_bound=True),
        lambda: OC.momo_adam(0.05, 0.8, 0.99, 1e-6, 0.1, 0.01, adapt_lower_bound=True),
        "value",
    ),
    "momo_adam_schedule": (
        lambda: C.momo_adam(_lr_schedule(True), weight_decay=0.1),
        lambda: OC.momo_adam(_lr_schedule(False), weight_decay=0.1),
        "value",
    ),
    "sophia": (lambda: C.sophia(0.05), lambda: OC.sophia(0.05), "obj_fn"),
    "sophia_args": (
        lambda: C.sophia(
            0.05,
            b1=0.9,
            b2=0.95,
            eps=1e-6,
            weight_decay=0.01,
            weight_decay_mask=decay_mask,
            gamma=0.05,
            clip_threshold=None,
            update_interval=3,
            hessian_diagonal_fn=C.hutchinson_estimator_diag_hessian(
                jax.random.PRNGKey(7)
            ),
            mu_dtype=jnp.bfloat16,
        ),
        lambda: OC.sophia(
            0.05,
            b1=0.9,
            b2=0.95,
            eps=1e-6,
            weight_decay=0.01,
            weight_decay_mask=decay_mask,
            gamma=0.05,
            clip_threshold=None,
            update_interval=3,
            hessian_diagonal_fn=OC.hutchinson_estimator_diag_hessian(
                jax.random.PRNGKey(7)
            ),
            mu_dtype=jnp.bfloat16,
        ),
        "obj_fn",
    ),
    "sophia_schedule_clip": (
        lambda: C.sophia(
            _lr_schedule(True), gamma=1.0, clip_threshold=0.5, update_interval=4
        ),
        lambda: OC.sophia(
            _lr_schedule(False), gamma=1.0, clip_threshold=0.5, update_interval=4
        ),
        "obj_fn",
    ),
    # jgd's sophia around optax's estimator: extra arguments reach it.
    "sophia_optax_estimator": (
        lambda: C.sophia(
            0.05,
            update_interval=2,
            hessian_diagonal_fn=OC.hutchinson_estimator_diag_hessian(),
        ),
        lambda: OC.sophia(0.05, update_interval=2),
        "obj_fn",
    ),
    "hutchinson_estimator_diag_hessian": (
        lambda: C.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3)),
        lambda: OC.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3)),
        "obj_fn",
    ),
}


def _run(opt, params, grads, values, kind, promotion):
    if kind == "value":
        step = jax.jit(lambda g, s, p, v: opt.update(g, s, p, value=v))
    else:
        step = jax.jit(lambda g, s, p, v: opt.update(g, s, p, obj_fn=_objective))
    state = opt.init(params)
    history = []
    for g, v in zip(grads, values):
        with promotion():
            updates, state = step(g, state, params, v)
        params = jgd.apply_updates(params, updates)
        history.append((updates, params))
    return history, state


def _cross_check(name, dtype):
    make_jgd, make_optax, kind = EXTRA_CASES[name]
    params = random_tree(jax.random.key(1), dtype)
    grads = gradient_stream(jax.random.key(2), params, STEPS)
    # Loss values to go with the gradient stream, positive as losses are.
    values = jax.random.uniform(jax.random.key(3), (STEPS,), dtype, 0.5, 3.0)
    ours, s_ours = _run(make_jgd(), params, grads, values, kind, contextlib.nullcontext)
    theirs, s_theirs = _run(
        make_optax(), params, grads, values, kind, standard_promotion
    )
    rtol = TOL[dtype]
    for t, ((u1, p1), (u2, p2)) in enumerate(zip(ours, theirs)):
        assert_trees_close(u1, u2, rtol, where=f"{name} step {t} updates")
        assert_trees_close(p1, p2, rtol, where=f"{name} step {t} params")
    assert_trees_close(s_ours, s_theirs, rtol, where=f"{name} final state")
    for a, b in zip(jax.tree.leaves(s_ours), jax.tree.leaves(s_theirs)):
        assert a.dtype == b.dtype


# CI runs, as tests/test_vs_optax.py does for the catalogue, each method with
# its defaults and a scheduled learning rate (momo reads it inside its own
# math) in float32; the flag variants and float64 (the goldens below are
# float64) run with ``-m slow``.
IN_CI = {
    "momo",
    "momo_schedule",
    "momo_adam",
    "momo_adam_schedule",
    "sophia",
    "sophia_optax_estimator",
    "hutchinson_estimator_diag_hessian",
}


def _extra_params(in_ci):
    return [
        pytest.param(n, marks=() if in_ci(n) else pytest.mark.slow)
        for n in sorted(EXTRA_CASES)
    ]


@pytest.mark.parametrize("name", _extra_params(lambda n: n in IN_CI))
def test_extra_args_match_optax_float32(name):
    _cross_check(name, jnp.float32)


@pytest.mark.parametrize("name", _extra_params(lambda n: False))
def test_extra_args_match_optax_float64(name, x64):
    _cross_check(name, jnp.float64)


# --------------------------------------------------------------------------
# Golden numbers: the first steps recomputed in NumPy (float64), no optax.
# --------------------------------------------------------------------------

W0 = np.array([1.0, -2.0])
GRADS = [np.array([0.5, -2.0]), np.array([1.5, 1.0]), np.array([4.0, -0.1])]


def _jgd_steps(opt, w, grads, **extra):
    """Params after each step of ``opt`` fed ``grads`` (extra: functions of
    the params giving extra update arguments)."""
    w = jnp.asarray(w)
    state = opt.init(w)
    out = []
    for g in grads:
        kw = {k: f(w) for k, f in extra.items()}
        u, state = opt.update(jnp.asarray(g), state, w, **kw)
        w = jgd.apply_updates(w, u)
        out.append(np.asarray(w))
    return out


def _close(got, want):
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_adopt_golden(x64, nesterov):
    lr, b1, b2, eps = 0.1, 0.9, 0.9999, 1e-6
    w, mu, nu, want = W0.copy(), np.zeros(2), np.zeros(2), []
    for c, g in enumerate(GRADS):
        b1_, b2_ = (b1, b2) if c > 0 else (1.0, 0.0)
        x = np.clip(g / np.maximum(np.sqrt(nu), eps), -(c**0.25), c**0.25)
        nu = b2_ * nu + (1 - b2_) * g**2
        mu = b1_ * mu + (1 - b1_) * x
        step = b1_ * mu + (1 - b1_) * x if nesterov else mu
        w = w - lr * step
        want.append(w)
    _close(_jgd_steps(C.adopt(lr, nesterov=nesterov), W0, GRADS), want)
    # The first step moves nothing; the second is clipped at 1**0.25 = 1.
    np.testing.assert_array_equal(want[0], W0)


def test_ademamix_golden(x64):
    lr, b1, b2, b3, alpha, eps, wd = 0.1, 0.9, 0.999, 0.99, 5.0, 1e-8, 0.01
    w, m1, m2, nu, want = W0.copy(), np.zeros(2), np.zeros(2), np.zeros(2), []
    for t, g in enumerate(GRADS, start=1):
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b3 * m2 + (1 - b3) * g
        nu = b2 * nu + (1 - b2) * g**2
        d = (m1 / (1 - b1**t) + alpha * m2) / (np.sqrt(nu / (1 - b2**t)) + eps)
        w = w - lr * (d + wd * w)
        want.append(w)
    opt = C.ademamix(lr, b3=b3, alpha=alpha, weight_decay=wd)
    _close(_jgd_steps(opt, W0, GRADS), want)


def test_simplified_ademamix_golden(x64):
    lr, b1, b2, alpha, eps = 0.1, 0.99, 0.95, 2.0, 1e-8
    w, m, n, want = W0.copy(), np.zeros(2), np.zeros(2), []
    for t, g in enumerate(GRADS, start=1):
        m = b1 * m + g
        n = b2 * n + (1 - b2) * g**2
        w = w - lr * (m + alpha * g) / (np.sqrt(n / (1 - b2**t)) + eps)
        want.append(w)
    _close(_jgd_steps(C.simplified_ademamix(lr, alpha=alpha), W0, GRADS), want)


def test_cocob_golden(x64):
    alpha, eps = 100.0, 1e-8
    w, L, G, R, Cs, want = W0.copy(), np.full(2, eps), np.zeros(2), 0, 0, []
    for g in GRADS:
        L = np.maximum(L, np.abs(g))
        G = G + np.abs(g)
        R = np.maximum(R - g * (w - W0), 0)
        Cs = Cs - g
        w = W0 + Cs / (L * np.maximum(G + L, alpha * L)) * (L + R)
        want.append(w)
    _close(_jgd_steps(C.cocob(), W0, GRADS), want)
    # The first bet: w0 - sign(g) / alpha.
    _close(want[0], W0 - np.sign(GRADS[0]) / alpha)


def test_mechanize_golden(x64):
    """Mechanic around plain SGD (lr 1): the inner update is -g."""
    wd, eps, s_init, n = 1e-2, 1e-8, 1e-6, 6
    betas = 1 - 0.1 ** np.arange(1, n + 1)
    w, x0 = W0.copy(), W0.copy()
    r, m, v, s, want = np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, s_init), []
    for g in GRADS:
        g_wd = g + wd * s.sum() * np.linalg.norm(g) / (np.linalg.norm(w) + eps) * w
        delta_prev = (x0 - w) / (s.sum() + eps)
        delta = delta_prev + g  # minus the inner update -g
        h = g_wd @ delta_prev
        clipped = np.clip(h, -m, m)
        m = np.maximum(betas * m, abs(h) + eps)
        v = betas**2 * v + h**2
        r = betas * r + clipped * s
        s = (s_init / n * m + np.maximum(r, 0)) / (np.sqrt(v) + eps)
        w = x0 - s.sum() * delta
        want.append(w)
    _close(_jgd_steps(C.mechanize(jgd.sgd(1.0)), W0, GRADS), want)


def _quadratic(w):
    """f(w) = sum(c * w**2) / 2 with c = (2, 6): diag(H) = c, f >= 0."""
    return jnp.sum(jnp.array([2.0, 6.0]) * jnp.square(w)) / 2


@pytest.mark.parametrize("adapt", [False, True])
def test_momo_golden(x64, adapt):
    lr, beta, lb0, wd = 0.5, 0.9, -1.0, 0.1
    c = np.array([2.0, 6.0])
    w, d, fbar, gam, lb, want = W0.copy(), np.zeros(2), 0.0, 0.0, lb0, []
    for t in range(3):
        f, g = c @ w**2 / 2, c * w
        bt = 0.0 if t == 0 else beta
        fbar = bt * fbar + (1 - bt) * f
        d = bt * d + (1 - bt) * g
        gam = bt * gam + (1 - bt) * g @ w
        k = 1 + lr * wd
        cap = k * (fbar - gam) + d @ w
        if adapt and cap < k * lb:
            lb = max(cap / (2 * k), lb0)
        tau = min(lr, max(k * (fbar - lb - gam) + d @ w, 0) / (d @ d))
        w_old = w
        w = w - lr * wd / k * w - tau * d
        if adapt:
            lb = max(fbar + d @ w_old - gam - tau * (d @ d) / 2, lb0)
        want.append(w)
    opt = C.momo(lr, beta, lb0, wd, adapt_lower_bound=adapt)
    _close(_jgd_loss_steps(opt, W0, 3, _quadratic), want)


def _jgd_loss_steps(opt, w, k, loss):
    """k steps on ``loss``, passing value= and obj_fn= as update needs."""
    w = jnp.asarray(w)
    state = opt.init(w)
    out = []
    for _ in range(k):
        f, g = jax.value_and_grad(loss)(w)
        kw = {"value": f} if "momo" in type(opt).__name__.lower() else {}
        if isinstance(opt, C.sophia):
            kw = {"obj_fn": loss}
        u, state = opt.update(g, state, w, **kw)
        w = jgd.apply_updates(w, u)
        out.append(np.asarray(w))
    return out


def test_momo_first_step_is_the_polyak_step(x64):
    """On f = sum(c w^2)/2 with lower bound 0, MoMo's first step is Polyak's:
    w - f / |g|^2 * g (when that is below the learning rate)."""
    c = np.array([2.0, 6.0])
    f, g = c @ W0**2 / 2, c * W0
    (got,) = _jgd_loss_steps(C.momo(), W0, 1, _quadratic)
    _close(got, W0 - f / (g @ g) * g)


def test_momo_adam_golden(x64):
    lr, b1, b2, eps, wd = 0.5, 0.9, 0.999, 1e-8, 0.01
    c = np.array([2.0, 6.0])
    w, d, v, fbar, gam, want = W0.copy(), np.zeros(2), np.zeros(2), 0.0, 0.0, []
    for t in range(1, 4):
        f, g = c @ w**2 / 2, c * w
        fbar = b1 * fbar + (1 - b1) * f
        d = b1 * d + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        D = eps + np.sqrt(v / (1 - b2**t))
        gam = b1 * gam + (1 - b1) * g @ w
        bc1, k = 1 - b1**t, 1 + lr * wd
        norm = d @ (d / D)
        tau = min(lr / bc1, max(k * (fbar - 0.0 - gam) + d @ w, 0) / norm)
        w = w - lr * wd / k * w - tau * d / D
        want.append(w)
    opt = C.momo_adam(lr, weight_decay=wd)
    _close(_jgd_loss_steps(opt, W0, 3, _quadratic), want)


def test_sophia_golden(x64):
    """On a diagonal quadratic Hutchinson's estimate is exact (r*(H r) = c
    for r = +-1), so Sophia's steps are deterministic."""
    lr, b1, b2, eps, gamma, wd, interval = 0.1, 0.9, 0.9, 1e-8, 0.5, 0.0, 2
    c = np.array([2.0, 6.0])
    w, mu, nu, want = W0.copy(), np.zeros(2), np.zeros(2), []
    for t in range(1, 6):
        g = c * w
        mu = b1 * mu + (1 - b1) * g
        d = np.clip(mu / (1 - b1**t) / np.maximum(gamma * nu, eps), -1, 1)
        if (t - 1) % interval == 0:
            nu = b2 * nu + (1 - b2) * c
        w = w - lr * (d + wd * w)
        want.append(w)
    opt = C.sophia(lr, b1, b2, eps, wd, gamma=gamma, update_interval=interval)
    _close(_jgd_loss_steps(opt, W0, 5, _quadratic), want)


def test_hutchinson_estimates_the_diagonal_on_average(x64):
    """Hutchinson's estimate is unbiased: its mean over many draws of a dense
    Hessian's r * (H r) is the diagonal."""
    h = np.array([[2.0, 1.0, -0.5], [1.0, 3.0, 0.2], [-0.5, 0.2, 1.0]])
    f = lambda w: w @ jnp.asarray(h) @ w / 2
    est = C.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(0))
    w = jnp.zeros(3)
    state, total, n = est.init(w), np.zeros(3), 2000
    step = jax.jit(lambda s: est.update(w, s, w, obj_fn=f))
    for _ in range(n):
        d, state = step(state)
        total += np.asarray(d)
    np.testing.assert_allclose(total / n, np.diag(h), atol=0.05)


# --------------------------------------------------------------------------
# Known differences (tests/catalogue/contrib_b.py KNOWN_DIFFERENCES).
# --------------------------------------------------------------------------


def test_ademamix_mu_dtype_stays_where_optax_drifts():
    """KNOWN_DIFFERENCES['ademamix mu_dtype']: optax's moments start in
    mu_dtype and become the update's dtype after one step (a new state
    structure, so a jitted loop retraces); jgd's stay in mu_dtype. The first
    step, taken from the same zero moments, is the same."""
    params = random_tree(jax.random.key(1))
    grads = gradient_stream(jax.random.key(2), params, 3)
    ours = C.ademamix(0.05, mu_dtype=jnp.bfloat16)
    theirs = OC.ademamix(0.05, mu_dtype=jnp.bfloat16)
    s1, s2 = ours.init(params), theirs.init(params)
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    for t, g in enumerate(grads):
        u1, s1 = step1(g, s1, params)
        with standard_promotion():
            u2, s2 = step2(g, s2, params)
        if t == 0:
            assert_trees_close(u1, u2, TOL[jnp.float32], where="first step")
    for field in ("m1", "m2", "nu"):
        assert {x.dtype for x in jax.tree.leaves(getattr(s1[0], field))} == {
            jnp.dtype(jnp.bfloat16)
        }
        assert {x.dtype for x in jax.tree.leaves(getattr(s2[0], field))} == {
            jnp.dtype(jnp.float32)
        }


def test_complex_second_moments_use_abs_squared():
    """KNOWN_DIFFERENCES['complex second moments']: simplified_ademamix's n and
    momo_adam's exp_avg_sq accumulate |g|^2 (real-valued), so a complex step of
    simplified_ademamix is g / (|g| + eps) at step 1, as for real g; optax's
    g * g gives n = 2j for g = 1 + 1j and a step of about 1."""
    g = jnp.array([1.0 + 1.0j, 3.0 - 4.0j], jnp.complex64)
    ours = C.scale_by_simplified_ademamix()
    u, state = ours.update(g, ours.init(g))
    want = np.asarray(g) / (np.abs(np.asarray(g)) + 1e-8)
    np.testing.assert_allclose(np.asarray(u), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state.n).imag, 0)
    theirs = OC.scale_by_simplified_ademamix()
    with standard_promotion():
        u2, _ = theirs.update(g, theirs.init(g))
    np.testing.assert_allclose(np.asarray(u2), [1, 1], rtol=1e-6)

    momo = C.momo_adam()
    _, state = momo.update(g, momo.init(g), g, value=jnp.float32(1.0))
    np.testing.assert_allclose(
        np.asarray(state.exp_avg_sq), 0.001 * np.abs(np.asarray(g)) ** 2, rtol=1e-6
    )


@pytest.mark.parametrize(
    "make_ours,make_theirs",
    [
        # jnp.clip refuses complex numbers (in optax too): no clipping here.
        (
            lambda: C.adopt(0.05, nesterov=True, use_clipping=False),
            lambda: OC.adopt(0.05, nesterov=True, use_clipping=False),
        ),
        (lambda: C.ademamix(0.05, b3=0.9), lambda: OC.ademamix(0.05, b3=0.9)),
    ],
    ids=["adopt", "ademamix"],
)
def test_complex_params_match_optax(make_ours, make_theirs):
    """Second moments of complex gradients are |g|^2, as optax's."""
    key = jax.random.key(4)
    params = jax.tree.map(
        jax.lax.complex,
        random_tree(key),
        random_tree(jax.random.key(5)),
    )
    grads = [
        jax.tree.map(jax.lax.complex, a, b)
        for a, b in zip(
            gradient_stream(jax.random.key(6), random_tree(key), 5),
            gradient_stream(jax.random.key(7), random_tree(key), 5),
        )
    ]
    ours, theirs = make_ours(), make_theirs()
    s1, s2 = ours.init(params), theirs.init(params)
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    for t, g in enumerate(grads):
        u1, s1 = step1(g, s1, params)
        with standard_promotion():
            u2, s2 = step2(g, s2, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


# --------------------------------------------------------------------------
# Conformance for what the shared suite cannot run: momo and momo_adam need
# value=, and cocob and mechanize do not reach Rosenbrock's minimum in 5000
# steps (they are checked for progress there instead).
# --------------------------------------------------------------------------

# name -> (factory of the learning rate, lr on the bowl, lr on Rosenbrock,
# steps on Rosenbrock, the Rosenbrock value it must get below from 24.2)
OWN_CONFORMANCE = {
    "momo": (lambda lr: C.momo(lr), 1.0, 0.1, 5000, 1e-3),
    "momo_adapt": (
        lambda lr: C.momo(lr, lower_bound=-1.0, adapt_lower_bound=True),
        1.0,
        0.01,
        5000,
        1e-3,
    ),
    "momo_adam": (lambda lr: C.momo_adam(lr), 1.0, 0.1, 5000, 1e-3),
    "momo_adam_adapt": (
        lambda lr: C.momo_adam(lr, lower_bound=-1.0, adapt_lower_bound=True),
        0.1,
        0.01,
        5000,
        1e-3,
    ),
    # Coin betting is scale-free: the learning rate changes nothing here.
    "cocob": (lambda lr: C.cocob(lr, alpha=1.0), 1.0, 1.0, 5000, 5e-3),
    "mechanize_adam": (lambda lr: C.mechanize(jgd.adam(lr)), 1.0, 1.0, 5000, 0.3),
}
OWN_NAMES = sorted(OWN_CONFORMANCE)


def _loss_run(opt, f, x0, steps):
    """``steps`` of ``opt`` on ``f`` under jit (value= passed to all)."""

    def body(carry, _):
        x, s = carry
        v, g = jax.value_and_grad(f)(x)
        u, s = opt.update(g, s, x, value=v)
        return (jgd.apply_updates(x, u), s), None

    run = jax.jit(lambda x: jax.lax.scan(body, (x, opt.init(x)), None, length=steps))
    (x, s), _ = run(x0)
    return x, s


def _bowl(x):
    return sum(jnp.sum(0.5 * jnp.square(v)) for v in jax.tree.leaves(x))


def _rosenbrock(x):
    return jnp.square(1 - x[0]) + 100 * jnp.square(x[1] - x[0] * x[0])


@pytest.mark.parametrize("name", OWN_NAMES)
def test_own_converges_on_the_bowl(name):
    make, lr, _, _, _ = OWN_CONFORMANCE[name]
    x0 = random_tree(jax.random.key(0), scale=2.0)
    x, _ = _loss_run(make(lr), _bowl, x0, 1000)
    assert float(_bowl(x)) < 1e-3 * float(_bowl(x0))
    assert max(float(jnp.max(jnp.abs(v), initial=0)) for v in jax.tree.leaves(x)) < 0.05


@pytest.mark.parametrize("name", OWN_NAMES)
def test_own_on_rosenbrock(name):
    make, _, lr, steps, below = OWN_CONFORMANCE[name]
    x, _ = _loss_run(make(lr), _rosenbrock, jnp.array([-1.2, 1.0]), steps)
    assert float(_rosenbrock(x)) < below
    if below <= 1e-3:
        np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=0.06)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize("name", OWN_NAMES)
def test_own_jit_once_and_dtypes_kept(name, dtype, request):
    """One trace for three steps, a stable state, int32 counts at 3, and
    every leaf in the params' dtype (bf16 in, bf16 out)."""
    if dtype == jnp.float64:
        request.getfixturevalue("x64")
    make, lr, _, _, _ = OWN_CONFORMANCE[name]
    opt = make(lr)
    params = random_tree(jax.random.key(0), dtype)
    state = opt.init(params)
    shapes = lambda t: (
        jax.tree.structure(t),
        [(x.shape, x.dtype) for x in jax.tree.leaves(t)],
    )
    before, traces = shapes(state), []

    @jax.jit
    def step(p, s, g):
        traces.append(1)
        u, s = opt.update(g, s, p, value=_bowl(p))
        return jgd.apply_updates(p, u), s

    for i in range(3):
        params, state = step(params, state, random_tree(jax.random.key(i + 1), dtype))
        assert shapes(state) == before
    assert len(traces) == 1
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (dtype, jnp.int32)
        if leaf.dtype == jnp.int32:
            assert leaf.shape == () and int(leaf) == 3
    assert all(x.dtype == dtype for x in jax.tree.leaves(params))
    assert all(
        bool(jnp.all(jnp.isfinite(x.astype(jnp.float32))))
        for x in jax.tree.leaves(params)
    )


@pytest.mark.parametrize("name", OWN_NAMES)
def test_own_builds_inside_jit_with_a_traced_learning_rate(name, x64):
    """In float64: Mechanic's step is x0 - s * Delta - p with s ~ 1e-6 at
    first, so float32 leaves it at p's last bits, where fusion decides."""
    make, lr, _, _, _ = OWN_CONFORMANCE[name]
    params = random_tree(jax.random.key(0), jnp.float64)
    grads = random_tree(jax.random.key(1), jnp.float64)

    def step(lr):
        opt = make(lr)
        return opt.update(grads, opt.init(params), params, value=_bowl(params))[0]

    for a, b in zip(jax.tree.leaves(jax.jit(step)(lr)), jax.tree.leaves(step(lr))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: C.momo(0.5, adapt_lower_bound=True),
        lambda: C.momo_adam(0.05, weight_decay=0.01),
    ],
    ids=["momo", "momo_adam"],
)
def test_momo_through_make_step(make, x64):
    """jgd.train.make_step passes value=loss (and packs the leaves: momo's
    inner products are tree-wide, so the numbers are the hand loop's)."""
    import jgd.train as T
    from tests.test_catalogue_train import _batch, _loss, _params

    params, x = _params(), _batch()
    state, step = T.init(params, make()), T.make_step(_loss)
    for _ in range(3):
        state, _ = step(state, x)
    opt, p = make(), params
    s = opt.init(p)
    for _ in range(3):
        v, g = jax.value_and_grad(_loss)(p, x)
        u, s = opt.update(g, s, p, value=v)
        p = jgd.apply_updates(p, u)
    for k in p:
        np.testing.assert_allclose(state.params[k], p[k], rtol=1e-12, atol=0)


def test_packable_claims():
    """Element-wise methods (and tree-wide reductions) pack; Mechanic (its
    inner optimizer is unknown) and Sophia (Hutchinson's draws are per leaf)
    keep leaf boundaries."""
    from jgd.train.layout import needs_leaves

    for opt in [
        C.adopt(0.1),
        C.ademamix(0.1),
        C.simplified_ademamix(0.1),
        C.cocob(),
        C.momo(),
        C.momo_adam(),
    ]:
        assert needs_leaves(opt) is None, opt
    assert needs_leaves(C.mechanize(jgd.sgd(0.1))) == "Mechanize"
    assert needs_leaves(C.sophia(0.1)) is not None


def test_mechanize_wraps_an_optax_optimizer_as_optax_does():
    """An optax optimizer inside jgd's mechanize: the same numbers as optax's
    mechanize around it (extra arguments reach it)."""
    params = random_tree(jax.random.key(1))
    grads = gradient_stream(jax.random.key(2), params, 10)
    ours, theirs = C.mechanize(optax.adam(0.1)), OC.mechanize(optax.adam(0.1))
    s1, s2 = ours.init(params), theirs.init(params)
    step1, step2 = jax.jit(ours.update), jax.jit(theirs.update)
    for t, g in enumerate(grads):
        with standard_promotion():  # optax's adam inside
            u1, s1 = step1(g, s1, params)
            u2, s2 = step2(g, s2, params)
        assert_trees_close(u1, u2, TOL[jnp.float32], where=f"step {t}")
        params = jgd.apply_updates(params, u1)


def test_sophia_verbose_prints_the_win_rate(capfd):
    opt = C.sophia(0.1, verbose=True, print_win_rate_every_n_steps=2)
    w = jnp.array([1.0, -2.0])
    s = opt.init(w)
    for _ in range(4):
        s = opt.update(2 * w, s, w, obj_fn=lambda p: jnp.sum(p**2))[1]
        jax.effects_barrier()
    lines = [x for x in capfd.readouterr().out.splitlines() if "win rate" in x]
    assert len(lines) == 2  # steps 2 and 4
