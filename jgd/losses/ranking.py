"""Ranking losses: score lists of items so that relevant ones come first.

``ranking_softmax_loss``: the listwise softmax cross entropy of item scores
against relevance labels, over the last axis (leading axes are lists), with
optional masks and weights, reduced by ``reduce_fn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jgd.losses import _args

__all__ = ["ranking_softmax_loss"]


def _safe_reduce(a: jax.Array, where: Any, reduce_fn: Any) -> jax.Array:
    """``reduce_fn(a, where=where)``; a mean over nothing is 0, not nan (unless
    ``a`` holds a nan); unreduced, masked lists are 0."""
    output = reduce_fn(a, where=where) if reduce_fn is not None else a
    if reduce_fn is jnp.mean:
        is_input_valid = jnp.logical_not(jnp.any(jnp.isnan(a)))
        output = jnp.where(jnp.isnan(output) & is_input_valid, 0.0, output)
    if reduce_fn is None and where is not None:
        output = jnp.where(where, output, 0.0)
    return output


def ranking_softmax_loss(
    logits: Any,
    labels: Any,
    *,
    where: Any = None,
    weights: Any = None,
    reduce_fn: Callable[..., Any] | None = jnp.mean,
) -> jax.Array:
    """Listwise softmax loss: cross entropy of the items' softmax against
    their (weighted) relevance labels, per list, then reduced.

    Update (per list, over its valid items):
        loss_list = -sum_i weights_i * labels_i * log_softmax(logits)_i
        loss = reduce_fn(loss_list, where=any(where, axis=-1))

    Args:
        logits: floating array ``[..., list_size]`` of item scores.
        labels: array of the same shape of relevance labels (>= 0), cast to
            the logits' dtype.
        where: optional boolean mask of the valid items, the logits' shape or
            ``[...]`` (one flag per list); keyword only. Invalid items take
            no part, whatever they hold; a list with none is left out of the
            reduction.
        weights: optional per-item weights of the logits' shape; keyword only.
        reduce_fn: ``jnp.mean`` (default: 0 when every list is masked),
            ``jnp.sum``, any function taking ``(values, where=...)``, or None
            for the per-list losses (0 for masked lists); keyword only.

    Returns:
        A scalar (or ``[...]`` with ``reduce_fn=None``) in the logits' dtype.

    Raises:
        ValueError: when the shapes differ or ``where`` has neither accepted
            shape.
        TypeError: when ``logits`` is not floating point, ``where`` is not
            boolean or ``reduce_fn`` is neither None nor callable.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> scores = jnp.array([2.0, 1.0, 3.0])
        >>> round(float(losses.ranking_softmax_loss(scores, jnp.array([1.0, 0, 0]))), 3)
        1.408

    References: Z. Cao, T. Qin, T.-Y. Liu, M.-F. Tsai, H. Li, "Learning to
    Rank: From Pairwise Approach to Listwise Approach", ICML 2007 (ListNet);
    S. Bruch, X. Wang, M. Bendersky, M. Najork, "An Analysis of the Softmax
    Cross Entropy Loss for Learning-to-Rank with Binary Relevance", 2019.

    Matches: optax.losses.ranking_softmax_loss(logits, labels, where=where,
    weights=weights, reduce_fn=reduce_fn), except that masked items' labels
    and weights get gradient 0 where optax's is nan, and shapes are not
    broadcast.
    """
    name = "jgd.losses.ranking_softmax_loss"
    if reduce_fn is not None and not callable(reduce_fn):
        raise TypeError(
            f"{name}: reduce_fn must be a function such as jnp.mean or jnp.sum, "
            f"or None; got {reduce_fn!r} ({type(reduce_fn).__name__})."
        )
    x, y = _args.paired(name, "logits", logits, "labels", labels)
    if x.ndim < 1:
        raise ValueError(f"{name}: logits must have a list axis; got shape ().")
    w = None
    if where is not None:
        w = _args.mask(name, where, x.shape, (x.ndim - 1,))
        y = jnp.where(w, y, 0.0)
        x = jnp.where(w, x, -jnp.inf)
    if weights is not None:
        wt = _args.like(name, "weights", weights, x)
        _args.same_shape(name, "logits", x, "weights", wt)
        y = y * (wt if w is None else jnp.where(w, wt, 0.0))
    log_p = jax.nn.log_softmax(x, axis=-1)
    if w is None:
        loss = -jnp.sum(y * log_p, axis=-1)
        return _safe_reduce(loss, None, reduce_fn)
    # Masked terms are 0 before the product: labels * -inf never reaches the
    # value or a gradient.
    terms = jnp.where(w, y * jnp.where(w, log_p, 0.0), 0.0)
    loss = -jnp.sum(terms, axis=-1, where=w)
    return _safe_reduce(loss, jnp.any(w, axis=-1), reduce_fn)
