"""Regression losses: how far a prediction is from its target.

Per element, as optax: ``squared_error``, ``l2_loss``, ``huber_loss``,
``log_cosh``. Per vector: ``cosine_similarity`` and ``cosine_distance``. And
the scalar reductions the tutorials train with, ``mean_squared_error`` (MSE)
and ``sum_squared_error`` (SSE).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jgd.base import check_number
from jgd.losses import _args

__all__ = [
    "cosine_distance",
    "cosine_similarity",
    "huber_loss",
    "l2_loss",
    "log_cosh",
    "mean_squared_error",
    "squared_error",
    "sum_squared_error",
]


def squared_error(predictions: Any, targets: Any = None) -> jax.Array:
    """Squared error per element.

    Update:
        loss = (predictions - targets)**2

    Its derivative with respect to the prediction is ``2 * (predictions -
    targets)``, the "2 * error" of the tutorials' worked example.

    Args:
        predictions: floating array of any shape.
        targets: array of the same shape (cast to the predictions' dtype), or
            None for zeros.

    Returns:
        An array shaped like ``predictions``, in its dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``predictions`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.squared_error(jnp.array([6.0, 1.0]), jnp.array([10.0, 1.5]))
        Array([16.  ,  0.25], dtype=float32)

    Matches: optax.losses.squared_error.
    """
    return _args.errors("jgd.losses.squared_error", predictions, targets) ** 2


def l2_loss(predictions: Any, targets: Any = None) -> jax.Array:
    """Half the squared error per element (Bishop's convention).

    Update:
        loss = 0.5 * (predictions - targets)**2

    The 1/2 cancels the 2 of the derivative: ``d loss / d predictions =
    predictions - targets``.

    Args:
        predictions: floating array of any shape.
        targets: array of the same shape, or None for zeros.

    Returns:
        An array shaped like ``predictions``, in its dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``predictions`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.l2_loss(jnp.array([6.0, 1.0]), jnp.array([10.0, 1.5]))
        Array([8.   , 0.125], dtype=float32)

    References: C. M. Bishop, "Pattern Recognition and Machine Learning",
    2006, eq. 1.2.

    Matches: optax.losses.l2_loss.
    """
    return 0.5 * _args.errors("jgd.losses.l2_loss", predictions, targets) ** 2


def huber_loss(predictions: Any, targets: Any = None, *, delta: Any = 1.0) -> jax.Array:
    """Huber loss per element: quadratic near zero, linear beyond ``delta``.

    Gradient descent on it is gradient descent on ``l2_loss`` with the
    per-element gradient clipped to ``[-delta, delta]``: outliers pull, but
    no harder than ``delta``.

    Update:
        e = |predictions - targets|
        q = min(e, delta)
        loss = 0.5 * q**2 + delta * (e - q)
        # = 0.5 * e**2 if e <= delta else delta * e - 0.5 * delta**2

    Args:
        predictions: floating array of any shape.
        targets: array of the same shape, or None for zeros.
        delta: where the loss turns linear; a number > 0 (keyword only, as in
            optax), default 1.0. A traced value is accepted.

    Returns:
        An array shaped like ``predictions``, in its dtype.

    Raises:
        ValueError: when the shapes differ or ``delta`` is not > 0.
        TypeError: when ``predictions`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.huber_loss(jnp.array([0.5, 3.0]), delta=1.0)
        Array([0.125, 2.5  ], dtype=float32)

    References: P. J. Huber, "Robust Estimation of a Location Parameter",
    1964, eq. (3).

    Matches: optax.losses.huber_loss(predictions, targets, delta=delta), except
    that delta <= 0 raises and mismatched shapes raise instead of broadcasting.
    """
    name = "jgd.losses.huber_loss"
    check_number(name, "delta", delta, 0, lo_open=True)
    errors = _args.errors(name, predictions, targets)
    delta = jnp.asarray(delta).astype(errors.dtype)
    abs_errors = jnp.abs(errors)
    quadratic = jnp.minimum(abs_errors, delta)
    linear = abs_errors - quadratic  # not max(e - delta, 0): one gradient path
    return 0.5 * quadratic**2 + delta * linear


def mean_squared_error(predictions: Any, targets: Any) -> jax.Array:
    """Mean squared error (MSE) over all elements: a scalar.

    Update:
        loss = mean((predictions - targets)**2)

    The tutorials' MSE: averaging instead of summing keeps the gradient's
    size independent of the number of records, so learning rates around
    0.01-0.001 work however much data there is. Its gradient with respect
    to one prediction is ``2 * (prediction - target) / m`` for ``m``
    elements (the seed's worked example has ``m = 1``).

    Args:
        predictions: floating array of any shape.
        targets: array of the same shape.

    Returns:
        A scalar in the dtype of ``predictions`` (nan for empty arrays).

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``predictions`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.mean_squared_error(jnp.array([6.0, 1.0]), jnp.array([10.0, 2.0]))
        Array(8.5, dtype=float32)

    Matches: optax.losses.squared_error(predictions, targets).mean(); optax
    has no function of this name.
    """
    errors = _args.errors("jgd.losses.mean_squared_error", predictions, targets)
    return jnp.mean(errors**2)


def sum_squared_error(predictions: Any, targets: Any) -> jax.Array:
    """Sum of squared errors (SSE) with the tutorials' factor 1/2: a scalar.

    Update:
        loss = 0.5 * sum((predictions - targets)**2)

    This is the error ``E = 1/2 sum_mu sum_j (y_j^mu - yhat_j^mu)**2`` of the
    "Gradient Descent with Squared Errors" lesson the seeds quote. The 1/2
    makes the gradient the error itself, ``dE/d yhat = yhat - y``, so for a
    linear unit ``-dE/dw_i = sum_mu (y^mu - yhat^mu) x_i^mu``: the delta rule,
    ``delta_w = learning_rate * error * x``, the tutorials' gradient descent
    code implements. For the plain sum, use
    ``jnp.sum(losses.squared_error(p, t))`` (twice this value).

    Args:
        predictions: floating array of any shape.
        targets: array of the same shape.

    Returns:
        A scalar in the dtype of ``predictions``.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``predictions`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.sum_squared_error(jnp.array([6.0, 1.0]), jnp.array([10.0, 2.0]))
        Array(8.5, dtype=float32)

    References: Udacity, "Intro to Deep Learning", lesson "Gradient Descent
    with Squared Errors" (the SSE and the delta rule).

    Matches: optax.losses.l2_loss(predictions, targets).sum(); optax has no
    function of this name.
    """
    errors = _args.errors("jgd.losses.sum_squared_error", predictions, targets)
    return 0.5 * jnp.sum(errors**2)


def log_cosh(predictions: Any, targets: Any = None) -> jax.Array:
    """Log of the hyperbolic cosine of the error, per element.

    About ``e**2 / 2`` for small errors and ``|e| - log 2`` for large ones: a
    twice-differentiable Huber loss. Its gradient is ``tanh(e)``. Written
    with ``logaddexp``, so errors of 1e30 give ``|e| - log 2``, not inf.

    Update:
        e = predictions - targets
        loss = logaddexp(e, -e) - log(2)        # = log(cosh(e))

    Args:
        predictions: floating array of any shape.
        targets: array of the same shape (cast to the predictions' dtype), or
            None for zeros.

    Returns:
        An array shaped like ``predictions``, in its dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``predictions`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.log_cosh(jnp.array([0.0, 100.0]))
        Array([ 0.      , 99.306854], dtype=float32)

    References: P. Chen, G. Chen, S. Zhang, "Log Hyperbolic Cosine Loss
    Improves Variational Auto-Encoder", 2019, eq. (5).

    Matches: optax.losses.log_cosh, except that mismatched shapes raise
    instead of broadcasting.
    """
    errors = _args.errors("jgd.losses.log_cosh", predictions, targets)
    return jnp.logaddexp(errors, -errors) - jnp.log(2.0).astype(errors.dtype)


def _cosine(
    name: str, predictions: Any, targets: Any, epsilon: Any, axis: Any, where: Any
) -> jax.Array:
    check_number(name, "epsilon", epsilon, 0)
    a, b = _args.paired(name, "predictions", predictions, "targets", targets)
    axes = _args.axes(name, axis, a.ndim, allow_none=True, arg="predictions")
    w = None
    if where is not None:
        w = _args.mask(name, where, a.shape, axes, arg="predictions")
    eps = jnp.asarray(epsilon).astype(a.dtype)
    return jnp.sum(
        _args.unit(a, eps, axes, w) * _args.unit(b, eps, axes, w), axes, where=w
    )


def cosine_similarity(
    predictions: Any,
    targets: Any,
    *,
    epsilon: Any = 0.0,
    axis: Any = -1,
    where: Any = None,
) -> jax.Array:
    """Cosine of the angle between predictions and targets, per vector.

    Update:
        unit(x) = x / sqrt(max(sum_{axis, where} x**2, epsilon))
        loss = sum_{axis, where} unit(predictions) * unit(targets)

    The squared norms are formed from the vectors scaled by a power of two
    (exact), so vectors of 1e30 or 1e-30 in float32 give their cosine, where
    the direct formula overflows to 0 or underflows to inf. A zero vector
    with ``epsilon = 0`` gives nan (0 / 0), as in optax.

    Args:
        predictions: floating array ``[..., dim]`` (vector axes ``axis``).
        targets: array of the same shape, cast to the predictions' dtype.
        epsilon: lower bound on each squared norm; a number >= 0 (keyword
            only), default 0.0. A traced value is accepted.
        axis: the vector axis, default -1; an int, a tuple of ints or None
            (all axes).
        where: optional boolean mask of the entries to include, default None
            (all): the predictions' shape, or that shape without ``axis``
            (one flag per vector: False gives 0).

    Returns:
        An array of the predictions' shape without ``axis``, in their dtype.

    Raises:
        ValueError: when the shapes differ, ``epsilon`` < 0, ``axis`` is out
            of range, or ``where`` has neither accepted shape.
        TypeError: when ``predictions`` is not floating point, ``axis`` not an
            int, tuple of ints or None, or ``where`` not boolean.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.cosine_similarity(jnp.array([[1e30, 0.0]]), jnp.array([[1.0, 1.0]]))
        Array([0.70710677], dtype=float32)

    References: A. Singhal, "Modern Information Retrieval: A Brief Overview",
    2001, section 2.1 (cosine similarity).

    Matches: optax.losses.cosine_similarity(predictions, targets,
    epsilon=epsilon, axis=axis, where=where), bit for bit where optax's norms
    neither overflow nor underflow; finite where they do (tests/catalogue/
    losses.py KNOWN_DIFFERENCES "cosine of huge and tiny vectors"); shapes
    are not broadcast.
    """
    name = "jgd.losses.cosine_similarity"
    return _cosine(name, predictions, targets, epsilon, axis, where)


def cosine_distance(
    predictions: Any,
    targets: Any,
    *,
    epsilon: Any = 0.0,
    axis: Any = -1,
    where: Any = None,
) -> jax.Array:
    """One minus the cosine similarity, per vector: 0 for the same direction.

    Update:
        loss = 1 - cosine_similarity(predictions, targets, epsilon, axis, where)

    Args:
        predictions: floating array ``[..., dim]`` (vector axes ``axis``).
        targets: array of the same shape, cast to the predictions' dtype.
        epsilon: lower bound on each squared norm; a number >= 0 (keyword
            only), default 0.0. A traced value is accepted.
        axis: the vector axis, default -1; an int, a tuple of ints or None.
        where: optional boolean mask, as for ``cosine_similarity`` (a vector
            fully masked out gives 1).

    Returns:
        An array of the predictions' shape without ``axis``, in their dtype.

    Raises:
        ValueError, TypeError: as ``cosine_similarity``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.cosine_distance(jnp.array([[2.0, 0.0]]), jnp.array([[0.0, 3.0]]))
        Array([1.], dtype=float32)

    References: as ``cosine_similarity``.

    Matches: optax.losses.cosine_distance, with ``cosine_similarity``'s
    differences.
    """
    name = "jgd.losses.cosine_distance"
    return 1.0 - _cosine(name, predictions, targets, epsilon, axis, where)
