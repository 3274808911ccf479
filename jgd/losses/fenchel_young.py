"""Fenchel-Young losses: a loss from any regularised max function.

``make_fenchel_young_loss`` builds ``max_fun(scores) - <targets, scores>``
from a max function (``logsumexp`` gives the softmax cross entropy);
``sparsemax_loss`` (binary) and ``multiclass_sparsemax_loss`` are the ones
of sparsemax, whose predicted probabilities can be exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jgd.losses import _args

__all__ = [
    "make_fenchel_young_loss",
    "multiclass_sparsemax_loss",
    "sparsemax_loss",
]


def make_fenchel_young_loss(max_fun: Callable[..., Any]) -> Callable[..., jax.Array]:
    """Build the Fenchel-Young loss of a max function, over the last axis.

    Update:
        loss(scores, targets, *args, **kwargs)
            = max_fun(scores, *args, **kwargs) - <targets, scores>

    ``max_fun`` maps a vector of scores to a number (a smoothed maximum, the
    convex conjugate of a regulariser). The loss is >= 0, 0 exactly when the
    prediction ``grad max_fun(scores)`` equals the targets, and its gradient
    with respect to the scores is that prediction minus the targets.

    Args:
        max_fun: a function of a 1-D score vector (and any extra arguments),
            e.g. ``jax.nn.logsumexp``. Called on the last axis; leading axes
            are batch axes.

    Returns:
        ``fenchel_young_loss(scores, targets, *args, **kwargs)``: scores a
        floating array ``[..., n]``, targets the same shape (cast to the
        scores' dtype); an array ``[...]``.

    Raises:
        TypeError: when ``max_fun`` is not callable (and, from the loss, when
            ``scores`` is not floating point); ValueError from the loss when
            the shapes differ.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> loss = losses.make_fenchel_young_loss(jax.nn.logsumexp)
        >>> loss(jnp.array([[1.2, -0.8, -0.5]]), jnp.array([[1.0, 0.0, 0.0]]))
        Array([0.27612972], dtype=float32)

    References: M. Blondel, A. F. T. Martins, V. Niculae, "Learning with
    Fenchel-Young Losses", JMLR 2020, definition 2.

    Matches: optax.losses.make_fenchel_young_loss(max_fun), except that the
    targets must have the scores' shape.
    """
    name = "jgd.losses.make_fenchel_young_loss"
    if not callable(max_fun):
        raise TypeError(
            f"{name}: max_fun must be a function of a score vector, e.g. "
            f"jax.nn.logsumexp; got {max_fun!r} ({type(max_fun).__name__})."
        )
    vdot_last_dim = jnp.vectorize(jnp.vdot, signature="(n),(n)->()")
    max_fun_last_dim = jnp.vectorize(max_fun, signature="(n)->()")

    def fenchel_young_loss(
        scores: Any, targets: Any, *args: Any, **kwargs: Any
    ) -> jax.Array:
        s, t = _args.paired(f"{name}(...)", "scores", scores, "targets", targets)
        return max_fun_last_dim(s, *args, **kwargs) - vdot_last_dim(t, s)

    return fenchel_young_loss


def sparsemax_loss(logits: Any, labels: Any) -> jax.Array:
    """Binary sparsemax loss per element: 0 once the logit is past +-1 on the
    label's side, quadratic in between, linear beyond.

    Update:
        z = -logits if labels else logits
        loss = sparse_plus(z) = 0 if z <= -1, (z + 1)**2 / 4 if |z| < 1, z if z >= 1

    The Fenchel-Young loss of ``sparse_sigmoid``: 0 exactly when
    ``jax.nn.sparse_sigmoid(logits) == labels``.

    Args:
        logits: floating array of any shape.
        labels: array of the same shape, 0 or 1 (any nonzero value counts as 1).

    Returns:
        An array shaped like ``logits``, in its dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``logits`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.sparsemax_loss(jnp.array([2.0, 0.0, -2.0]), jnp.array([1, 1, 1]))
        Array([0.  , 0.25, 2.  ], dtype=float32)

    References: M. Blondel, A. F. T. Martins, V. Niculae, "Learning with
    Fenchel-Young Losses", JMLR 2020, section 4.4.

    Matches: optax.losses.sparsemax_loss, except that mismatched shapes
    raise instead of broadcasting.
    """
    name = "jgd.losses.sparsemax_loss"
    x, y = _args.paired(name, "logits", logits, "labels", labels)
    return jax.nn.sparse_plus(jnp.where(y, -x, x))


@jax.custom_jvp
def _projection_unit_simplex(v: jax.Array) -> jax.Array:
    """Euclidean projection of a vector onto the probability simplex."""
    dtype = v.dtype
    u = jnp.sort(v)[::-1]
    cumsum_u = jnp.cumsum(u)
    ind = (jnp.arange(v.shape[0]) + 1).astype(dtype)
    cond = 1 / ind + (u - cumsum_u / ind) > 0
    idx = jnp.count_nonzero(cond)
    k = idx.astype(dtype)
    return jax.nn.relu(1 / k + (v - cumsum_u[idx - 1] / k))


@_projection_unit_simplex.defjvp
def _projection_unit_simplex_jvp(primals: Any, tangents: Any) -> Any:
    # The projection is linear on its support: the tangent is projected too.
    (v,), (dv,) = primals, tangents
    out = _projection_unit_simplex(v)
    supp = (out > 0).astype(v.dtype)
    card = jnp.count_nonzero(supp).astype(v.dtype)
    return out, supp * dv - (jnp.dot(supp, dv) / card) * supp


def _multiclass_sparsemax(scores: jax.Array, label: jax.Array) -> jax.Array:
    # scores / 1, as optax's projection_simplex(values / scale): the
    # projection's two cotangent terms (which cancel) are summed before they
    # meet the other uses of scores; in the other order, at scores of 1e30,
    # a gradient of 1 is lost to rounding.
    proba = _projection_unit_simplex(scores / 1)
    # The conjugate of the Gini negentropy, with the label's score subtracted
    # before the products, so huge scores off the support do not cancel.
    scores = (scores - scores[label]).at[label].set(0.0)
    return jnp.dot(proba, jnp.where(proba, scores, 0.0)) + 0.5 * (
        1.0 - jnp.dot(proba, proba)
    )


def multiclass_sparsemax_loss(scores: Any, labels: Any) -> jax.Array:
    """Multiclass sparsemax loss: the Fenchel-Young loss of sparsemax.

    Update:
        p = sparsemax(scores) = argmin_{q in simplex} |q - scores|**2
        loss = <p, scores - scores[label]> + (1 - <p, p>) / 2

    Like the softmax cross entropy, but its prediction ``p`` can put exactly
    0 on classes: the loss is 0 once the true class's score beats the others
    by 1.

    Args:
        scores: floating array ``[..., num_classes]``.
        labels: integer array ``[...]`` of class indices.

    Returns:
        An array ``[...]`` in the scores' dtype.

    Raises:
        ValueError: when the labels' shape is not the scores' without the last
            axis.
        TypeError: when ``scores`` is not floating point or ``labels`` not
            integer.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> scores = jnp.array([[1.0, 0.5, -3.0]])   # sparsemax [0.75, 0.25, 0]
        >>> jax.jit(losses.multiclass_sparsemax_loss)(scores, jnp.array([1]))
        Array([0.5625], dtype=float32)

    References: A. F. T. Martins, R. F. Astudillo, "From Softmax to
    Sparsemax: A Sparse Model of Attention and Multi-Label Classification",
    2016, eq. (14) and algorithm 1.

    Matches: optax.losses.multiclass_sparsemax_loss, which takes
    ``[batch, num_classes]`` scores only; any leading axes work here.
    """
    name = "jgd.losses.multiclass_sparsemax_loss"
    s, y = _args.class_scores(name, scores, labels)
    flat = jax.vmap(_multiclass_sparsemax)(s.reshape(-1, s.shape[-1]), y.reshape(-1))
    return flat.reshape(y.shape)
