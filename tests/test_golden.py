"""Golden tests without optax: the tutorials' worked examples, and a few steps
of each adaptive optimizer recomputed by hand in NumPy (float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd


def _steps(opt, params, grad_fn, k):
    state = opt.init(params)
    out = []
    for _ in range(k):
        updates, state = opt.update(grad_fn(params), state, params)
        params = jgd.apply_updates(params, updates)
        out.append(params)
    return out


def test_seed_one_weight_step():
    """Seed 001: slope -24 at w = 2 with learning rate 0.01 gives w = 2.24."""
    w = jnp.array(2.0)
    # The seed's backprop: 2 * (prediction - target) * input = 2 * (6 - 10) * 3.
    grad = jax.grad(lambda w: jnp.square(w * 3.0 - 10.0))(w)
    assert float(grad) == -24.0
    (w1,) = _steps(jgd.gd(0.01), w, lambda _: grad, 1)
    np.testing.assert_allclose(float(w1), 2.24, rtol=1e-7)


def test_seed_x_squared_bowl():
    """Seed 003: minimise x**2 from 5 with lr 0.1: x_k = 5 * 0.8**k."""
    xs = _steps(jgd.gd(0.1), jnp.array(5.0), jax.grad(lambda x: x**2), 20)
    np.testing.assert_allclose(
        [float(x) for x in xs], 5.0 * 0.8 ** np.arange(1, 21), rtol=1e-5
    )


def test_seed_batch_gradient_descent_reaches_least_squares(x64):
    """Seeds 000/004: theta -= lr * 2/m X^T (X theta - y), 1000 epochs, lr 0.1."""
    rng = np.random.default_rng(42)
    m = 100
    x = 2 * rng.random((m, 1))
    y = 4 + 3 * x + rng.standard_normal((m, 1))
    x_b = np.c_[np.ones((m, 1)), x]
    theta0 = jnp.asarray(rng.random((2, 1)))

    def mse(theta):
        return jnp.mean(jnp.square(x_b @ theta - y))

    def seed_gradient(theta):  # the tutorial's hand-written backprop
        return 2 / m * x_b.T @ (x_b @ theta - y)

    np.testing.assert_allclose(
        jax.grad(mse)(theta0), seed_gradient(np.asarray(theta0)), rtol=1e-12
    )
    (theta,) = _steps(jgd.gd(0.1), theta0, jax.grad(mse), 1000)[-1:]
    expected = np.linalg.lstsq(x_b, y, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(theta), expected, atol=1e-4)


# ---- hand-computed adaptive steps ---------------------------------------

G = [np.array([0.5, -1.0, 2.0]), np.array([-0.3, 0.4, 1.0]), np.array([0.1, 0.1, -0.2])]
W0 = np.array([1.0, -2.0, 0.5])


def _numpy_adam(lr=0.1, b1=0.9, b2=0.999, eps=1e-8):
    w, m, v, out = W0.copy(), 0.0, 0.0, []
    for t, g in enumerate(G, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(w)
    return out


def _numpy_rmsprop(lr=0.1, decay=0.9, eps=1e-8):
    w, v, out = W0.copy(), 0.0, []
    for g in G:
        v = decay * v + (1 - decay) * g * g
        w = w - lr * g / np.sqrt(v + eps)
        out.append(w)
    return out


def _numpy_adagrad(lr=0.1, init=0.1, eps=1e-7):
    w, s, out = W0.copy(), init, []
    for g in G:
        s = s + g * g
        w = w - lr * g / np.sqrt(s + eps)
        out.append(w)
    return out


def _numpy_momentum(lr=0.1, mu=0.9):
    w, buf, out = W0.copy(), 0.0, []
    for g in G:
        buf = g + mu * buf
        w = w - lr * buf
        out.append(w)
    return out


def test_adam_first_step_is_lr_times_sign(x64):
    """With bias correction Adam's first step is lr * g / (|g| + eps): the sign
    of the gradient times the learning rate, whatever the gradient's size."""
    (w1,) = _steps(jgd.adam(0.1), jnp.asarray(W0), lambda _: jnp.asarray(G[0]), 1)
    np.testing.assert_allclose(
        np.asarray(w1), W0 - 0.1 * G[0] / (np.abs(G[0]) + 1e-8), rtol=1e-12
    )


@pytest.mark.parametrize(
    "opt,reference",
    [
        (jgd.adam(0.1), _numpy_adam),
        (jgd.rmsprop(0.1), _numpy_rmsprop),
        (jgd.adagrad(0.1), _numpy_adagrad),
        (jgd.sgd(0.1, momentum=0.9), _numpy_momentum),
    ],
    ids=["adam", "rmsprop", "adagrad", "momentum"],
)
def test_steps_match_numpy_by_hand(opt, reference, x64):
    grads = iter(jnp.asarray(g) for g in G)
    ours = _steps(opt, jnp.asarray(W0), lambda _: next(grads), len(G))
    for t, (a, b) in enumerate(zip(ours, reference())):
        np.testing.assert_allclose(
            np.asarray(a), b, rtol=1e-12, err_msg=f"step {t + 1}"
        )
