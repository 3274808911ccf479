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
  mismatch raises ``ValueError`` naming both shapes. The one exception is
  optax's: a ``where`` mask may give one flag per example.
* The loss is computed in the dtype of ``predictions`` / ``logits``: targets
  and labels are cast to it, so bf16 in gives bf16 out, and the code passes
  under ``jax_numpy_dtype_promotion="strict"``.
* Cross entropies are written with ``log_sigmoid``/``log_softmax`` and stay
  finite, with finite gradients, for logits as large as +-1e30; entries
  masked out by ``where`` contribute nothing, even at -inf.
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


def _axes(name: str, axis: Any, ndim: int, allow_none: bool) -> tuple[int, ...]:
    """``axis`` (an int, a tuple of ints, or None for all axes when
    ``allow_none``) as a tuple of axes in ``[0, ndim)``, in the order given."""
    if axis is None and allow_none:
        return tuple(range(ndim))
    kinds = "an integer or a tuple of integers" + (" or None" if allow_none else "")
    items = axis if isinstance(axis, tuple) else (axis,)
    for a in items:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(
                f"{name}: axis must be {kinds}; got {axis!r} ({type(axis).__name__})."
            )
        if not -ndim <= int(a) < ndim:
            raise ValueError(
                f"{name}: axis must be in [{-ndim}, {ndim}) for logits of rank "
                f"{ndim}; got {axis}."
            )
    axes = tuple(int(a) % ndim for a in items)
    if not axes or len(set(axes)) != len(axes):
        raise ValueError(
            f"{name}: axis must name at least one axis, each once; got {axis!r}."
        )
    return axes


def _mask(name: str, where: Any, shape: tuple, axes: tuple[int, ...]) -> jax.Array:
    """``where`` as a boolean array of ``shape``, given either with ``shape``
    or with ``shape`` without ``axes`` (one flag per example), as in optax."""
    w = jnp.asarray(where)
    if w.dtype != jnp.bool_:
        raise TypeError(
            f"{name}: where must be a boolean array; got dtype {w.dtype}. "
            "Compare first, e.g. where=mask > 0."
        )
    reduced = tuple(d for i, d in enumerate(shape) if i not in axes)
    if w.shape == reduced:
        w = jnp.expand_dims(w, axes)
    elif w.shape != shape:
        raise ValueError(
            f"{name}: where must have the logits' shape {shape} or the logits' "
            f"shape without axis {axes}, {reduced}; got where {w.shape}."
        )
    return jnp.broadcast_to(w, shape)


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


def softmax_cross_entropy(
    logits: Any, labels: Any, axis: Any = -1, where: Any = None
) -> jax.Array:
    """Cross entropy of ``softmax(logits)`` against target distributions.

    Update:
        log_p = log_softmax(logits, axis, where)        # -inf where masked
        loss = -sum_{k in axis, where[k]} labels[k] * log_p[k]

    ``log_softmax`` subtracts the maximum logit before exponentiating, so
    logits of +-1e30 give finite losses and gradients. The gradient is
    ``softmax(logits) * sum(labels) - labels`` over the entries ``where``
    keeps. Masked entries contribute nothing, whatever their logits (-inf
    included) or labels hold: their loss term and their gradients (with
    respect to logits and labels) are 0, and a fully masked example has loss
    0. An unmasked logit of -inf with label 0 gives nan (0 * -inf), as in
    optax: mask such classes with ``where``.

    Args:
        logits: floating array ``[..., num_classes]`` (class axes ``axis``).
        labels: array of the same shape, each slice along ``axis`` a
            probability distribution (e.g. one-hot), cast to the logits' dtype.
        axis: the class axis, default -1; an int, a tuple of ints (the classes
            span several axes, normalised over all of them jointly) or None
            (all axes, a scalar loss).
        where: optional boolean mask of the entries to include, default None
            (all). Either the logits' shape, or the logits' shape without
            ``axis`` (one flag per example: False drops the example, loss 0).

    Returns:
        An array of ``logits.shape`` without ``axis``, in the logits' dtype.

    Raises:
        ValueError: when the shapes differ, ``axis`` is out of range, empty or
            repeats an axis, or ``where`` has neither accepted shape.
        TypeError: when ``logits`` is not floating point, ``axis`` is not an
            int, tuple of ints or None, or ``where`` is not boolean.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
        >>> labels = jax.nn.one_hot(jnp.array([0, 1]), 3)
        >>> [round(float(v), 4) for v in losses.softmax_cross_entropy(logits, labels)]
        [0.2761, 2.9518]
        >>> where = jnp.array([[True, True, False], [True, True, True]])
        >>> loss = losses.softmax_cross_entropy(logits, labels, where=where)
        >>> [round(float(v), 4) for v in loss]
        [0.1269, 2.9518]

    References: Goodfellow et al., "Deep Learning", 2016, section 6.2.2.3
    (softmax units for multinoulli outputs).

    Matches: optax.losses.softmax_cross_entropy(logits, labels, axis, where),
    except that labels must have the logits' shape and ``where`` one of the
    two shapes above (nothing is broadcast), and that the gradient with
    respect to masked labels is 0 where optax's is nan.
    """
    name = "jgd.losses.softmax_cross_entropy"
    x = _floating(name, "logits", logits)
    y = _like(name, "labels", labels, x)
    _same_shape(name, "logits", x, "labels", y)
    axes = _axes(name, axis, x.ndim, allow_none=True)
    if where is None:
        return -jnp.sum(y * jax.nn.log_softmax(x, axis=axes), axis=axes)
    w = _mask(name, where, x.shape, axes)
    # 1. log_softmax over the kept entries (jax's: -inf where masked).
    log_p = jax.nn.log_softmax(x, axis=axes, where=w)
    # 2. Masked terms are 0 before the product, so labels * -inf (or nan
    #    labels used as padding) never reach the value or either gradient.
    terms = jnp.where(w, y * jnp.where(w, log_p, 0.0), 0.0)
    return -jnp.sum(terms, axis=axes)


def softmax_cross_entropy_with_integer_labels(
    logits: Any, labels: Any, axis: Any = -1, where: Any = None
) -> jax.Array:
    """Cross entropy of ``softmax(logits)`` against integer class labels.

    Update:
        loss = logsumexp(logits, axis, where) - logits[..., labels, ...]
        loss = 0 for an example whose entries are all masked

    Same value as ``softmax_cross_entropy`` with one-hot labels, without
    building the one-hot array. Labels outside ``[0, num_classes)`` are data,
    not checked (that would need their values): they give nan, as in optax.
    With a tuple ``axis`` the classes are the entries of the slice
    ``logits[axis]``, flattened in C order with the axes in the order given
    (``axis=(2, 3)`` on ``(b, t, 3, 4)`` logits: label ``i * 4 + j`` is entry
    ``(i, j)``; ``jnp.ravel_multi_index`` builds such labels). Masked entries
    are left out of the normaliser; a label pointing at a masked entry still
    reads its logit, as in optax.

    Args:
        logits: floating array ``[..., num_classes]`` (class axes ``axis``).
        labels: integer array of ``logits.shape`` without ``axis``.
        axis: the class axis, default -1; an int or a tuple of ints (the
            classes span several axes, see above).
        where: optional boolean mask of the entries to include, default None
            (all). Either the logits' shape, or the labels' shape (one flag
            per example: False drops the example, loss 0).

    Returns:
        An array of the labels' shape, in the logits' dtype.

    Raises:
        ValueError: when the labels' shape is not the logits' shape without
            ``axis``, ``axis`` is out of range, empty or repeats an axis, or
            ``where`` has neither accepted shape.
        TypeError: when ``logits`` is not floating point, ``labels`` not
            integer, ``axis`` not an int or tuple of ints, or ``where`` not
            boolean.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> logits = jnp.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
        >>> loss = losses.softmax_cross_entropy_with_integer_labels(
        ...     logits, jnp.array([0, 1]))
        >>> [round(float(v), 4) for v in loss]
        [0.2761, 2.9518]
        >>> logits = jnp.arange(24.0).reshape(1, 2, 3, 4)
        >>> labels = jnp.ravel_multi_index((jnp.array([[1, 2]]),
        ...     jnp.array([[1, 3]])), (3, 4))
        >>> loss = losses.softmax_cross_entropy_with_integer_labels(
        ...     logits, labels, axis=(2, 3))
        >>> [round(float(v), 4) for v in loss[0]]
        [6.4587, 0.4587]

    References: Goodfellow et al., "Deep Learning", 2016, section 6.2.2.3.

    Matches: optax.losses.softmax_cross_entropy_with_integer_labels(logits,
    labels, axis, where), except that ``where`` must have one of the two
    shapes above (nothing is broadcast) and a bad ``axis`` raises TypeError
    (wrong kind) where optax raises ValueError.
    """
    name = "jgd.losses.softmax_cross_entropy_with_integer_labels"
    x = _floating(name, "logits", logits)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(
            f"{name}: labels must be an integer array of class indices; got dtype "
            f"{labels.dtype}. For one-hot or soft labels use softmax_cross_entropy."
        )
    axes = _axes(name, axis, x.ndim, allow_none=False)
    batch = tuple(i for i in range(x.ndim) if i not in axes)
    expected = tuple(x.shape[i] for i in batch)
    if labels.shape != expected:
        shown = axes[0] if isinstance(axis, numbers.Integral) else axes
        raise ValueError(
            f"{name}: labels must have the logits' shape without axis {shown}, "
            f"{expected}; got labels {labels.shape} for logits {x.shape}."
        )
    w = None if where is None else _mask(name, where, x.shape, axes)
    if isinstance(axis, tuple):
        # The class axes move last, in the order given, and merge into one.
        x = x.transpose(batch + axes).reshape(expected + (-1,))
        if w is not None:
            w = w.transpose(batch + axes).reshape(expected + (-1,))
        c = len(batch)
    else:
        c = axes[0]
    picked = jnp.take_along_axis(x, jnp.expand_dims(labels, c), axis=c)
    loss = jax.nn.logsumexp(x, axis=c, where=w) - jnp.squeeze(picked, c)
    if w is None:
        return loss
    return jnp.where(jnp.any(w, axis=c), loss, 0.0)
