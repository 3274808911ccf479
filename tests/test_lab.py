"""Tests for jgd.lab: test functions, trajectories, learning-rate sweeps, plots, CLI.

The checks follow the issue: a vmapped sweep equals the runs done one at a
time and traces once; a trajectory equals a plain Python loop of
``update``/``apply_updates`` step for step; every registry optimizer reaches
the bowl's minimum; momentum beats plain gd on the elongated bowl at the same
learning rate; ``lr > 2 / L`` diverges on a quadratic of curvature ``L`` and
the sweep flags it; plots are valid PNGs; the CLI's errors list valid names.
Expected values come from closed forms (``x_k = 5 * 0.8**k``,
``(1 - lr * L)**k``) or independent NumPy computations, never from the code.
"""

from __future__ import annotations

import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
from jgd import lab
from jgd.lab import (
    FUNCTIONS,
    OPTIMIZERS,
    Sweep,
    Trajectory,
    bowl,
    elongated,
    himmelblau,
    lr_sweep,
    parabola,
    quadratic,
    rosenbrock,
    saddle,
    trajectories,
    trajectory,
)
from jgd.lab.runs import _longest_run

# Its tests share module fixtures that run for seconds: one xdist worker
# runs them all (--dist loadgroup), so the fixtures run once.
pytestmark = pytest.mark.xdist_group("lab")


# --------------------------------------------------------------------------
# Test functions.
# --------------------------------------------------------------------------


def _formula(fn, x):
    """Evaluate the landscape's documented formula with NumPy (float64)."""
    x = np.asarray(x, np.float64).reshape(-1)
    names = {"x": x[0]} if fn.ndim == 1 else {"x": x[0], "y": x[1]}
    return eval(fn.formula, {"__builtins__": {}}, names)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_matches_its_documented_formula(name):
    fn = FUNCTIONS[name]
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = np.array([rng.uniform(lo, hi) for lo, hi in fn.domain])
        x = x[0] if fn.ndim == 1 else x
        got = float(fn(jnp.asarray(x, jnp.float32)))
        np.testing.assert_allclose(got, _formula(fn, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in FUNCTIONS if FUNCTIONS[n].minimizers])
def test_minimizers_are_minima(x64, name):
    fn = FUNCTIONS[name]
    for m in fn.minimizers:
        x = jnp.asarray(m, jnp.float64)
        assert abs(float(fn(x)) - fn.minimum) < 1e-9
        # himmelblau's minimisers are given to 6 decimals: gradient ~ H * 5e-7
        np.testing.assert_allclose(jax.grad(fn)(x), 0.0, atol=1e-4)
        hess = np.atleast_2d(np.asarray(jax.hessian(fn)(x)))
        assert np.linalg.eigvalsh(hess).min() > 0, "not a strict minimum"


def test_himmelblau_has_four_distinct_minima_reached_from_four_starts():
    reached = set()
    for start in [(2.0, 2.0), (-2.0, 2.0), (-3.0, -3.0), (3.0, -2.0)]:
        x = np.asarray(trajectory(jgd.gd(0.01), himmelblau, start, 300).params[-1])
        dist = [np.linalg.norm(x - np.asarray(m)) for m in himmelblau.minimizers]
        assert min(dist) < 1e-4
        reached.add(int(np.argmin(dist)))
    assert reached == {0, 1, 2, 3}


def test_saddle_is_a_stationary_point_with_indefinite_hessian(x64):
    x = jnp.zeros(2, jnp.float64)
    np.testing.assert_array_equal(jax.grad(saddle)(x), 0.0)
    np.testing.assert_allclose(np.linalg.eigvalsh(jax.hessian(saddle)(x)), [-2.0, 2.0])
    assert saddle.minimum is None and saddle.minimizers == ()


@pytest.mark.parametrize(
    "fn", [parabola, bowl, elongated, quadratic([4.0, 0.5])], ids=lambda f: f.name
)
def test_quadratic_curvature_is_the_largest_hessian_eigenvalue(x64, fn):
    x = jnp.asarray(fn.start, jnp.float64)
    hess = np.atleast_2d(np.asarray(jax.hessian(fn)(x)))
    assert np.linalg.eigvalsh(hess).max() == pytest.approx(fn.curvature)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_start_and_minimizers_lie_in_the_domain(name):
    fn = FUNCTIONS[name]
    for point in (fn.start, *fn.minimizers):
        for v, (lo, hi) in zip(np.ravel(point), fn.domain):
            assert lo <= v <= hi
    squash = lambda text: "".join(text.split()).replace("*", "")
    assert squash(fn.formula) in squash(fn.__doc__)  # the docstring states it


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functions_keep_the_dtype(name, dtype):
    fn = FUNCTIONS[name]
    x = jnp.asarray(fn.start, dtype)
    assert fn(x).dtype == dtype
    assert jax.grad(fn)(x).dtype == dtype


def test_quadratic_rejects_bad_curvatures():
    with pytest.raises(
        ValueError, match="jgd.lab.quadratic: curvatures must be positive"
    ):
        quadratic([1.0, -2.0])
    with pytest.raises(ValueError, match="curvatures"):
        quadratic([])


# --------------------------------------------------------------------------
# Trajectories.
# --------------------------------------------------------------------------


def test_trajectory_reproduces_the_tutorial_example():
    """The seeds' loop: x = 5, lr = 0.1, gradient 2x, 20 steps: x_k = 5 * 0.8**k."""
    run = trajectory(jgd.gd(0.1), parabola, 5.0, 20)
    k = np.arange(21)
    np.testing.assert_allclose(run.params, 5.0 * 0.8**k, rtol=1e-5)
    np.testing.assert_allclose(run.losses, (5.0 * 0.8**k) ** 2, rtol=1e-5)
    w, seed = 5.0, []  # the tutorial's own loop, in Python floats
    for _ in range(20):
        w = w - 0.1 * (2 * w)
        seed.append(w)
    np.testing.assert_allclose(run.params[1:], seed, rtol=1e-5)


def _python_loop(opt, fn, x0, steps):
    x = jnp.asarray(x0)
    state, xs, losses = opt.init(x), [x], []
    for _ in range(steps):
        loss, g = jax.value_and_grad(fn)(x)
        updates, state = opt.update(g, state, x)
        x = jgd.apply_updates(x, updates)
        xs.append(x)
        losses.append(loss)
    losses.append(fn(x))
    return np.stack(xs), np.stack(losses)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_trajectory_equals_a_python_loop_step_by_step(x64, name):
    """Eager Python loop, float64, on Rosenbrock (which amplifies any error)."""
    lr = 1e-3 if name in ("gd", "sgd", "momentum", "nesterov") else 0.05
    x0 = jnp.asarray(rosenbrock.start, jnp.float64)
    xs, losses = _python_loop(OPTIMIZERS[name](lr), rosenbrock, x0, 30)
    run = trajectory(OPTIMIZERS[name](lr), rosenbrock, x0, 30)
    assert run.params.dtype == jnp.float64 and run.params.shape == (31, 2)
    np.testing.assert_allclose(run.params, xs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(run.losses, losses, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_trajectory_equals_a_loop_of_jitted_steps_in_float32(name):
    """float32: a Python loop whose step (update + apply_updates) is jitted with
    the optimizer as an argument, so both sides trace the hyperparameters.
    (An eager loop folds ``1 - b2`` in Python floats instead: adam's
    ``1 - b2**t`` then differs by ~1e-5 relative, which is why the eager
    comparison above runs in float64.)"""
    lr = 1e-3 if name in ("gd", "sgd", "momentum", "nesterov") else 0.05

    @jax.jit
    def step(opt, x, state):
        loss, g = jax.value_and_grad(rosenbrock)(x)
        updates, state = opt.update(g, state, x)
        return jgd.apply_updates(x, updates), state, loss

    opt = OPTIMIZERS[name](lr)
    x = jnp.asarray(rosenbrock.start, jnp.float32)
    state, xs, losses = opt.init(x), [x], []
    for _ in range(30):
        x, state, loss = step(opt, x, state)
        xs.append(x)
        losses.append(loss)
    run = trajectory(opt, rosenbrock, steps=30)
    assert run.params.dtype == jnp.float32
    np.testing.assert_allclose(run.params, np.stack(xs), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run.losses[:-1], np.stack(losses), rtol=1e-6)


def test_trajectory_keeps_bfloat16():
    run = trajectory(jgd.adam(0.1), bowl, jnp.asarray(bowl.start, jnp.bfloat16), 20)
    assert run.params.dtype == jnp.bfloat16 and run.losses.dtype == jnp.bfloat16
    assert float(run.losses[-1]) < 0.1 * float(run.losses[0])


def test_trajectory_on_a_pytree_loss_with_data():
    x = jnp.linspace(-1.0, 1.0, 8)
    y = 3.0 * x + 1.0

    def loss(p, batch):
        bx, by = batch
        return jnp.mean((p["w"] * bx + p["b"] - by) ** 2)

    p0 = {"w": jnp.zeros(()), "b": jnp.zeros(())}
    run = trajectory(jgd.gd(0.3), loss, p0, 200, data=(x, y))
    assert run.params["w"].shape == (201,) and run.losses.shape == (201,)
    np.testing.assert_allclose(run.params["w"][-1], 3.0, rtol=1e-4)
    np.testing.assert_allclose(run.params["b"][-1], 1.0, rtol=1e-4)


def test_trajectory_accepts_an_optax_optimizer():
    import optax

    with jax.numpy_dtype_promotion("standard"):
        theirs = trajectory(optax.sgd(0.1), bowl, steps=15)
    ours = trajectory(jgd.gd(0.1), bowl, steps=15)
    np.testing.assert_allclose(theirs.params, ours.params, rtol=1e-6)


def test_trajectories_batch_matching_structures_and_keep_order():
    opts = [jgd.gd(0.05), jgd.adam(0.1), jgd.gd(0.2), jgd.adam(0.3), jgd.gd(0.4)]
    runs = trajectories(opts, rosenbrock, steps=25)
    assert len(runs) == 5 and all(isinstance(r, Trajectory) for r in runs)
    for opt, run in zip(opts, runs):
        one = trajectory(opt, rosenbrock, steps=25)
        np.testing.assert_allclose(run.params, one.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(run.losses, one.losses, rtol=1e-5, atol=1e-6)


def test_trajectory_rejects_bad_arguments():
    with pytest.raises(TypeError, match="jgd.lab.trajectory: steps must be an integer"):
        trajectory(jgd.gd(0.1), bowl, steps=2.5)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        trajectory(jgd.gd(0.1), bowl, steps=-1)
    with pytest.raises(TypeError, match="x0 must be given"):
        trajectory(jgd.gd(0.1), lambda x: jnp.sum(x**2), steps=3)


# --------------------------------------------------------------------------
# The claims, with numbers.
# --------------------------------------------------------------------------

_BOWL_LR = {  # a reasonable learning rate per optimizer (adaptive ones move ~lr/step)
    "gd": 0.1,
    "sgd": 0.1,
    "momentum": 0.1,
    "nesterov": 0.1,
    "rmsprop": 0.003,
    "adagrad": 0.5,
    "adam": 0.1,
    "adamw": 0.1,
}


def test_the_registry_has_the_lab_optimizers():
    assert set(OPTIMIZERS) == set(_BOWL_LR)
    assert OPTIMIZERS["momentum"](0.1) == jgd.sgd(0.1, momentum=0.9)
    assert OPTIMIZERS["nesterov"](0.1) == jgd.sgd(0.1, momentum=0.9, nesterov=True)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registry_optimizer_reaches_the_bowl_minimum(name):
    run = trajectory(OPTIMIZERS[name](_BOWL_LR[name]), bowl, steps=1000)
    assert np.linalg.norm(run.params[-1] - np.asarray(bowl.minimizers[0])) < 1e-2
    assert run.losses[-1] < 1e-4 * run.losses[0]


def _steps_to(losses, fraction):
    """First step whose loss is <= fraction * the initial loss (inf if never)."""
    below = np.flatnonzero(losses <= fraction * losses[0])
    return int(below[0]) if below.size else math.inf


def test_momentum_beats_gd_on_the_elongated_bowl_at_the_same_learning_rate():
    """Curvatures 1 and 100. For lr < 2/100, gd shrinks the flat direction by
    (1 - lr) per step; heavy ball (0.9) by about sqrt(0.9) = 0.95 per step once
    lr * 1 < (1 - sqrt(0.9))**2 fails, i.e. several times faster."""
    lrs = [0.005, 0.01, 0.015, 0.019]
    plain = lr_sweep(OPTIMIZERS["gd"], elongated, lrs, 2000)
    heavy = lr_sweep(OPTIMIZERS["momentum"], elongated, lrs, 2000)
    for lr, a, b in zip(lrs, plain.losses, heavy.losses):
        n_gd, n_momentum = _steps_to(a, 1e-6), _steps_to(b, 1e-6)
        assert n_gd < math.inf, f"gd did not get there at lr {lr}"
        assert n_momentum < n_gd / 2, (lr, n_momentum, n_gd)


def test_sweep_flags_learning_rates_above_2_over_L_on_a_quadratic():
    L = 4.0  # f = 2 x**2, gd step: x <- (1 - lr L) x, stable iff lr < 2 / L = 0.5
    fn = quadratic([L])
    lrs = np.array([0.001, 0.05, 0.2, 0.45, 0.55, 0.7, 1.0])
    steps = 60
    s = lr_sweep(jgd.gd, fn, lrs, steps)
    np.testing.assert_array_equal(s.diverged, lrs > 2 / L)
    ok = ~s.diverged
    expected = s.initial_loss * (1 - lrs[ok] * L) ** (2 * steps)  # closed form
    np.testing.assert_allclose(s.final_loss[ok], expected, rtol=1e-4, atol=1e-30)
    assert s.too_slow.tolist() == [True] + [False] * 6  # 0.996**120 = 0.62 of start
    assert s.converged.tolist() == [False, True, True, True, False, False, False]
    assert s.stable_range == (0.05, 0.45)
    assert s.best_learning_rate == 0.2  # 1 - 0.2 * 4 = 0.2 shrinks fastest


def test_sweep_on_the_lessons_linear_regression_flags_the_2_over_L_limit():
    """Full-batch gd on the lessons' linear regression (jgd.models, MSE): the
    loss's Hessian is 2/n [X 1]^T [X 1]; its largest eigenvalue L sets the
    limit 2/L. NumPy computes L and the least-squares answer independently."""
    from jgd import losses, models

    x, y, _, _ = models.make_regression(jax.random.key(0), 64, 3, noise=0.1)
    model = models.linear_regression(3)

    def loss(params, batch):
        bx, by = batch
        return losses.mean_squared_error(model.apply(params, bx), by)

    a = np.concatenate([np.asarray(x, np.float64), np.ones((x.shape[0], 1))], axis=1)
    L = np.linalg.eigvalsh(2 / a.shape[0] * a.T @ a).max()
    coef = np.linalg.lstsq(a, np.asarray(y, np.float64), rcond=None)[0]
    best = float(np.mean((a @ coef - np.asarray(y, np.float64)) ** 2))
    lrs = np.array([0.01, 0.5, 0.9, 1.1, 1.5]) * (2 / L)
    p0 = model.init(jax.random.key(1))
    s = lr_sweep(jgd.gd, loss, lrs, 100, p0, data=(x, y), minimum=best)
    assert s.diverged.tolist() == [False, False, False, True, True]
    assert s.converged.tolist() == [False, True, True, False, False]
    assert s.too_slow.tolist() == [True, False, False, False, False]
    i = int(np.argmax(s.converged))
    np.testing.assert_allclose(s.final_params["w"][i], coef[:3], atol=1e-3)
    np.testing.assert_allclose(s.final_params["b"][i], coef[3], atol=1e-3)


# --------------------------------------------------------------------------
# Sweeps: one vmap, one trace, the same numbers as one run at a time.
# --------------------------------------------------------------------------


def test_vmapped_sweep_equals_runs_one_at_a_time(x64):
    lrs = [0.003, 0.01, 0.03, 0.1, 0.3]
    s = lr_sweep(jgd.adam, rosenbrock, lrs, 40)
    assert s.losses.shape == (5, 41) and s.losses.dtype == np.float64
    for i, lr in enumerate(lrs):
        one = trajectory(jgd.adam(lr), rosenbrock, steps=40)
        np.testing.assert_allclose(s.losses[i], one.losses, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            s.final_params[i], one.params[-1], rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_vmapped_sweep_equals_single_sweeps_in_float32(name):
    """float32, diverging learning rates included (NaN where they blow up)."""
    lrs = [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
    s = lr_sweep(OPTIMIZERS[name], rosenbrock, lrs, 40)
    assert s.losses.dtype == np.float32
    for i, lr in enumerate(lrs):
        one = lr_sweep(OPTIMIZERS[name], rosenbrock, [lr], 40)
        np.testing.assert_allclose(
            s.losses[i], one.losses[0], rtol=1e-6, equal_nan=True
        )
        if name == "momentum":  # no bias correction: also equal to trajectory
            run = trajectory(OPTIMIZERS[name](lr), rosenbrock, steps=40)
            np.testing.assert_allclose(
                s.losses[i], run.losses, rtol=1e-6, equal_nan=True
            )


def test_sweep_traces_once_for_all_learning_rates():
    seen = []

    def make_opt(lr):
        seen.append(lr)
        return jgd.sgd(lr, momentum=0.9)

    s = lr_sweep(make_opt, bowl, [0.001, 0.01, 0.1, 0.5, 1.0, 2.0, 4.0, 8.0], 30)
    assert len(seen) == 1, "the optimizer was built once per learning rate"
    assert isinstance(seen[0], jax.core.Tracer) and seen[0].shape == ()
    lr_sweep(make_opt, bowl, [0.002, 0.02, 0.2, 0.6, 1.1, 2.1, 4.1, 8.1], 30)
    assert len(seen) == 1, "new learning rates of the same count recompiled"
    assert s.diverged[-1] and not s.diverged[0]


def test_sweep_flags_non_finite_losses_as_diverged():
    s = lr_sweep(jgd.gd, bowl, [0.1, 1e3], 200)  # 1e3: |1 - 2e3|**200 overflows
    assert not np.isfinite(s.final_loss[1])
    assert s.diverged.tolist() == [False, True]


def test_longest_run_of_converged_learning_rates():
    v = np.arange(8.0)
    assert _longest_run(v, np.array([1, 0, 1, 1, 1, 0, 1, 1], bool)) == (2.0, 4.0)
    assert _longest_run(v, np.zeros(8, bool)) is None
    assert _longest_run(v, np.ones(8, bool)) == (0.0, 7.0)


def test_lr_sweep_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match="learning_rates must be positive, finite and increasing"
    ):
        lr_sweep(jgd.gd, bowl, [0.1, 0.01], 10)
    with pytest.raises(ValueError, match="learning_rates must be positive"):
        lr_sweep(jgd.gd, bowl, [-0.1, 0.1], 10)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        lr_sweep(jgd.gd, bowl, [[0.1, 0.2]], 10)
    with pytest.raises(TypeError, match="make_opt must be a function"):
        lr_sweep(jgd.gd(0.1), bowl, [0.1], 10)
    with pytest.raises(ValueError, match="tol must be in"):
        lr_sweep(jgd.gd, bowl, [0.1], 10, tol=2.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        lr_sweep(jgd.gd, bowl, [0.1], 0)


# --------------------------------------------------------------------------
# Plots: valid, non-empty, readable PNGs.
# --------------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        pixels = np.asarray(im.convert("L"), np.float64)
    assert w >= 400 and h >= 300
    assert pixels.std() > 10, "the picture is (almost) blank"


def _axes(fig):
    """The plotting axes of a figure, without colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _check_axes(ax, log_y=False):
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert ax.get_legend() is not None and ax.get_legend().get_texts()
    if log_y:
        assert ax.get_yscale() == "log"


@pytest.fixture(scope="module")
def runs():
    opts = {
        "gd": jgd.gd(1e-3),
        "momentum": OPTIMIZERS["momentum"](1e-3),
        "adam": jgd.adam(0.1),
    }
    return {k: trajectory(o, rosenbrock, steps=60) for k, o in opts.items()}


def test_plot_contour_writes_a_png(tmp_path, runs):
    fig = lab.plot_contour(rosenbrock, runs, tmp_path / "c.png", title="Rosenbrock")
    _check_png(tmp_path / "c.png")
    _check_axes(_axes(fig)[0])
    labels = [t.get_text() for t in _axes(fig)[0].get_legend().get_texts()]
    assert all(any(k in t for t in labels) for k in runs) and "minimum" in labels


def test_plot_losses_and_trajectories_write_pngs(tmp_path, runs):
    fig = lab.plot_losses(runs, tmp_path / "l.png")
    _check_png(tmp_path / "l.png")
    _check_axes(_axes(fig)[0], log_y=True)
    fig = lab.plot_trajectories(rosenbrock, runs, tmp_path / "t.png")
    _check_png(tmp_path / "t.png")
    _check_axes(_axes(fig)[0])
    _check_axes(_axes(fig)[-1], log_y=True)


def test_plot_saddle_uses_a_symlog_loss_axis(tmp_path):
    run = trajectory(jgd.gd(0.05), saddle, steps=200)  # y grows 1.1x per step
    fig = lab.plot_trajectories(saddle, {"gd": run}, tmp_path / "s.png")
    _check_png(tmp_path / "s.png")
    assert _axes(fig)[-1].get_yscale() == "symlog"  # f goes far below 0


def test_plot_steps_1d_draws_the_tutorial_bowl(tmp_path):
    runs = {"gd, lr 0.1": trajectory(jgd.gd(0.1), parabola, 5.0, 20)}
    runs["gd, lr 1.05 (diverges)"] = trajectory(jgd.gd(1.05), parabola, 5.0, 20)
    fig = lab.plot_steps_1d(parabola, runs, tmp_path / "p.png")
    _check_png(tmp_path / "p.png")
    _check_axes(_axes(fig)[0])
    _check_axes(_axes(fig)[-1], log_y=True)
    texts = [t.get_text() for t in _axes(fig)[0].texts]
    assert "x0 = 5" in texts and "x1 = 4" in texts and "x2 = 3.2" in texts


def test_plot_sweep_marks_the_regions(tmp_path):
    s = lr_sweep(jgd.gd, quadratic([4.0]), [0.001, 0.05, 0.2, 0.45, 0.55, 1.0], 60)
    fig = lab.plot_sweep(s, tmp_path / "w.png", title="gd on a quadratic")
    _check_png(tmp_path / "w.png")
    ax = _axes(fig)[0]
    _check_axes(ax, log_y=True)
    assert ax.get_xscale() == "log"
    labels = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    for word in ("diverges", "too slow", "converges", "stable range: 0.05 to 0.45"):
        assert word in labels


def test_plots_reject_wrong_inputs(runs):
    with pytest.raises(
        TypeError, match="jgd.lab.plot_contour: fn must be a jgd.lab landscape"
    ):
        lab.plot_contour(lambda x: x, runs)
    with pytest.raises(ValueError, match="must be a 2-D landscape"):
        lab.plot_contour(parabola, runs)
    with pytest.raises(TypeError, match="runs must be a mapping"):
        lab.plot_losses([1, 2])
    with pytest.raises(TypeError, match="sweep must be a jgd.lab.Sweep"):
        lab.plot_sweep(runs)


def test_plots_need_matplotlib(monkeypatch, runs, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(
        ImportError,
        match=r"jgd.lab.plot_losses: matplotlib is needed: pip install 'jgd\[plot\]'",
    ):
        lab.plot_losses(runs)
    assert lab.main(["bowl", "--steps", "3", "--out", str(tmp_path / "b.png")]) == 1
    assert not (tmp_path / "b.png").exists()


def test_importing_the_lab_does_not_import_matplotlib():
    import subprocess

    code = "import sys, jgd.lab; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_sweep_is_a_named_tuple():
    assert issubclass(Sweep, tuple) and "stable_range" in Sweep._fields


# --------------------------------------------------------------------------
# The CLI.
# --------------------------------------------------------------------------


def test_cli_draws_paths(tmp_path, capsys):
    out = tmp_path / "bowl.png"
    rc = lab.main(["bowl", "--optimizers", "sgd,adam", "--lr", "0.1,0.2", "--steps", "5",
                   "--out", str(out)])  # fmt: skip
    assert rc == 0
    _check_png(out)
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_draws_a_sweep_through_jgd_plot(tmp_path, capsys):
    from jgd.cli import main as jgd_main

    out = tmp_path / "sweep.png"
    rc = jgd_main(["plot", "sweep", "--optimizer", "adam", "--function", "beale",
                   "--num", "4", "--steps", "5", "--out", str(out)])  # fmt: skip
    assert rc == 0
    _check_png(out)
    assert "adam on beale" in capsys.readouterr().out


def test_cli_draws_the_1d_bowl_with_start(tmp_path):
    out = tmp_path / "p.png"
    assert lab.main(["parabola", "--optimizers", "gd", "--start", "-4", "--steps", "4",
                     "--out", str(out)]) == 0  # fmt: skip
    _check_png(out)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["banana"], ["unknown plot 'banana'", *FUNCTIONS, "sweep"]),
        (
            ["bowl", "--optimizers", "sgd,lbfgs"],
            ["unknown optimizer 'lbfgs'", *OPTIMIZERS],
        ),
        (["sweep", "--optimizer", "lion"], ["unknown optimizer 'lion'", *OPTIMIZERS]),
        (["sweep", "--function", "ackley"], ["unknown function 'ackley'", *FUNCTIONS]),
        (
            ["bowl", "--optimizers", "sgd,adam", "--lr", "0.1,0.2,0.3"],
            ["one per optimizer (2)"],
        ),
        (["bowl", "--lr", "fast"], ["--lr must be numbers"]),
        (["bowl", "--lr", "-1"], ["--lr must be positive"]),
        (["bowl", "--start", "1,2,3"], ["--start must have 2 coordinate(s)"]),
        (["bowl", "--steps", "0"], ["--steps must be >= 1"]),
        (["sweep", "--lr-min", "1", "--lr-max", "0.1"], ["0 < lr-min < lr-max"]),
        (["sweep", "--num", "1"], ["--num must be >= 2"]),
        (["sweep", "--tol", "1.5"], ["--tol must be in (0, 1)"]),
        (["--steps", "3", "sweep"], ["'sweep' must come first"]),
    ],
)
def test_cli_errors_name_the_valid_choices(argv, words, capsys, tmp_path):
    assert lab.main([*argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err
    assert not (tmp_path / "x.png").exists()


def test_cli_usage_errors_and_help(capsys):
    assert lab.main(["bowl", "--steps", "many"]) == 2  # argparse's own error
    assert "invalid int value" in capsys.readouterr().err
    assert lab.main(["--help"]) == 0
    assert "rosenbrock" in capsys.readouterr().out
    assert lab.main(["sweep", "--help"]) == 0
    assert "--lr-min" in capsys.readouterr().out
