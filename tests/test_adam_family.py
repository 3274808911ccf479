"""Adam's relatives without the shared runner: golden first steps in NumPy
(float64, no optax) for every optimizer of jgd/optimizers/adam_family.py,
complex parameters against optax, optax's signatures, and the tests that
tests/catalogue/adam_family.py's KNOWN_DIFFERENCES name."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd.train.layout import needs_leaves
from tests.helpers import standard_promotion

OPTIMIZERS = [
    "adabelief",
    "adadelta",
    "adamax",
    "adamaxw",
    "adan",
    "amsgrad",
    "lion",
    "nadam",
    "nadamw",
    "radam",
    "yogi",
]
BLOCKS = [
    "scale_by_adadelta",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_belief",
    "scale_by_lion",
    "scale_by_radam",
    "scale_by_yogi",
]

# Two steps from P0 with the gradients G (not a function of the params, so
# the references below need no autodiff). The second gradient is smaller in
# the second coordinate, so AMSGrad's max and Yogi's sign both matter.
P0 = np.array([0.5, -1.5])
G = [np.array([0.3, -2.0]), np.array([-0.1, 1.0])]


def _jgd_params(opt, grads=G):
    p = jnp.asarray(P0)
    state = opt.init(p)
    out = []
    for g in grads:
        u, state = opt.update(jnp.asarray(g), state, p)
        p = jgd.apply_updates(p, u)
        out.append(np.asarray(p))
    return out


def _reference(step, state, grads=G):
    """Run ``step(t, g, p, state) -> (d, state)`` (d added to p) over ``grads``."""
    p, out = P0.copy(), []
    for t, g in enumerate(grads, start=1):
        d, state = step(t, g, p, state)
        p = p + d
        out.append(p.copy())
    return out


def _adam_moments(m, v, g, b1, b2):
    return b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g


def _nadam_ref(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    def step(t, g, p, s):
        m, v = _adam_moments(*s, g, b1, b2)
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        d = m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
        return -lr * (d + wd * p), (m, v)

    return _reference(step, (0.0, 0.0))


def _radam_ref(lr, b1, b2, eps, threshold, grads=G):
    ro_inf = 2 / (1 - b2) - 1

    def step(t, g, p, s):
        m, v = _adam_moments(*s, g, b1, b2)
        ro = ro_inf - 2 * t * b2**t / (1 - b2**t)
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        if ro >= threshold:  # Liu et al., Algorithm 2
            r = np.sqrt(
                (ro - 4) * (ro - 2) * ro_inf / ((ro_inf - 4) * (ro_inf - 2) * ro)
            )
            return -lr * r * m_hat / (np.sqrt(v_hat) + eps), (m, v)
        return -lr * m_hat, (m, v)

    return _reference(step, (0.0, 0.0), grads)


def _amsgrad_ref(lr, b1=0.9, b2=0.999, eps=1e-8):
    def step(t, g, p, s):
        m, v = _adam_moments(*s[:2], g, b1, b2)
        v_max = np.maximum(s[2], v / (1 - b2**t))
        return -lr * (m / (1 - b1**t)) / (np.sqrt(v_max) + eps), (m, v, v_max)

    return _reference(step, (0.0, 0.0, np.zeros(2)))


def _adamax_ref(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    def step(t, g, p, s):
        m = b1 * s[0] + (1 - b1) * g
        u = np.maximum(b2 * s[1], np.abs(g) + eps)  # Kingma & Ba, Algorithm 2
        return -lr * ((m / (1 - b1**t)) / u + wd * p), (m, u)

    return _reference(step, (0.0, np.zeros(2)))


def _adabelief_ref(lr, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
    def step(t, g, p, s):
        m = b1 * s[0] + (1 - b1) * g
        v = b2 * s[1] + (1 - b2) * (g - m) ** 2 + eps_root  # Zhuang, Algorithm 2
        d = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        return -lr * d, (m, v)

    return _reference(step, (0.0, 0.0))


def _adadelta_ref(lr, rho=0.9, eps=1e-6):
    def step(t, g, p, s):  # Zeiler, Algorithm 1
        e_g = rho * s[0] + (1 - rho) * g * g
        dx = -np.sqrt(s[1] + eps) / np.sqrt(e_g + eps) * g
        e_x = rho * s[1] + (1 - rho) * dx * dx
        return lr * dx, (e_g, e_x)

    return _reference(step, (0.0, 0.0))


def _yogi_ref(lr, b1=0.9, b2=0.999, eps=1e-3, init=1e-6):
    def step(t, g, p, s):
        m = b1 * s[0] + (1 - b1) * g
        v = s[1] - (1 - b2) * np.sign(s[1] - g * g) * g * g  # Zaheer, Algorithm 2
        d = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        return -lr * d, (m, v)

    return _reference(step, (np.full(2, init), np.full(2, init)))


def _lion_ref(lr, b1=0.9, b2=0.99, wd=1e-3):
    def step(t, g, p, m):  # Chen et al., Algorithm 2
        c = (1 - b1) * g + b1 * m
        return -lr * (np.sign(c) + wd * p), b2 * m + (1 - b2) * g

    return _reference(step, np.zeros(2))


def _adan_ref(lr, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8, wd=0.0):
    def step(t, g, p, s):  # Xie et al., Algorithm 1, bias-corrected
        m, v, n, g_prev = s
        d = np.zeros(2) if t == 1 else g - g_prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * d
        n = b3 * n + (1 - b3) * (g + (1 - b2) * d) ** 2
        mh, vh, nh = m / (1 - b1**t), v / (1 - b2**t), n / (1 - b3**t)
        u = (mh + (1 - b2) * vh) / (np.sqrt(nh + eps_root) + eps)
        return -lr * (u + wd * p), (m, v, n, g)

    return _reference(step, (0.0, 0.0, 0.0, np.zeros(2)))


GOLDEN = {
    "nadam": (lambda: jgd.nadam(0.1), lambda: _nadam_ref(0.1)),
    "nadamw": (
        lambda: jgd.nadamw(0.1, weight_decay=0.5),
        lambda: _nadam_ref(0.1, wd=0.5),
    ),
    # ro < 2 at step 2 for every b2, so both steps are momentum SGD;
    # test_radam_rectifies_once_ro_reaches_the_threshold runs the rectified ones.
    "radam": (
        lambda: jgd.radam(0.1, b2=0.99, threshold=4.0),
        lambda: _radam_ref(0.1, 0.9, 0.99, 1e-8, 4.0),
    ),
    "amsgrad": (lambda: jgd.amsgrad(0.1), lambda: _amsgrad_ref(0.1)),
    "adamax": (lambda: jgd.adamax(0.1), lambda: _adamax_ref(0.1)),
    "adamaxw": (
        lambda: jgd.adamaxw(0.1, weight_decay=0.5),
        lambda: _adamax_ref(0.1, wd=0.5),
    ),
    "adabelief": (lambda: jgd.adabelief(0.1), lambda: _adabelief_ref(0.1)),
    "adadelta": (lambda: jgd.adadelta(0.5), lambda: _adadelta_ref(0.5)),
    "yogi": (lambda: jgd.yogi(0.1), lambda: _yogi_ref(0.1)),
    "lion": (lambda: jgd.lion(0.1), lambda: _lion_ref(0.1)),
    "adan": (
        lambda: jgd.adan(0.1, weight_decay=0.5),
        lambda: _adan_ref(0.1, wd=0.5),
    ),
}


def test_golden_covers_every_optimizer():
    assert sorted(GOLDEN) == OPTIMIZERS


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_two_steps(name, x64):
    make, reference = GOLDEN[name]
    for t, (got, want) in enumerate(zip(_jgd_params(make()), reference())):
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{name} step {t}")


def test_radam_rectifies_once_ro_reaches_the_threshold(x64):
    """Eight steps with b2 = 0.9: ro = 1, 1.95, 2.86, 3.74, 4.58, ... so steps
    1-4 are momentum SGD and 5-8 rectified, against Algorithm 2 in NumPy.
    KNOWN_DIFFERENCES['radam threshold below 4']: optax accepts threshold 3
    and its params turn NaN at the fourth step (2 < ro < 4); jgd refuses it."""
    grads = [np.array([0.3, -2.0]) * (-0.7) ** k for k in range(8)]
    lr, b2 = 0.1, 0.9
    ro_inf = 2 / (1 - b2) - 1
    ro = [ro_inf - 2 * t * b2**t / (1 - b2**t) for t in range(1, 9)]
    assert [r >= 4 for r in ro] == [False] * 4 + [True] * 4
    got = _jgd_params(jgd.radam(lr, b2=b2, threshold=4.0), grads)
    want = _radam_ref(lr, 0.9, b2, 1e-8, 4.0, grads)
    for t, (g, w) in enumerate(zip(got, want), start=1):
        np.testing.assert_allclose(g, w, rtol=1e-12, err_msg=f"step {t}")

    theirs = optax.radam(lr, b2=0.99, threshold=3.0)
    q = jnp.asarray(P0)
    state = theirs.init(q)
    finite = []
    with standard_promotion():
        for g in grads[:4]:
            u, state = theirs.update(jnp.asarray(g), state, q)
            q = optax.apply_updates(q, u)
            finite.append(bool(jnp.all(jnp.isfinite(q))))
    assert finite == [True, True, True, False]
    with pytest.raises(ValueError, match="threshold must be finite and >= 4"):
        jgd.radam(lr, b2=0.99, threshold=3.0)


def test_adadelta_default_descends_as_the_paper(x64):
    """KNOWN_DIFFERENCES['adadelta learning_rate=None']: jgd.adadelta() takes
    Zeiler's step (Algorithm 1, no learning rate); optax.adadelta()'s update
    is the opposite, and the loss grows."""
    for got, want in zip(_jgd_params(jgd.adadelta()), _adadelta_ref(1.0)):
        np.testing.assert_allclose(got, want, rtol=1e-12)

    def loss_after(opt, steps=50):
        f = lambda x: jnp.sum(x**2)
        with standard_promotion():  # optax's side needs it

            def body(carry, _):
                x, state = carry
                u, state = opt.update(jax.grad(f)(x), state, x)
                return (optax.apply_updates(x, u), state), None

            x = jnp.asarray(P0)
            (x, _), _ = jax.lax.scan(body, (x, opt.init(x)), None, length=steps)
        return float(f(x))

    start = float(np.sum(P0**2))
    assert loss_after(jgd.adadelta()) < start < loss_after(optax.adadelta())


def test_adadelta_complex_uses_abs_squared():
    """KNOWN_DIFFERENCES['adadelta complex']: e_g accumulates |g|**2, so it
    stays real; optax's g**2 gives a complex e_g."""
    p = jnp.array([1 + 1j, -0.5j], jnp.complex64)
    g = jnp.array([1j, 0.3 - 0.4j], jnp.complex64)
    ours = jgd.scale_by_adadelta()
    u, state = ours.update(g, ours.init(p), p)
    g_np = np.asarray(g, np.complex128)
    e_g = 0.1 * np.abs(g_np) ** 2
    np.testing.assert_allclose(state.e_g, e_g, rtol=1e-6)
    np.testing.assert_allclose(u, np.sqrt(1e-6) / np.sqrt(e_g + 1e-6) * g_np, rtol=1e-6)
    theirs = optax.scale_by_adadelta()
    with standard_promotion():
        _, their_state = theirs.update(g, theirs.init(p), p)
    assert np.abs(np.imag(their_state.e_g)).max() > 0.01  # 0.1 * g**2


# Complex params: each pair runs on complex64 params and gradients, compared
# with optax at every step (f32 tolerance).
COMPLEX = {
    "adam": (lambda: jgd.adam(0.1), lambda: optax.adam(0.1)),
    "rmsprop_centered": (
        lambda: jgd.rmsprop(0.1, centered=True, bias_correction=True),
        lambda: optax.rmsprop(0.1, centered=True, bias_correction=True),
    ),
    "rmsprop": (lambda: jgd.rmsprop(0.1), lambda: optax.rmsprop(0.1)),
    "adagrad": (lambda: jgd.adagrad(0.1), lambda: optax.adagrad(0.1)),
    "nadamw": (
        lambda: jgd.nadamw(0.1, weight_decay=0.1),
        lambda: optax.nadamw(0.1, weight_decay=0.1),
    ),
    "radam": (  # steps 5-8 of the 8 rectified (ro = 4.96 at step 5)
        lambda: jgd.radam(0.1, b2=0.99, threshold=4.0),
        lambda: optax.radam(0.1, b2=0.99, threshold=4.0),
    ),
    "amsgrad": (lambda: jgd.amsgrad(0.1), lambda: optax.amsgrad(0.1)),
    "adamax": (lambda: jgd.adamax(0.1), lambda: optax.adamax(0.1)),
    "adabelief": (lambda: jgd.adabelief(0.1), lambda: optax.adabelief(0.1)),
    "yogi": (lambda: jgd.yogi(0.1), lambda: optax.yogi(0.1)),
    "lion": (lambda: jgd.lion(0.1), lambda: optax.lion(0.1)),
    "adan": (lambda: jgd.adan(0.1), lambda: optax.adan(0.1)),
    "scale_by_lion_refined": (
        lambda: jgd.scale_by_lion(mode="refined"),
        lambda: optax.scale_by_lion(mode="refined"),
    ),
}


def _complex_tree(key, scale=1.0):
    k1, k2, k3, k4 = jax.random.split(key, 4)

    def c(ka, kb, shape):
        z = jax.lax.complex(jax.random.normal(ka, shape), jax.random.normal(kb, shape))
        return z * jnp.complex64(scale)

    return {"v": c(k1, k2, (5,)), "w": c(k3, k4, (2, 3))}


@pytest.mark.parametrize("name", sorted(COMPLEX))
def test_complex_params_match_optax(name):
    make_ours, make_theirs = COMPLEX[name]
    ours, theirs = make_ours(), make_theirs()
    params = _complex_tree(jax.random.key(0))
    grads = [_complex_tree(k) for k in jax.random.split(jax.random.key(1), 8)]
    s1, s2 = ours.init(params), theirs.init(params)
    p1 = p2 = params
    step1 = jax.jit(ours.update)
    with standard_promotion():
        step2 = jax.jit(theirs.update)
    for t, g in enumerate(grads):
        u1, s1 = step1(g, s1, p1)
        with standard_promotion():
            u2, s2 = step2(g, s2, p2)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            assert a.dtype == b.dtype == jnp.complex64
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=0, err_msg=f"step {t}")
        p1, p2 = jgd.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


def test_adam_complex_step_is_along_the_gradient():
    """The case the fix was for: g = 1j gives -lr * 1j (optax: -0.0999j);
    with g**2 in nu it was -0.0999-1e-9j."""
    opt = jgd.adam(0.1)
    p = jnp.zeros(1, jnp.complex64)
    u, _ = opt.update(jnp.array([1j], jnp.complex64), opt.init(p), p)
    assert float(jnp.real(u[0])) == 0.0
    np.testing.assert_allclose(jnp.imag(u[0]), -0.1, rtol=1e-5)


def _signature(fn):
    return [
        (p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
    ]


@pytest.mark.parametrize("name", OPTIMIZERS + BLOCKS)
def test_signature_matches_optax(name):
    assert _signature(getattr(jgd, name)) == _signature(getattr(optax, name))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_learning_rate_annotation_is_optax(name):
    ours = inspect.signature(getattr(jgd, name)).parameters["learning_rate"]
    theirs = inspect.signature(getattr(optax, name)).parameters["learning_rate"]
    assert ours.annotation == theirs.annotation


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_element_wise_so_jgd_train_may_pack(name):
    assert needs_leaves(getattr(jgd, name)(0.1)) is None


def test_nadam_is_adam_with_nesterov():
    """optax.nadam is functools.partial(adam, nesterov=True): so is jgd's."""
    ours, adam = _jgd_params(jgd.nadam(0.1)), _jgd_params(jgd.adam(0.1, nesterov=True))
    assert all(np.array_equal(a, b) for a, b in zip(ours, adam))
    assert jgd.nadam(0.1).nesterov and jgd.nadamw(0.1).nesterov
    assert not jgd.nadam(0.1, nesterov=False).nesterov
    assert repr(jgd.nadam(1e-3)).startswith("Nadam(learning_rate=0.001,")


def test_lion_modes_as_optax_outside_the_unit_interval():
    """'refined' keeps small interpolations linear and saturates large ones,
    'smooth' is tanh(smooth_beta * x): on the first step x = (1 - b1) * g."""
    g = jnp.array([0.5, -20.0, 40.0])
    p = jnp.zeros(3)
    for mode, want in [
        ("hard", np.sign(0.1 * np.asarray(g))),
        ("refined", np.where(np.abs(0.1 * g) < 1, 0.1 * g, np.sign(g))),
        ("smooth", np.tanh(3.0 * 0.1 * np.asarray(g))),
    ]:
        tx = jgd.scale_by_lion(mode=mode, smooth_beta=3.0)
        u, _ = tx.update(g, tx.init(p))
        np.testing.assert_allclose(u, want, rtol=1e-6, err_msg=mode)
