"""optax.tree's arithmetic, creation and reductions on pytrees.

Leaf-wise: ``add``, ``sub``, ``mul``, ``div``, ``scale``, ``add_scale``,
``conj``, ``real``, ``clip``, ``where``, ``batch_shape``; new trees:
``zeros_like``, ``ones_like``, ``full_like``; over all leaves: ``vdot``,
``sum``, ``max``, ``min``, ``size``, ``norm``, ``allclose``. Each has optax
0.2.8's name, arguments and values. Leaf-wise functions follow JAX's promotion
setting as ``jnp`` does; the reductions combine leaves of different dtypes
under standard promotion, explicitly, so a mixed tree gives optax's dtype and
value even under strict promotion.
"""

from __future__ import annotations

import builtins
import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "clip",
    "conj",
    "div",
    "full_like",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "real",
    "scale",
    "size",
    "sub",
    "sum",
    "vdot",
    "where",
    "zeros_like",
]


def _across_leaves():
    # The one place leaves of different dtypes meet: optax's reduce, under
    # standard promotion whatever the caller's setting.
    return jax.numpy_dtype_promotion("standard")


# --------------------------------------------------------------------------
# Leaf-wise arithmetic.
# --------------------------------------------------------------------------


def add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """The leaf-wise sum of two or more trees, ``0 + x + y + ...``.

    Matches: optax.tree.add(tree_x, tree_y, *other_trees).
    """
    return jax.tree.map(lambda *xs: builtins.sum(xs), tree_x, tree_y, *other_trees)


def sub(tree_x: Any, tree_y: Any) -> Any:
    """The leaf-wise difference ``x - y``.

    Matches: optax.tree.sub(tree_x, tree_y).
    """
    return jax.tree.map(operator.sub, tree_x, tree_y)


def mul(tree_x: Any, tree_y: Any) -> Any:
    """The leaf-wise product ``x * y``.

    Matches: optax.tree.mul(tree_x, tree_y).
    """
    return jax.tree.map(operator.mul, tree_x, tree_y)


def div(tree_x: Any, tree_y: Any) -> Any:
    """The leaf-wise quotient ``x / y``.

    Matches: optax.tree.div(tree_x, tree_y).
    """
    return jax.tree.map(operator.truediv, tree_x, tree_y)


def scale(scalar: Any, tree: Any) -> Any:
    """Every leaf times a scalar, ``scalar * x``.

    Matches: optax.tree.scale(scalar, tree).
    """
    return jax.tree.map(lambda x: scalar * x, tree)


def add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    """``x + scalar * y`` leaf by leaf; a ``None`` leaf of ``tree_x`` stays
    ``None`` (whatever ``tree_y`` holds there).

    Matches: optax.tree.add_scale(tree_x, scalar, tree_y).
    """
    scalar = jnp.asarray(scalar)
    return jax.tree.map(
        lambda x, y: None if x is None else x + scalar * y,
        tree_x,
        tree_y,
        is_leaf=lambda x: x is None,
    )


def conj(tree: Any) -> Any:
    """The complex conjugate of every leaf.

    Matches: optax.tree.conj(tree).
    """
    return jax.tree.map(jnp.conj, tree)


def real(tree: Any) -> Any:
    """The real part of every leaf.

    Matches: optax.tree.real(tree).
    """
    return jax.tree.map(jnp.real, tree)


def clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Every leaf clipped to ``[min_value, max_value]`` (``None``: no bound).

    Matches: optax.tree.clip(tree, min_value, max_value).
    """
    return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


def where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
    """``jnp.where(condition, x, y)`` leaf by leaf, one ``condition`` for all.

    Matches: optax.tree.where(condition, tree_x, tree_y).
    """
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def batch_shape(tree: Any, shape: tuple[int, ...] = ()) -> Any:
    """Every leaf broadcast to leading batch dimensions ``shape``.

    Matches: optax.tree.batch_shape(tree, shape).
    """
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


# --------------------------------------------------------------------------
# New trees shaped like a tree.
# --------------------------------------------------------------------------


def zeros_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of zeros shaped like ``tree`` (in ``dtype`` when given).

    Matches: optax.tree.zeros_like(tree, dtype).
    """
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def ones_like(tree: Any, dtype: Any = None) -> Any:
    """A tree of ones shaped like ``tree`` (in ``dtype`` when given).

    Matches: optax.tree.ones_like(tree, dtype).
    """
    return jax.tree.map(lambda x: jnp.ones_like(x, dtype=dtype), tree)


def full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """A tree filled with ``fill_value`` shaped like ``tree``.

    Matches: optax.tree.full_like(tree, fill_value, dtype).
    """
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


# --------------------------------------------------------------------------
# Reductions over all leaves.
# --------------------------------------------------------------------------


def _vdot(a: Any, b: Any) -> jax.Array:
    """``sum(conj(a) * b)`` at the highest matmul precision."""
    # optax 0.2.8 means to use a tensordot here from jax 0.7.2 on, but tests
    # the version as a string ('0.10.2' < '0.7.2'), so with jax 0.10 it runs
    # jnp.vdot: jgd does too, for the same sums in the same order.
    return jnp.vdot(jnp.asarray(a), jnp.asarray(b), precision=jax.lax.Precision.HIGHEST)


def vdot(tree_x: Any, tree_y: Any) -> Any:
    """The inner product of two trees, ``sum_i sum(conj(x_i) * y_i)``, at the
    highest matmul precision; 0 for empty trees.

    Matches: optax.tree.vdot(tree_x, tree_y).
    """
    vdots = jax.tree.map(_vdot, tree_x, tree_y)
    with _across_leaves():
        return jax.tree.reduce(operator.add, vdots, initializer=0)


def sum(tree: Any, associative_reduction: bool = False) -> Any:
    """The sum of all elements of all leaves; 0 for an empty tree.

    Args:
        tree: a pytree of arrays (int leaves sum as ints).
        associative_reduction: sum the leaves' sums as a balanced tree
            (``jax.tree.reduce_associative``), which can compile faster for
            many leaves and may round differently; default False (in order).

    Matches: optax.tree.sum(tree, associative_reduction).
    """
    sums = jax.tree.map(jnp.sum, tree)
    with _across_leaves():
        if associative_reduction:
            return jax.tree.reduce_associative(operator.add, sums, identity=0)
        return jax.tree.reduce(operator.add, sums, initializer=0)


def _size_or_none(reduce: Any) -> Any:
    # A zero-size leaf has no max or min: it drops out (None is no leaf).
    return lambda x: None if jnp.size(x) == 0 else reduce(x)


def max(tree: Any) -> Any:
    """The largest element of all leaves; ``-inf`` when there is none
    (so int leaves give a float, as in optax).

    Matches: optax.tree.max(tree).
    """
    maxes = jax.tree.map(_size_or_none(jnp.max), tree)
    with _across_leaves():
        lowest: Any = -float("inf")
        return jax.tree.reduce(jnp.maximum, maxes, initializer=lowest)


def min(tree: Any) -> Any:
    """The smallest element of all leaves; ``inf`` when there is none
    (so int leaves give a float, as in optax).

    Matches: optax.tree.min(tree).
    """
    mins = jax.tree.map(_size_or_none(jnp.min), tree)
    with _across_leaves():
        highest: Any = float("inf")
        return jax.tree.reduce(jnp.minimum, mins, initializer=highest)


def size(tree: Any) -> int:
    """The number of elements of all leaves together (a Python int).

    Matches: optax.tree.size(tree).
    """
    return builtins.sum(jnp.size(x) for x in jax.tree.leaves(tree))


def _square(x: Any) -> Any:
    # optax.tree.norm's |x|**2, not tree.abs_sq's (conj(x) * x).real: eager,
    # the two round complex leaves differently.
    return jnp.square(x.real) + jnp.square(x.imag)


def norm(tree: Any, ord: Any = None, squared: bool = False) -> jax.Array:
    """The vector norm of all leaves together.

    Update:
        n = sqrt(sum_i sum(|x_i|**2))      ord None or 2
        n = sum_i sum(|x_i|)               ord 1
        n = max_i max(|x_i|)               ord inf ('inf', 'infinity')
        n**2 when squared

    Args:
        tree: a pytree of (real, complex or int) arrays. An empty tree gives 0
            (-inf for ord inf, as ``max``).
        ord: None, 1, 2, ``jnp.inf``, ``'inf'`` or ``'infinity'``.
        squared: return the norm squared (for ord 2 without the square root).

    Raises:
        ValueError: for another ``ord``.

    Matches: optax.tree.norm(tree, ord, squared). Unlike ``global_norm``, the
    sum runs in each leaf's own dtype and adds up in optax's order.
    """
    if ord is None or ord == 2:
        sqnorm = sum(jax.tree.map(_square, tree))
        return jnp.array(sqnorm if squared else jnp.sqrt(sqnorm))
    if ord == 1:
        n = sum(jax.tree.map(jnp.abs, tree))
    elif ord == jnp.inf or ord in ("inf", "infinity"):
        n = max(jax.tree.map(jnp.abs, tree))
    else:
        raise ValueError(
            "jgd.tree.norm: ord must be None, 1, 2, inf, 'inf' or 'infinity'; "
            f"got {ord!r}."
        )
    return jnp.array(_square(n) if squared else n)


def allclose(
    a: Any,
    b: Any,
    rtol: Any = 1e-05,
    atol: Any = 1e-08,
    equal_nan: bool = False,
) -> Any:
    """Whether every leaf of ``a`` is close to ``b``'s (``jnp.allclose``):
    ``|a - b| <= atol + rtol * |b|`` element-wise; True for empty trees.

    Matches: optax.tree.allclose(a, b, rtol, atol, equal_nan).
    """

    def close(x, y):
        return jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)

    return functools.reduce(
        operator.and_, jax.tree.leaves(jax.tree.map(close, a, b)), True
    )
