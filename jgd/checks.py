"""Argument checks that reject bad input early, naming the public function.

Holds ``check_number`` (finite, in a range, in float32 too), ``check_int``,
``check_dtype``, ``owner_name`` (the name an error message starts with) and
``api_name`` (a block inside which errors name an outer public function, e.g.
``jgd.adam`` rather than the building block that found the error). Every
factory uses them; ``jgd.base`` re-exports them. This module imports nothing
from jgd.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "api_name",
    "check_dtype",
    "check_int",
    "check_number",
    "owner_name",
]


_API_NAME: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jgd_api_name", default=None
)


@contextlib.contextmanager
def api_name(name: str):
    """Inside this block, argument errors name ``name`` (e.g. ``jgd.adam``)
    instead of the building block that found them."""
    token = _API_NAME.set(_API_NAME.get() or name)
    try:
        yield
    finally:
        _API_NAME.reset(token)


def owner_name(owner: Any) -> str:
    """The public name to put in front of an error message."""
    return _API_NAME.get() or str(getattr(owner, "_api", owner))


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _describe(lo, hi, lo_open, hi_open) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return "finite"


def check_number(
    owner: Any,
    arg: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    schedule: bool = False,
    none: bool = False,
) -> None:
    """Raise unless ``value`` is a finite number in the given range.

    Tracers pass (a hyperparameter traced by ``jit``/``vmap``/``grad`` cannot
    be checked); with ``schedule=True`` a callable passes, with ``none=True``
    ``None`` passes.
    """
    if value is None and none:
        return
    if schedule and callable(value):
        return
    if _is_tracer(value):
        return
    name = owner_name(owner)
    kind = "a number or a schedule" if schedule else "a number"
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Number) or hasattr(value, "dtype")
    ):
        raise TypeError(
            f"{name}: {arg} must be {kind}; got {value!r} ({type(value).__name__})."
        )
    arr = np.asarray(value)
    # jnp.issubdtype knows ml_dtypes' bfloat16 (and float8s), np.issubdtype
    # does not; NumPy compares and tests them for finiteness all the same.
    if not (
        jnp.issubdtype(arr.dtype, jnp.floating)
        or jnp.issubdtype(arr.dtype, jnp.integer)
    ):
        raise TypeError(f"{name}: {arg} must be {kind}; got dtype {arr.dtype}.")
    rng = _describe(lo, hi, lo_open, hi_open)
    what = rng if rng == "finite" or rng.startswith("in ") else f"finite and {rng}"
    if _out_of_range(arr, lo, hi, lo_open, hi_open):
        raise ValueError(f"{name}: {arg} must be {what}; got {value!r}.")
    # jgd computes in float32 unless x64 is on: a value that is valid only in
    # float64 (b1 = 1 - 1e-11 rounds to 1.0; 1e39 overflows) would give NaN
    # or inf at the first step, so it is refused here, where it is known.
    if arr.dtype.itemsize > 4 or not jnp.issubdtype(arr.dtype, jnp.floating):
        with np.errstate(over="ignore"):
            arr32 = arr.astype(np.float32)
        if _out_of_range(arr32, lo, hi, lo_open, hi_open):
            shown = arr32.item() if arr32.ndim == 0 else arr32
            raise ValueError(
                f"{name}: {arg} must be {what} in float32 too (jgd's float unless "
                f"x64 is on); got {value!r}, which is {shown} in float32."
            )


def _out_of_range(arr: np.ndarray, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(arr)
        if lo is not None:
            bad |= (arr <= lo) if lo_open else (arr < lo)
        if hi is not None:
            bad |= (arr >= hi) if hi_open else (arr > hi)
    return bool(bad.any())


def check_int(owner: Any, arg: str, value: Any, lo: int = 0) -> None:
    """Raise unless ``value`` is a Python (or NumPy) integer ``>= lo``."""
    name = owner_name(owner)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name}: {arg} must be an integer >= {lo}; "
            f"got {value!r} ({type(value).__name__})."
        )
    if value < lo:
        raise ValueError(f"{name}: {arg} must be an integer >= {lo}; got {value!r}.")


def check_dtype(owner: Any, arg: str, value: Any, *, inexact: bool = True) -> Any:
    """Return ``value`` as a canonical ``jnp.dtype`` (``None`` stays ``None``).

    With ``inexact`` (the default) only floating-point and complex dtypes
    pass: a moment or accumulator kept in ``int32`` would truncate to 0.
    """
    if value is None:
        return None
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(
            f"{owner_name(owner)}: {arg} must be a dtype or None; got {value!r}."
        ) from None
    if inexact and not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(
            f"{owner_name(owner)}: {arg} must be a floating-point dtype (float32, "
            f"bfloat16, float16, float64) or None; got {dtype}."
        )
    return dtype
