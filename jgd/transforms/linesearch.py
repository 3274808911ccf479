"""L-BFGS's building blocks: ``scale_by_lbfgs`` (the two-loop recursion), the
line searches ``scale_by_zoom_linesearch`` (strong Wolfe conditions, a
``lax.while_loop``) and ``scale_by_backtracking_linesearch`` (Armijo), their
states and ``value_and_grad_from_state`` (reuses the value and gradient a line
search stored in the state).

The line searches take optax's extra keyword arguments in ``update``:
``value`` and ``grad`` (the objective and its gradient at ``params``) and
``value_fn`` (the objective); other keywords go to ``value_fn``. The zoom
search and the helpers both modules use sit in ``zoom_linesearch``.
"""

from __future__ import annotations

import functools
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
    register,
    static_field,
)
from jgd.transforms.zoom_linesearch import (
    ScaleByZoomLinesearch,  # noqa: F401 (importable from here, as before the split)
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    _axpy,
    _check_at_least,
    _cond_print,
    _like,
    _need_params,
    _objective,
    _scale,
    _sq_norm,
    _value_dtype,
    _vdot,
    _weights_dtype,
    scale_by_zoom_linesearch,
)

__all__ = [
    "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByLBFGSState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "scale_by_backtracking_linesearch",
    "scale_by_lbfgs",
    "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
]


# --------------------------------------------------------------------------
# L-BFGS: the two-loop recursion over a ring buffer of curvature pairs.
# --------------------------------------------------------------------------


class ScaleByLBFGSState(NamedTuple):
    """L-BFGS memory (matches optax's): the last params and updates, and ring
    buffers of their differences and weights, stacked on a leading axis of
    length ``memory_size``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array


def _precondition(updates, dw_mem, du_mem, rhos, gamma, memory_idx):
    """``H g`` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4),
    newest pair first, as optax's ``_precondition_by_lbfgs``."""
    m = rhos.shape[0]
    indices = (memory_idx + jnp.arange(m, dtype=memory_idx.dtype)) % m

    def pair(idx):
        return jax.tree.map(lambda x: x[idx], (dw_mem, du_mem))

    def right(vec, idx):
        dw, du = pair(idx)
        alpha = rhos[idx] * _vdot(dw, vec)
        return jax.tree.map(lambda v, u: _axpy(v, -alpha, u), vec, du), alpha

    q, alphas = jax.lax.scan(right, updates, indices, reverse=True)
    r = jax.tree.map(lambda v: _scale(gamma, v), q)

    def left(vec, idx_alpha):
        idx, alpha = idx_alpha
        dw, du = pair(idx)
        beta = rhos[idx] * _vdot(du, vec)
        return jax.tree.map(lambda v, w: _axpy(v, alpha - beta, w), vec, dw), beta

    r, _ = jax.lax.scan(left, r, (indices, alphas))
    return r


@register
class ScaleByLBFGS(Transform):
    """Precondition updates by L-BFGS's inverse-Hessian approximation.

    Keeps the last ``memory_size`` pairs ``s = w_k - w_{k-1}``,
    ``y = g_k - g_{k-1}``, updating the memory before preconditioning, so a
    line search after it sees the direction and the memory is updated once the
    step is taken. The output is the direction ``H g`` (no sign change).

    Update (k = count, the memory a ring buffer; pairs are zero at k = 0):
        s = w - w_prev;  y = g - g_prev
        rho[k-1] = 1 / Re<y, s>                 (0 when Re<y, s> = 0)
        gamma = Re<y, s> / |y|**2               (k > 0, scale_init_precond)
        gamma = min(1, 1 / |g|)                 (k = 0, scale_init_precond)
        gamma = 1                               (scale_init_precond=False)
        q = g;  for i newest..oldest: a_i = rho_i Re<s_i, q>;  q = q - a_i y_i
        r = gamma * q
        for i oldest..newest: b_i = rho_i Re<y_i, r>;  r = r + (a_i - b_i) s_i
        u = r

    Args:
        memory_size: number of pairs kept, an integer >= 1, default 10
            (static: it sets the state's shapes).
        scale_init_precond: start the recursion from the scaled identity
            ``gamma`` above, default True (static).

    References: Nocedal & Wright, "Numerical Optimization", 1999, Algorithms
    7.4 and 7.5; Liu & Nocedal, "On the limited memory BFGS method for large
    scale optimization", 1989.

    Matches: optax.scale_by_lbfgs(memory_size, scale_init_precond); the
    weights are kept in the params' real dtype
    (KNOWN_DIFFERENCES['lbfgs weights dtype']).
    """

    memory_size: int = static_field(default=10)
    scale_init_precond: bool = static_field(default=True)

    _api = "jgd.scale_by_lbfgs"

    def check(self):
        check_int(self, "memory_size", self.memory_size, 1)

    def init(self, params: Any) -> Any:
        m = self.memory_size
        stacked = jax.tree.map(lambda p: jnp.zeros((m, *p.shape), p.dtype), params)
        return ScaleByLBFGSState(
            count=jnp.zeros([], jnp.int32),
            params=tree.zeros_like(params),
            updates=tree.zeros_like(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros(m, _weights_dtype(params)),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _need_params(self, params)
        tree.check_same_structure(self, updates, state.updates, "state")
        tree.check_same_structure(self, updates, params, "params")
        m, count = self.memory_size, state.count
        memory_idx = count % m
        prev_idx = (count - 1) % m
        wdt = state.weights_memory.dtype

        # 1. The newest pair enters the memory (all zero at the first step).
        s = jax.tree.map(operator.sub, params, state.params)
        y = jax.tree.map(operator.sub, updates, state.updates)
        ys = _vdot(y, s).astype(wdt)
        rho = jnp.where(ys == 0.0, 0.0, 1.0 / ys)
        s, y, rho = jax.tree.map(
            lambda x: jnp.where(count > 0, x, jnp.zeros_like(x)), (s, y, rho)
        )
        dw_mem, du_mem, rhos = jax.tree.map(
            lambda mem, x: mem.at[prev_idx].set(x),
            (state.diff_params_memory, state.diff_updates_memory, state.weights_memory),
            (s, y, rho),
        )

        # 2. The initial inverse Hessian gamma * I.
        if self.scale_init_precond:
            num, den = _vdot(y, s).astype(wdt), _sq_norm(y).astype(wdt)
            gamma = jnp.where(den > 0.0, num / den, 1.0)
            # First step: a capped 1/|g| (optax's heuristic, a unit first step).
            g_norm = jnp.sqrt(_sq_norm(jax.lax.stop_gradient(updates))).astype(wdt)
            gamma = jnp.where(count > 0, gamma, jnp.minimum(1.0, 1.0 / g_norm))
        else:
            gamma = jnp.ones([], wdt)

        # 3. The two-loop recursion.
        direction = _precondition(updates, dw_mem, du_mem, rhos, gamma, memory_idx)
        return direction, ScaleByLBFGSState(
            count=tree.safe_increment(count),
            params=params,
            updates=updates,
            diff_params_memory=dw_mem,
            diff_updates_memory=du_mem,
            weights_memory=rhos,
        )


scale_by_lbfgs = ScaleByLBFGS


# --------------------------------------------------------------------------
# Backtracking (Armijo) line search.
# --------------------------------------------------------------------------


class BacktrackingLinesearchInfo(NamedTuple):
    """How the last backtracking search went (matches optax's)."""

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The last step size, and the value (and, with ``store_grad``, the
    gradient) at the new params for ``value_and_grad_from_state`` (matches
    optax's)."""

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    info: BacktrackingLinesearchInfo


class _Backtrack(NamedTuple):
    learning_rate: jax.Array
    new_value: jax.Array
    new_grad: Any
    decrease_error: jax.Array
    iter_num: jax.Array


@register
class ScaleByBacktrackingLinesearch(Transform):
    """Scale updates by a step size with sufficient decrease (Armijo).

    Starting from a guess, the step size shrinks by ``decrease_factor`` until
    the objective decreases enough along the update direction ``u``.

    Update (w = params, f = value_fn, slope = Re<u, grad f(w)>):
        eta = min(increase_factor * eta_prev, max_learning_rate)
        while f(w + eta u) > (1 + rtol) f(w) + eta slope_rtol slope + atol
              and at most max_backtracking_steps times:  eta = decrease_factor * eta
        eta = 0 if f was NaN/inf at every step tried
        u = eta * u

    Args:
        max_backtracking_steps: integer >= 0 (static): the most shrinks.
        slope_rtol: >= 0, default 1e-4.
        decrease_factor: in (0, 1), default 0.8.
        increase_factor: >= 1 (inf: start at max_learning_rate), default 1.5.
        max_learning_rate: > 0, default 1.0.
        atol, rtol: >= 0, defaults 0.
        store_grad: also compute the gradient at the accepted point, for
            ``value_and_grad_from_state`` (static), default False.
        verbose: print a diagnostic when the search fails (static).

    ``update`` takes ``value=``, ``grad=``, ``value_fn=`` and the keywords of
    ``value_fn`` (e.g. a batch).

    References: Nocedal & Wright, "Numerical Optimization", 1999, Algorithm
    3.1; Vaswani et al., "Painless Stochastic Gradient", 2019.

    Matches: optax.scale_by_backtracking_linesearch(...) with the same
    arguments (the info's step count is int32 under x64,
    KNOWN_DIFFERENCES['linesearch counts']; verbose prints a shorter
    diagnostic).
    """

    max_backtracking_steps: int = static_field()
    slope_rtol: Scalar = 1e-4
    decrease_factor: Scalar = 0.8
    increase_factor: Scalar = 1.5
    max_learning_rate: Scalar = 1.0
    atol: Scalar = 0.0
    rtol: Scalar = 0.0
    store_grad: bool = static_field(default=False)
    verbose: bool = static_field(default=False)

    _api = "jgd.scale_by_backtracking_linesearch"

    def check(self):
        check_int(self, "max_backtracking_steps", self.max_backtracking_steps, 0)
        check_number(self, "slope_rtol", self.slope_rtol, 0)
        check_number(
            self,
            "decrease_factor",
            self.decrease_factor,
            0,
            1,
            lo_open=True,
            hi_open=True,
        )
        _check_at_least(self, "increase_factor", self.increase_factor, 1)
        check_number(self, "max_learning_rate", self.max_learning_rate, 0, lo_open=True)
        check_number(self, "atol", self.atol, 0)
        check_number(self, "rtol", self.rtol, 0)

    def init(self, params: Any) -> Any:
        dt = _value_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones([], dt),
            value=jnp.full([], jnp.inf, dt),
            grad=tree.zeros_like(params) if self.store_grad else None,
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=jnp.zeros([], jnp.int32),
                decrease_error=jnp.full([], jnp.inf, dt),
            ),
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
        fn = functools.partial(value_fn, **kwargs)
        dt = state.learning_rate.dtype
        value = jnp.asarray(value).astype(dt)
        c = functools.partial(tree.coef, dtype=dt)
        n = self.max_backtracking_steps
        slope = _vdot(updates, jax.tree.map(jnp.conj, grad)).astype(dt)

        def decrease_error(eta, new_value):
            err = (
                new_value
                - c(1.0 + self.rtol) * value
                - eta * c(self.slope_rtol) * slope
            )
            return jnp.maximum(jnp.where(jnp.isnan(err), jnp.inf, err), 0.0)

        def cond(s):
            return (~(s.decrease_error <= c(self.atol))) & (s.iter_num <= n)

        def body(s):
            eta = jnp.where(
                s.iter_num > 0,
                c(self.decrease_factor) * s.learning_rate,
                s.learning_rate,
            )
            new_params = jax.tree.map(lambda p, u: _axpy(p, eta, u), params, updates)
            new_grad = s.new_grad
            if self.store_grad:
                # Linearize once: the value now, the gradient (by transposing
                # the JVP) only if this step ends the search, as optax.
                out, jvp = jax.linearize(fn, new_params)
                new_value = out.astype(dt)
                err = decrease_error(eta, new_value)
                new_grad = jax.lax.cond(
                    (err <= c(self.atol)) | (s.iter_num == n),
                    lambda p: jax.linear_transpose(jvp, p)(jnp.ones([], out.dtype))[0],
                    lambda p: new_grad,
                    new_params,
                )
            else:
                new_value = jnp.asarray(fn(new_params)).astype(dt)
                err = decrease_error(eta, new_value)
            return _like(_Backtrack(eta, new_value, new_grad, err, s.iter_num + 1), s)

        start = _Backtrack(
            learning_rate=jnp.minimum(
                c(self.increase_factor) * state.learning_rate, c(self.max_learning_rate)
            ),
            new_value=value,
            new_grad=tree.zeros_like(params),
            decrease_error=jnp.full([], jnp.inf, dt),
            iter_num=jnp.zeros([], jnp.int32),
        )
        end = jax.lax.while_loop(cond, body, start)
        failed = jnp.isinf(end.decrease_error)
        _cond_print(
            self.verbose,
            end.decrease_error > c(self.atol),
            "INFO: jgd.scale_by_backtracking_linesearch: no step size with "
            "sufficient decrease found. Value {value}, slope {slope}, step size "
            "{eta}, decrease error {err}.",
            value=value,
            slope=slope,
            eta=end.learning_rate,
            err=end.decrease_error,
        )
        # No finite value anywhere tried: take no step rather than NaN/inf.
        eta = jnp.where(failed, 0.0, end.learning_rate)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=eta,
            value=end.new_value,
            grad=end.new_grad if self.store_grad else None,
            info=BacktrackingLinesearchInfo(end.iter_num, end.decrease_error),
        )
        scaled = jax.tree.map(lambda u: _scale(eta, u), updates)
        return scaled, _like(new_state, state)


scale_by_backtracking_linesearch = ScaleByBacktrackingLinesearch


# --------------------------------------------------------------------------
# Reusing the line search's last evaluation.
# --------------------------------------------------------------------------


def _find(state: Any, key: str) -> list:
    """Every NamedTuple field or dict entry named ``key`` in ``state``."""
    found = []
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        for name, v in zip(state._fields, state):
            if name == key:
                found.append(v)
            else:
                found += _find(v, key)
    elif isinstance(state, (tuple, list)):
        for v in state:
            found += _find(v, key)
    elif isinstance(state, dict):
        for k, v in state.items():
            found += [v] if k == key else _find(v, key)
    return found


def value_and_grad_from_state(
    value_fn: Callable[..., Any],
) -> Callable[..., tuple[Any, Any]]:
    """``jax.value_and_grad(value_fn)`` that reuses the line search's last
    evaluation when the state holds one.

    A line search evaluates the objective and its gradient at the params it
    accepts: the next step starts there, so those need not be computed again.
    The returned ``value_and_grad(params, *args, state=opt_state, **kwargs)``
    takes the ``value`` and ``grad`` fields of ``state`` when the value is
    finite (not the initial inf), and computes them otherwise (under
    ``lax.cond``, so it works under ``jit``). For deterministic objectives
    only: with a new batch each step, compute the gradient afresh.

    Args:
        value_fn: the objective, ``value_fn(params, *args, **kwargs)``, a
            scalar differentiable by JAX.

    Raises:
        ValueError: the state has no ``value`` or no ``grad`` field (or a
            ``None`` grad: a backtracking search without ``store_grad``), or
            more than one.

    Example:
        >>> import jax.numpy as jnp, jgd
        >>> f = lambda x: jnp.sum(x**2)
        >>> state = jgd.lbfgs().init(jnp.ones(2))
        >>> jgd.value_and_grad_from_state(f)(jnp.ones(2), state=state)
        (Array(2., dtype=float32), Array([2., 2.], dtype=float32))

    Matches: optax.value_and_grad_from_state(value_fn) (optax raises
    KeyError when a field is found twice; the computed value and gradient
    are cast to the stored dtypes, so both branches agree).
    """

    def value_and_grad(params: Any, *fn_args: Any, state: Any, **fn_kwargs: Any):
        name = "jgd.value_and_grad_from_state"
        found = {k: _find(state, k) for k in ("value", "grad")}
        for k, vs in found.items():
            if len(vs) > 1:
                raise ValueError(
                    f"{name}: the state holds {len(vs)} fields named {k!r}; "
                    "it must hold one (one line search in the chain)."
                )
        (value,), (grad,) = found["value"] or [None], found["grad"] or [None]
        if value is None or grad is None:
            raise ValueError(
                f"{name}: the state holds no value or no gradient; the optimizer "
                "must store them (a zoom line search, or a backtracking one with "
                "store_grad=True)."
            )

        def fresh(p, args, kw):
            v, g = jax.value_and_grad(value_fn)(p, *args, **kw)
            return jnp.asarray(v).astype(value.dtype), _like(g, grad)

        return jax.lax.cond(
            jnp.isfinite(value),
            lambda *_: (value, grad),
            fresh,
            params,
            fn_args,
            fn_kwargs,
        )

    return value_and_grad
