"""Segmentation losses: overlap between predicted and target masks.

``dice_loss`` (soft Dice and its Tversky generalisation, per class),
``binary_dice_loss`` (one foreground channel) and
``multiclass_generalized_dice_loss`` (classes weighted by inverse squared
frequency). They take logits by default (softmax, or sigmoid for one
channel) and sum over the spatial axes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jgd.base import check_number
from jgd.losses import _args

__all__ = ["binary_dice_loss", "dice_loss", "multiclass_generalized_dice_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def dice_loss(
    predictions: Any,
    targets: Any,
    *,
    class_weights: Any = None,
    smooth: Any = 1.0,
    alpha: Any = 0.5,
    beta: Any = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: Any = None,
) -> jax.Array:
    """Soft Dice loss per class (Tversky with ``alpha != beta``), reduced
    over classes.

    Update (per class c, sums over ``axis``):
        p = softmax(predictions) (sigmoid for one channel) if apply_softmax
        I = sum p * t,  P = sum p,  T = sum t
        loss_c = 1 - (I + smooth) / (I + alpha * (P - I) + beta * (T - I) + smooth)
        loss = reduction_c(class_weights[c] * loss_c)   (class 0 dropped if
               ignore_background)

    Args:
        predictions: floating array ``[..., num_classes]`` of logits (or
            probabilities with ``apply_softmax=False``); ``[...]`` or
            ``[..., 1]`` for binary segmentation.
        targets: one-hot (or binary) targets of the same shape, cast to the
            predictions' dtype; a missing trailing class axis is added to the
            side that lacks it, as in optax.
        class_weights: optional weights ``[num_classes]``, default None (1).
        smooth: added to numerator and denominator; a number >= 0, default 1.0.
        alpha: weight of false positives, >= 0, default 0.5.
        beta: weight of false negatives, >= 0, default 0.5 (Dice when
            ``alpha == beta == 0.5``).
        apply_softmax: whether ``predictions`` are logits, default True.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over classes.
        ignore_background: drop class 0 before reducing, default False.
        axis: the axes summed over, an int or tuple of ints; default None:
            every axis but the first (batch) and the last (classes).
        All arguments after ``targets`` are keyword only; smooth, alpha and
        beta may be traced.

    Returns:
        The batch shape ``[...]`` (``"mean"``/``"sum"``) or ``[..., classes]``
        (``"none"``), in the predictions' dtype.

    Raises:
        ValueError: when the shapes differ, a number is out of range,
            ``class_weights`` does not have one entry per class, or
            ``reduction`` is unknown.
        TypeError: when ``predictions`` is not floating point or ``axis`` is
            of the wrong kind.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> probs = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])   # 1 image, 2 pixels
        >>> targets = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
        >>> losses.dice_loss(probs, targets, apply_softmax=False, smooth=0.0)
        Array([0.15037596], dtype=float32)

    References: F. Milletari, N. Navab, S.-A. Ahmadi, "V-Net: Fully
    Convolutional Neural Networks for Volumetric Medical Image Segmentation",
    2016, eq. (1); S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky Loss
    Function for Image Segmentation", 2017, eq. (3).

    Matches: optax.losses.dice_loss, except that with
    ``apply_softmax=False`` optax checks (outside ``jit`` only) that the
    predictions sum to 1, and jgd does not look at values
    (tests/catalogue/losses.py KNOWN_DIFFERENCES "dice probability check").
    """
    return _dice(
        "jgd.losses.dice_loss",
        predictions,
        targets,
        class_weights,
        smooth,
        alpha,
        beta,
        apply_softmax,
        reduction,
        ignore_background,
        axis,
    )


def _dice(
    name: str,
    predictions: Any,
    targets: Any,
    class_weights: Any,
    smooth: Any,
    alpha: Any,
    beta: Any,
    apply_softmax: bool,
    reduction: str,
    ignore_background: bool,
    axis: Any,
) -> jax.Array:
    for arg, value in (("smooth", smooth), ("alpha", alpha), ("beta", beta)):
        check_number(name, arg, value, 0)
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"{name}: reduction must be 'mean', 'sum' or 'none'; got {reduction!r}."
        )
    p = _args.floating(name, "predictions", predictions)
    t = _args.like(name, "targets", targets, p)
    if p.ndim == t.ndim - 1:
        p = p[..., None]
    if t.ndim == p.ndim - 1:
        t = t[..., None]
    _args.same_shape(name, "predictions", p, "targets", t)
    if apply_softmax:
        p = jax.nn.sigmoid(p) if p.shape[-1] == 1 else jax.nn.softmax(p, axis=-1)
    if axis is None:
        axes: Any = tuple(range(1, p.ndim - 1))
    else:
        axes = _args.axes(name, axis, p.ndim, allow_none=False, arg="predictions")
    smooth, alpha, beta = (_args.scalar(v, p.dtype) for v in (smooth, alpha, beta))

    intersection = jnp.sum(p * t, axis=axes)
    pred_sum = jnp.sum(p, axis=axes)
    target_sum = jnp.sum(t, axis=axes)
    numerator = intersection + smooth
    denominator = (
        intersection
        + alpha * (pred_sum - intersection)
        + beta * (target_sum - intersection)
        + smooth
    )
    loss = 1.0 - numerator / denominator  # [..., classes]
    if class_weights is not None:
        w = _args.floating(name, "class_weights", class_weights).astype(p.dtype)
        if w.shape != p.shape[-1:]:
            raise ValueError(
                f"{name}: class_weights must have shape {p.shape[-1:]}, one "
                f"weight per class; got {w.shape}."
            )
        loss = loss * w.reshape((1,) * (loss.ndim - 1) + w.shape)
    if ignore_background and p.shape[-1] > 1:
        loss = loss[..., 1:]
    if reduction == "mean":
        return jnp.mean(loss, axis=-1)
    if reduction == "sum":
        return jnp.sum(loss, axis=-1)
    return loss


def multiclass_generalized_dice_loss(
    predictions: Any,
    targets: Any,
    *,
    smooth: Any = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    """Generalized Dice loss: per-class Dice weighted by the inverse squared
    class frequency, averaged over batch and classes to a scalar.

    Update:
        f_c = sum over all axes but the last of targets[..., c]
        w_c = 1 / (f_c**2 + 1e-7),  w = w / sum(w) * num_classes
        loss = mean(dice_loss(..., class_weights=w, reduction="none"))

    Args:
        predictions: floating array ``[..., num_classes]`` of logits (or
            probabilities with ``apply_softmax=False``).
        targets: one-hot targets of the same shape, cast to the predictions'
            dtype.
        smooth: as ``dice_loss``, default 1.0; keyword only.
        apply_softmax: whether ``predictions`` are logits, default True.
        ignore_background: drop class 0 (after weighting), default False.

    Returns:
        A scalar in the predictions' dtype.

    Raises:
        ValueError, TypeError: as ``dice_loss``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> probs = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])
        >>> targets = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
        >>> losses.multiclass_generalized_dice_loss(probs, targets, apply_softmax=False)
        Array(0.07504693, dtype=float32)

    References: C. H. Sudre, W. Li, T. Vercauteren, S. Ourselin, M. J.
    Cardoso, "Generalised Dice overlap as a deep learning loss function for
    highly unbalanced segmentations", 2017, eq. (2).

    Matches: optax.losses.multiclass_generalized_dice_loss.
    """
    name = "jgd.losses.multiclass_generalized_dice_loss"
    p, t = _args.paired(name, "predictions", predictions, "targets", targets)
    class_frequencies = jnp.sum(t, axis=tuple(range(t.ndim - 1)))
    class_weights = 1.0 / (class_frequencies**2 + 1e-7)  # 1e-7: optax's
    class_weights = class_weights / jnp.sum(class_weights) * len(class_weights)
    losses = _dice(
        name,
        p,
        t,
        class_weights,
        smooth,
        0.5,
        0.5,
        apply_softmax,
        "none",
        ignore_background,
        None,
    )
    return jnp.mean(losses)


def binary_dice_loss(
    predictions: Any,
    targets: Any,
    *,
    smooth: Any = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    """Dice loss of a binary (foreground) mask.

    Update:
        add a channel axis to both when the last axis is not 1
        loss = dice_loss(predictions, targets, smooth, apply_softmax=apply_sigmoid)

    Args:
        predictions: floating array ``[...]`` or ``[..., 1]`` of logits (or
            probabilities with ``apply_sigmoid=False``).
        targets: binary targets of the same shape, cast to the predictions'
            dtype.
        smooth: as ``dice_loss``, default 1.0; keyword only.
        apply_sigmoid: whether ``predictions`` are logits, default True.

    Returns:
        The batch shape ``[...]``, in the predictions' dtype.

    Raises:
        ValueError, TypeError: as ``dice_loss``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd import losses
        >>> probs = jnp.array([[0.9, 0.2, 0.8]])
        >>> losses.binary_dice_loss(probs, jnp.array([[1.0, 0.0, 1.0]]),
        ...                         apply_sigmoid=False, smooth=0.0)
        Array([0.12820512], dtype=float32)

    References: as ``dice_loss``.

    Matches: optax.losses.binary_dice_loss, except that optax raises for
    every ``apply_sigmoid=False`` call (its probability check sums over the
    single channel): KNOWN_DIFFERENCES "dice probability check".
    """
    name = "jgd.losses.binary_dice_loss"
    p = _args.floating(name, "predictions", predictions)
    t = _args.like(name, "targets", targets, p)
    if p.ndim == t.ndim and p.shape[-1] != 1:
        p, t = p[..., None], t[..., None]
    return _dice(name, p, t, None, smooth, 0.5, 0.5, apply_sigmoid, "mean", False, None)
