"""Loss functions: how wrong a prediction is, as a differentiable number.

Holds the regression losses ``squared_error``, ``l2_loss``, ``huber_loss``
(per element, like optax), the scalar reductions the tutorials train with,
``mean_squared_error`` (MSE) and ``sum_squared_error`` (SSE), and the
classification losses ``sigmoid_binary_cross_entropy``,
``softmax_cross_entropy`` and ``softmax_cross_entropy_with_integer_labels``.

Names and argument names are optax 0.2.8's (``optax.losses``) where optax has
the function, and the values agree with optax to rounding. Conventions:

* Per-element losses return an array shaped like ``predictions`` (or like
  ``logits`` without the class axis); reduce it yourself (``.mean()``).
  ``mean_squared_error`` and ``sum_squared_error`` return scalars.
* Shapes must match exactly; nothing is broadcast (a ``(n,)`` prediction
  against ``(n, 1)`` targets would silently become ``(n, n)``), and a
  mismatch raises ``ValueError`` naming both shapes.
* The loss is computed in the dtype of ``predictions`` / ``logits``: targets
  and labels are cast to it, so bf16 in gives bf16 out, and the code passes
  under ``jax_numpy_dtype_promotion="strict"``.
* Cross entropies are written with ``log_sigmoid``/``log_softmax`` and stay
  finite, with finite gradients, for logits as large as +-1e4.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp

from jgd.base import check_number

__all__ = [
    "huber_loss",
    "l2_loss",
    "mean_squared_error",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
    "sum_squared_error",
]


# --------------------------------------------------------------------------
# Argument checks (static: shapes and dtypes, never values, so free under jit).
# --------------------------------------------------------------------------


def _floating(name: str, arg: str, x: Any) -> jax.Array:
    """``x`` as a jax array, which must have a floating dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name}: {arg} must be a floating-point array; got dtype {x.dtype}. "
            f"Cast it first, e.g. {arg}.astype(jnp.float32)."
        )
    return x


def _same_shape(name: str, a_name: str, a: jax.Array, b_name: str, b: jax.Array):
    if a.shape != b.shape:
        raise ValueError(
            f"{name}: {a_name} and {b_name} must have the same shape; got "
            f"{a_name} {a.shape} and {b_name} {b.shape}. Nothing is broadcast: "
            "reshape one of them (e.g. y.reshape(-1) or y[:, None])."
        )


def _like(name: str, arg: str, x: Any, ref: jax.Array) -> jax.Array:
    """``x`` as an array cast to ``ref``'s dtype, with ``ref``'s shape."""
    x = jnp.asarray(x)
    if not (jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_):
        raise TypeError(f"{name}: {arg} must be a numeric array; got dtype {x.dtype}.")
    return x.astype(ref.dtype)


def _errors(name: str, predictions: Any, targets: Any) -> jax.Array:
    """``predictions - targets`` (or ``predictions`` when targets is None)."""
    p = _floating(name, "predictions", predictions)
    if targets is None:
        return p
    t = _like(name, "targets", targets, p)
    _same_shape(name, "predictions", p, "targets", t)
    return p - t


def _axis(name: str, axis: Any, ndim: int) -> int:
    """``axis`` normalised to ``[0, ndim)``."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(
            f"{name}: axis must be an integer; got {axis!r} ({type(axis).__name__})."
        )
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}: axis must be in [{-ndim}, {ndim}) for logits of rank {ndim}; "
            f"got {axis}."
        )
    return int(axis) % ndim


# --------------------------------------------------------------------------
# Regression.
# --------------------------------------------------------------------------


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
    return _errors("jgd.losses.squared_error", predictions, targets) ** 2


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
    return 0.5 * _errors("jgd.losses.l2_loss", predictions, targets) ** 2


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
    errors = _errors(name, predictions, targets)
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
    errors = _errors("jgd.losses.mean_squared_error", predictions, targets)
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
    errors = _errors("jgd.losses.sum_squared_error", predictions, targets)
    return 0.5 * jnp.sum(errors**2)


# --------------------------------------------------------------------------
# Classification.
# --------------------------------------------------------------------------


def sigmoid_binary_cross_entropy(logits: Any, labels: Any) -> jax.Array:
    """Binary cross entropy of ``sigmoid(logits)`` against labels, per element.

    Takes logits, not probabilities: ``log sigmoid(x)`` is computed without
    forming ``sigmoid(x)``, so a logit of 1e4 neither rounds the probability
    to 1 nor takes ``log(0)``. The gradient is ``sigmoid(logits) - labels``.

    Update:
        loss = -labels * log_sigmoid(logits) - (1 - labels) * log_sigmoid(-logits)

    Args:
        logits: floating array of any shape (log-odds of class 1).
        labels: array of the same shape with values in [0, 1] (0/1 labels or
            probabilities), cast to the logits' dtype.

    Returns:
        An array shaped like ``logits``, in its dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``logits`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.sigmoid_binary_cross_entropy(jnp.zeros(2), jnp.array([0, 1]))
        Array([0.6931472, 0.6931472], dtype=float32)

    References: I. Goodfellow, Y. Bengio, A. Courville, "Deep Learning",
    2016, section 6.2.2.2 (sigmoid units for Bernoulli outputs).

    Matches: optax.losses.sigmoid_binary_cross_entropy, except that
    mismatched shapes raise instead of broadcasting.
    """
    name = "jgd.losses.sigmoid_binary_cross_entropy"
    x = _floating(name, "logits", logits)
    y = _like(name, "labels", labels, x)
    _same_shape(name, "logits", x, "labels", y)
    return -y * jax.nn.log_sigmoid(x) - (1.0 - y) * jax.nn.log_sigmoid(-x)


def softmax_cross_entropy(logits: Any, labels: Any, axis: int = -1) -> jax.Array:
    """Cross entropy of ``softmax(logits)`` against target distributions.

    Update:
        loss = -sum_k labels[..., k] * log_softmax(logits)[..., k]

    ``log_softmax`` subtracts the maximum logit before exponentiating, so
    logits of +-1e4 give finite losses and gradients. The gradient is
    ``softmax(logits) * sum(labels) - labels``.

    Args:
        logits: floating array ``[..., num_classes]`` (class axis ``axis``).
        labels: array of the same shape, each slice along ``axis`` a
            probability distribution (e.g. one-hot), cast to the logits' dtype.
        axis: the class axis, an int (default -1).

    Returns:
        An array of ``logits.shape`` without ``axis``, in the logits' dtype.

    Raises:
        ValueError: when the shapes differ or ``axis`` is out of range.
        TypeError: when ``logits`` is not floating point or ``axis`` not an int.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
        >>> labels = jax.nn.one_hot(jnp.array([0, 1]), 3)
        >>> [round(float(v), 4) for v in losses.softmax_cross_entropy(logits, labels)]
        [0.2761, 2.9518]

    References: Goodfellow et al., "Deep Learning", 2016, section 6.2.2.3
    (softmax units for multinoulli outputs).

    Matches: optax.losses.softmax_cross_entropy(logits, labels, axis), except
    that labels must have the logits' shape, axis is a single int and there
    is no ``where`` argument.
    """
    name = "jgd.losses.softmax_cross_entropy"
    x = _floating(name, "logits", logits)
    y = _like(name, "labels", labels, x)
    _same_shape(name, "logits", x, "labels", y)
    axis = _axis(name, axis, x.ndim)
    return -jnp.sum(y * jax.nn.log_softmax(x, axis=axis), axis=axis)


def softmax_cross_entropy_with_integer_labels(
    logits: Any, labels: Any, axis: int = -1
) -> jax.Array:
    """Cross entropy of ``softmax(logits)`` against integer class labels.

    Update:
        loss = logsumexp(logits, axis) - logits[..., labels, ...]

    Same value as ``softmax_cross_entropy`` with one-hot labels, without
    building the one-hot array. Labels outside ``[0, num_classes)`` are data,
    not checked (that would need their values): they give nan, as in optax.

    Args:
        logits: floating array ``[..., num_classes]`` (class axis ``axis``).
        labels: integer array of ``logits.shape`` without ``axis``.
        axis: the class axis, an int (default -1).

    Returns:
        An array of the labels' shape, in the logits' dtype.

    Raises:
        ValueError: when the labels' shape is not the logits' shape without
            ``axis``, or ``axis`` is out of range.
        TypeError: when ``logits`` is not floating point, ``labels`` not
            integer, or ``axis`` not an int.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
        >>> loss = losses.softmax_cross_entropy_with_integer_labels(
        ...     logits, jnp.array([0, 1]))
        >>> [round(float(v), 4) for v in loss]
        [0.2761, 2.9518]

    References: Goodfellow et al., "Deep Learning", 2016, section 6.2.2.3.

    Matches: optax.losses.softmax_cross_entropy_with_integer_labels(logits,
    labels, axis), except that axis is a single int and there is no ``where``.
    """
    name = "jgd.losses.softmax_cross_entropy_with_integer_labels"
    x = _floating(name, "logits", logits)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{name}: labels must be an integer array of class indices; got dtype "
            f"{labels.dtype}. For one-hot or soft labels use softmax_cross_entropy."
        )
    axis = _axis(name, axis, x.ndim)
    expected = x.shape[:axis] + x.shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"{name}: labels must have the logits' shape without axis {axis}, "
            f"{expected}; got labels {labels.shape} for logits {x.shape}."
        )
    picked = jnp.take_along_axis(x, jnp.expand_dims(labels, axis), axis=axis)
    return jax.nn.logsumexp(x, axis=axis) - jnp.squeeze(picked, axis)
