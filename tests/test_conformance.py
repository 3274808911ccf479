"""The conformance suite every optimizer joins through ``helpers.OPTIMIZERS``.

Runs under jit without retracing, keeps state structure, shapes and dtypes
stable, keeps f32/bf16/f64 leaves in their dtype on nested trees with scalar and
empty leaves, converges on a quadratic bowl and on Rosenbrock, and builds
inside jit with a traced learning rate.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
from tests import catalogue
from tests.helpers import OPTIMIZERS as _CORE
from tests.helpers import bowl, random_tree, rosenbrock

OPTIMIZERS = {**_CORE, **catalogue.CONFORMANCE}
NAMES = sorted(OPTIMIZERS)


def _short(name):
    """The catalogue's entries run the jit, retrace and bowl checks in CI and
    the rest (dtypes, Rosenbrock, a traced learning rate) with ``-m slow``, to
    keep CI in its budget; the tutorials' optimizers run everything."""
    return pytest.param(name, id=name, marks=() if name in _CORE else pytest.mark.slow)


LONG = [_short(n) for n in NAMES]


def _structure(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name", NAMES)
def test_jit_no_retrace_and_stable_state(name):
    make, lr, _, _ = OPTIMIZERS[name]
    opt = make(lr)
    params = random_tree(jax.random.key(0))
    state = opt.init(params)
    before = _structure(state)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return jgd.apply_updates(params, updates), state

    for i in range(3):
        params, state = step(params, state, random_tree(jax.random.key(i + 1)))
        assert _structure(state) == before
    counts = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.integer)]
    assert all(c.dtype == jnp.int32 and c.shape == () and int(c) == 3 for c in counts)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize("name", LONG)
def test_dtypes_are_kept(name, dtype, request):
    if dtype == jnp.float64:
        request.getfixturevalue("x64")
    make, lr, _, _ = OPTIMIZERS[name]
    opt = make(lr)
    params = random_tree(jax.random.key(0), dtype)
    state = opt.init(params)
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (dtype, jnp.int32)
    updates, state = jax.jit(opt.update)(
        random_tree(jax.random.key(1), dtype), state, params
    )
    new = jgd.apply_updates(params, updates)
    for tree in (updates, new):
        assert all(x.dtype == dtype for x in jax.tree.leaves(tree))
    assert all(
        bool(jnp.all(jnp.isfinite(x.astype(jnp.float32)))) for x in jax.tree.leaves(new)
    )


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_the_bowl(name):
    make, lr, _, _ = OPTIMIZERS[name]
    opt = make(lr)
    x0 = random_tree(jax.random.key(0), scale=2.0)

    def body(carry, _):
        x, s = carry
        u, s = opt.update(jax.grad(bowl)(x), s, x)
        return (jgd.apply_updates(x, u), s), None

    (x, _), _ = jax.jit(
        lambda x: jax.lax.scan(body, (x, opt.init(x)), None, length=1000)
    )(x0)
    assert float(bowl(x)) < 1e-3 * float(bowl(x0))
    assert max(float(jnp.max(jnp.abs(v), initial=0)) for v in jax.tree.leaves(x)) < 0.05


@pytest.mark.parametrize("name", LONG)
def test_converges_on_rosenbrock(name):
    make, _, lr, steps = OPTIMIZERS[name]
    opt = make(lr)
    x0 = jnp.array([-1.2, 1.0])

    def body(carry, _):
        x, s = carry
        u, s = opt.update(jax.grad(rosenbrock)(x), s, x)
        return (jgd.apply_updates(x, u), s), None

    (x, _), _ = jax.jit(
        lambda x: jax.lax.scan(body, (x, opt.init(x)), None, length=steps)
    )(x0)
    assert float(rosenbrock(x)) < 1e-3
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=0.06)


@pytest.mark.parametrize("name", LONG)
def test_builds_inside_jit_with_a_traced_learning_rate(name):
    make, lr, _, _ = OPTIMIZERS[name]
    params = random_tree(jax.random.key(0))
    grads = random_tree(jax.random.key(1))

    def step(lr):
        opt = make(lr)
        updates, _ = opt.update(grads, opt.init(params), params)
        return updates

    traced = jax.jit(step)(lr)
    eager = step(lr)
    for a, b in zip(jax.tree.leaves(traced), jax.tree.leaves(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
