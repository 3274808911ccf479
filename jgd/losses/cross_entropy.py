"""Cross entropies: the log-likelihood losses of classifiers, from logits.

Sigmoid (independent binary decisions): ``sigmoid_binary_cross_entropy`` and
``sigmoid_focal_loss``. Softmax (one class of many):
``softmax_cross_entropy`` (soft or one-hot labels),
``softmax_cross_entropy_with_integer_labels``, ``safe_softmax_cross_entropy``
(0 * log 0 = 0) and ``poly_loss_cross_entropy``; and ``smooth_labels``, the
label smoothing they are often trained with. All work from logits with
``log_sigmoid``/``log_softmax``, so logits of +-1e30 stay finite.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.special

from jgd.base import check_number
from jgd.losses import _args

__all__ = [
    "poly_loss_cross_entropy",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]


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
    x, y = _args.paired(name, "logits", logits, "labels", labels)
    return _binary_ce(x, y)


def _binary_ce(x: jax.Array, y: jax.Array) -> jax.Array:
    return -y * jax.nn.log_sigmoid(x) - (1.0 - y) * jax.nn.log_sigmoid(-x)


def sigmoid_focal_loss(
    logits: Any, labels: Any, *, alpha: Any = None, gamma: Any = 2.0
) -> jax.Array:
    """Focal loss: the binary cross entropy scaled down for easy examples.

    ``p_t`` is the predicted probability of the true label; the factor
    ``(1 - p_t)**gamma`` fades out examples the model already gets right, so
    rare classes are not drowned by easy negatives. ``log(1 - p_t)`` is a
    ``logsumexp`` of ``log_sigmoid(+-logits)``, finite for logits of +-1e4.

    Update:
        ce = sigmoid_binary_cross_entropy(logits, labels)
        log(1 - p_t) = logsumexp([log_sigmoid(x), log_sigmoid(-x)],
                                 b=[1 - labels, labels])
        loss = ce * exp(gamma * log(1 - p_t))
        loss = (alpha * labels + (1 - alpha) * (1 - labels)) * loss   # alpha set

    Args:
        logits: floating array of any shape.
        labels: array of the same shape with values in [0, 1] (0/1 labels or
            soft targets), cast to the logits' dtype.
        alpha: weight of the positive class in [0, 1], or None (no weighting,
            the default); keyword only. A traced value is accepted.
        gamma: focusing exponent >= 0 (0 gives the cross entropy), default
            2.0; keyword only. A traced value is accepted.

    Returns:
        An array shaped like ``logits``, in its dtype.

    Raises:
        ValueError: when the shapes differ or alpha/gamma are out of range.
        TypeError: when ``logits`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.sigmoid_focal_loss(jnp.array([2.0, -2.0]), jnp.array([1.0, 1.0]))
        Array([0.00180356, 1.6500783 ], dtype=float32)

    References: T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollar, "Focal
    Loss for Dense Object Detection", 2017, eq. (5).

    Matches: optax.losses.sigmoid_focal_loss(logits, labels, alpha=alpha,
    gamma=gamma), except that mismatched shapes raise instead of broadcasting.
    """
    name = "jgd.losses.sigmoid_focal_loss"
    check_number(name, "alpha", alpha, 0, 1, none=True)
    check_number(name, "gamma", gamma, 0)
    x, y = _args.paired(name, "logits", logits, "labels", labels)
    ce = _binary_ce(x, y)
    log_p, log_q = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    log_one_minus_p_t = jax.scipy.special.logsumexp(
        jnp.stack([log_p, log_q], axis=-1),
        axis=-1,
        b=jnp.stack([1 - y, y], axis=-1),
    )
    loss = ce * jnp.exp(_args.scalar(gamma, x.dtype) * log_one_minus_p_t)
    if alpha is None:
        return loss
    a = _args.scalar(alpha, x.dtype)
    return (a * y + (1.0 - a) * (1.0 - y)) * loss


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
    x, y, axes, w = _softmax_args(name, logits, labels, axis, where)
    return _softmax_ce(x, y, axes, w)


def _softmax_args(
    name: str, logits: Any, labels: Any, axis: Any, where: Any
) -> tuple[jax.Array, jax.Array, tuple[int, ...], jax.Array | None]:
    """Checked ``(logits, labels, axes, where)`` of a soft-label loss."""
    x, y = _args.paired(name, "logits", logits, "labels", labels)
    axes = _args.axes(name, axis, x.ndim, allow_none=True)
    w = None if where is None else _args.mask(name, where, x.shape, axes)
    return x, y, axes, w


def _softmax_ce(
    x: jax.Array, y: jax.Array, axes: tuple[int, ...], w: jax.Array | None
) -> jax.Array:
    if w is None:
        return -jnp.sum(y * jax.nn.log_softmax(x, axis=axes), axis=axes)
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
    x = _args.floating(name, "logits", logits)
    hint = " For one-hot or soft labels use softmax_cross_entropy."
    labels = _args.integer(name, "labels", labels, hint)
    axes = _args.axes(name, axis, x.ndim, allow_none=False)
    batch = tuple(i for i in range(x.ndim) if i not in axes)
    expected = tuple(x.shape[i] for i in batch)
    if labels.shape != expected:
        shown = axes[0] if isinstance(axis, numbers.Integral) else axes
        raise ValueError(
            f"{name}: labels must have the logits' shape without axis {shown}, "
            f"{expected}; got labels {labels.shape} for logits {x.shape}."
        )
    w = None if where is None else _args.mask(name, where, x.shape, axes)
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


@jax.custom_jvp
def _weighted_log_softmax(x: jax.Array, w: jax.Array) -> jax.Array:
    """``w * log_softmax(x)``, with 0 where ``w`` is 0 (even at ``x = -inf``)."""
    log_p = jax.nn.log_softmax(x, axis=-1)
    return jnp.where(w != 0.0, w * log_p, jnp.zeros_like(log_p))


@_weighted_log_softmax.defjvp
def _weighted_log_softmax_jvp(primals: Any, tangents: Any) -> Any:
    # Written out so that no 0 * inf from the -inf logits reaches a tangent.
    (x, w), (dx, dw) = primals, tangents
    log_p = jax.nn.log_softmax(x, axis=-1)
    out = jnp.where(w != 0.0, w * log_p, jnp.zeros_like(log_p))
    mean_dx = jnp.sum(dx * jax.nn.softmax(x, axis=-1), axis=-1, keepdims=True)
    return out, w * dx - w * mean_dx + dw * log_p


def safe_softmax_cross_entropy(logits: Any, labels: Any) -> jax.Array:
    """Softmax cross entropy with ``0 * log 0 = 0``: -inf logits allowed.

    A class with logit -inf (a class ruled out) and label 0 contributes 0,
    where ``softmax_cross_entropy`` gives nan (0 * -inf); the gradient is
    likewise finite, through a custom JVP.

    Update:
        loss = -sum_k where(labels[k] != 0, labels[k] * log_softmax(logits)[k], 0)

    Args:
        logits: floating array ``[..., num_classes]``.
        labels: array of the same shape, each row a probability distribution,
            cast to the logits' dtype.

    Returns:
        An array ``[...]`` in the logits' dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``logits`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> logits = jnp.array([[0.0, 0.0, -jnp.inf]])
        >>> losses.safe_softmax_cross_entropy(logits, jnp.array([[1.0, 0.0, 0.0]]))
        Array([0.6931472], dtype=float32)

    References: Goodfellow et al., "Deep Learning", 2016, section 6.2.2.3;
    the convention 0 log 0 = 0: T. M. Cover, J. A. Thomas, "Elements of
    Information Theory", 2006, section 2.1.

    Matches: optax.losses.safe_softmax_cross_entropy, except that mismatched
    shapes raise instead of broadcasting.
    """
    name = "jgd.losses.safe_softmax_cross_entropy"
    x, y = _args.paired(name, "logits", logits, "labels", labels)
    return -jnp.sum(_weighted_log_softmax(x, y), axis=-1)


def poly_loss_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    epsilon: Any = 2.0,
    axis: Any = -1,
    where: Any = None,
) -> jax.Array:
    """Poly-1 loss: the softmax cross entropy plus ``epsilon * (1 - p_t)``.

    The first term of the cross entropy's expansion in powers of
    ``1 - p_t`` gets weight ``1 + epsilon`` instead of 1: epsilon > 0 keeps
    pushing confident correct predictions, epsilon = -1 removes that term.

    Update:
        p = softmax(logits, axis, where)
        one_minus_p_t = sum_{axis, where} labels * (1 - p)
        loss = softmax_cross_entropy(logits, labels, axis, where)
               + epsilon * one_minus_p_t

    Args:
        logits: floating array ``[..., num_classes]`` (class axes ``axis``).
        labels: array of the same shape, probability distributions (e.g.
            one-hot), cast to the logits' dtype.
        epsilon: the weight of the first polynomial term; any finite number,
            default 2.0 (the paper's for ImageNet; -1 for detection); keyword
            only. A traced value is accepted.
        axis: the class axis, default -1; an int, a tuple of ints or None.
        where: optional boolean mask, as for ``softmax_cross_entropy``.

    Returns:
        An array of ``logits.shape`` without ``axis``, in the logits' dtype.

    Raises:
        ValueError, TypeError: as ``softmax_cross_entropy``, and when
            ``epsilon`` is not a finite number.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> logits = jnp.log(jnp.array([[0.5, 0.25, 0.25]]))
        >>> losses.poly_loss_cross_entropy(logits, jnp.array([[1.0, 0.0, 0.0]]))
        Array([1.6931472], dtype=float32)

    References: Z. Leng, M. Tan, C. Liu, E. D. Cubuk, X. Shi, S. Cheng,
    D. Anguelov, "PolyLoss: A Polynomial Expansion Perspective of
    Classification Loss Functions", 2022, eq. (3) (Poly-1).

    Matches: optax.losses.poly_loss_cross_entropy(logits, labels,
    epsilon=epsilon, axis=axis, where=where), with ``softmax_cross_entropy``'s
    differences (shapes, masked labels).
    """
    name = "jgd.losses.poly_loss_cross_entropy"
    check_number(name, "epsilon", epsilon)
    x, y, axes, w = _softmax_args(name, logits, labels, axis, where)
    p = jax.nn.softmax(x, axis=axes, where=w)
    if w is not None:
        y_kept = jnp.where(w, y, 0.0)  # masked labels (nan padding too) count 0
        one_minus_p_t = jnp.sum(y_kept * (1 - p), axis=axes, where=w)
    else:
        one_minus_p_t = jnp.sum(y * (1 - p), axis=axes)
    eps = _args.scalar(epsilon, x.dtype)
    return _softmax_ce(x, y, axes, w) + eps * one_minus_p_t


def smooth_labels(
    labels: Any, alpha: Any, *, axis: Any = -1, where: Any = None
) -> jax.Array:
    """Label smoothing: mix the labels with the uniform distribution.

    Update:
        num_categories = size of labels along axis (entries kept by where)
        labels = (1 - alpha) * labels + alpha / num_categories

    A smoothed one-hot target stops the cross entropy from driving the
    winning logit to infinity, which tends to calibrate the model better.

    Args:
        labels: floating array ``[..., num_classes]``, e.g. one-hot.
        alpha: the smoothing factor in [0, 1] (0: unchanged, 1: uniform). A
            traced value is accepted.
        axis: the class axis, default -1; an int, a tuple of ints or None;
            keyword only.
        where: optional boolean mask of the classes that count, default None
            (all): the labels' shape, or that shape without ``axis``. As in
            optax, masked entries are smoothed too (by the kept count).

    Returns:
        An array shaped like ``labels``, in its dtype.

    Raises:
        ValueError: when ``alpha`` is not in [0, 1], ``axis`` is out of range
            or ``where`` has neither accepted shape.
        TypeError: when ``labels`` is not floating point, or ``axis`` or
            ``where`` is of the wrong kind.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.smooth_labels(jnp.array([0.0, 1.0, 0.0, 0.0]), 0.2)
        Array([0.05, 0.85, 0.05, 0.05], dtype=float32)

    References: C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna,
    "Rethinking the Inception Architecture for Computer Vision", 2016,
    section 7; R. Muller, S. Kornblith, G. Hinton, "When Does Label Smoothing
    Help?", 2019.

    Matches: optax.losses.smooth_labels(labels, alpha, axis=axis,
    where=where).
    """
    name = "jgd.losses.smooth_labels"
    check_number(name, "alpha", alpha, 0, 1)
    y = _args.floating(name, "labels", labels)
    axes = _args.axes(name, axis, y.ndim, allow_none=True, arg="labels")
    a = _args.scalar(alpha, y.dtype)
    if where is None:
        # A Python int, as optax's jnp.size: alpha / n is rounded once.
        num_categories: Any = math.prod(y.shape[i] for i in axes)
    else:
        w = _args.mask(name, where, y.shape, axes, arg="labels")
        num_categories = jnp.sum(w, axis=axes, keepdims=True).astype(y.dtype)
    return (1.0 - a) * y + a / num_categories
