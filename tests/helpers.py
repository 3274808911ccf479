"""Shared test code: random nested pytrees, gradient streams, comparisons.

The optimizer registry every conformance test joins lives here too, so that a
new optimizer is added in one place.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

import jgd

# Shapes of the random nested pytree: dict / list / tuple nesting, a scalar,
# vectors, a matrix, a 3-D tensor and a zero-size leaf.
TREE_SHAPES = {
    "scalar": (),
    "layers": [
        {"w": (3, 4), "b": (4,)},
        ((2, 3, 2), (0,)),
    ],
    "head": {"v": (7,)},
}

TOL = {jnp.float32: 1e-6, jnp.float64: 1e-12}


def random_tree(key, dtype=jnp.float32, shapes=TREE_SHAPES, scale=1.0):
    """A pytree shaped like ``shapes`` with N(0, scale^2) leaves of ``dtype``."""
    leaves, treedef = jax.tree.flatten(
        shapes,
        is_leaf=lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s),
    )
    keys = jax.random.split(key, len(leaves))
    arrays = [
        (
            scale
            * jax.random.normal(k, s, jnp.float32 if dtype == jnp.bfloat16 else dtype)
        ).astype(dtype)
        for k, s in zip(keys, leaves)
    ]
    return jax.tree.unflatten(treedef, arrays)


def gradient_stream(key, like, steps, scale=1.0):
    """``steps`` random gradient trees shaped like ``like``."""
    dtype = jax.tree.leaves(like)[0].dtype
    shapes = jax.tree.map(lambda x: tuple(x.shape), like)
    return [random_tree(k, dtype, shapes, scale) for k in jax.random.split(key, steps)]


def assert_trees_close(actual, expected, rtol, where=""):
    """Leaf-by-leaf ``assert_allclose`` naming the path of the first mismatch.
    Values must be finite: NaN matching NaN (or inf matching inf) would let a
    run that overflowed pass without comparing anything."""
    pa = jax.tree_util.tree_flatten_with_path(actual)[0]
    pe = jax.tree.leaves(expected)
    assert len(pa) == len(pe), f"{where}: {len(pa)} leaves vs {len(pe)}"
    for (path, a), e in zip(pa, pe):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        at = f"{where}{jax.tree_util.keystr(path)}"
        assert a.shape == e.shape, f"{at}: shape {a.shape} vs {e.shape}"
        assert np.isfinite(e).all(), f"{at}: the expected values are not finite"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=0, err_msg=at)


@contextlib.contextmanager
def standard_promotion():
    """optax does not pass strict dtype promotion; run its side under standard."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def f64_count(schedule):
    """KNOWN_DIFFERENCES['schedule precision'] (tests/test_vs_optax.py): under
    x64, evaluate an optax schedule at the float64 step count so it computes in
    float64 too."""
    if not jax.config.jax_enable_x64:
        return schedule
    return lambda count: schedule(jnp.asarray(count, jnp.float64))


def lr(schedule: bool, jgd_side: bool, init_value: float = 0.0):
    """The learning rate of a cross-check case: 0.05, or (``schedule``) a
    warmup-cosine schedule from ``init_value``, jgd's or optax's (the same
    numbers)."""
    if not schedule:
        return 0.05
    args = (init_value, 0.1, 10, 40)
    if jgd_side:
        return jgd.schedules.warmup_cosine_decay_schedule(*args, end_value=0.01)
    import optax  # a test dependency; jgd itself never imports it

    return f64_count(
        optax.schedules.warmup_cosine_decay_schedule(*args, end_value=0.01)
    )


def decay_mask(params):
    """Decay matrices only (as one usually exempts biases and scalars)."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def bowl(x):
    """Quadratic bowl on a pytree: sum of x**2 / 2 over all elements (curvature 1)."""
    leaves = jax.tree.leaves(x)
    return sum(jnp.sum(0.5 * jnp.square(v)) for v in leaves)


def rosenbrock(x):
    """f(a, b) = (1 - a)^2 + 100 (b - a^2)^2, minimum 0 at (1, 1)."""
    a, b = x[0], x[1]
    return jnp.square(1 - a) + 100 * jnp.square(b - a * a)


# One registry of optimizers for the conformance suite: name -> (factory of the
# learning rate, learning rate on the bowl, learning rate on Rosenbrock, steps
# on Rosenbrock). Every optimizer and every flag combination joins here.
OPTIMIZERS = {
    "gd": (lambda lr: jgd.gd(lr), 0.5, 1e-3, 20000),
    "sgd": (lambda lr: jgd.sgd(lr), 0.5, 1e-3, 20000),
    "sgd_momentum": (lambda lr: jgd.sgd(lr, momentum=0.9), 0.1, 1e-3, 5000),
    "sgd_nesterov": (
        lambda lr: jgd.sgd(lr, momentum=0.9, nesterov=True),
        0.1,
        1e-3,
        5000,
    ),
    "rmsprop": (lambda lr: jgd.rmsprop(lr), 0.01, 1e-3, 5000),
    "rmsprop_centered_momentum": (
        lambda lr: jgd.rmsprop(lr, centered=True, momentum=0.9, nesterov=True),
        0.01,
        1e-4,
        10000,
    ),
    "rmsprop_bias_correction": (
        lambda lr: jgd.rmsprop(lr, eps_in_sqrt=False, bias_correction=True),
        0.01,
        1e-3,
        5000,
    ),
    "adagrad": (lambda lr: jgd.adagrad(lr), 0.5, 0.1, 20000),
    "adam": (lambda lr: jgd.adam(lr), 0.05, 0.01, 5000),
    "adam_nesterov": (lambda lr: jgd.adam(lr, nesterov=True), 0.05, 0.01, 5000),
    "adamw": (lambda lr: jgd.adamw(lr, weight_decay=1e-4), 0.05, 0.01, 5000),
    "adam_schedule": (
        lambda lr: jgd.adam(jgd.schedules.exponential_decay(lr, 2000, 0.5)),
        0.05,
        0.02,
        5000,
    ),
}
