"""jgd.contrib's muon, schedule-free methods, prodigy, dog and dowg: what the
shared tables cannot hold.

- ``scale_by_muon`` against optax with its own runner (optax's works on a tree
  only with an explicit tree of dimension numbers), step by step as
  tests/test_vs_optax.py, same tolerances.
- Conformance (tests/test_conformance.py's checks) where one shared check
  assumes what optax's state contradicts: DoGState.is_init_step is a bool,
  ScheduleFreeState.step_count starts at 1, and Muon's Newton-Schulz rounds
  differently eagerly and under jit (so its traced learning rate is compared
  jit against jit). The other checks run as they are.
- Golden first steps recomputed in NumPy (float64), without optax.
- The known differences (tests/catalogue/contrib_a.py KNOWN_DIFFERENCES) and
  which of them jgd.train may pack.
"""

from __future__ import annotations

import contextlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
import tests.test_conformance as shared
from jgd import schedules as js
from jgd.contrib import orthogonal
from jgd.train.layout import needs_leaves
from tests.helpers import (
    TOL,
    assert_trees_close,
    gradient_stream,
    random_tree,
    standard_promotion,
)

C = jgd.contrib
OC = optax.contrib
STEPS = 50
A, B, CC = 3.4445, -4.7750, 2.0315  # Muon's default Newton-Schulz coefficients


# --------------------------------------------------------------------------
# scale_by_muon against optax, on a tree of matrices and a 3-D tensor.
# --------------------------------------------------------------------------

MATRIX_SHAPES = {"a": (3, 4), "b": [(5, 2), (2, 3, 2)]}


def _dims_tree(cls):
    return {"a": cls(), "b": [cls(), cls((0, 1), 2)]}


# Preconditionings, coefficient rows and dtypes run through muon's CASES.
MUON_BLOCK_CASES = {
    "default": {},
    "flags": {
        "beta": 0.8,
        "eps": 1e-6,
        "nesterov": False,
        "adaptive": True,
        "preconditioning": "aol",
        "mu_dtype": "float32",
    },
}


def _run(opt, params, grads, promotion):
    step = jax.jit(lambda g, s, p: opt.update(g, s, p))
    state = opt.init(params)
    history = []
    for g in grads:
        with promotion():
            updates, state = step(g, state, params)
        params = jgd.apply_updates(params, updates)
        history.append(updates)
    return history, state


# float64 behind ``slow``, as tests/test_vs_optax.py keeps the catalogue's.
@pytest.mark.parametrize(
    "dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("name", sorted(MUON_BLOCK_CASES))
def test_scale_by_muon_matches_optax(name, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    dtype = jnp.dtype(dtype).type
    kw = MUON_BLOCK_CASES[name]
    ours = C.scale_by_muon(
        **kw, weight_dimension_numbers=_dims_tree(C.MuonDimensionNumbers)
    )
    theirs = OC.scale_by_muon(
        **kw, weight_dimension_numbers=_dims_tree(OC.MuonDimensionNumbers)
    )
    params = random_tree(jax.random.key(1), dtype, MATRIX_SHAPES)
    grads = gradient_stream(jax.random.key(2), params, STEPS)
    u1, s1 = _run(ours, params, grads, contextlib.nullcontext)
    u2, s2 = _run(theirs, params, grads, standard_promotion)
    for t, (a, b) in enumerate(zip(u1, u2)):
        assert_trees_close(a, b, TOL[dtype], where=f"{name} step {t}")
    assert_trees_close(s1, s2, TOL[dtype], where=f"{name} final state")
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        assert a.dtype == b.dtype


def test_scale_by_muon_tree_without_dimension_numbers():
    """KNOWN_DIFFERENCES['scale_by_muon on a tree']: optax raises on a tree
    of matrices without dimension numbers; jgd treats each leaf as a matrix,
    as optax does when given the explicit tree."""
    params = {"a": jnp.ones((3, 4)), "b": jnp.arange(10.0).reshape(5, 2)}
    grads = jax.tree.map(lambda x: jnp.sin(x + 1.0), params)
    theirs = OC.scale_by_muon()
    with standard_promotion(), pytest.raises(ValueError):
        theirs.update(grads, theirs.init(params))
    explicit = OC.scale_by_muon(
        weight_dimension_numbers={"a": OC.MuonDimensionNumbers()} | {"b": None}
    )
    # Under jit, as the cross-checks run (eagerly, op by op, the two group
    # their operations differently and Newton-Schulz magnifies the ulps).
    with standard_promotion():
        want, _ = jax.jit(explicit.update)(grads, explicit.init(params))
    ours = C.scale_by_muon()
    got, _ = jax.jit(ours.update)(grads, ours.init(params))
    assert_trees_close(got, want, 1e-6)
    with pytest.raises(ValueError, match=r"^jgd\.contrib\.scale_by_muon: a leaf"):
        ours.update({"v": jnp.ones(3)}, ours.init({"v": jnp.ones(3)}))


def test_muon_bf16_matches_optax():
    """KNOWN_DIFFERENCES['muon ns_coeffs dtype']: a bf16 model's state is all
    bf16, and the updates are optax's, bit for bit."""
    params = random_tree(jax.random.key(1), jnp.bfloat16)
    grads = gradient_stream(jax.random.key(2), params, 3)
    ours, s1 = _run(C.muon(0.05), params, grads, contextlib.nullcontext)
    theirs, s2 = _run(OC.muon(0.05), params, grads, standard_promotion)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        assert a.dtype == b.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.float32(a), np.float32(b))
    assert {x.dtype for x in jax.tree.leaves(s1)} == {
        jnp.dtype("int32"),
        jnp.dtype("bfloat16"),
    }
    assert jax.tree.leaves(s2)[-1].dtype == jnp.float32  # optax's ns_coeffs


# --------------------------------------------------------------------------
# Muon in NumPy.
# --------------------------------------------------------------------------


def _np_newton_schulz(x, steps=5, coeffs=(A, B, CC), eps=1e-8, norm="fro"):
    transposed = x.shape[0] > x.shape[1]
    x = x.T if transposed else x
    x = x / (np.linalg.norm(x, norm) + eps)
    for _ in range(steps):
        a = x @ x.T
        x = coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x
    return x.T if transposed else x


@pytest.mark.parametrize("shape", [(2, 3), (3, 2)])
def test_scale_by_muon_first_step_golden(shape, x64):
    g = np.cos(np.arange(6.0)).reshape(shape) + 0.5
    # Without Nesterov the first bias-corrected momentum is g itself.
    tx = C.scale_by_muon(nesterov=False)
    u, state = tx.update(jnp.asarray(g), tx.init(jnp.zeros(shape)))
    np.testing.assert_allclose(u, _np_newton_schulz(g), rtol=1e-12)
    np.testing.assert_allclose(state.mu, 0.05 * g, rtol=1e-12)
    # Orthogonalised: the singular values are near 1 (within Muon's band).
    assert np.all(np.abs(np.linalg.svd(np.asarray(u), compute_uv=False) - 1) < 0.35)

    tx = C.scale_by_muon(nesterov=False, adaptive=True, preconditioning="spectral")
    u, _ = tx.update(jnp.asarray(g), tx.init(jnp.zeros(shape)))
    o = _np_newton_schulz(g, norm=2)
    np.testing.assert_allclose(u, np.sum(g * o) * o, rtol=1e-12)


def test_scale_by_muon_dimension_numbers_golden(x64):
    g = np.sin(np.arange(12.0)).reshape(2, 3, 2) + 0.25
    # Axes (0, 1) against 2: one 6 x 2 matrix.
    tx = C.scale_by_muon(
        nesterov=False, weight_dimension_numbers=C.MuonDimensionNumbers((0, 1), 2)
    )
    u, _ = tx.update(jnp.asarray(g), tx.init(jnp.zeros(g.shape)))
    want = _np_newton_schulz(g.reshape(6, 2)).reshape(2, 3, 2)
    np.testing.assert_allclose(u, want, rtol=1e-12)
    # Axis 0 against 2, axis 1 a batch: three 2 x 2 matrices.
    tx = C.scale_by_muon(
        nesterov=False, weight_dimension_numbers=C.MuonDimensionNumbers(0, 2)
    )
    u, _ = tx.update(jnp.asarray(g), tx.init(jnp.zeros(g.shape)))
    want = np.stack([_np_newton_schulz(g[:, k, :]) for k in range(3)], axis=1)
    np.testing.assert_allclose(u, want, rtol=1e-12)


def test_muon_first_step_golden(x64):
    """Matrices: Nesterov momentum, Newton-Schulz, width scaling, the learning
    rate; the vector: AdamW (Nesterov, no decay)."""
    w = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])
    g = {"w": np.cos(w), "b": np.array([0.5, -2.0])}
    params = {"w": jnp.asarray(w), "b": jnp.zeros(2)}
    opt = C.muon(0.1, weight_decay=0.5)
    u, _ = opt.update(jax.tree.map(jnp.asarray, g), opt.init(params), params)
    beta = 0.95
    mu = (1 - beta) * g["w"]
    m = beta * mu / (1 - beta**2) + (1 - beta) * g["w"] / (1 - beta)
    d = np.sqrt(max(1, 3 / 2)) * _np_newton_schulz(m)
    np.testing.assert_allclose(u["w"], -0.1 * (d + 0.5 * w), rtol=1e-12)
    b1, b2 = 0.9, 0.999
    m_hat = b1 * (1 - b1) * g["b"] / (1 - b1**2) + (1 - b1) * g["b"] / (1 - b1)
    v_hat = (1 - b2) * g["b"] ** 2 / (1 - b2)
    np.testing.assert_allclose(
        u["b"], -0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12
    )


def test_schatten_first_step_complex(x64):
    """KNOWN_DIFFERENCES['muon schatten on complex']: X / ||X X^H||_F^(1/2),
    then a Newton-Schulz step; for real X the same as optax's."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3))
    c = np.array([A, B, CC])
    # The coefficients in the matrix's dtype, as _orthogonalize passes them.
    got = orthogonal._schatten_first_step(
        jnp.asarray(x), jnp.asarray(c, jnp.complex128), 1e-8
    )
    a = x @ x.conj().T
    s = np.linalg.norm(a, "fro") ** -0.5
    xs, a = x * s, a * s**2
    want = c[0] * xs + (c[1] * a + c[2] * a @ a) @ xs
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # Scaled so that ||X X^H||_F = 1 (what makes the iteration converge).
    np.testing.assert_allclose(np.linalg.norm(xs @ xs.conj().T, "fro"), 1.0)
    from optax.contrib import _muon

    xr = x.real
    with standard_promotion():
        theirs = _muon._schatten_first_newton_schulz_iteration(
            jnp.asarray(xr), jnp.asarray(c)
        )
    ours = orthogonal._schatten_first_step(jnp.asarray(xr), jnp.asarray(c), 1e-8)
    np.testing.assert_array_equal(ours, theirs)


def test_aol_first_step_floors_at_eps(x64):
    """KNOWN_DIFFERENCES['muon rescaling floor']: row i is scaled by
    1/sqrt(max(sum_j |A_ij|, eps)); a zero row stays zero, a tiny one is
    scaled by 1/sqrt(eps) (optax: 1/sqrt(1e-8))."""
    x = np.array([[1.0, 2.0, 0.0], [1e-4, 0.0, 0.0]])
    c = np.array([A, B, CC])
    got = orthogonal._aol_first_step(jnp.asarray(x), jnp.asarray(c), 1e-3)
    a = x @ x.T
    s = 1 / np.sqrt(np.maximum(np.abs(a).sum(-1), 1e-3))[:, None]
    xs, a = x * s, a * s * s.T
    want = c[0] * xs + (c[1] * a + c[2] * a @ a) @ xs
    np.testing.assert_allclose(got, want, rtol=1e-12)


# --------------------------------------------------------------------------
# Schedule-free in NumPy.
# --------------------------------------------------------------------------


def _np_schedule_free(base_steps, y0, grads, lrs, b1=0.9, power=2.0):
    """Algorithm 1 of "The Road Less Scheduled": ``base_steps(g, y)`` is the
    base optimizer's step for z."""
    y, z, total, lr_max, ys = y0, y0, 0.0, 0.0, []
    for g, lr in zip(grads, lrs):
        lr_max = max(lr_max, lr)
        total += lr_max**power
        c = lr_max**power / total
        z_new = z + base_steps(g, y)
        x = (y - (1 - b1) * z) / b1
        x = (1 - c) * x + c * z_new
        y, z = b1 * x + (1 - b1) * z_new, z_new
        ys.append(y)
    return ys, z


def _run_np_like(opt, y0, grads):
    y, s, ys = jnp.asarray(y0), opt.init(jnp.asarray(y0)), []
    for g in grads:
        u, s = opt.update(jnp.asarray(g), s, y)
        y = jgd.apply_updates(y, u)
        ys.append(np.asarray(y))
    return ys, s


def test_schedule_free_sgd_golden(x64):
    y0 = np.array([1.0, -2.0])
    grads = [np.array([0.5, 1.0]), np.array([-1.0, 0.25]), np.array([2.0, -1.0])]
    # Warm-up over 2 steps, evaluated at step_count 1, 2, 3: lr/2, lr, lr.
    opt = C.schedule_free_sgd(0.4, warmup_steps=2, weight_decay=0.1)
    ys, s = _run_np_like(opt, y0, grads)
    lrs = [0.2, 0.4, 0.4]
    # The base SGD's own warm-up runs on its own count (0, 1, 2): 0, lr/2, lr.
    base_lrs = iter([0.0, 0.2, 0.4])
    want, z = _np_schedule_free(
        lambda g, y: -next(base_lrs) * (g + 0.1 * y), y0, grads, lrs
    )
    for got, ref in zip(ys, want):
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    np.testing.assert_allclose(s.z, z, rtol=1e-12)
    assert int(s.step_count) == 4


def test_schedule_free_adamw_golden(x64):
    y0 = np.array([1.0, -2.0])
    grads = [np.array([0.5, 1.0]), np.array([-1.0, 0.25])]
    b2, eps, wd, lr = 0.99, 1e-8, 0.01, 0.1
    nu, t = np.zeros(2), [0]

    def base(g, y):
        nonlocal nu
        t[0] += 1
        nu = b2 * nu + (1 - b2) * g**2
        return -lr * (g / (np.sqrt(nu / (1 - b2 ** t[0])) + eps) + wd * y)

    want, _ = _np_schedule_free(base, y0, grads, [lr, lr], b1=0.8, power=1.0)
    opt = C.schedule_free_adamw(lr, b1=0.8, b2=b2, weight_decay=wd, weight_lr_power=1.0)
    ys, _ = _run_np_like(opt, y0, grads)
    for got, ref in zip(ys, want):
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_schedule_free_eval_params():
    """The average x from (y, z); a chain's state holding one
    ScheduleFreeState works too (KNOWN_DIFFERENCES)."""
    y0 = jnp.array([1.0, -2.0])
    opt = C.schedule_free_sgd(0.5)
    u, s = opt.update(jnp.array([1.0, 1.0]), opt.init(y0), y0)
    y1 = jgd.apply_updates(y0, u)
    want = (np.asarray(y1) - 0.1 * np.asarray(s.z)) / 0.9
    np.testing.assert_allclose(C.schedule_free_eval_params(s, y1), want, rtol=1e-6)
    chained = jgd.chain(jgd.clip(10.0), opt)
    u, cs = chained.update(jnp.array([1.0, 1.0]), chained.init(y0), y0)
    np.testing.assert_allclose(C.schedule_free_eval_params(cs, y1), want, rtol=1e-6)
    with pytest.raises(TypeError, match="holding 2"):
        C.schedule_free_eval_params((s, s), y1)


def test_schedule_free_with_an_optax_base_takes_extra_args():
    """The wrapped optimizer receives update's extra keyword arguments."""
    seen = {}

    def update(updates, state, params=None, **extra):
        seen.update(extra)
        return jax.tree.map(lambda g: -0.1 * g, updates), state

    base = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)
    opt = C.schedule_free(base, 0.1)
    y = jnp.ones(2)
    opt.update(jnp.ones(2), opt.init(y), y, value=jnp.array(3.0))
    assert float(seen["value"]) == 3.0


# --------------------------------------------------------------------------
# Prodigy, DoG, DoWG in NumPy.
# --------------------------------------------------------------------------


def _np_prodigy(w0, grads, lr=1.0, b1=0.9, b2=0.999, eps=1e-8, d0=1e-6, wd=0.0):
    b3 = b2**0.5
    m, v, s = np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
    d, r, w, ws = d0, 0.0, w0, []
    for t, g in enumerate(grads, start=1):
        dlr = d * lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m = b1 * m + (1 - b1) * d * g
        v = b2 * v + (1 - b2) * (d * g) ** 2
        s = b3 * s + dlr * d * g / d0
        r = b3 * r + (d / d0) * dlr * np.dot(g, w0 - w)
        d_new = max(d, r / np.sum(np.abs(s)))
        w = w - wd * dlr * w - dlr * m / (np.sqrt(v) + d_new * eps)
        d = d_new
        ws.append(w)
    return ws, d


def test_prodigy_golden(x64):
    w0 = np.array([1.0, -2.0])
    # A steady gradient, so the distance estimate grows (from step 4 on).
    grads = [np.array([0.5, -1.0])] * 4 + [np.array([0.25, -1.0])]
    opt = C.prodigy(1.0, estim_lr0=1e-3, weight_decay=0.01)
    ws, s = _run_np_like(opt, w0, grads)
    want, d = _np_prodigy(w0, grads, lr=1.0, d0=1e-3, wd=0.01)
    for got, ref in zip(ws, want):
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    np.testing.assert_allclose(s.estim_lr, d, rtol=1e-12)
    assert float(s.estim_lr) > 1.5e-3  # the distance estimate grew


def test_prodigy_complex_second_moment_is_real(x64):
    """KNOWN_DIFFERENCES['prodigy on complex']: v accumulates |d g|**2."""
    w = jnp.array([1.0 + 1.0j, -2.0j])
    g = jnp.array([0.5 - 1.0j, 1.0 + 2.0j])
    opt = C.prodigy(estim_lr0=0.1)
    u, s = opt.update(g, opt.init(w), w)
    np.testing.assert_allclose(s.exp_avg_sq.imag, 0.0, atol=0)
    np.testing.assert_allclose(s.exp_avg_sq.real, 0.001 * np.abs(0.1 * g) ** 2)
    assert u.dtype == w.dtype


def _np_dog(w0, grads, r0, eps=1e-8, lr=1.0, first_lr=None):
    r, G, w, ws = r0, 0.0, w0, []
    for k, g in enumerate(grads):
        r = max(r, np.linalg.norm(w0 - w))
        G = G + np.sum(g**2)
        eta = r / np.sqrt(G + eps)
        if first_lr is not None and k == 0:
            eta = first_lr
        w = w - lr * eta * g
        ws.append(w)
    return ws


@pytest.mark.parametrize(
    "init_step", [("heuristic", 1e-2), ("distance", 0.3), ("learning_rate", 0.05)]
)
def test_dog_golden(init_step, x64):
    w0 = np.array([3.0, -4.0])
    grads = [np.array([0.5, 1.0]), np.array([-1.0, 0.25]), np.array([2.0, -1.0])]
    kind, value = init_step
    r0 = {"heuristic": value * (1 + 5.0), "distance": value, "learning_rate": 0.0}
    first = value if kind == "learning_rate" else None
    ws, s = _run_np_like(C.dog(0.5, init_step=init_step), w0, grads)
    want = _np_dog(w0, grads, r0[kind], lr=0.5, first_lr=first)
    for got, ref in zip(ws, want):
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert s[1].is_init_step.dtype == jnp.bool_ and not bool(s[1].is_init_step)


def test_dowg_golden(x64):
    w0 = np.array([3.0, -4.0])
    grads = [np.array([0.5, 1.0]), np.array([-1.0, 0.25]), np.array([2.0, -1.0])]
    r2, V, w, want = 0.5, 0.0, w0, []
    for g in grads:
        r2 = max(r2, np.sum((w0 - w) ** 2))
        V = V + r2 * np.sum(g**2)
        w = w - 0.5 * r2 / (np.sqrt(V) + 1e-4) * g
        want.append(w)
    ws, _ = _run_np_like(C.dowg(0.5, init_estim_sq_dist=0.5), w0, grads)
    for got, ref in zip(ws, want):
        np.testing.assert_allclose(got, ref, rtol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: C.prodigy(),
        lambda: C.dog(),
        lambda: C.dowg(),
        lambda: C.schedule_free_sgd(),
    ],
    ids=["prodigy", "dog", "dowg", "schedule_free_sgd"],
)
def test_update_without_params_says_how_to_call(make):
    opt = make()
    p = {"a": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"update needs params .* update\(grads"):
        opt.update(p, opt.init(p))


def test_complex_params():
    """Complex params keep their dtype under strict promotion; Muon (X X^H in
    Newton-Schulz, the dual norm <conj(m), u>) matches optax on them."""
    rng = np.random.default_rng(0)
    p = {
        "w": jnp.asarray(rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))),
        "b": jnp.asarray(rng.normal(size=4) + 1j),
    }
    p = jax.tree.map(lambda x: x.astype(jnp.complex64), p)
    g = jax.tree.map(lambda x: x * jnp.asarray(0.5 - 0.25j, jnp.complex64), p)
    for opt in [
        C.schedule_free_adamw(0.05),
        C.schedule_free_sgd(0.05),
        C.prodigy(),
        C.dog(),
        C.dowg(),
    ]:
        u, _ = jax.jit(opt.update)(g, opt.init(p), p)
        for x in jax.tree.leaves(u):
            assert x.dtype == jnp.complex64 and bool(jnp.all(jnp.isfinite(x)))
    ours = C.muon(0.05, adaptive=True, preconditioning="aol")
    theirs = OC.muon(0.05, adaptive=True, preconditioning="aol")
    u1, _ = jax.jit(ours.update)(g, ours.init(p), p)
    with standard_promotion():
        u2, _ = jax.jit(theirs.update)(g, theirs.init(p), p)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


# --------------------------------------------------------------------------
# Packing in jgd.train, and conformance where a shared check does not fit.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,packable",
    [
        (lambda: C.muon(0.1), False),
        (lambda: C.scale_by_muon(), False),
        (lambda: C.schedule_free(jgd.sgd(0.1), 0.1), False),
        (lambda: C.schedule_free_sgd(0.1, weight_decay=0.01), True),
        (lambda: C.schedule_free_adamw(0.1), True),
        (lambda: C.prodigy(), True),
        (lambda: C.dog(weight_decay=0.1), True),
        (lambda: C.dowg(), True),
    ],
)
def test_which_jgd_train_may_pack(make, packable):
    """Muon needs each matrix's shape; schedule-free and the distance methods
    are element-wise or global sums (the general schedule_free wrapper is
    not: jgd.train does not look inside the optimizer it wraps)."""
    assert (needs_leaves(make()) is None) == packable


S = js
# name -> (factory of the learning rate, lr on the bowl, on Rosenbrock, steps).
# Muon's matrices need a decaying step (an orthogonalised step has a fixed
# size); its AdamW part keeps the constant rate. Rosenbrock's point is a
# vector, so there it is AdamW alone. DoG has a cosine multiplier, as Prodigy
# and DoWG in the shared table: without one it stalls in Rosenbrock's valley.
OWN_CONFORMANCE = {
    "muon": (
        lambda lr: C.muon(S.exponential_decay(lr, 200, 0.5), adam_learning_rate=lr),
        0.05,
        0.01,
        5000,
    ),
    "muon_aol_nesterov_off": (
        lambda lr: C.muon(
            S.exponential_decay(lr, 200, 0.5),
            adam_learning_rate=lr,
            preconditioning="aol",
            nesterov=False,
        ),
        0.05,
        0.01,
        5000,
    ),
    "dog": (
        lambda lr: C.dog(S.cosine_decay_schedule(lr, 5000, alpha=0.5)),
        1.0,
        1.75,
        5000,
    ),
    "schedule_free_adamw": (
        lambda lr: C.schedule_free_adamw(lr, b1=0.8),
        0.1,
        0.02,
        5000,
    ),
    "schedule_free_sgd": (lambda lr: C.schedule_free_sgd(lr, b1=0.8), 0.5, 1e-3, 5000),
    "schedule_free": (
        lambda lr: C.schedule_free(jgd.sgd(lr), lr, b1=0.8),
        0.5,
        1e-3,
        5000,
    ),
}
# The shared checks each runs as it is; the one left out has its variant below.
_SHARED = {
    "test_jit_no_retrace_and_stable_state": ["muon", "muon_aol_nesterov_off", "dog"],
    "test_dtypes_are_kept": [
        "muon",
        "muon_aol_nesterov_off",
        "schedule_free_adamw",
        "schedule_free_sgd",
        "schedule_free",
    ],
    "test_converges_on_the_bowl": sorted(OWN_CONFORMANCE),
    "test_converges_on_rosenbrock": sorted(OWN_CONFORMANCE),
    "test_builds_inside_jit_with_a_traced_learning_rate": ["dog"],
}
# As tests/test_conformance.py does for the catalogue: jit, retrace and the
# bowl in CI, the rest (dtypes, Rosenbrock, a traced learning rate) with
# ``-m slow``.
_IN_CI = {"test_jit_no_retrace_and_stable_state", "test_converges_on_the_bowl"}
_SHARED_PARAMS = [
    pytest.param(
        check,
        name,
        id=f"{check[5:]}-{name}",
        marks=() if check in _IN_CI else pytest.mark.slow,
    )
    for check, names in _SHARED.items()
    for name in names
]


@pytest.mark.parametrize("check,name", _SHARED_PARAMS)
def test_shared_conformance(check, name, monkeypatch, request):
    monkeypatch.setitem(shared.OPTIMIZERS, name, OWN_CONFORMANCE[name])
    fn = getattr(shared, check)
    if check == "test_dtypes_are_kept":
        # float64 last: fn requests the x64 fixture itself, which stays on
        # until teardown. (Inside a `with jax.enable_x64` block, the fixture's
        # teardown restored the block's True after the block had ended.)
        for dtype in (jnp.float32, jnp.bfloat16, jnp.float64):
            fn(name, dtype, request)
    else:
        fn(name)


@pytest.mark.parametrize(
    "name", ["schedule_free_adamw", "schedule_free_sgd", "schedule_free"]
)
def test_schedule_free_jit_no_retrace_and_stable_state(name):
    """test_jit_no_retrace_and_stable_state, with ScheduleFreeState.step_count
    starting at 1 (optax's): 4 after 3 steps; the inner counts are 3."""
    make, lr, _, _ = OWN_CONFORMANCE[name]
    opt = make(lr)
    params = random_tree(jax.random.key(0))
    state = opt.init(params)
    before = shared._structure(state)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return jgd.apply_updates(params, updates), state

    for i in range(3):
        params, state = step(params, state, random_tree(jax.random.key(i + 1)))
        assert shared._structure(state) == before
    assert state.step_count.dtype == jnp.int32 and int(state.step_count) == 4
    inner = jax.tree.leaves(state.base_optimizer_state)
    assert all(int(c) == 3 for c in inner if c.dtype == jnp.int32)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
def test_dog_dtypes_are_kept(dtype, request):
    """test_dtypes_are_kept, with DoGState.is_init_step a bool (optax's)."""
    if dtype == jnp.float64:
        request.getfixturevalue("x64")
    make, lr, _, _ = OWN_CONFORMANCE["dog"]
    opt = make(lr)
    params = random_tree(jax.random.key(0), dtype)
    state = opt.init(params)
    assert state[1].is_init_step.dtype == jnp.bool_
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (dtype, jnp.int32, jnp.bool_)
    updates, state = jax.jit(opt.update)(
        random_tree(jax.random.key(1), dtype), state, params
    )
    new = jgd.apply_updates(params, updates)
    for t in (updates, new):
        assert all(x.dtype == dtype for x in jax.tree.leaves(t))
    assert all(
        bool(jnp.all(jnp.isfinite(x.astype(jnp.float32)))) for x in jax.tree.leaves(new)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "muon",
        "muon_aol_nesterov_off",
        "schedule_free_adamw",
        "schedule_free_sgd",
        "schedule_free",
    ],
)
def test_builds_inside_jit_with_a_traced_learning_rate(name, x64):
    """test_builds_inside_jit_with_a_traced_learning_rate in float64: jit and
    eager round a fused multiply-add differently (1 ulp), which Muon's
    Newton-Schulz magnifies (1e-8 apart on float32 entries near 0) and the
    schedule-free step y_new - y cancels (1 ulp of y is 1e-6 of the step),
    past rtol 1e-6 in float32; in float64 the check means what it says."""
    make, lr, _, _ = OWN_CONFORMANCE[name]
    params = random_tree(jax.random.key(0), jnp.float64)
    grads = random_tree(jax.random.key(1), jnp.float64)

    def step(lr):
        opt = make(lr)
        updates, _ = opt.update(grads, opt.init(params), params)
        return updates

    traced = jax.jit(step)(lr)
    eager = step(lr)
    for a, b in zip(jax.tree.leaves(traced), jax.tree.leaves(eager)):
        assert a.dtype == jnp.float64
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
