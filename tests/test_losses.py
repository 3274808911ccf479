"""jgd.losses against optax.losses: values and gradients, jit, vmap, dtypes,
signatures and argument errors, for every loss.

One table, ``VARIANTS``: loss name -> the calls that exercise its options.
Each variant is one call written once for both libraries (``L`` is
``jgd.losses`` or ``optax.losses``), or a pair when optax spells it
differently. The variants of a jgd.losses module's losses are compared in
one jitted function (one compilation instead of one per primitive: this file
stays fast), values and
the gradients with respect to the arguments listed, at rtol 1e-6 in float32
(every variant, and vmap) and 1e-12 in float64 (the first variant and those
marked ``f64``). Extreme inputs, masked garbage and golden numbers are in
tests/test_losses_extremes.py.

The cross-check compiles with XLA's algebraic simplifier and LLVM's
optimisations off (``AS_WRITTEN``). With them on, XLA rewrites jgd's and
optax's programs differently (fusion, reassociation), and the same operations
round differently by an ulp here and there: harmless, but gradient entries
that cancel (a cosine's or a triplet's, 1e-4 out of terms of 0.5) then differ
by 1e-5 relative. As written, the two programs agree to the bit wherever
their operations are the same, as they do op by op outside jit; and they
compile in half the time.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import unittest.mock
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import losses
from tests.catalogue import losses as catalogue

TOL = {"float32": 1e-6, "float64": 1e-12}
AS_WRITTEN = {"xla_backend_optimization_level": 0, "xla_disable_hlo_passes": "algsimp"}
OPTAX_NAMES = sorted(n for n in dir(optax.losses) if not n.startswith("_"))
JGD_ONLY = ["mean_squared_error", "sum_squared_error"]


@contextlib.contextmanager
def optax_side():
    """optax passes neither strict dtype promotion nor rank promotion 'raise'."""
    with (
        jax.numpy_dtype_promotion("standard"),
        jax.numpy_rank_promotion("allow"),
        warnings.catch_warnings(),
    ):
        # optax.losses.convex_kl_divergence warns on every call.
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class V(NamedTuple):
    """One call of a loss: ``call(L, *args)`` on both sides (or ``theirs``),
    on ``inputs(seed, dtype)``, differentiated with respect to ``grad``.
    ``value_check``: optax's side checks values (dice losses with
    ``apply_softmax=False``), which cannot run under jit: it runs without
    that check (``_without_value_check``). ``f64``: also run in float64 (the
    first variant always is)."""

    label: str
    call: Callable[..., Any]
    inputs: Callable[..., tuple]
    grad: tuple[int, ...] = (0,)
    theirs: Callable[..., Any] | None = None
    value_check: bool = False
    f64: bool = False


# --------------------------------------------------------------------------
# Inputs.
# --------------------------------------------------------------------------


# Inputs are made with NumPy (from a seed, float64, then cast): jax's random
# and softmax would compile a small program per shape, dozens of seconds in all.


def _arrays(dtype, *xs):
    return tuple(jnp.asarray(np.asarray(x, dtype=np.dtype(dtype))) for x in xs)


def _softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _one_hot(idx, n, axis=-1):
    return np.moveaxis(np.eye(n)[idx], -1, axis)


def pair(shape=(5, 4), scale=3.0):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        return _arrays(dtype, *scale * rng.normal(size=(2,) + shape))

    return make


def one(shape=(5, 4), scale=3.0):
    def make(seed, dtype):
        return _arrays(dtype, scale * np.random.default_rng(seed).normal(size=shape))

    return make


def vectors(shape=(6, 5)):
    """Rows of very different norms (0.01 to 10), so epsilon matters."""

    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        scales = np.logspace(-2, 1, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
        a, b = rng.normal(size=(2,) + shape)
        return _arrays(dtype, scales * a, np.flip(scales, 0) * b)

    return make


def binary(soft=False, signs=False, shape=(6, 3)):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        logits = 4.0 * rng.normal(size=shape)
        if soft:
            return _arrays(dtype, logits, rng.uniform(size=shape))
        labels = (rng.uniform(size=shape) < 0.5).astype(float)
        return _arrays(dtype, logits, 2 * labels - 1 if signs else labels)

    return make


def softmax(soft=False, axis=-1, shape=(6, 5)):
    """Logits and labels (one-hot or soft, normalised over ``axis``)."""

    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        logits = 4.0 * rng.normal(size=shape)
        if soft:
            labels = _softmax(rng.normal(size=shape), axis=axis)
        else:
            n = shape[axis]
            batch = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
            labels = _one_hot(rng.integers(0, n, batch), n, axis)
        return _arrays(dtype, logits, labels)

    return make


def integer(shape=(6, 5), axes=(-1,)):
    """Logits and flat integer labels into the slice ``logits[axes]``."""

    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        canon = tuple(a % len(shape) for a in axes)
        batch = tuple(d for i, d in enumerate(shape) if i not in canon)
        n = math.prod(shape[a] for a in canon)
        labels = jnp.asarray(rng.integers(0, n, batch).astype(np.int32))
        return _arrays(dtype, 4.0 * rng.normal(size=shape)) + (labels,)

    return make


def distributions(log_targets=False, zeros=False, shape=(6, 5)):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        p = _softmax(2.0 * rng.normal(size=shape))
        if zeros:  # one-hot targets: exact zeros
            t = _one_hot(rng.integers(0, shape[-1], shape[:-1]), shape[-1])
        else:
            t = _softmax(2.0 * rng.normal(size=shape))
        with np.errstate(divide="ignore"):
            return _arrays(dtype, np.log(p), np.log(t) if log_targets else t)

    return make


def measures(shape=(6, 5)):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        return _arrays(dtype, rng.normal(size=shape), rng.uniform(0.1, 3.0, shape))

    return make


def segmentation(classes=3, probabilities=False, shape=(2, 4, 3)):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        logits = 2.0 * rng.normal(size=shape + (classes,))
        if classes == 1:
            targets = (rng.uniform(size=shape + (1,)) < 0.4).astype(float)
            probs = 1 / (1 + np.exp(-logits))
        else:
            targets = _one_hot(rng.integers(0, classes, shape), classes)
            probs = _softmax(logits)
        return _arrays(dtype, probs if probabilities else logits, targets)

    return make


def masks(shape=(2, 4, 3)):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        targets = (rng.uniform(size=shape) < 0.4).astype(float)
        return _arrays(dtype, 2.0 * rng.normal(size=shape), targets)

    return make


def ctc(batch=3, frames=7, classes=5, labels=3):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        logits = 3.0 * rng.normal(size=(batch, frames, classes))
        y = rng.integers(1, classes, (batch, labels)).astype(np.int32)
        y[0, 1] = y[0, 0]  # a repeated label
        pads = np.zeros((batch, frames))
        pads[1, frames - 2 :] = 1.0
        label_pads = np.zeros((batch, labels))
        label_pads[2, labels - 1 :] = 1.0
        x, p, q = _arrays(dtype, logits, pads, label_pads)
        return x, p, jnp.asarray(y), q

    return make


def embeddings(n=8, dim=4):
    def make(seed, dtype):
        x = np.random.default_rng(seed).normal(size=(n, dim))
        return _arrays(dtype, x) + (jnp.array([0, 0, 1, 1, 2, 0, 2, 3])[:n],)

    return make


def triplets(shape=(5, 3)):
    def make(seed, dtype):
        return _arrays(dtype, *np.random.default_rng(seed).normal(size=(3,) + shape))

    return make


def ranking(shape=(4, 5)):
    def make(seed, dtype):
        rng = np.random.default_rng(seed)
        return _arrays(
            dtype,
            3.0 * rng.normal(size=shape),
            rng.integers(0, 3, shape),
            rng.uniform(0.5, 2.0, shape),
        )

    return make


# Masks for the (6, 5) inputs: row 2 fully masked, the others partly; one
# flag per example (examples 1 and 4 dropped); a mask with no empty row.
MASK = np.ones((6, 5), bool)
MASK[0, 4] = MASK[1, :2] = MASK[2, :] = MASK[3, 0] = MASK[5, 1:4] = False
ROW_MASK = np.array([True, False, True, True, False, True])
PARTIAL = MASK.copy()
PARTIAL[2, 1] = True
# For (2, 3, 5) inputs: the (0, 0, :) and (1, :, 2) entries masked.
MASK_3D = np.ones((2, 3, 5), bool)
MASK_3D[0, 0, :] = MASK_3D[1, :, 2] = False
# For the (4, 5) ranking lists: list 1 fully masked.
LIST_MASK = np.ones((4, 5), bool)
LIST_MASK[0, 3:] = LIST_MASK[1, :] = LIST_MASK[3, 0] = False
ROWS_6x1 = ROW_MASK[:, None]  # optax's spelling of a per-example mask


# --------------------------------------------------------------------------
# The table.
# --------------------------------------------------------------------------

SCE, INT = "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels"
LOGSUMEXP = jax.nn.logsumexp


def _scaled_logsumexp(s, temperature=1.0):
    return temperature * jax.nn.logsumexp(s / temperature)


VARIANTS: dict[str, list[V]] = {
    # Regression.
    "squared_error": [
        V("", lambda L, p, t: L.squared_error(p, t), pair(), (0, 1)),
        V("no targets", lambda L, p: L.squared_error(p), one()),
    ],
    "l2_loss": [
        V("", lambda L, p, t: L.l2_loss(p, t), pair(), (0, 1)),
        V("no targets", lambda L, p: L.l2_loss(p), one()),
    ],
    "huber_loss": [
        V("", lambda L, p, t: L.huber_loss(p, t), pair(), (0, 1)),
        V(
            "delta",
            lambda L, p, t: L.huber_loss(p, t, delta=2.5),
            pair(),
            (0, 1),
            f64=True,
        ),
        V("no targets", lambda L, p: L.huber_loss(p, delta=0.5), one()),
    ],
    "log_cosh": [
        V("", lambda L, p, t: L.log_cosh(p, t), pair(), (0, 1)),
        V("no targets", lambda L, p: L.log_cosh(p), one(scale=30.0)),
    ],
    "mean_squared_error": [
        V(
            "",
            lambda L, p, t: L.mean_squared_error(p, t),
            pair(),
            (0, 1),
            lambda L, p, t: L.squared_error(p, t).mean(),
        )
    ],
    "sum_squared_error": [
        V(
            "",
            lambda L, p, t: L.sum_squared_error(p, t),
            pair(),
            (0, 1),
            lambda L, p, t: L.l2_loss(p, t).sum(),
        )
    ],
    "cosine_similarity": [
        V("", lambda L, p, t: L.cosine_similarity(p, t), vectors(), (0, 1)),
        V(
            "epsilon axis 0",
            lambda L, p, t: L.cosine_similarity(p, t, epsilon=0.05, axis=0),
            vectors(),
            (0, 1),
            f64=True,
        ),
        V(
            "axes (0, 2) epsilon",
            lambda L, p, t: L.cosine_similarity(p, t, axis=(0, 2), epsilon=0.5),
            vectors((2, 3, 5)),
        ),
        V(
            "where",
            lambda L, p, t: L.cosine_similarity(p, t, where=PARTIAL),
            vectors(),
            (0, 1),
        ),
    ],
    "cosine_distance": [
        V(
            "epsilon where",
            lambda L, p, t: L.cosine_distance(p, t, epsilon=0.05, where=PARTIAL),
            vectors(),
            (0, 1),
        ),
    ],
    # Cross entropies.
    "sigmoid_binary_cross_entropy": [
        V("", lambda L, x, y: L.sigmoid_binary_cross_entropy(x, y), binary(), (0, 1)),
        V("soft", lambda L, x, y: L.sigmoid_binary_cross_entropy(x, y), binary(True)),
    ],
    "sigmoid_focal_loss": [
        V("", lambda L, x, y: L.sigmoid_focal_loss(x, y), binary(), (0, 1)),
        V(
            "soft alpha gamma",
            lambda L, x, y: L.sigmoid_focal_loss(x, y, alpha=0.25, gamma=0.5),
            binary(True),
            (0, 1),
            f64=True,
        ),
    ],
    SCE: [
        V("", lambda L, x, y: L.softmax_cross_entropy(x, y), softmax(), (0, 1)),
        V(
            "axis 0 soft",
            lambda L, x, y: L.softmax_cross_entropy(x, y, axis=0),
            softmax(True, axis=0),
            (0, 1),
        ),
        V(
            "where soft",
            lambda L, x, y: L.softmax_cross_entropy(x, y, where=MASK),
            softmax(True),
        ),
        V(
            "where rows one-hot",
            lambda L, x, y: L.softmax_cross_entropy(x, y, where=ROW_MASK),
            softmax(),
        ),
        V(
            "axes (1, 2) where",
            lambda L, x, y: L.softmax_cross_entropy(x, y, axis=(1, 2), where=MASK_3D),
            softmax(True, (1, 2), (2, 3, 5)),
        ),
        V(
            "axes (2, 0) where rows",
            lambda L, x, y: L.softmax_cross_entropy(
                x, y, axis=(2, 0), where=np.array([True, False, True])
            ),
            softmax(True, (2, 0), (2, 3, 5)),
        ),
        V(
            "axis None",
            lambda L, x, y: L.softmax_cross_entropy(x, y, axis=None),
            softmax(True, None, (2, 3, 5)),
            (0, 1),
        ),
    ],
    INT: [
        V(
            "",
            lambda L, x, y: L.softmax_cross_entropy_with_integer_labels(x, y),
            integer(),
        ),
        V(
            "where rows",
            lambda L, x, y: L.softmax_cross_entropy_with_integer_labels(
                x, y, where=ROW_MASK
            ),
            integer(),
        ),
        V(
            "where axis 0",
            lambda L, x, y: L.softmax_cross_entropy_with_integer_labels(
                x, y, axis=0, where=MASK
            ),
            integer(axes=(0,)),
        ),
        V(
            "axes (2, -3)",
            lambda L, x, y: L.softmax_cross_entropy_with_integer_labels(
                x, y, axis=(2, -3)
            ),
            integer((2, 3, 5), (2, 0)),
        ),
        V(
            "axes (1, 2) where",
            lambda L, x, y: L.softmax_cross_entropy_with_integer_labels(
                x, y, axis=(1, 2), where=MASK_3D
            ),
            integer((2, 3, 5), (1, 2)),
        ),
        V(
            "axes (2, 1) where rows",
            lambda L, x, y: L.softmax_cross_entropy_with_integer_labels(
                x, y, axis=(2, 1), where=np.array([False, True])
            ),
            integer((2, 3, 5), (2, 1)),
        ),
    ],
    "safe_softmax_cross_entropy": [
        V("", lambda L, x, y: L.safe_softmax_cross_entropy(x, y), softmax(), (0, 1)),
        V(
            "soft 3-D",
            lambda L, x, y: L.safe_softmax_cross_entropy(x, y),
            softmax(True, shape=(2, 3, 5)),
            (0, 1),
        ),
    ],
    "poly_loss_cross_entropy": [
        V("", lambda L, x, y: L.poly_loss_cross_entropy(x, y), softmax(True), (0, 1)),
        V(
            "axis 0 epsilon -1 one-hot",
            lambda L, x, y: L.poly_loss_cross_entropy(x, y, axis=0, epsilon=-1.0),
            softmax(axis=0),
            (0, 1),
        ),
        V(
            "where",
            lambda L, x, y: L.poly_loss_cross_entropy(x, y, where=PARTIAL),
            softmax(True),
        ),
        V(
            "where rows",
            lambda L, x, y: L.poly_loss_cross_entropy(x, y, where=ROW_MASK),
            softmax(True),
            (0,),
            lambda L, x, y: L.poly_loss_cross_entropy(x, y, where=ROWS_6x1),
        ),
        V(
            "axis None",
            lambda L, x, y: L.poly_loss_cross_entropy(x, y, axis=None, epsilon=0.5),
            softmax(True, None, (2, 3, 5)),
        ),
    ],
    "smooth_labels": [
        V("", lambda L, y: L.smooth_labels(y, 0.1), lambda k, d: softmax()(k, d)[1:]),
        V(
            "axis 0",
            lambda L, y: L.smooth_labels(y, 0.3, axis=0),
            lambda k, d: softmax(True, axis=0)(k, d)[1:],
        ),
        V(
            "where",
            lambda L, y: L.smooth_labels(y, 0.2, where=PARTIAL),
            lambda k, d: softmax()(k, d)[1:],
            f64=True,
        ),
        V(
            "axis None",
            lambda L, y: L.smooth_labels(y, 0.7, axis=None),
            lambda k, d: softmax(True, None, (2, 3, 5))(k, d)[1:],
        ),
    ],
    # Margin losses.
    "hinge_loss": [
        V("", lambda L, s, t: L.hinge_loss(s, t), binary(signs=True)),
    ],
    "perceptron_loss": [
        V("", lambda L, s, t: L.perceptron_loss(s, t), binary(signs=True)),
    ],
    "multiclass_hinge_loss": [
        V("", lambda L, s, y: L.multiclass_hinge_loss(s, y), integer()),
        V(
            "3-D",
            lambda L, s, y: L.multiclass_hinge_loss(s, y),
            integer((2, 3, 5)),
        ),
    ],
    "multiclass_perceptron_loss": [
        V("", lambda L, s, y: L.multiclass_perceptron_loss(s, y), integer()),
        V(
            "3-D",
            lambda L, s, y: L.multiclass_perceptron_loss(s, y),
            integer((2, 3, 5)),
        ),
    ],
    # Divergences.
    "kl_divergence": [
        V("", lambda L, p, t: L.kl_divergence(p, t), distributions(), (0, 1)),
        V(
            "zero targets",
            lambda L, p, t: L.kl_divergence(p, t),
            distributions(zeros=True),
        ),
        V(
            "axis 0 where",
            lambda L, p, t: L.kl_divergence(p, t, axis=0, where=MASK),
            distributions(),
            (0, 1),
        ),
        V(
            "axis None",
            lambda L, p, t: L.kl_divergence(p, t, axis=None),
            distributions(shape=(2, 3, 5)),
            (0, 1),
        ),
    ],
    "kl_divergence_with_log_targets": [
        V(
            "",
            lambda L, p, t: L.kl_divergence_with_log_targets(p, t),
            distributions(True),
            (0, 1),
        ),
        V(
            "axes (0, 1) where",
            lambda L, p, t: L.kl_divergence_with_log_targets(
                p, t, axis=(0, 1), where=MASK_3D
            ),
            distributions(True, shape=(2, 3, 5)),
            (0, 1),
        ),
    ],
    "generalized_kl_divergence": [
        V("", lambda L, p, t: L.generalized_kl_divergence(p, t), measures(), (0, 1)),
        V(
            "where",
            lambda L, p, t: L.generalized_kl_divergence(p, t, where=MASK),
            measures(),
            (0, 1),
        ),
    ],
    "convex_kl_divergence": [
        V(
            "",
            lambda L, p, t: L.convex_kl_divergence(p, t, axis=0),
            measures(),
            (0, 1),
        ),
    ],
    # Fenchel-Young.
    "make_fenchel_young_loss": [
        V(
            "logsumexp",
            lambda L, s, y: L.make_fenchel_young_loss(LOGSUMEXP)(s, y),
            softmax(True),
            (0, 1),
        ),
        V(
            "kwargs 3-D",
            lambda L, s, y: L.make_fenchel_young_loss(_scaled_logsumexp)(
                s, y, temperature=0.5
            ),
            softmax(shape=(2, 3, 5)),
            (0, 1),
        ),
    ],
    "sparsemax_loss": [
        V("", lambda L, x, y: L.sparsemax_loss(x, y), binary()),
    ],
    "multiclass_sparsemax_loss": [
        V("", lambda L, s, y: L.multiclass_sparsemax_loss(s, y), integer()),
    ],
    # CTC.
    "ctc_loss": [
        V(
            "blank log_epsilon",
            lambda L, x, p, y, q: L.ctc_loss(x, p, y, q, blank_id=2, log_epsilon=-1e4),
            ctc(classes=4, labels=2),
        ),
    ],
    "ctc_loss_with_forward_probs": [
        # Values only: ctc_loss differentiates the same code (a scan: costly).
        V(
            "",
            lambda L, x, p, y, q: L.ctc_loss_with_forward_probs(x, p, y, q),
            ctc(),
            (),
        ),
    ],
    # Segmentation.
    "dice_loss": [
        V("", lambda L, p, t: L.dice_loss(p, t), segmentation(), (0, 1)),
        V(
            "probabilities tversky sum",
            lambda L, p, t: L.dice_loss(
                p, t, apply_softmax=False, alpha=0.3, beta=0.7, reduction="sum"
            ),
            segmentation(probabilities=True),
            (0, 1),
            value_check=True,
        ),
        V(
            "weights background none",
            lambda L, p, t: L.dice_loss(
                p,
                t,
                class_weights=jnp.array([0.5, 2.0, 1.0], p.dtype),
                ignore_background=True,
                reduction="none",
                smooth=0.1,
            ),
            segmentation(),
            (0, 1),
            f64=True,
        ),
        V("axis", lambda L, p, t: L.dice_loss(p, t, axis=(1,)), segmentation()),
        V("binary", lambda L, p, t: L.dice_loss(p, t), segmentation(1), (0, 1)),
        V(
            "no class axis",
            lambda L, p, t: L.dice_loss(p, t),
            lambda k, d: (segmentation(1)(k, d)[0][..., 0], segmentation(1)(k, d)[1]),
        ),
    ],
    "binary_dice_loss": [
        V("", lambda L, p, t: L.binary_dice_loss(p, t), masks(), (0, 1)),
        V("channel", lambda L, p, t: L.binary_dice_loss(p, t), segmentation(1)),
    ],
    "multiclass_generalized_dice_loss": [
        V(
            "",
            lambda L, p, t: L.multiclass_generalized_dice_loss(p, t),
            segmentation(),
            (0, 1),
        ),
        V(
            "probabilities background",
            lambda L, p, t: L.multiclass_generalized_dice_loss(
                p, t, apply_softmax=False, ignore_background=True, smooth=0.5
            ),
            segmentation(4, True),
            value_check=True,
        ),
    ],
    # Self-supervised.
    "ntxent": [
        V("", lambda L, e, y: L.ntxent(e, y), embeddings()),
    ],
    "triplet_margin_loss": [
        V("", lambda L, a, p, n: L.triplet_margin_loss(a, p, n), triplets(), (0, 1, 2)),
        V(
            "degree 4 margin eps 0 axis 0",
            lambda L, a, p, n: L.triplet_margin_loss(
                a, p, n, axis=0, norm_degree=4, margin=0.3, eps=0.0
            ),
            triplets(),
            (0, 1, 2),
            f64=True,
        ),
    ],
    # Ranking.
    "ranking_softmax_loss": [
        V("", lambda L, x, y, w: L.ranking_softmax_loss(x, y), ranking(), (0, 1)),
        V(
            "where",
            lambda L, x, y, w: L.ranking_softmax_loss(x, y, where=LIST_MASK),
            ranking(),
        ),
        V(
            "where weights sum",
            lambda L, x, y, w: L.ranking_softmax_loss(
                x, y, where=LIST_MASK, weights=w, reduce_fn=jnp.sum
            ),
            ranking(),
        ),
        V(
            "weights unreduced",
            lambda L, x, y, w: L.ranking_softmax_loss(x, y, weights=w, reduce_fn=None),
            ranking(),
            (0, 1, 2),
        ),
        V(
            "where rows unreduced",
            lambda L, x, y, w: L.ranking_softmax_loss(
                x, y, where=np.array([True, False, True, True]), reduce_fn=None
            ),
            ranking(),
            (0,),
            lambda L, x, y, w: L.ranking_softmax_loss(
                x, y, where=np.array([[True], [False], [True], [True]]), reduce_fn=None
            ),
        ),
    ],
}


# --------------------------------------------------------------------------
# Against optax.
# --------------------------------------------------------------------------


class _AllcloseTrue:
    """optax's segmentation module's view of jax.numpy, with ``allclose``
    always True: the rest of optax's dice computation runs under jit."""

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)

    @staticmethod
    def allclose(*args: Any, **kwargs: Any) -> bool:
        return True


@contextlib.contextmanager
def _without_value_check(active: bool):
    """KNOWN_DIFFERENCES['dice probability check']: optax's dice losses with
    ``apply_softmax=False`` check that the probabilities sum to 1, reading
    values, which fails under jit; this turns that one check off."""
    if not active:
        yield
        return
    module = optax.losses._segmentation
    with unittest.mock.patch.object(module, "jnp", _AllcloseTrue()):
        yield


def _run(call: Callable, L: Any, args: tuple, argnums: tuple[int, ...]):
    """The loss and the gradients of its sum with respect to ``argnums``."""

    if not argnums:
        return call(L, *args), ()

    def total(*args):
        out = call(L, *args)
        return sum(jnp.sum(o) for o in jax.tree.leaves(out)), out

    grads, out = jax.grad(total, argnums=argnums, has_aux=True)(*args)
    return out, grads


def _vmapped(call: Callable, first: tuple, second: tuple):
    """vmap over a batch of two examples, and each example alone."""
    stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), first, second)
    batched = jax.vmap(lambda *args: call(losses, *args))(*stacked)
    return batched, (call(losses, *first), call(losses, *second))


def _compare(got, want, rtol, what):
    got_leaves, want_leaves = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(got_leaves) == len(want_leaves), what
    for g, w in zip(got_leaves, want_leaves, strict=True):
        assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=0, err_msg=what)


def _themes() -> dict[str, list[str]]:
    """The loss names by jgd.losses module (regression, cross_entropy, ...)."""
    out: dict[str, list[str]] = {}
    for name in sorted(VARIANTS):
        theme = getattr(losses, name).__module__.rsplit(".", 1)[1]
        out.setdefault(theme, []).append(name)
    return out


THEMES = _themes()


def _check_theme(theme: str, dtype) -> None:
    """Every loss of a module, all its variants, against optax, in one jit."""
    f32 = jnp.dtype(dtype) == jnp.float32
    table = {
        name: [v for i, v in enumerate(VARIANTS[name]) if f32 or i == 0 or v.f64]
        for name in THEMES[theme]
    }
    inputs = {name: [v.inputs(7, dtype) for v in vs] for name, vs in table.items()}
    second = {name: vs[0].inputs(8, dtype) for name, vs in table.items()}

    def optax_run(v, args):
        with optax_side(), _without_value_check(v.value_check):
            return _run(v.theirs or v.call, optax.losses, args, v.grad)

    # One compilation for every variant, both libraries and vmap.
    @jax.jit(compiler_options=AS_WRITTEN)
    def everything(inputs, second):
        out = {}
        for name, variants in table.items():
            ours = [
                _run(v.call, losses, args, v.grad)
                for v, args in zip(variants, inputs[name], strict=True)
            ]
            theirs = [
                optax_run(v, args)
                for v, args in zip(variants, inputs[name], strict=True)
            ]
            vmapped = None
            if f32:
                vmapped = _vmapped(variants[0].call, inputs[name][0], second[name])
            out[name] = (ours, theirs, vmapped)
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # convex_kl_divergence
        results = everything(inputs, second)
    rtol = TOL[jnp.dtype(dtype).name]
    for name, variants in table.items():
        ours, theirs, vmapped = results[name]
        for v, (out, grads), (want, want_grads) in zip(
            variants, ours, theirs, strict=True
        ):
            what = f"{name} [{v.label}]"
            for leaf in jax.tree.leaves((out, grads)):
                assert leaf.dtype == jnp.dtype(dtype), f"{what}: dtype {leaf.dtype}"
            _compare(out, want, rtol, what)
            _compare(grads, want_grads, rtol, what + " gradient")
        if vmapped is not None:
            batched, single = vmapped
            for i, example in enumerate(single):
                got = jax.tree.map(lambda b, i=i: b[i], batched)
                _compare(got, example, rtol, f"{name} vmap example {i}")


@pytest.mark.parametrize("theme", sorted(THEMES))
def test_matches_optax_float32(theme):
    _check_theme(theme, jnp.float32)


@pytest.mark.parametrize("theme", sorted(THEMES))
def test_matches_optax_float64(theme, x64):
    _check_theme(theme, jnp.float64)


def test_every_optax_loss_is_here_and_in_all():
    assert len(OPTAX_NAMES) == 32
    assert sorted(losses.__all__) == sorted(OPTAX_NAMES + JGD_ONLY)
    assert sorted(VARIANTS) == sorted(losses.__all__)
    for name in JGD_ONLY:  # if optax gains one, its signature must match
        assert not hasattr(optax.losses, name), name
    for name in losses.__all__:
        assert getattr(losses, name).__module__.startswith("jgd.losses."), name


def test_signatures_match_optax():
    """Same parameter names, order, kinds and defaults: ``import jgd as optax``."""

    def params(fn):
        return [
            (p.name, p.kind, p.default)
            for p in inspect.signature(fn).parameters.values()
        ]

    differ = [
        name
        for name in OPTAX_NAMES
        if params(getattr(losses, name)) != params(getattr(optax.losses, name))
    ]
    assert differ == []


def test_dtypes_preserved_in_bfloat16():
    """bf16 in, bf16 out, values and gradients, every loss (the variants that
    run in float64). Traced only: a dtype is known without running;
    tests/test_losses_extremes.py runs bf16."""
    for name, variants in VARIANTS.items():
        for v in variants[:1] + [v for v in variants if v.f64]:
            args = tuple(
                a.astype(jnp.bfloat16) if jnp.issubdtype(a.dtype, jnp.floating) else a
                for a in v.inputs(0, jnp.float32)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                result = jax.eval_shape(
                    lambda *a, v=v: _run(v.call, losses, a, v.grad), *args
                )
            for leaf in jax.tree.leaves(result):
                assert leaf.dtype == jnp.bfloat16, f"{name} [{v.label}]"


def test_convex_kl_divergence_warns_as_optax():
    lp, t = measures()(0, jnp.float32)
    with pytest.warns(DeprecationWarning, match="use jgd.losses.generalized_kl"):
        got = losses.convex_kl_divergence(lp, t)
    np.testing.assert_array_equal(got, losses.generalized_kl_divergence(lp, t))


@pytest.mark.parametrize(
    "call,exc,message",
    catalogue.BAD_INPUT,
    ids=[
        m.split(":")[0] + ":" + m.split(":")[1].split()[0]
        for *_, m in catalogue.BAD_INPUT
    ],
)
def test_bad_argument_message(call, exc, message):
    """tests/catalogue/losses.py's BAD_INPUT, exact (tests/test_errors.py runs
    them too once tests/catalogue/__init__.py lists the module)."""
    with pytest.raises(exc) as info:
        call()
    assert str(info.value) == message


def test_the_house_messages_for_axis_and_where():
    x, y = jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32)
    for name in [SCE, INT, "poly_loss_cross_entropy"]:
        fn = getattr(losses, name)
        second = y if name == INT else x
        prefix = f"^jgd\\.losses\\.{name}: "
        for bad in [(), (1, -1)]:
            with pytest.raises(ValueError, match=prefix + "axis must name at least"):
                fn(x, second, axis=bad)
        with pytest.raises(ValueError, match=prefix + r"axis must be in .*\(0, 2\)"):
            fn(x, second, axis=(0, 2))
        with pytest.raises(ValueError, match=prefix + r"where must have .*\(3,\)\."):
            fn(x, second, where=jnp.ones(3, bool))
    fn = losses.softmax_cross_entropy_with_integer_labels
    with pytest.raises(ValueError, match=r"without axis \(1, 2\), \(2,\); got"):
        fn(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3), jnp.int32), axis=(1, 2))
    for bad in [None, [0, 1], 1.0, (0, "1")]:
        with pytest.raises(TypeError, match=r"axis must be an integer or a tuple"):
            fn(x, y, axis=bad)


def test_traced_hyperparameters():
    """Hyperparameters may be jit arguments (no recompilation per value)."""
    e = jnp.array([0.5, 3.0])
    got = jax.jit(lambda d: losses.huber_loss(e, delta=d))(jnp.float32(2.0))
    np.testing.assert_array_equal(got, [0.125, 4.0])
    x, y = binary(True)(1, jnp.float32)
    labels = jnp.arange(6) % 2

    def all_four(alpha, gamma, epsilon, temperature):
        return (
            losses.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma),
            losses.smooth_labels(y, alpha),
            losses.poly_loss_cross_entropy(x, y, epsilon=epsilon),
            losses.ntxent(x, labels, temperature),
        )

    @jax.jit
    def both(traced):
        return all_four(*traced), all_four(0.25, 0.5, -1.0, 0.3)

    got, want = both(tuple(jnp.float32(a) for a in (0.25, 0.5, -1.0, 0.3)))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6)


def test_top_level_names_of_optax():
    """Every loss optax also exposes at its top level is at jgd's top level,
    as the same function as in jgd.losses (and in jgd.__all__)."""
    top = [
        n for n in OPTAX_NAMES if getattr(optax, n, None) is getattr(optax.losses, n)
    ]
    assert top  # optax has some
    for name in top:
        assert getattr(jgd, name, None) is getattr(losses, name), name
        assert name in jgd.__all__, name
