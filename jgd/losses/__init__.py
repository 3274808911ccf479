"""Loss functions: how wrong a prediction is, as a differentiable number.

optax 0.2.8's ``optax.losses``, all 32 names, plus the tutorials' scalar
``mean_squared_error`` and ``sum_squared_error``, one module per theme:
``regression``, ``cross_entropy``, ``margin``, ``divergences``,
``fenchel_young`` (sparsemax), ``ctc``, ``segmentation`` (Dice),
``self_supervised`` (NT-Xent, triplet) and ``ranking``. Every name is here,
as ``jgd.losses.<name>``.

Names, arguments, defaults and values are optax's (to rounding, mostly to
the bit). Conventions:

* Per-element losses return an array shaped like ``predictions`` (or like
  ``logits`` without the class axis); reduce it yourself (``.mean()``).
* Paired arrays must have the same shape; nothing is broadcast (a ``(n,)``
  prediction against ``(n, 1)`` targets would silently become ``(n, n)``),
  and a mismatch raises ``ValueError`` naming both shapes. A ``where`` mask
  has the input's shape or that shape without ``axis`` (one flag per example).
* The loss is computed in the dtype of the first argument: targets and
  labels are cast to it, so bf16 in gives bf16 out, and the code passes
  under ``jax_numpy_dtype_promotion="strict"``.
* Extreme inputs stay finite where the math is: cross entropies use
  ``log_sigmoid``/``log_softmax`` (logits of +-1e30), norms are taken of
  vectors scaled by a power of two (embeddings of 1e30 or 1e-30), and 0 log 0
  is 0. Entries masked out by ``where`` contribute nothing, even inf or nan,
  to the value or any gradient.
"""

from jgd.losses.cross_entropy import (
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from jgd.losses.ctc import ctc_loss, ctc_loss_with_forward_probs
from jgd.losses.divergences import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
    kl_divergence_with_log_targets,
)
from jgd.losses.fenchel_young import (
    make_fenchel_young_loss,
    multiclass_sparsemax_loss,
    sparsemax_loss,
)
from jgd.losses.margin import (
    hinge_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    perceptron_loss,
)
from jgd.losses.ranking import ranking_softmax_loss
from jgd.losses.regression import (
    cosine_distance,
    cosine_similarity,
    huber_loss,
    l2_loss,
    log_cosh,
    mean_squared_error,
    squared_error,
    sum_squared_error,
)
from jgd.losses.segmentation import (
    binary_dice_loss,
    dice_loss,
    multiclass_generalized_dice_loss,
)
from jgd.losses.self_supervised import ntxent, triplet_margin_loss

__all__ = [
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "dice_loss",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "make_fenchel_young_loss",
    "mean_squared_error",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "ranking_softmax_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
    "squared_error",
    "sum_squared_error",
    "triplet_margin_loss",
]
