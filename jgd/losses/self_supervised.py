"""Self-supervised (metric learning) losses on embeddings.

``ntxent``: the contrastive NT-Xent loss of SimCLR, on cosine similarities.
``triplet_margin_loss``: an anchor nearer its positive than its negative by
a margin. Both stay finite for embeddings of 1e30 (their norms are formed
from vectors scaled by a power of two) and ``ntxent`` for temperatures of
1e-6.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jgd.base import check_number
from jgd.losses import _args

__all__ = ["ntxent", "triplet_margin_loss"]


def ntxent(embeddings: Any, labels: Any, temperature: Any = 0.07) -> jax.Array:
    """Normalized temperature-scaled cross entropy (NT-Xent), a scalar.

    Each embedding should be nearer (in cosine) to those sharing its label
    than to the others: a softmax cross entropy per positive pair ``(i, j)``
    against all of ``i``'s negatives, averaged over the positive pairs.

    Update:
        s_ij = cosine(embeddings[i], embeddings[j]) / temperature
        loss_ij = -log(exp(s_ij) / (exp(s_ij) + sum_{k: label_k != label_i} exp(s_ik)))
        loss = mean over pairs i != j with label_i == label_j of loss_ij

    Args:
        embeddings: floating array ``(batch, dim)``.
        labels: array ``(batch,)``; equal labels mark positive pairs.
        temperature: the softmax temperature, a number > 0, default 0.07. A
            traced value is accepted.

    Returns:
        A scalar in the embeddings' dtype.

    Raises:
        ValueError: when the ranks or batch sizes disagree or ``temperature``
            is not > 0.
        TypeError: when ``embeddings`` is not floating point.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> emb = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> jax.jit(losses.ntxent)(emb, jnp.array([0, 0, 1, 1]), 1.0)
        Array(0.60341614, dtype=float32)

    References: T. Chen, S. Kornblith, M. Norouzi, G. Hinton, "A Simple
    Framework for Contrastive Learning of Visual Representations", 2020,
    eq. (1).

    Matches: optax.losses.ntxent, bit for bit where optax is finite; finite
    where optax's cosines overflow (embeddings of 1e20 in float32) or its
    gradient is nan (a tiny temperature underflows a pair's normaliser):
    tests/catalogue/losses.py KNOWN_DIFFERENCES "ntxent at extremes".
    """
    name = "jgd.losses.ntxent"
    check_number(name, "temperature", temperature, 0, lo_open=True)
    e = _args.floating(name, "embeddings", embeddings)
    _args.rank(name, "embeddings", e, 2, "(batch, dim)")
    labels = jnp.asarray(labels)
    if labels.shape != e.shape[:1]:
        raise ValueError(
            f"{name}: labels must have shape {e.shape[:1]}, one per embedding; "
            f"got labels {labels.shape} for embeddings {e.shape}."
        )
    n = e.shape[0]
    # The (n, n) cosine matrix, as optax's broadcast cosine_similarity (unit
    # vectors first, then the broadcast product: the same gradient sums).
    eps = jnp.asarray(jnp.finfo(e.dtype).eps, e.dtype)
    ua = _args.unit(e[None, :, :], eps, (2,), None)
    ub = _args.unit(e[:, None, :], eps, (2,), None)
    cos = jnp.sum(ua * ub, axis=2)
    xcs = cos / _args.scalar(temperature, e.dtype)

    same = labels[:, None] == labels[None, :]
    diffs = ~same
    matches = same & ~jnp.eye(n, dtype=bool)  # no self-pairs
    xcs_diffs = jnp.where(diffs, xcs, -jnp.inf)
    xcs_matches = jnp.where(matches, xcs, -jnp.inf)
    # Shift by the row's maximum for stability (no gradient through it).
    comb = jnp.concatenate((xcs_diffs, xcs_matches), axis=-1)
    xcs_max = jax.lax.stop_gradient(jnp.max(comb, axis=1, keepdims=True))
    shift_diffs = xcs_diffs - xcs_max
    shift_matches = xcs_matches - xcs_max
    numer_exp = jnp.exp(shift_matches)
    denom = jnp.sum(jnp.exp(shift_diffs), axis=1, keepdims=True) + numer_exp
    # optax's log_softm = shift - log(denom) wherever denom > 0. Where exp
    # underflows it to 0 (a tiny temperature), the same quantity as
    # -softplus(lse_k(xcs_ik - xcs_ij)) over i's negatives k, with the
    # negatives' maximum taken out exactly (shifting by the row's maximum of
    # 1e6 would round the result to 1/16). Each branch sees safe values where
    # the other is taken, and non-pairs neither: no inf reaches a gradient.
    direct = matches & (denom > 0)
    under = matches & ~direct
    log_softm = shift_matches - jnp.log(jnp.where(direct, denom, 1.0))
    has_neg = jnp.any(diffs, axis=1, keepdims=True)
    top = jax.lax.stop_gradient(jnp.max(xcs_diffs, axis=1, keepdims=True))
    top = jnp.where(has_neg, top, 0.0)
    rest = jnp.sum(
        jnp.exp(jnp.where(diffs, xcs - top, -jnp.inf)), axis=1, keepdims=True
    )
    gap = (top - jnp.where(under, xcs, 0.0)) + jnp.log(jnp.where(has_neg, rest, 1.0))
    tiny = -jax.nn.softplus(jnp.where(has_neg & under, gap, -jnp.inf))
    log_softm = jnp.where(under, tiny, jnp.where(direct, log_softm, 0.0))
    total = jnp.where(matches, log_softm, 0.0).sum()
    return -total / jnp.sum(matches).astype(e.dtype)


def _distance(x: jax.Array, p: Any, eps: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """``(sum |x|**p + eps)**(1/p)`` over ``axes``: optax's operations where
    they are finite and normal, else the same on ``x`` scaled by a power of
    two (norms of 1e20 in float32, or of 1e-30 with eps = 0)."""
    ax = jnp.abs(x)  # optax raises x, not |x|, to the power p
    plain = jnp.sum(jnp.power(ax, p), axis=axes, keepdims=True) + eps
    ok = jnp.isfinite(plain) & (plain >= jnp.finfo(x.dtype).tiny)
    # Each branch sees safe values (1s) where the other is taken.
    direct = jnp.power(
        jnp.sum(jnp.power(jnp.where(ok, ax, 1.0), p), axis=axes) + eps, 1 / p
    )
    xs = jnp.where(ok, 1.0, ax)
    s = _args.pow2_scale(xs, axes)
    eps_s = jnp.where(eps > 0, eps * jnp.power(s, p), 0.0)  # not 0 * inf
    scaled = (
        jnp.power(
            jnp.sum(jnp.power(xs * s, p), axis=axes, keepdims=True) + eps_s, 1 / p
        )
        / s
    )
    return jnp.where(jnp.squeeze(ok, axes), direct, jnp.squeeze(scaled, axes))


def triplet_margin_loss(
    anchors: Any,
    positives: Any,
    negatives: Any,
    axis: Any = -1,
    norm_degree: Any = 2,
    margin: Any = 1.0,
    eps: Any = 1e-6,
) -> jax.Array:
    """Triplet margin loss: the anchor should be nearer its positive than its
    negative by ``margin``.

    Update:
        d(u, v) = (sum_axis |u - v|**norm_degree + eps)**(1 / norm_degree)
        loss = max(d(anchors, positives) - d(anchors, negatives) + margin, 0)

    Args:
        anchors: floating array ``[..., dim]``.
        positives: array of the same shape, cast to the anchors' dtype.
        negatives: array of the same shape, cast to the anchors' dtype.
        axis: the embedding axis, default -1; an int or a tuple of ints.
        norm_degree: the p of the p-norm, a number > 0, default 2.
        margin: the required gap, a finite number, default 1.0.
        eps: added under the root for a finite gradient at 0, >= 0, default
            1e-6.
        norm_degree, margin and eps may be traced.

    Returns:
        An array of the anchors' shape without ``axis``, in their dtype.

    Raises:
        ValueError: when the shapes differ, ``axis`` is out of range, or a
            number is out of range.
        TypeError: when ``anchors`` is not floating point or ``axis`` is of
            the wrong kind.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import losses
        >>> a, p = jnp.array([[0.0, 0.0]]), jnp.array([[0.3, 0.4]])
        >>> n = jnp.array([[1.0, 0.0]])
        >>> jax.jit(losses.triplet_margin_loss)(a, p, n, eps=0.0)  # 0.5 - 1 + 1
        Array([0.5], dtype=float32)

    References: V. Balntas, E. Riba, D. Ponsa, K. Mikolajczyk, "Learning
    local feature descriptors with triplets and shallow convolutional neural
    networks", BMVC 2016, eq. (1).

    Matches: optax.losses.triplet_margin_loss for even ``norm_degree`` (the
    default 2), bit for bit where optax is finite. optax raises the signed
    difference to the power, so odd or fractional degrees give a signed sum
    or nan; jgd takes |u - v| as the p-norm does (KNOWN_DIFFERENCES "triplet
    p-norm"). Distances that overflow (1e20 in float32) stay finite here
    (KNOWN_DIFFERENCES "triplet of huge embeddings").
    """
    name = "jgd.losses.triplet_margin_loss"
    check_number(name, "norm_degree", norm_degree, 0, lo_open=True)
    check_number(name, "margin", margin)
    check_number(name, "eps", eps, 0)
    a = _args.floating(name, "anchors", anchors)
    p = _args.like(name, "positives", positives, a)
    n = _args.like(name, "negatives", negatives, a)
    _args.same_shape(name, "anchors", a, "positives", p)
    _args.same_shape(name, "anchors", a, "negatives", n)
    axes = _args.axes(name, axis, a.ndim, allow_none=False, arg="anchors")
    degree = _args.scalar(norm_degree, a.dtype)
    e = jnp.asarray(eps).astype(a.dtype)
    positive_distance = _distance(a - p, degree, e, axes)
    negative_distance = _distance(a - n, degree, e, axes)
    loss = positive_distance - negative_distance + _args.scalar(margin, a.dtype)
    return jnp.maximum(loss, 0)
