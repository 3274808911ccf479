"""L-BFGS and its line searches (jgd/optimizers/quasi_newton.py,
jgd/transforms/linesearch.py).

The line searches take ``value=``, ``grad=`` and ``value_fn=`` in ``update``,
which tests/test_vs_optax.py's runner does not pass, so they are cross-checked
here against optax 0.2.8, step by step (updates, params and every state leaf),
on a nested tree with a quadratic objective, on Rosenbrock and on a small
logistic regression, at f32 rtol 1e-6 and f64 rtol 1e-12. Then golden numbers
without optax (the two-loop recursion against NumPy, the line searches by
hand, a quadratic solved in a few steps), jit without retracing,
value_and_grad_from_state and the errors.
"""

from __future__ import annotations

import collections
import functools
import inspect
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from tests.helpers import (
    TOL,
    assert_trees_close,
    random_tree,
    rosenbrock,
    standard_promotion,
)

# --------------------------------------------------------------------------
# Problems: (value_fn, initial params, keyword arguments of value_fn).
# --------------------------------------------------------------------------


def _quadratic_tree(dtype):
    """A convex quadratic on the standard nested tree (scalar, matrix, 3-D and
    zero-size leaves): a diagonal part plus a rank-one coupling of all leaves."""
    d = jax.tree.map(lambda x: 0.5 + jnp.abs(x), random_tree(jax.random.key(3), dtype))
    c = random_tree(jax.random.key(4), dtype)
    w = random_tree(jax.random.key(5), dtype, scale=0.3)

    def fn(x):
        diag = sum(jnp.sum(di * (xi - ci) ** 2) for di, xi, ci in _zip(d, x, c))
        coupling = sum(jnp.sum(wi * (xi - ci)) for wi, xi, ci in _zip(w, x, c))
        return 0.5 * diag + 0.5 * coupling**2

    return fn, random_tree(jax.random.key(1), dtype), {}


def _zip(*trees):
    return zip(*(jax.tree.leaves(t) for t in trees))


def _rosenbrock(dtype):
    return rosenbrock, jnp.array([-1.2, 1.0], dtype), {}


def _logistic(dtype):
    """Logistic regression with an l2 term; the data go to value_fn as the
    keywords x= and y=, through update's extra arguments."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(32, 5)), dtype)
    y = jnp.asarray(rng.integers(0, 2, size=32), dtype)

    def fn(params, x, y):
        z = x @ params["w"] + params["b"]
        return jnp.mean(jax.nn.softplus(z) - y * z) + 0.01 * jnp.sum(params["w"] ** 2)

    params = {"w": jnp.zeros(5, dtype), "b": jnp.zeros((), dtype)}
    return fn, params, {"x": x, "y": y}


def _complex_quadratic(dtype):
    cdt = jnp.complex64 if dtype == jnp.float32 else jnp.complex128
    rng = np.random.default_rng(1)
    c = jnp.asarray(rng.normal(size=4) + 1j * rng.normal(size=4), cdt)
    d = jnp.asarray(1.0 + rng.random(4), dtype)

    def fn(z):
        return jnp.sum(d * jnp.abs(z - c) ** 2)

    return fn, jnp.zeros(4, cdt), {}


PROBLEMS = {
    "quadratic_tree": _quadratic_tree,
    "rosenbrock": _rosenbrock,
    "logistic": _logistic,
    "complex": _complex_quadratic,
}

# --------------------------------------------------------------------------
# Configurations: name -> (jgd factory, optax factory, reuse the line
# search's value and gradient through value_and_grad_from_state).
# --------------------------------------------------------------------------

CONFIGS = {
    "lbfgs": (lambda: jgd.lbfgs(), lambda: optax.lbfgs(), True),
    "lbfgs_options": (
        lambda: jgd.lbfgs(
            0.5,
            memory_size=2,
            scale_init_precond=False,
            linesearch=jgd.scale_by_zoom_linesearch(
                15,
                max_learning_rate=3.0,
                increase_factor=1.5,
                curv_rtol=0.5,
                approx_dec_rtol=None,
                stepsize_precision=1e-6,
                initial_guess_strategy="keep",
            ),
        ),
        lambda: optax.lbfgs(
            0.5,
            memory_size=2,
            scale_init_precond=False,
            linesearch=optax.scale_by_zoom_linesearch(
                15,
                max_learning_rate=3.0,
                increase_factor=1.5,
                curv_rtol=0.5,
                approx_dec_rtol=None,
                stepsize_precision=1e-6,
                initial_guess_strategy="keep",
            ),
        ),
        True,
    ),
    "lbfgs_backtracking": (
        lambda: jgd.lbfgs(
            linesearch=jgd.scale_by_backtracking_linesearch(20, store_grad=True)
        ),
        lambda: optax.lbfgs(
            linesearch=optax.scale_by_backtracking_linesearch(20, store_grad=True)
        ),
        True,
    ),
    "sgd_zoom": (
        lambda: jgd.chain(
            jgd.sgd(1.0),
            jgd.scale_by_zoom_linesearch(15, tol=1e-9, curv_rtol=float("inf")),
        ),
        lambda: optax.chain(
            optax.sgd(1.0),
            optax.scale_by_zoom_linesearch(15, tol=1e-9, curv_rtol=float("inf")),
        ),
        True,
    ),
    "sgd_backtracking": (
        lambda: jgd.chain(
            jgd.sgd(1.0),
            jgd.scale_by_backtracking_linesearch(
                15,
                slope_rtol=1e-3,
                decrease_factor=0.5,
                increase_factor=2.0,
                max_learning_rate=2.0,
                atol=1e-9,
                rtol=1e-9,
            ),
        ),
        lambda: optax.chain(
            optax.sgd(1.0),
            optax.scale_by_backtracking_linesearch(
                15,
                slope_rtol=1e-3,
                decrease_factor=0.5,
                increase_factor=2.0,
                max_learning_rate=2.0,
                atol=1e-9,
                rtol=1e-9,
            ),
        ),
        False,
    ),
}

# Every problem with the default lbfgs; each other configuration on one.
CROSS = [(p, "lbfgs") for p in PROBLEMS] + [
    ("logistic", "lbfgs_options"),
    ("rosenbrock", "lbfgs_backtracking"),
    ("rosenbrock", "sgd_zoom"),
    ("logistic", "sgd_backtracking"),
]
STEPS = 12


def _run(opt, fn, params, kwargs, reuse, mod, steps=STEPS):
    """``steps`` jitted steps of ``opt`` with ``mod``'s (jgd's or optax's)
    value_and_grad_from_state; the history of (updates, params, state)."""
    value_and_grad = (
        mod.value_and_grad_from_state(fn) if reuse else jax.value_and_grad(fn)
    )

    @jax.jit
    def step(params, state, kwargs):
        extra = {"state": state} if reuse else {}
        value, grad = value_and_grad(params, **extra, **kwargs)
        updates, state = opt.update(
            grad, state, params, value=value, grad=grad, value_fn=fn, **kwargs
        )
        return updates, jgd.apply_updates(params, updates), state

    state = opt.init(params)
    history = []
    for _ in range(steps):
        updates, params, state = step(params, state, kwargs)
        history.append((updates, params, state))
    return history


def _parts(tree):
    """Complex leaves as their real and imaginary parts, for the comparison."""
    return jax.tree.map(
        lambda x: jnp.stack([x.real, x.imag]) if jnp.iscomplexobj(x) else x, tree
    )


def _is_count(path) -> bool:
    return "num_linesearch_steps" in jax.tree_util.keystr(path)


def _cross_check(problem, config, dtype):
    make_jgd, make_optax, reuse = CONFIGS[config]
    fn, params, kwargs = PROBLEMS[problem](dtype)
    ours = _run(make_jgd(), fn, params, kwargs, reuse, jgd)
    with standard_promotion():
        theirs = _run(make_optax(), fn, params, kwargs, reuse, optax)
    rtol = TOL[dtype]
    for t, ((u1, p1, s1), (u2, p2, s2)) in enumerate(zip(ours, theirs)):
        where = f"{problem}/{config} step {t}"
        assert_trees_close(_parts(u1), _parts(u2), rtol, where=f"{where} updates")
        assert_trees_close(_parts(p1), _parts(p2), rtol, where=f"{where} params")
        assert_trees_close(_parts(s1), _parts(s2), rtol, where=f"{where} state")
        leaves = jax.tree_util.tree_flatten_with_path(s1)[0]
        for (path, a), b in zip(leaves, jax.tree.leaves(s2)):
            if _is_count(path):  # KNOWN_DIFFERENCES['linesearch counts']
                assert a.dtype == jnp.int32
            else:
                assert a.dtype == b.dtype, f"{where} {jax.tree_util.keystr(path)}"
    return ours


# The zoom line search compiles slowly (seconds per side): CI runs every
# configuration once in float32 (lbfgs on the nested tree and complex leaves)
# and lbfgs on Rosenbrock in float64; the rest under -m slow.
CI_FLOAT32 = {
    ("quadratic_tree", "lbfgs"),
    ("complex", "lbfgs"),
    ("logistic", "lbfgs_options"),
    ("rosenbrock", "lbfgs_backtracking"),
    ("rosenbrock", "sgd_zoom"),
    ("logistic", "sgd_backtracking"),
}
CI_FLOAT64 = {("rosenbrock", "lbfgs")}


def _cross(in_ci):
    return [
        pytest.param(
            p, c, id=f"{p}-{c}", marks=() if (p, c) in in_ci else pytest.mark.slow
        )
        for p, c in CROSS
    ]


@pytest.mark.parametrize("problem,config", _cross(CI_FLOAT32))
def test_matches_optax_float32(problem, config):
    _cross_check(problem, config, jnp.float32)


@pytest.mark.parametrize("problem,config", _cross(CI_FLOAT64))
def test_matches_optax_float64(problem, config, x64):
    _cross_check(problem, config, jnp.float64)


def test_optax_line_search_inside_jgd_lbfgs():
    """An optax line search is carried as static configuration and still gets
    the extra arguments."""
    fn, params, kwargs = _rosenbrock(jnp.float32)
    ls = optax.scale_by_zoom_linesearch(20, initial_guess_strategy="one")
    with standard_promotion():
        ours = _run(jgd.lbfgs(linesearch=ls), fn, params, kwargs, True, jgd, 6)
        theirs = _run(optax.lbfgs(), fn, params, kwargs, True, optax, 6)
    for (u1, p1, _), (u2, p2, _) in zip(ours, theirs):
        assert_trees_close(u1, u2, TOL[jnp.float32])
        assert_trees_close(p1, p2, TOL[jnp.float32])


# --------------------------------------------------------------------------
# Golden numbers, without optax.
# --------------------------------------------------------------------------


def _numpy_direction(g, pairs, first):
    """L-BFGS's H g by Nocedal & Wright's Algorithm 7.4 on the pairs given
    (oldest first), with optax's initial scaling."""
    q = g.copy()
    alphas = []
    for s, y in reversed(pairs):
        rho = 1.0 / (y @ s)
        alphas.append(rho * (s @ q))
        q = q - alphas[-1] * y
    if first:
        gamma = min(1.0, 1.0 / np.linalg.norm(g))
    else:
        s, y = pairs[-1]
        gamma = (s @ y) / (y @ y)
    r = gamma * q
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        beta = (y @ r) / (y @ s)
        r = r + (alpha - beta) * s
    return r


@pytest.mark.parametrize("memory_size", [1, 3, 10])
def test_two_loop_recursion_matches_numpy(memory_size, x64):
    """At each step the direction uses exactly the last ``memory_size`` pairs
    (s, y), newest in ring-buffer slot (k - 1) % memory_size."""
    rng = np.random.default_rng(0)
    n = 5
    m = rng.normal(size=(n, n))
    a = m @ m.T + n * np.eye(n)  # SPD: every pair has y.s > 0
    opt = jgd.scale_by_lbfgs(memory_size=memory_size)
    update = jax.jit(opt.update)
    w = rng.normal(size=n)
    state = opt.init(jnp.asarray(w))
    pairs: collections.deque = collections.deque(maxlen=memory_size)
    prev = None
    for k in range(8):
        g = a @ w
        if prev is not None:
            pairs.append((w - prev[0], g - prev[1]))
        u, state = update(jnp.asarray(g), state, jnp.asarray(w))
        want = _numpy_direction(g, list(pairs), k == 0)
        np.testing.assert_allclose(np.asarray(u), want, rtol=1e-12, atol=0)
        if k:
            slot = (k - 1) % memory_size
            np.testing.assert_array_equal(state.diff_params_memory[slot], pairs[-1][0])
            np.testing.assert_array_equal(state.diff_updates_memory[slot], pairs[-1][1])
        prev = (w, g)
        w = w - 0.1 * rng.random() * u - 0.01 * rng.normal(size=n)
    assert int(state.count) == 8


def test_lbfgs_solves_a_convex_quadratic_in_a_few_steps(x64):
    """f = x'Ax/2 - b'x in R^2: the minimum A^-1 b to 1e-8 in 6 steps and to
    rounding in 8, the value falling at each. The first direction is -g/|g|
    (a unit step: the capped 1/|g| scaling); the zoom search accepts the first
    step meeting the Wolfe conditions (here the guess 1 each time), not the
    exact minimizer along the line, so convergence is superlinear rather
    than in 2 steps."""
    a = jnp.array([[3.0, 1.0], [1.0, 2.0]])
    b = jnp.array([1.0, -1.0])
    x0 = jnp.array([2.0, 2.0])
    x_star = np.linalg.solve(np.asarray(a), np.asarray(b))

    def f(x):
        return 0.5 * x @ a @ x - b @ x

    history = _run(jgd.lbfgs(), f, x0, {}, True, jgd, steps=8)
    np.testing.assert_allclose(history[5][1], x_star, rtol=0, atol=1e-8)
    np.testing.assert_allclose(history[7][1], x_star, rtol=0, atol=1e-15)
    values = [float(f(x0))] + [float(f(x)) for _, x, _ in history]
    assert all(v1 < v0 for v0, v1 in itertools.pairwise(values[:7]))
    g0 = np.asarray(a @ x0 - b)
    np.testing.assert_allclose(history[0][0], -g0 / np.linalg.norm(g0), rtol=1e-12)
    assert [int(s[2].info.num_linesearch_steps) for _, _, s in history] == [1] * 8


def _first_step(opt, f, x):
    @jax.jit
    def step(x, state):
        v, g = jax.value_and_grad(f)(x)
        return opt.update(g, state, x, value=v, grad=g, value_fn=f)

    return step(x, opt.init(x))


def test_backtracking_by_hand():
    """f = x^2 at x = 1 along u = -2 (sgd, lr 1): the guess min(1.5 * 1, 1) = 1
    lands on f(-1) = 1, not below 1 + 1e-4 * 1 * (-4); 0.8 gives f(-0.6) = 0.36,
    accepted. Two evaluations."""
    f = lambda x: jnp.sum(x**2)
    opt = jgd.chain(jgd.sgd(1.0), jgd.scale_by_backtracking_linesearch(15))
    x = jnp.array([1.0])
    u, state = _first_step(opt, f, x)
    ls = state[1]
    np.testing.assert_allclose(u, [-1.6], rtol=1e-6)
    np.testing.assert_allclose(ls.learning_rate, 0.8, rtol=1e-6)
    np.testing.assert_allclose(ls.value, 0.36, rtol=1e-6)
    assert int(ls.info.num_linesearch_steps) == 2
    assert float(ls.info.decrease_error) == 0.0
    assert ls.grad is None


def test_zoom_by_hand():
    """f = x^2 at x = 1 along u = -2: the step 1 overshoots (f(-1) = 1 fails
    the decrease test), so [0, 1] brackets; the parabola through phi(0) = 1,
    phi'(0) = -4, phi(1) = 1 has its minimum at 0.5, which meets both
    conditions exactly: x = 0 after two evaluations."""
    f = lambda x: jnp.sum(x**2)
    opt = jgd.chain(jgd.sgd(1.0), jgd.scale_by_zoom_linesearch(15))
    x = jnp.array([1.0])
    u, state = _first_step(opt, f, x)
    ls = state[1]
    np.testing.assert_array_equal(u, [-1.0])
    assert float(ls.learning_rate) == 0.5
    assert float(ls.value) == 0.0
    np.testing.assert_array_equal(ls.grad, [0.0])
    assert int(ls.info.num_linesearch_steps) == 2
    assert float(ls.info.decrease_error) == float(ls.info.curvature_error) == 0.0


def test_zoom_takes_no_step_when_the_objective_is_nan_everywhere():
    """No finite value on the line: the step size is 0, not NaN."""
    f = lambda x: jnp.where(jnp.sum(x) == 1.0, jnp.sum(x**2), jnp.nan)
    opt = jgd.chain(jgd.sgd(1.0), jgd.scale_by_zoom_linesearch(5))
    x = jnp.array([1.0])
    u, state = _first_step(opt, f, x)
    np.testing.assert_array_equal(u, [0.0])
    assert float(state[1].learning_rate) == 0.0
    assert int(state[1].info.num_linesearch_steps) == 5


# --------------------------------------------------------------------------
# jit, dtypes, value_and_grad_from_state, errors.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["lbfgs", "lbfgs_backtracking", "sgd_backtracking"])
def test_jit_does_not_retrace(config):
    make, _, reuse = CONFIGS[config]
    opt = make()
    fn, params, kwargs = _logistic(jnp.float32)
    value_and_grad = jgd.value_and_grad_from_state(fn)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        if reuse:
            value, grad = value_and_grad(params, state=state, **kwargs)
        else:
            value, grad = jax.value_and_grad(fn)(params, **kwargs)
        u, state = opt.update(
            grad, state, params, value=value, grad=grad, value_fn=fn, **kwargs
        )
        return jgd.apply_updates(params, u), state

    state, start = opt.init(params), fn(params, **kwargs)
    for _ in range(3):
        params, state = step(params, state)
    assert float(fn(params, **kwargs)) < float(start)


def test_bfloat16_keeps_its_dtype():
    """KNOWN_DIFFERENCES['lbfgs weights dtype']: bf16 params give bf16
    updates, params and state (int32 counts aside)."""
    fn, params, kwargs = _logistic(jnp.bfloat16)
    history = _run(jgd.lbfgs(), fn, params, kwargs, True, jgd, steps=3)
    updates, new, state = history[-1]
    for x in jax.tree.leaves((updates, new, state)):
        assert x.dtype in (jnp.bfloat16, jnp.int32)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(new))
    assert float(fn(new, **kwargs)) < float(fn(params, **kwargs))


def test_value_and_grad_from_state():
    """The initial state's value is inf: computed; then the line search's
    last evaluation, exactly."""
    fn, params, _ = _rosenbrock(jnp.float32)
    opt = jgd.lbfgs()
    state = opt.init(params)
    value_and_grad = jax.jit(jgd.value_and_grad_from_state(fn))
    v, g = value_and_grad(params, state=state)
    v2, g2 = jax.value_and_grad(fn)(params)
    np.testing.assert_allclose(v, v2, rtol=1e-6)
    np.testing.assert_allclose(g, g2, rtol=1e-6)
    update = jax.jit(functools.partial(opt.update, value_fn=fn))
    u, state = update(g, state, params, value=v, grad=g)
    v, g = value_and_grad(jgd.apply_updates(params, u), state=state)
    assert v == state[2].value
    np.testing.assert_array_equal(g, state[2].grad)


def test_value_and_grad_from_state_errors():
    value_and_grad = jgd.value_and_grad_from_state(jnp.sum)
    x = jnp.ones(2)
    message = (
        "jgd.value_and_grad_from_state: the state holds no value or no gradient; "
        "the optimizer must store them (a zoom line search, or a backtracking one "
        "with store_grad=True)."
    )
    for opt in (jgd.adam(0.1), jgd.scale_by_backtracking_linesearch(5)):
        with pytest.raises(ValueError) as info:
            value_and_grad(x, state=opt.init(x))
        assert str(info.value) == message
    two = jgd.chain(jgd.scale_by_zoom_linesearch(5), jgd.scale_by_zoom_linesearch(5))
    with pytest.raises(ValueError, match="holds 2 fields named 'value'"):
        value_and_grad(x, state=two.init(x))


@pytest.mark.parametrize(
    "name",
    [
        "lbfgs",
        "scale_by_lbfgs",
        "scale_by_zoom_linesearch",
        "scale_by_backtracking_linesearch",
    ],
)
def test_signature_is_optax(name):
    """Argument names, order and defaults (lbfgs' default line search is
    jgd's twin of optax's)."""
    ours = inspect.signature(getattr(jgd, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert list(ours) == list(theirs)
    for arg in theirs:
        if arg != "linesearch":
            assert ours[arg].default == theirs[arg].default, arg
    if name == "lbfgs":
        assert jgd.lbfgs().linesearch == jgd.scale_by_zoom_linesearch(
            max_linesearch_steps=20, initial_guess_strategy="one"
        )


def test_optimizer_as_a_jit_argument(x64):
    """Traced hyperparameters (as jgd.train passes the optimizer) give the
    closed-over numbers; a new value does not recompile."""
    fn, params, kwargs = _rosenbrock(jnp.float64)
    value_and_grad = jgd.value_and_grad_from_state(fn)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(opt, params, state):
        value, grad = value_and_grad(params, state=state)
        u, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fn)
        return jgd.apply_updates(params, u), state

    def make(curv_rtol):
        ls = jgd.scale_by_zoom_linesearch(20, curv_rtol=curv_rtol, slope_rtol=1e-3)
        return jgd.lbfgs(memory_size=4, linesearch=ls)

    closed = _run(make(0.9), fn, params, kwargs, True, jgd, steps=5)
    state = make(0.9).init(params)
    for _, want, _ in closed:
        params, state = step(make(0.9), params, state)
        np.testing.assert_allclose(params, want, rtol=1e-12, atol=0)
    step(make(0.5), params, state)


def test_update_needs_the_objective():
    opt = jgd.lbfgs()
    x = jnp.ones(2)

    def update(*args, **kwargs):  # traced only: the errors come before any math
        return jax.jit(lambda s: opt.update(x, s, *args, **kwargs))(opt.init(x))

    with pytest.raises(TypeError) as info:
        update(x)
    assert str(info.value) == (
        "jgd.lbfgs: update needs the keyword arguments value=, grad= and "
        "value_fn= (the objective's value and gradient at params, and the "
        "objective); missing value, grad, value_fn. "
        "jgd.value_and_grad_from_state(value_fn) gives value and grad."
    )
    with pytest.raises(TypeError) as info:
        update(x, value=1.0, grad=x, value_fn=jnp.sum, batch=x)
    assert str(info.value) == (
        "jgd.lbfgs: update got keyword arguments that value_fn does not take: "
        "['batch']."
    )
    with pytest.raises(TypeError, match="linesearch must be a transform"):
        jgd.lbfgs(linesearch=lambda g: g)
    with pytest.raises(TypeError) as info:
        update(value=1.0, grad=x, value_fn=jnp.sum)
    assert str(info.value) == (
        "jgd.lbfgs: update needs params (the current parameters); got None."
    )
