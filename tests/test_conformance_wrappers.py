"""The conformance suite for wrappers whose state it misreads.

tests/test_conformance.py wants every int leaf of a state to be the step
count (3 after 3 steps) and every float leaf in the params' dtype.
MultiSteps, apply_every, apply_if_finite and inject_hyperparams keep other
counters, and float32 or bool leaves on purpose. Their entries
(tests/catalogue/wrappers_conformance.py ``OWN_STATE``) name every int leaf's
value after 3 steps and the leaves kept in another dtype; the bowl,
Rosenbrock and traced-learning-rate checks are the suite's own functions.
As there, only jit, retrace and the bowl run outside ``-m slow``.
"""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import pytest

import jgd
from tests import test_conformance as suite
from tests.catalogue.wrappers_conformance import OWN_STATE
from tests.helpers import random_tree

NAMES = sorted(OWN_STATE)
SLOW = [pytest.param(n, id=n, marks=pytest.mark.slow) for n in NAMES]


@pytest.fixture
def entry(request, monkeypatch):
    """The suite's 4-tuple for ``name``, registered where its functions look."""
    name = request.param
    monkeypatch.setitem(suite.OPTIMIZERS, name, OWN_STATE[name][:4])
    return name


def _paths(tree):
    return [
        (jax.tree_util.keystr(p), x)
        for p, x in jax.tree_util.tree_leaves_with_path(tree)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_jit_no_retrace_and_stable_state(name):
    make, lr, _, _, counts, _ = OWN_STATE[name]
    opt = make(lr)
    params = random_tree(jax.random.key(0))
    state = opt.init(params)
    before = suite._structure(state)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return jgd.apply_updates(params, updates), state

    for i in range(3):
        params, state = step(params, state, random_tree(jax.random.key(i + 1)))
        assert suite._structure(state) == before
    ints = {p: x for p, x in _paths(state) if jnp.issubdtype(x.dtype, jnp.integer)}
    assert all(x.dtype == jnp.int32 and x.shape == () for x in ints.values())
    assert {p: int(x) for p, x in ints.items()} == counts


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float64])
@pytest.mark.parametrize("name", SLOW)
def test_dtypes_are_kept(name, dtype, request):
    if dtype == jnp.float64:
        request.getfixturevalue("x64")
    make, lr, _, _, _, kept = OWN_STATE[name]
    opt = make(lr)
    params = random_tree(jax.random.key(0), dtype)

    def want(path):
        rule = [f for pattern, f in kept.items() if re.search(pattern, path)]
        return (rule[0](dtype),) if rule else (dtype, jnp.int32)

    state = opt.init(params)
    updates, state = jax.jit(opt.update)(
        random_tree(jax.random.key(1), dtype), state, params
    )
    for p, x in _paths(state):
        assert x.dtype in want(p), p
    new = jgd.apply_updates(params, updates)
    for tree in (updates, new):
        assert all(x.dtype == dtype for x in jax.tree.leaves(tree))
    assert all(
        bool(jnp.all(jnp.isfinite(x.astype(jnp.float32)))) for x in jax.tree.leaves(new)
    )


@pytest.mark.parametrize("entry", NAMES, indirect=True)
def test_converges_on_the_bowl(entry):
    suite.test_converges_on_the_bowl(entry)


@pytest.mark.parametrize("entry", SLOW, indirect=True)
def test_converges_on_rosenbrock(entry):
    suite.test_converges_on_rosenbrock(entry)


@pytest.mark.parametrize("entry", SLOW, indirect=True)
def test_builds_inside_jit_with_a_traced_learning_rate(entry):
    suite.test_builds_inside_jit_with_a_traced_learning_rate(entry)
