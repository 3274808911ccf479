"""The zoom line search (strong Wolfe conditions, a ``lax.while_loop``),
``scale_by_zoom_linesearch``, its state and info, and what the line searches
and L-BFGS share: tree arithmetic in optax's order of operations and the
check of optax's extra ``update`` arguments. ``jgd.transforms.linesearch``
re-exports the public names and builds on the helpers here.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_int,
    check_number,
    owner_name,
    register,
    static_field,
)

__all__ = [
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_zoom_linesearch",
]

# --------------------------------------------------------------------------
# Tree arithmetic in optax's order of operations (so results are bit-equal),
# with explicit casts for strict promotion and mixed-dtype trees.
# --------------------------------------------------------------------------


def _real_dtype(dtype: Any) -> Any:
    return jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.inexact) else dtype


def _sum(scalars: list) -> Any:
    """``0 + s_1 + s_2 + ...`` (optax's tree reduce) in the widest dtype."""
    if not scalars:
        return jnp.zeros([], tree.default_float())
    scalars = list(tree.promote(*scalars))
    return functools.reduce(operator.add, scalars)


def _vdot(a: Any, b: Any) -> jax.Array:
    """``Re <a, b>`` over two trees (``a`` conjugated), leaf by leaf as
    ``tensordot`` at highest precision, as ``optax.tree.vdot``."""

    def leaf(x, y):
        if jnp.iscomplexobj(x):
            x = jnp.conj(x)
        x, y = tree.promote(x, y)
        return jnp.tensordot(x, y, x.ndim, precision=jax.lax.Precision.HIGHEST)

    return jnp.real(_sum(jax.tree.leaves(jax.tree.map(leaf, a, b))))


def _sq_norm(a: Any) -> jax.Array:
    """``sum |x|**2`` over a tree, as ``optax.tree.norm(squared=True)``."""
    sums = [
        jnp.sum(jnp.square(x.real) + jnp.square(x.imag)) for x in jax.tree.leaves(a)
    ]
    return _sum(sums)


def _axpy(x: jax.Array, a: jax.Array, y: jax.Array) -> jax.Array:
    """``x + a * y`` in the wider dtype, rounded once to ``x``'s dtype."""
    dt = tree.wider_dtype(x.dtype, a.dtype, y.dtype)
    return (x.astype(dt) + a.astype(dt) * y.astype(dt)).astype(x.dtype)


def _scale(a: jax.Array, x: jax.Array) -> jax.Array:
    """``a * x`` in the wider dtype, rounded once to ``x``'s dtype."""
    dt = tree.wider_dtype(a.dtype, x.dtype)
    return (a.astype(dt) * x.astype(dt)).astype(x.dtype)


def _like(new: Any, old: Any) -> Any:
    """``new`` with each leaf cast to the dtype of ``old``'s (optax's
    ``tree.cast_like``): loop carries and states keep their types."""
    return jax.tree.map(lambda n, o: jnp.asarray(n).astype(o.dtype), new, old)


def _value_dtype(params: Any) -> Any:
    """The dtype of values and step sizes: the real dtype of the first leaf
    (optax's rule)."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        return tree.default_float()
    return _real_dtype(jnp.asarray(leaves[0]).dtype)


def _weights_dtype(params: Any) -> Any:
    """The dtype of L-BFGS's ``rho`` weights: the widest real dtype of the
    params (KNOWN_DIFFERENCES['lbfgs weights dtype'])."""
    dts = [_real_dtype(jnp.asarray(x).dtype) for x in jax.tree.leaves(params)]
    return tree.wider_dtype(*dts) if dts else tree.default_float()


def _need_params(owner: Any, params: Any) -> None:
    if params is None:
        raise TypeError(
            f"{owner_name(owner)}: update needs params (the current parameters); "
            "got None."
        )


# --------------------------------------------------------------------------
# What the line searches share.
# --------------------------------------------------------------------------


def _objective(owner: Any, value: Any, grad: Any, value_fn: Any, extra: dict):
    """Check optax's extra arguments; the keywords that ``value_fn`` takes."""
    name = owner_name(owner)
    missing = [k for k, v in (("value", value), ("grad", grad)) if v is None]
    if value_fn is None:
        missing.append("value_fn")
    if missing:
        raise TypeError(
            f"{name}: update needs the keyword arguments value=, grad= and "
            f"value_fn= (the objective's value and gradient at params, and the "
            f"objective); missing {', '.join(missing)}. "
            "jgd.value_and_grad_from_state(value_fn) gives value and grad."
        )
    if not callable(value_fn):
        raise TypeError(f"{name}: value_fn must be callable; got {value_fn!r}.")
    try:
        names = set(inspect.signature(value_fn).parameters)
    except (TypeError, ValueError):
        names = set()
    unused = sorted(k for k in extra if k not in names)
    if unused:
        raise TypeError(
            f"{name}: update got keyword arguments that value_fn does not take: "
            f"{unused}."
        )
    return {k: v for k, v in extra.items() if k in names}


def _check_at_least(owner: Any, arg: str, value: Any, lo: float) -> None:
    """``>= lo``, ``inf`` included (optax's way to switch a criterion off, or
    to start a backtracking search at its largest step)."""
    if isinstance(value, float) and value == math.inf:
        return
    check_number(owner, arg, value, lo)


def _cond_print(verbose: bool, condition: Any, message: str, **kwargs: Any) -> None:
    if verbose:
        jax.lax.cond(
            condition,
            lambda: jax.debug.print(message, **kwargs, ordered=True),
            lambda: None,
        )


# --------------------------------------------------------------------------
# Zoom line search (strong Wolfe conditions).
# --------------------------------------------------------------------------


class ZoomLinesearchInfo(NamedTuple):
    """How the last zoom search went (matches optax's): a positive error means
    that criterion was not met."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """The last step size, the value and gradient at the new params (for
    ``value_and_grad_from_state``) and the search's info (matches optax's)."""

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    info: ZoomLinesearchInfo


class _Zoom(NamedTuple):
    """The search's loop carry: optax's ZoomLinesearchState less what stays
    fixed during a search (params, updates, the initial value and slope)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax's
    stepsize: jax.Array
    value: jax.Array
    grad: Any
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    # [low, high] brackets a good step; value(high) >= value(low), not high > low.
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    # The best step with sufficient decrease, if curvature is never met.
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Any


def _where(cond: Any, a: list, b: list) -> list:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _cubicmin(a, fa, fpa, b, fb, c, fc):
    """The critical point of the cubic through (a, fa), (b, fb), (c, fc) with
    slope fpa at a (NaN when there is none); scipy's line search formula."""
    C = fpa
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    d1 = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    rhs = jnp.array([fb - fa - C * db, fc - fa - C * dc])
    A, B = jnp.dot(d1, rhs, precision=jax.lax.Precision.HIGHEST) / denom
    radical = B * B - 3.0 * A * C
    return a + (-B + jnp.sqrt(radical)) / (3.0 * A)


def _quadmin(a, fa, fpa, b, fb):
    """The critical point of the parabola through (a, fa), (b, fb) with slope
    fpa at a."""
    D, C = fa, fpa
    db = b - a
    B = (fb - D - C * db) / (db**2)
    return a - C / (2.0 * B)


@register
class ScaleByZoomLinesearch(Transform):
    """Scale updates by a step size meeting the strong Wolfe conditions.

    Phase 1 grows the step size from a guess until an interval holds a good
    one (Nocedal & Wright, Algorithm 3.5); phase 2 zooms into it by cubic or
    quadratic interpolation or bisection (Algorithm 3.6). Close to a minimum
    the Armijo test switches to Hager & Zhang's approximate one. One
    ``lax.while_loop``; each iteration evaluates ``value_fn`` and its
    gradient once, and the state keeps the last pair for
    ``value_and_grad_from_state``.

    Update (w = params, phi(eta) = f(w + eta u), phi' its slope Re<grad f, u>):
        decrease:  phi(eta) <= phi(0) + slope_rtol * eta * phi'(0) + tol
          or (approx_dec_rtol given, and phi(eta) <= phi(0) + approx_dec_rtol |phi(0)|):
                   phi'(eta) <= (2 slope_rtol - 1) phi'(0) + tol
        curvature: |phi'(eta)| <= curv_rtol |phi'(0)| + tol
        eta_0 = 1 ('one') or the last step size ('keep');  eta_{i+1} = increase_factor * eta_i
        u = eta * u    (eta: both met; else the best step with sufficient
                        decrease; else the last one tried)

    Args:
        max_linesearch_steps: integer >= 1 (static): the most evaluations.
        max_learning_rate: None (no bound) or > 0, default None.
        tol: >= 0, default 0.
        increase_factor: >= 1, default 2.
        slope_rtol: in [0, 1], default 1e-4.
        curv_rtol: >= 0 (inf switches the curvature test off), default 0.9.
        approx_dec_rtol: None (Armijo only) or >= 0, default 1e-6.
        stepsize_precision: >= 0, default 1e-5: below this interval length,
            a step with sufficient decrease is taken.
        initial_guess_strategy: 'one' (for quasi-Newton methods) or 'keep'
            (for gradient descent), default 'keep' (static).
        verbose: print diagnostics when the search fails (static).

    ``update`` takes ``value=``, ``grad=``, ``value_fn=`` and the keywords of
    ``value_fn`` (e.g. a batch).

    References: Nocedal & Wright, "Numerical Optimization", 1999, Algorithms
    3.5 and 3.6; Hager & Zhang, "Algorithm 851: CG_DESCENT", 2006, eq. 23.

    Matches: optax.scale_by_zoom_linesearch(...) with the same arguments (the
    info's step count is int32 under x64, KNOWN_DIFFERENCES['linesearch
    counts']; verbose prints shorter diagnostics).
    """

    max_linesearch_steps: int = static_field()
    max_learning_rate: Scalar | None = None
    tol: Scalar = 0.0
    increase_factor: Scalar = 2.0
    slope_rtol: Scalar = 1e-4
    curv_rtol: Scalar = 0.9
    approx_dec_rtol: Scalar | None = 1e-6
    stepsize_precision: Scalar = 1e-5
    initial_guess_strategy: str = static_field(default="keep")
    verbose: bool = static_field(default=False)

    _api = "jgd.scale_by_zoom_linesearch"

    def check(self):
        check_int(self, "max_linesearch_steps", self.max_linesearch_steps, 1)
        check_number(
            self,
            "max_learning_rate",
            self.max_learning_rate,
            0,
            lo_open=True,
            none=True,
        )
        check_number(self, "tol", self.tol, 0)
        check_number(self, "increase_factor", self.increase_factor, 1)
        check_number(self, "slope_rtol", self.slope_rtol, 0, 1)
        _check_at_least(self, "curv_rtol", self.curv_rtol, 0)
        check_number(self, "approx_dec_rtol", self.approx_dec_rtol, 0, none=True)
        check_number(self, "stepsize_precision", self.stepsize_precision, 0)
        if self.initial_guess_strategy not in ("one", "keep"):
            raise ValueError(
                f"{owner_name(self)}: initial_guess_strategy must be 'one' or "
                f"'keep'; got {self.initial_guess_strategy!r}."
            )

    def init(self, params: Any) -> Any:
        dt = _value_dtype(params)
        inf = jnp.full([], jnp.inf, dt)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], dt),
            value=inf,
            grad=tree.zeros_like(params),
            info=ZoomLinesearchInfo(jnp.zeros([], jnp.int32), inf, inf),
        )

    def update(
        self,
        updates: Any,
        state: Any,
        params: Any = None,
        *,
        value: Any = None,
        grad: Any = None,
        value_fn: Callable | None = None,
        **extra_args: Any,
    ) -> tuple[Any, Any]:
        kwargs = _objective(self, value, grad, value_fn, extra_args)
        _need_params(self, params)
        tree.check_same_structure(self, updates, params, "params")
        assert value_fn is not None  # checked by _objective
        dt = state.learning_rate.dtype
        c = functools.partial(tree.coef, dtype=dt)
        value_and_grad_fn = jax.value_and_grad(value_fn)
        value_init = jnp.asarray(value).astype(dt)
        grad = _like(grad, params)
        slope_init = _vdot(updates, grad).astype(dt)
        if self.initial_guess_strategy == "one":
            guess = jnp.ones([], dt)
        else:
            guess = state.learning_rate

        def on_line(eta):
            """phi(eta), grad f(w + eta u) and phi'(eta)."""
            step = jax.tree.map(lambda p, u: _axpy(p, eta, u), params, updates)
            v, g = value_and_grad_fn(step, **kwargs)
            v, g = jnp.asarray(v).astype(dt), _like(g, params)
            slope = _vdot(jax.tree.map(jnp.conj, g), updates).astype(dt)
            return v, g, slope

        def errors(eta, v, slope):
            """Decrease and curvature errors (0 when met, inf for NaN)."""
            dec = v - value_init - c(self.slope_rtol) * eta * slope_init
            if self.approx_dec_rtol is not None:
                # Hager & Zhang's approximate Armijo test (eq. 23), only close
                # to the initial value (eq. 26-27 with one iterate).
                approx = slope - c(2 * self.slope_rtol - 1.0) * slope_init
                near = v - value_init - c(self.approx_dec_rtol) * jnp.abs(value_init)
                dec = jnp.minimum(jnp.maximum(approx, near), dec)
            dec = jnp.maximum(dec, 0.0)
            dec = jnp.where(jnp.isnan(dec), jnp.inf, dec)
            curv = jnp.abs(slope) - c(self.curv_rtol) * jnp.abs(slope_init)
            curv = jnp.maximum(curv, 0.0)
            curv = jnp.where(jnp.isnan(curv), jnp.inf, curv)
            return dec, curv, jnp.maximum(dec, curv)

        def search_interval(s: _Zoom) -> _Zoom:
            """Nocedal & Wright, Algorithm 3.5: grow eta until bracketed."""
            larger = c(self.increase_factor) * s.stepsize
            eta = jnp.where(s.count == 0, guess, larger)
            if self.max_learning_rate is not None:
                at_max = eta >= c(self.max_learning_rate)
                eta = jnp.minimum(eta, c(self.max_learning_rate))
            else:
                at_max = jnp.asarray(False)
            v, g, slope = on_line(eta)
            dec, curv, err = errors(eta, v, slope)
            safe = _where(
                dec <= c(self.tol),
                [eta, v, g],
                [s.safe_stepsize, s.safe_value, s.safe_grad],
            )
            high_new = (dec > 0.0) | ((v >= s.value) & (s.count > 0))
            low_new = (slope >= 0.0) & ~high_new
            low, value_low, slope_low, high, value_high, slope_high = _where(
                low_new,
                [eta, v, slope, s.stepsize, s.value, s.slope],
                [s.stepsize, s.value, s.slope, eta, v, slope],
            )
            found = high_new | low_new | (err <= c(self.tol))
            # At max_learning_rate with nothing bracketed, a larger step would
            # be needed for curvature: take the largest.
            done = (err <= c(self.tol)) | (at_max & ~found)
            _cond_print(
                self.verbose,
                at_max & ~found,
                "INFO: jgd.scale_by_zoom_linesearch: no interval satisfying the "
                "curvature condition below max_learning_rate; step size {eta}.",
                eta=eta,
            )
            failed = (s.count + 1 >= self.max_linesearch_steps) & ~done
            new = _Zoom(
                tree.safe_increment(s.count),
                eta, v, g, slope, dec, curv, err,
                found, done, failed,
                low, value_low, slope_low, high, value_high, slope_high,
                low, value_low,
                *safe,
            )  # fmt: skip
            return _like(new, s)

        def zoom(s: _Zoom) -> _Zoom:
            """Nocedal & Wright, Algorithm 3.6: shrink [low, high]."""
            low, high = s.low, s.high
            delta = jnp.abs(high - low)
            left, right = jnp.minimum(high, low), jnp.maximum(high, low)
            too_small = delta <= c(self.stepsize_precision)
            cubic = _cubicmin(
                low, s.value_low, s.slope_low, high, s.value_high,
                s.cubic_ref, s.value_cubic_ref,
            )  # fmt: skip
            use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
            quad = _quadmin(low, s.value_low, s.slope_low, high, s.value_high)
            use_quad = ~use_cubic & (
                (quad > left + 0.1 * delta) & (quad < right - 0.1 * delta)
            )
            use_bisection = ~use_cubic & ~use_quad
            eta = jnp.where(use_cubic, cubic, s.cubic_ref)
            eta = jnp.where(use_quad, quad, eta)
            eta = jnp.where(use_bisection, (low + high) / 2.0, eta)

            v, g, slope = on_line(eta)
            dec, curv, err = errors(eta, v, slope)
            safe = _where(
                (dec <= c(self.tol)) & (v < s.safe_value),
                [eta, v, g],
                [s.safe_stepsize, s.safe_value, s.safe_grad],
            )
            done = err <= c(self.tol)
            high_mid = (dec > 0.0) | (v >= s.value_low)
            high_low = (slope * (high - low) >= 0.0) & ~high_mid
            low_mid = ~high_mid
            new_high = _where(
                high_mid, [eta, v, slope], [high, s.value_high, s.slope_high]
            )
            new_high = _where(high_low, [low, s.value_low, s.slope_low], new_high)
            new_low = _where(low_mid, [eta, v, slope], [low, s.value_low, s.slope_low])
            # The point dropped from the bracket is the next cubic's third one.
            ref = _where(high_mid | high_low, [high, s.value_high], [low, s.value_low])
            # A tiny interval ends the search once some step decreases enough
            # (steep functions may need tiny steps: go on until then).
            failed = (
                (s.count + 1 >= self.max_linesearch_steps)
                | (too_small & (safe[0] > 0.0))
            ) & ~done
            new = _Zoom(
                tree.safe_increment(s.count),
                eta, v, g, slope, dec, curv, err,
                s.interval_found, done, failed,
                *new_low, *new_high, *ref, *safe,
            )  # fmt: skip
            return _like(new, s)

        def safe_step(s: _Zoom) -> _Zoom:
            """Failed: the best step with sufficient decrease if any."""
            outside = jnp.isinf(s.decrease_error)
            eta, v, g = _where(
                (s.safe_stepsize > 0.0) | outside,
                [s.safe_stepsize, s.safe_value, s.safe_grad],
                [s.stepsize, s.value, s.grad],
            )
            _cond_print(
                self.verbose,
                s.safe_stepsize <= 0.0,
                "INFO: jgd.scale_by_zoom_linesearch: no step size with sufficient "
                "decrease found (value {value}, slope {slope}, step size {eta}); "
                "check that the update is a descent direction.",
                value=value_init,
                slope=slope_init,
                eta=s.stepsize,
            )
            return _like(s._replace(stepsize=eta, value=v, grad=g), s)

        def step(s: _Zoom) -> _Zoom:
            s = jax.lax.cond(s.interval_found, zoom, search_interval, s)
            return jax.lax.cond(s.failed, safe_step, lambda x: x, s)

        zero, inf = jnp.zeros([], dt), jnp.full([], jnp.inf, dt)
        false = jnp.asarray(False)
        start = _Zoom(
            jnp.zeros([], jnp.int32),
            zero, value_init, grad, slope_init, inf, inf, inf,
            false, false, false,
            zero, value_init, slope_init, zero, value_init, slope_init,
            zero, value_init,
            zero, value_init, grad,
        )  # fmt: skip
        end = jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, start)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=end.stepsize,
            value=end.value,
            grad=end.grad,
            info=ZoomLinesearchInfo(end.count, end.decrease_error, end.curvature_error),
        )
        scaled = jax.tree.map(lambda u: _scale(end.stepsize, u), updates)
        return scaled, _like(new_state, state)


scale_by_zoom_linesearch = ScaleByZoomLinesearch
