"""Reduce the step size when a watched value stops improving:
``reduce_on_plateau`` with optax 0.2.8's ``ReduceLROnPlateauState``.

It reads the value (a loss or a metric) from ``update(..., value=...)``, as
optax's does; ``jgd.train.make_step`` and ``fit`` pass the batch loss there.
Chain it after an optimizer: it multiplies the updates by its ``scale``.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import Scalar, Transform, check_int, check_number, owner_name, register

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau"]


class ReduceLROnPlateauState(NamedTuple):
    """The scale and the bookkeeping of ``reduce_on_plateau`` (optax's fields:
    ``scale`` in the params' lowest dtype, ``best_value`` and ``avg_value`` in
    their highest, the counts int32)."""

    scale: jax.Array
    best_value: jax.Array
    plateau_count: jax.Array
    cooldown_count: jax.Array
    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax
    avg_value: jax.Array


def _check_count(owner: Any, arg: str, value: Any, lo: int) -> None:
    """An integer ``>= lo``: a Python or NumPy int, or an integer array scalar
    (a tracer passes unchecked)."""
    if isinstance(value, jax.core.Tracer):
        return
    dtype = getattr(value, "dtype", None)
    if dtype is not None and np.ndim(value) == 0 and jnp.issubdtype(dtype, jnp.integer):
        value = int(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    check_int(owner, arg, value, lo)


@register
class ReduceOnPlateau(Transform):
    """Multiply updates by a scale that shrinks by ``factor`` whenever the
    watched value has not improved for ``patience`` evaluations.

    Update (per call, with value v; n = accumulation_size):
        avg = mean of the last n values; every n-th call:
            improved = avg < (1 - rtol) * best - atol
            best = avg if improved
            plateau = 0 if improved else plateau + 1
            in cooldown (cooldown_count > 0): plateau = 0, cooldown_count -= 1
            else if plateau == patience:
                scale = max(scale * factor, min_scale), plateau = 0,
                cooldown_count = cooldown
        u = scale * g

    Args:
        factor: in (0, 1), default 0.1: the scale's multiplier on a plateau.
        patience: integer >= 1, default 10: evaluations without improvement
            before the scale shrinks.
        rtol: in [0, 1], default 1e-4: relative improvement that counts.
        atol: >= 0, default 0: absolute improvement that counts (rtol and
            atol are not both 0).
        cooldown: integer >= 0, default 0: evaluations after a reduction
            during which the plateau count stays 0.
        accumulation_size: integer >= 1, default 1: values averaged per
            evaluation (a minibatch loss is noisy: average a few).
        min_scale: >= 0, default 0: the scale never goes below it.

    ``update`` needs ``value=`` (keyword), as optax's.

    Example:
        >>> import jax, jax.numpy as jnp, jgd, jgd.contrib
        >>> opt = jgd.contrib.reduce_on_plateau(factor=0.5, patience=1)
        >>> state, step = opt.init(jnp.zeros(2)), jax.jit(opt.update)
        >>> for loss in [1.0, 1.0]:  # no improvement at the second: halve
        ...     u, state = step(jnp.ones(2), state, value=loss)
        >>> u
        Array([0.5, 0.5], dtype=float32)

    Matches: optax.contrib.reduce_on_plateau(factor, patience, rtol, atol,
    cooldown, accumulation_size, min_scale), except that patience 0 (optax
    then reduces after improvements, never on a plateau) and
    accumulation_size 0 (optax never evaluates) are refused
    (tests/catalogue/injection.py KNOWN_DIFFERENCES['plateau counts']).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    factor: Scalar = 0.1
    patience: Scalar = 10
    rtol: Scalar = 1e-4
    atol: Scalar = 0.0
    cooldown: Scalar = 0
    accumulation_size: Scalar = 1
    min_scale: Scalar = 0.0

    _api = "jgd.contrib.reduce_on_plateau"

    def check(self):
        check_number(self, "factor", self.factor, 0, 1, lo_open=True, hi_open=True)
        _check_count(self, "patience", self.patience, 1)
        check_number(self, "rtol", self.rtol, 0, 1)
        check_number(self, "atol", self.atol, 0)
        both = (self.rtol, self.atol)
        if not any(isinstance(x, jax.core.Tracer) for x in both) and not np.any(
            np.asarray(both, np.float64)
        ):
            raise ValueError(
                f"{owner_name(self)}: rtol and atol must not both be 0 (nothing "
                f"would count as an improvement); got rtol={self.rtol!r} and "
                f"atol={self.atol!r}."
            )
        _check_count(self, "cooldown", self.cooldown, 0)
        _check_count(self, "accumulation_size", self.accumulation_size, 1)
        check_number(self, "min_scale", self.min_scale, 0)

    def init(self, params: Any) -> ReduceLROnPlateauState:
        # optax: the scale in the lowest dtype, so it does not promote updates.
        low, high = tree.dtype(params, "lowest"), tree.dtype(params, "highest")
        zero = jnp.zeros([], jnp.int32)
        return ReduceLROnPlateauState(
            scale=jnp.ones([], low),
            best_value=jnp.asarray(np.inf, high),
            plateau_count=zero,
            cooldown_count=zero,
            count=zero,
            avg_value=jnp.zeros([], high),
        )

    def _evaluate(self, s: ReduceLROnPlateauState) -> ReduceLROnPlateauState:
        """The plateau logic, run on every ``accumulation_size``-th value."""
        dt = s.best_value.dtype
        avg = s.avg_value
        threshold = tree.coef(1 - self.rtol, dt) * s.best_value - tree.coef(
            self.atol, dt
        )
        improved = avg < threshold
        best = jnp.where(improved, avg.astype(dt), s.best_value)
        plateau = jnp.where(improved, 0, tree.safe_increment(s.plateau_count))
        hit = plateau == jnp.asarray(self.patience, jnp.int32)
        reduced = jnp.maximum(
            jnp.where(hit, tree.coef(self.factor, s.scale.dtype) * s.scale, s.scale),
            tree.coef(self.min_scale, s.scale.dtype),
        )
        cooling = s.cooldown_count > 0
        cooldown = jnp.where(hit, jnp.asarray(self.cooldown, jnp.int32), 0)
        zero = jnp.zeros([], jnp.int32)
        return ReduceLROnPlateauState(
            scale=jnp.where(cooling, s.scale, reduced),
            best_value=best,
            plateau_count=jnp.where(cooling | hit, zero, plateau).astype(jnp.int32),
            cooldown_count=jnp.where(cooling, s.cooldown_count - 1, cooldown).astype(
                jnp.int32
            ),
            count=zero,
            avg_value=jnp.zeros([], avg.dtype),
        )

    def update(
        self,
        updates: Any,
        state: ReduceLROnPlateauState,
        params: Any = None,
        *,
        value: Any = None,
        **extra_args: Any,
    ) -> tuple[Any, ReduceLROnPlateauState]:
        if value is None:
            raise TypeError(
                f"{owner_name(self)}: update needs value= (the loss or metric to "
                "watch); call update(updates, state, params, value=loss). "
                "jgd.train.make_step passes the batch loss."
            )
        dt = state.avg_value.dtype
        count = tree.safe_increment(state.count)
        # optax's running mean: (count * avg + value) / (count + 1).
        avg = (
            state.count.astype(dt) * state.avg_value + jnp.asarray(value).astype(dt)
        ) / count.astype(dt)
        new = state._replace(avg_value=avg, count=count)
        done = count == jnp.asarray(self.accumulation_size, jnp.int32)
        evaluated = self._evaluate(new)
        new = jax.tree.map(lambda a, b: jnp.where(done, a, b), evaluated, new)
        scale = new.scale
        return jax.tree.map(lambda g: tree.coef(scale, g.dtype) * g, updates), new

    def state_hyperparams(self, state: ReduceLROnPlateauState) -> dict:
        """``{"scale": state.scale}``: the factor on the next updates
        (``jgd.current_hyperparams`` reads this)."""
        return {"scale": state.scale}


reduce_on_plateau = ReduceOnPlateau
