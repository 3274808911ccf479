"""Margin losses: linear penalties for scores on the wrong side of a margin.

Binary, with targets in {-1, 1}: ``hinge_loss`` (the SVM's) and
``perceptron_loss`` (margin 0). Multiclass, with integer labels:
``multiclass_hinge_loss`` and ``multiclass_perceptron_loss``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jgd.losses import _args

__all__ = [
    "hinge_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "perceptron_loss",
]


def hinge_loss(predictor_outputs: Any, targets: Any) -> jax.Array:
    """Hinge loss per element: 0 once the score has the target's sign with a
    margin of 1, linear before.

    Update:
        loss = max(0, 1 - predictor_outputs * targets)

    Args:
        predictor_outputs: floating array of any shape (the decision
            function's values).
        targets: array of the same shape with values in {-1, 1}, cast to the
            outputs' dtype.

    Returns:
        An array shaped like ``predictor_outputs``, in its dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``predictor_outputs`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.hinge_loss(jnp.array([2.0, 0.5, -1.0]), jnp.array([1, 1, 1]))
        Array([0. , 0.5, 2. ], dtype=float32)

    References: C. Cortes, V. Vapnik, "Support-Vector Networks", 1995,
    eq. (2) (the soft-margin penalty).

    Matches: optax.losses.hinge_loss, except that mismatched shapes raise
    instead of broadcasting.
    """
    name = "jgd.losses.hinge_loss"
    s, t = _args.paired(
        name, "predictor_outputs", predictor_outputs, "targets", targets
    )
    return jnp.maximum(0, 1 - s * t)


def perceptron_loss(predictor_outputs: Any, targets: Any) -> jax.Array:
    """Perceptron loss per element: the hinge loss with margin 0.

    Update:
        loss = max(0, -predictor_outputs * targets)

    Its gradient, ``-targets`` on a mistake and 0 otherwise, makes gradient
    descent with learning rate 1 Rosenblatt's perceptron update.

    Args:
        predictor_outputs: floating array of any shape.
        targets: array of the same shape with values in {-1, 1}, cast to the
            outputs' dtype.

    Returns:
        An array shaped like ``predictor_outputs``, in its dtype.

    Raises:
        ValueError: when the shapes differ.
        TypeError: when ``predictor_outputs`` is not floating point.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.perceptron_loss(jnp.array([2.0, -0.5]), jnp.array([1, 1]))
        Array([0. , 0.5], dtype=float32)

    References: F. Rosenblatt, "The Perceptron: A Probabilistic Model for
    Information Storage and Organization in the Brain", 1958.

    Matches: optax.losses.perceptron_loss.
    """
    name = "jgd.losses.perceptron_loss"
    s, t = _args.paired(
        name, "predictor_outputs", predictor_outputs, "targets", targets
    )
    return jnp.maximum(0, -s * t)


def _scores_and_labels(
    name: str, scores: Any, labels: Any
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Checked scores and labels, and the labels one-hot in the scores' dtype."""
    hint = " Use hinge_loss or perceptron_loss for {-1, 1} targets."
    s, y = _args.class_scores(name, scores, labels, hint)
    return s, y, jax.nn.one_hot(y, s.shape[-1], dtype=s.dtype)


def _true_score(s: jax.Array, one_hot: jax.Array) -> jax.Array:
    # A select, not a dot with the one-hot: an -inf score elsewhere in the
    # row would make the dot nan (0 * -inf). Exact either way otherwise.
    return jnp.sum(jnp.where(one_hot != 0, s, 0.0), axis=-1)


def multiclass_hinge_loss(scores: Any, labels: Any) -> jax.Array:
    """Multiclass hinge loss (Crammer-Singer): the best wrong score plus a
    margin of 1, minus the true class's score, when positive.

    Update:
        loss = max_k (scores[k] + 1 - [k == label]) - scores[label]

    Args:
        scores: floating array ``[..., num_classes]``.
        labels: integer array ``[...]`` of class indices. One outside
            ``[0, num_classes)`` reads as a score of 0, as in optax.

    Returns:
        An array ``[...]`` in the scores' dtype.

    Raises:
        ValueError: when the labels' shape is not the scores' without the last
            axis.
        TypeError: when ``scores`` is not floating point or ``labels`` not
            integer.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.multiclass_hinge_loss(jnp.array([[2.0, 1.5, 0.0]]), jnp.array([0]))
        Array([0.5], dtype=float32)

    References: K. Crammer, Y. Singer, "On the Algorithmic Implementation of
    Multiclass Kernel-based Vector Machines", 2001, eq. (13).

    Matches: optax.losses.multiclass_hinge_loss.
    """
    name = "jgd.losses.multiclass_hinge_loss"
    s, _, one_hot = _scores_and_labels(name, scores, labels)
    return jnp.max(s + 1.0 - one_hot, axis=-1) - _true_score(s, one_hot)


def multiclass_perceptron_loss(scores: Any, labels: Any) -> jax.Array:
    """Multiclass perceptron loss: the best score minus the true class's.

    Update:
        loss = max_k scores[k] - scores[label]

    Args:
        scores: floating array ``[..., num_classes]``.
        labels: integer array ``[...]`` of class indices.

    Returns:
        An array ``[...]`` in the scores' dtype.

    Raises:
        ValueError, TypeError: as ``multiclass_hinge_loss``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> losses.multiclass_perceptron_loss(jnp.array([[2.0, 1.5]]), jnp.array([1]))
        Array([0.5], dtype=float32)

    References: M. Collins, "Discriminative Training Methods for Hidden
    Markov Models: Theory and Experiments with Perceptron Algorithms", 2002.

    Matches: optax.losses.multiclass_perceptron_loss.
    """
    name = "jgd.losses.multiclass_perceptron_loss"
    s, _, one_hot = _scores_and_labels(name, scores, labels)
    return jnp.max(s, axis=-1) - _true_score(s, one_hot)
