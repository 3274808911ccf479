"""Kullback-Leibler divergences between a predicted and a target distribution.

``kl_divergence`` (targets as probabilities), ``kl_divergence_with_log_targets``
(targets as log-probabilities), ``generalized_kl_divergence`` (unnormalised
measures) and its deprecated optax name ``convex_kl_divergence``. Predictions
come as log-probabilities; a target probability of 0 contributes 0 (0 log 0 = 0),
even where the prediction's is 0 too (log-probability -inf).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from jgd.losses import _args

__all__ = [
    "convex_kl_divergence",
    "generalized_kl_divergence",
    "kl_divergence",
    "kl_divergence_with_log_targets",
]


def _prepare(
    name: str,
    log_predictions: Any,
    targets: Any,
    targets_arg: str,
    axis: Any,
    where: Any,
) -> tuple[jax.Array, jax.Array, tuple[int, ...], jax.Array | None]:
    """Checked ``(log_predictions, targets, axes, where)``."""
    lp, t = _args.paired(name, "log_predictions", log_predictions, targets_arg, targets)
    axes = _args.axes(name, axis, lp.ndim, allow_none=True, arg="log_predictions")
    w = None
    if where is not None:
        w = _args.mask(name, where, lp.shape, axes, arg="log_predictions")
    return lp, t, axes, w


def _kl_terms(lp: jax.Array, t: jax.Array) -> jax.Array:
    # optax's terms; a zero target gives 0, not 0 * inf, when lp is -inf.
    terms = t * (jnp.where(t == 0, 0, jnp.log(t)) - lp)
    return jnp.where(t == 0, 0.0, terms)


def kl_divergence(
    log_predictions: Any, targets: Any, axis: Any = -1, where: Any = None
) -> jax.Array:
    """Kullback-Leibler divergence KL(targets || predictions) per distribution.

    Update:
        loss = sum_{axis, where} targets * (log(targets) - log_predictions)
        # a term with targets = 0 is 0 (0 log 0 = 0)

    Args:
        log_predictions: floating array ``[..., dim]`` of log-probabilities
            (e.g. ``log_softmax`` outputs).
        targets: array of the same shape of probabilities (>= 0), cast to
            the predictions' dtype.
        axis: the distribution axis, default -1; an int, a tuple of ints or
            None (all axes).
        where: optional boolean mask of the entries to include, default None
            (all): the predictions' shape, or that shape without ``axis``.
            Masked entries contribute nothing, whatever they hold.

    Returns:
        An array of the predictions' shape without ``axis``, in their dtype.

    Raises:
        ValueError: when the shapes differ, ``axis`` is out of range or
            ``where`` has neither accepted shape.
        TypeError: when ``log_predictions`` is not floating point, or
            ``axis`` or ``where`` is of the wrong kind.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> log_p = jnp.log(jnp.array([[0.5, 0.5, 0.0]]))
        >>> losses.kl_divergence(log_p, jnp.array([[1.0, 0.0, 0.0]]))
        Array([0.6931472], dtype=float32)

    References: S. Kullback, R. A. Leibler, "On Information and
    Sufficiency", 1951, eq. (2.4).

    Matches: optax.losses.kl_divergence(log_predictions, targets, axis,
    where), except that a zero target against a zero prediction gives 0 where
    optax gives nan (tests/catalogue/losses.py KNOWN_DIFFERENCES "0 log 0 in
    the divergences"), masked entries never reach a gradient, and shapes are
    not broadcast.
    """
    name = "jgd.losses.kl_divergence"
    lp, t, axes, w = _prepare(name, log_predictions, targets, "targets", axis, where)
    if w is not None:
        lp, t = jnp.where(w, lp, 0.0), jnp.where(w, t, 0.0)
    return jnp.sum(_kl_terms(lp, t), axis=axes, where=w)


def kl_divergence_with_log_targets(
    log_predictions: Any, log_targets: Any, axis: Any = -1, where: Any = None
) -> jax.Array:
    """Kullback-Leibler divergence with the targets as log-probabilities.

    Update:
        loss = sum_{axis, where} exp(log_targets) * (log_targets - log_predictions)
        # a term with log_targets = -inf is 0, its gradients too

    Args:
        log_predictions: floating array ``[..., dim]`` of log-probabilities.
        log_targets: array of the same shape of log-probabilities, cast to
            the predictions' dtype.
        axis: the distribution axis, default -1; an int, a tuple of ints or
            None.
        where: optional boolean mask, as for ``kl_divergence``.

    Returns:
        An array of the predictions' shape without ``axis``, in their dtype.

    Raises:
        ValueError, TypeError: as ``kl_divergence``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> log_p = jnp.log(jnp.array([[0.5, 0.5, 0.0]]))
        >>> log_t = jnp.log(jnp.array([[1.0, 0.0, 0.0]]))
        >>> losses.kl_divergence_with_log_targets(log_p, log_t)
        Array([0.6931472], dtype=float32)

    References: as ``kl_divergence``.

    Matches: optax.losses.kl_divergence_with_log_targets(log_predictions,
    log_targets, axis, where), except that a target of probability 0 (log
    -inf) gives 0 and gradient 0 where optax gives nan (KNOWN_DIFFERENCES "0
    log 0 in the divergences"), and shapes are not broadcast.
    """
    name = "jgd.losses.kl_divergence_with_log_targets"
    lp, lt, axes, w = _prepare(
        name, log_predictions, log_targets, "log_targets", axis, where
    )
    zero = lt == -jnp.inf
    if w is not None:
        zero = zero | ~w  # a masked entry is a target of probability 0
    # Both branches see finite values where the other is taken (no 0 * inf
    # in the value or the gradient).
    lt, lp = jnp.where(zero, 0.0, lt), jnp.where(zero, 0.0, lp)
    terms = jnp.where(zero, 0.0, jnp.exp(lt) * (lt - lp))
    return jnp.sum(terms, axis=axes, where=w)


def _generalized(
    name: str, log_predictions: Any, targets: Any, axis: Any, where: Any
) -> jax.Array:
    lp, t, axes, w = _prepare(name, log_predictions, targets, "targets", axis, where)
    if w is not None:
        lp, t = jnp.where(w, lp, 0.0), jnp.where(w, t, 0.0)
    x = jnp.sum(_kl_terms(lp, t), axis=axes, where=w)
    y = jnp.sum(jnp.exp(lp) - t, axis=axes, where=w)
    return x + y


def generalized_kl_divergence(
    log_predictions: Any, targets: Any, axis: Any = -1, where: Any = None
) -> jax.Array:
    """Generalized KL divergence, for unnormalised (positive) measures.

    The Bregman divergence of ``f(x) = x log x - x``; equal to
    ``kl_divergence`` when both sides sum to 1.

    Update:
        loss = kl_divergence(log_predictions, targets, axis, where)
               + sum_{axis, where} (exp(log_predictions) - targets)

    Args:
        log_predictions: floating array ``[..., dim]``, logs of the predicted
            measure.
        targets: array of the same shape, the target measure (>= 0), cast to
            the predictions' dtype.
        axis: the axis, default -1; an int, a tuple of ints or None.
        where: optional boolean mask, as for ``kl_divergence``.

    Returns:
        An array of the predictions' shape without ``axis``, in their dtype.

    Raises:
        ValueError, TypeError: as ``kl_divergence``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> log_p = jnp.log(jnp.array([[1.0, 2.0]]))
        >>> losses.generalized_kl_divergence(log_p, jnp.array([[1.0, 1.0]]))
        Array([0.30685282], dtype=float32)

    References: S. Boyd, L. Vandenberghe, "Convex Optimization", 2004,
    p. 90; L. M. Bregman, "The relaxation method of finding the common point
    of convex sets...", 1967.

    Matches: optax.losses.generalized_kl_divergence, with ``kl_divergence``'s
    differences.
    """
    name = "jgd.losses.generalized_kl_divergence"
    return _generalized(name, log_predictions, targets, axis, where)


def convex_kl_divergence(
    log_predictions: Any, targets: Any, axis: Any = -1, where: Any = None
) -> jax.Array:
    """Deprecated name of ``generalized_kl_divergence`` (as in optax).

    Update:
        loss = generalized_kl_divergence(log_predictions, targets, axis, where)

    Args:
        log_predictions, targets, axis, where: as ``generalized_kl_divergence``.

    Returns:
        As ``generalized_kl_divergence``.

    Raises:
        DeprecationWarning: always (a warning, not an error), naming the
            replacement.

    References: as ``generalized_kl_divergence``.

    Matches: optax.losses.convex_kl_divergence, which warns the same way.
    """
    warnings.warn(
        "jgd.losses.convex_kl_divergence is deprecated, as in optax; use "
        "jgd.losses.generalized_kl_divergence.",
        DeprecationWarning,
        stacklevel=2,
    )
    name = "jgd.losses.convex_kl_divergence"
    return _generalized(name, log_predictions, targets, axis, where)
