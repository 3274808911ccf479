"""Cases for the loss functions (jgd/losses/).

See tests/catalogue/__init__.py for what each table feeds. Losses are not
transforms, so only ``BAD_INPUT`` and ``KNOWN_DIFFERENCES`` have entries: the
cross-checks against optax (values and gradients, f32 and f64, jit and vmap)
live in tests/test_losses.py, the extreme inputs and golden numbers in
tests/test_losses_extremes.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgd import losses

CASES: dict = {}
SCHEDULED: set[str] = set()
CONFORMANCE: dict = {}
THROUGH_TRAIN: dict = {}
SCHEDULES: dict = {}

_NOT_BROADCAST = (
    " Nothing is broadcast: reshape one of them (e.g. y.reshape(-1) or y[:, None])."
)
_ONE = jnp.ones(1)
_V3, _V31 = jnp.zeros(3), jnp.zeros((3, 1))
_M43, _M42 = jnp.zeros((4, 3)), jnp.zeros((4, 2))
_I4 = jnp.zeros(4, jnp.int32)


def _shape(name: str, a: str, a_shape, b: str, b_shape) -> str:
    return (
        f"jgd.losses.{name}: {a} and {b} must have the same shape; got {a} "
        f"{a_shape} and {b} {b_shape}." + _NOT_BROADCAST
    )


# (call, exception type, exact message)
BAD_INPUT: list = [
    # Regression.
    (
        lambda: losses.squared_error(_V3, _V31),
        ValueError,
        _shape("squared_error", "predictions", (3,), "targets", (3, 1)),
    ),
    (
        lambda: losses.l2_loss(jnp.array([1, 2]), jnp.zeros(2)),
        TypeError,
        (
            "jgd.losses.l2_loss: predictions must be a floating-point array; got dtype "
            "int32. Cast it first, e.g. predictions.astype(jnp.float32)."
        ),
    ),
    (
        lambda: losses.huber_loss(_V3, delta=0.0),
        ValueError,
        "jgd.losses.huber_loss: delta must be finite and > 0; got 0.0.",
    ),
    (
        lambda: losses.huber_loss(_V3, delta="1"),
        TypeError,
        "jgd.losses.huber_loss: delta must be a number; got '1' (str).",
    ),
    (
        lambda: losses.log_cosh(_V3, _V31),
        ValueError,
        _shape("log_cosh", "predictions", (3,), "targets", (3, 1)),
    ),
    (
        lambda: losses.mean_squared_error(_V3, _V31),
        ValueError,
        _shape("mean_squared_error", "predictions", (3,), "targets", (3, 1)),
    ),
    (
        lambda: losses.sum_squared_error(_V3, _V31),
        ValueError,
        _shape("sum_squared_error", "predictions", (3,), "targets", (3, 1)),
    ),
    (
        lambda: losses.cosine_similarity(_M43, _M43, epsilon=-1.0),
        ValueError,
        "jgd.losses.cosine_similarity: epsilon must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: losses.cosine_similarity(_M43, _M42),
        ValueError,
        _shape("cosine_similarity", "predictions", (4, 3), "targets", (4, 2)),
    ),
    (
        lambda: losses.cosine_distance(_M43, _M43, axis=2),
        ValueError,
        (
            "jgd.losses.cosine_distance: axis must be in [-2, 2) for predictions of "
            "rank 2; got 2."
        ),
    ),
    (
        lambda: losses.cosine_distance(_M43, _M43, where=jnp.ones(3, bool)),
        ValueError,
        (
            "jgd.losses.cosine_distance: where must have the predictions' shape "
            "(4, 3) or the predictions' shape without axis (1,), (4,); got where (3,)."
        ),
    ),
    # Cross entropies.
    (
        lambda: losses.sigmoid_binary_cross_entropy(_M43, _M42),
        ValueError,
        _shape("sigmoid_binary_cross_entropy", "logits", (4, 3), "labels", (4, 2)),
    ),
    (
        lambda: losses.sigmoid_focal_loss(_V3, _V3, alpha=1.5),
        ValueError,
        "jgd.losses.sigmoid_focal_loss: alpha must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: losses.sigmoid_focal_loss(_V3, _V3, gamma=-1.0),
        ValueError,
        "jgd.losses.sigmoid_focal_loss: gamma must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: losses.softmax_cross_entropy(_M43, _M42),
        ValueError,
        _shape("softmax_cross_entropy", "logits", (4, 3), "labels", (4, 2)),
    ),
    (
        lambda: losses.softmax_cross_entropy(_M43, _M43, axis=()),
        ValueError,
        (
            "jgd.losses.softmax_cross_entropy: axis must name at least one axis, each "
            "once; got ()."
        ),
    ),
    (
        lambda: losses.softmax_cross_entropy(_M43, _M43, where=jnp.ones((4, 3))),
        TypeError,
        (
            "jgd.losses.softmax_cross_entropy: where must be a boolean array; got "
            "dtype float32. Compare first, e.g. where=mask > 0."
        ),
    ),
    (
        lambda: losses.softmax_cross_entropy_with_integer_labels(_M43, jnp.zeros(4)),
        TypeError,
        (
            "jgd.losses.softmax_cross_entropy_with_integer_labels: labels must be an "
            "integer array of class indices; got dtype float32. For one-hot or soft "
            "labels use softmax_cross_entropy."
        ),
    ),
    (
        lambda: losses.softmax_cross_entropy_with_integer_labels(_M43, _I4, axis=None),
        TypeError,
        (
            "jgd.losses.softmax_cross_entropy_with_integer_labels: axis must be an "
            "integer or a tuple of integers; got None (NoneType)."
        ),
    ),
    (
        lambda: losses.safe_softmax_cross_entropy(_M43, _M42),
        ValueError,
        _shape("safe_softmax_cross_entropy", "logits", (4, 3), "labels", (4, 2)),
    ),
    (
        lambda: losses.poly_loss_cross_entropy(_M43, _M43, epsilon=float("nan")),
        ValueError,
        "jgd.losses.poly_loss_cross_entropy: epsilon must be finite; got nan.",
    ),
    (
        lambda: losses.poly_loss_cross_entropy(_M43, _M43, axis=(0, 2)),
        ValueError,
        (
            "jgd.losses.poly_loss_cross_entropy: axis must be in [-2, 2) for logits "
            "of rank 2; got (0, 2)."
        ),
    ),
    (
        lambda: losses.smooth_labels(_M43, 2.0),
        ValueError,
        "jgd.losses.smooth_labels: alpha must be in [0, 1]; got 2.0.",
    ),
    (
        lambda: losses.smooth_labels(jnp.eye(3, dtype=jnp.int32), 0.1),
        TypeError,
        (
            "jgd.losses.smooth_labels: labels must be a floating-point array; got "
            "dtype int32. Cast it first, e.g. labels.astype(jnp.float32)."
        ),
    ),
    # Margin losses.
    (
        lambda: losses.hinge_loss(_V3, _V31),
        ValueError,
        _shape("hinge_loss", "predictor_outputs", (3,), "targets", (3, 1)),
    ),
    (
        lambda: losses.perceptron_loss(_V3, jnp.ones(2)),
        ValueError,
        _shape("perceptron_loss", "predictor_outputs", (3,), "targets", (2,)),
    ),
    (
        lambda: losses.multiclass_hinge_loss(_M43, jnp.ones(4)),
        TypeError,
        (
            "jgd.losses.multiclass_hinge_loss: labels must be an integer array of "
            "class indices; got dtype float32. Use hinge_loss or perceptron_loss for "
            "{-1, 1} targets."
        ),
    ),
    (
        lambda: losses.multiclass_perceptron_loss(_M43, jnp.zeros(3, jnp.int32)),
        ValueError,
        (
            "jgd.losses.multiclass_perceptron_loss: labels must have the scores' shape "
            "without the last axis, (4,); got labels (3,) for scores (4, 3)."
        ),
    ),
    # Divergences.
    (
        lambda: losses.kl_divergence(_M43, _M42),
        ValueError,
        _shape("kl_divergence", "log_predictions", (4, 3), "targets", (4, 2)),
    ),
    (
        lambda: losses.kl_divergence_with_log_targets(_M43, _M43, axis=(1, 1)),
        ValueError,
        (
            "jgd.losses.kl_divergence_with_log_targets: axis must name at least one "
            "axis, each once; got (1, 1)."
        ),
    ),
    (
        lambda: losses.generalized_kl_divergence(_M43, _M43, where=jnp.ones(4)),
        TypeError,
        (
            "jgd.losses.generalized_kl_divergence: where must be a boolean array; got "
            "dtype float32. Compare first, e.g. where=mask > 0."
        ),
    ),
    # Fenchel-Young.
    (
        lambda: losses.make_fenchel_young_loss(3),
        TypeError,
        (
            "jgd.losses.make_fenchel_young_loss: max_fun must be a function of a score "
            "vector, e.g. jax.nn.logsumexp; got 3 (int)."
        ),
    ),
    (
        lambda: losses.make_fenchel_young_loss(jax.nn.logsumexp)(_M43, _M42),
        ValueError,
        "jgd.losses.make_fenchel_young_loss(...): scores and targets must have the "
        "same shape; got scores (4, 3) and targets (4, 2)." + _NOT_BROADCAST,
    ),
    (
        lambda: losses.sparsemax_loss(jnp.zeros(3, jnp.int32), _V3),
        TypeError,
        (
            "jgd.losses.sparsemax_loss: logits must be a floating-point array; got "
            "dtype int32. Cast it first, e.g. logits.astype(jnp.float32)."
        ),
    ),
    (
        lambda: losses.multiclass_sparsemax_loss(_M43, jnp.zeros((4, 1), jnp.int32)),
        ValueError,
        (
            "jgd.losses.multiclass_sparsemax_loss: labels must have the scores' shape "
            "without the last axis, (4,); got labels (4, 1) for scores (4, 3)."
        ),
    ),
    # CTC.
    (
        lambda: losses.ctc_loss(
            jnp.zeros((2, 5, 4)),
            jnp.zeros((2, 5)),
            jnp.ones((2, 3), int),
            jnp.zeros((2, 3)),
            blank_id=4,
        ),
        ValueError,
        (
            "jgd.losses.ctc_loss: blank_id must be an integer in [0, 4) for logits "
            "with 4 classes; got 4."
        ),
    ),
    (
        lambda: losses.ctc_loss(
            jnp.zeros((2, 5, 4)),
            jnp.zeros((2, 5)),
            jnp.ones((2, 3), int),
            jnp.zeros((2, 3)),
            blank_id=-1,
        ),
        ValueError,
        "jgd.losses.ctc_loss: blank_id must be an integer >= 0; got -1.",
    ),
    (
        lambda: losses.ctc_loss_with_forward_probs(
            jnp.zeros((2, 5, 4)),
            jnp.zeros((2, 5)),
            jnp.ones((2, 3), int),
            jnp.zeros((2, 3)),
            log_epsilon=0.0,
        ),
        ValueError,
        (
            "jgd.losses.ctc_loss_with_forward_probs: log_epsilon must be finite and "
            "< 0; got 0.0."
        ),
    ),
    (
        lambda: losses.ctc_loss(
            jnp.zeros((5, 4)), jnp.zeros(5), jnp.ones(3, int), jnp.zeros(3)
        ),
        ValueError,
        (
            "jgd.losses.ctc_loss: logits must have rank 3, (batch, frames, classes); "
            "got shape (5, 4)."
        ),
    ),
    (
        lambda: losses.ctc_loss(
            jnp.zeros((2, 5, 4)),
            jnp.zeros((2, 5)),
            jnp.ones((3, 3), int),
            jnp.zeros((3, 3)),
        ),
        ValueError,
        (
            "jgd.losses.ctc_loss: labels must have the logits' batch size 2; got "
            "labels (3, 3) for logits (2, 5, 4)."
        ),
    ),
    # Segmentation.
    (
        lambda: losses.dice_loss(_M43, _M43, reduction="max"),
        ValueError,
        "jgd.losses.dice_loss: reduction must be 'mean', 'sum' or 'none'; got 'max'.",
    ),
    (
        lambda: losses.dice_loss(_M43, _M43, class_weights=jnp.ones(4)),
        ValueError,
        (
            "jgd.losses.dice_loss: class_weights must have shape (3,), one weight per "
            "class; got (4,)."
        ),
    ),
    (
        lambda: losses.dice_loss(_M43, _M43, alpha=-0.5),
        ValueError,
        "jgd.losses.dice_loss: alpha must be finite and >= 0; got -0.5.",
    ),
    (
        lambda: losses.binary_dice_loss(_M43, _M43, smooth=-1.0),
        ValueError,
        "jgd.losses.binary_dice_loss: smooth must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: losses.multiclass_generalized_dice_loss(_M43, _M42),
        ValueError,
        _shape(
            "multiclass_generalized_dice_loss",
            "predictions",
            (4, 3),
            "targets",
            (4, 2),
        ),
    ),
    # Self-supervised.
    (
        lambda: losses.ntxent(_M43, _I4, temperature=0.0),
        ValueError,
        "jgd.losses.ntxent: temperature must be finite and > 0; got 0.0.",
    ),
    (
        lambda: losses.ntxent(_M43, jnp.zeros(3, jnp.int32)),
        ValueError,
        (
            "jgd.losses.ntxent: labels must have shape (4,), one per embedding; got "
            "labels (3,) for embeddings (4, 3)."
        ),
    ),
    (
        lambda: losses.triplet_margin_loss(_M43, _M43, _M43, norm_degree=0),
        ValueError,
        "jgd.losses.triplet_margin_loss: norm_degree must be finite and > 0; got 0.",
    ),
    (
        lambda: losses.triplet_margin_loss(_M43, _M43, _M42),
        ValueError,
        _shape("triplet_margin_loss", "anchors", (4, 3), "negatives", (4, 2)),
    ),
    # Ranking.
    (
        lambda: losses.ranking_softmax_loss(_M43, _M43, reduce_fn="mean"),
        TypeError,
        (
            "jgd.losses.ranking_softmax_loss: reduce_fn must be a function such as "
            "jnp.mean or jnp.sum, or None; got 'mean' (str)."
        ),
    ),
    (
        lambda: losses.ranking_softmax_loss(_M43, _M43, weights=_M42),
        ValueError,
        _shape("ranking_softmax_loss", "logits", (4, 3), "weights", (4, 2)),
    ),
]

KNOWN_DIFFERENCES: dict[str, str] = {
    "loss shapes and hyperparameters": (
        "Every jgd loss takes its paired arrays (targets, labels, weights, "
        "positives...) with the first one's shape and a where= mask with the "
        "input's shape or that shape without axis (one flag per example): "
        "nothing is broadcast, where optax broadcasts (or, for poly_loss and "
        "the divergences, misreads a per-example mask). Hyperparameters are "
        "range-checked (delta, epsilon, alpha, gamma, temperature, smooth, "
        "norm_degree, eps, blank_id, log_epsilon); optax does not check them. "
        "multiclass_sparsemax_loss takes [..., classes] scores (optax: [batch, "
        "classes] only). See tests/test_losses.py: test_bad_argument_message."
    ),
    "masked entries in every loss": (
        "As 'masked label gradients' for the softmax cross entropies: under "
        "where=, masked entries of cosine_similarity/distance, the three KL "
        "divergences, poly_loss_cross_entropy and ranking_softmax_loss "
        "contribute nothing, even inf or nan, to the value or any gradient; "
        "optax's gradients with respect to masked labels, targets and weights "
        "are nan, and nan data under its mask reaches the others. Values and "
        "the gradients optax gives finite match (tests/test_losses_extremes.py: "
        "test_masked_garbage_stays_out)."
    ),
    "cosine of huge and tiny vectors": (
        "cosine_similarity, cosine_distance and ntxent form each squared norm "
        "from the vector scaled by a power of two (exact): the same bits as "
        "optax's x**2 sums wherever those neither overflow nor underflow, and "
        "the right cosine where they do: float32 vectors of 1e20 give cos 0 "
        "(or 1 - 0) in optax, of 1e-30 with epsilon=0 inf or nan "
        "(tests/test_losses_extremes.py: test_cosine_of_huge_and_tiny_vectors)."
    ),
    "ntxent at extremes": (
        "ntxent takes log(denominator) as optax wherever the denominator is "
        "> 0, and where exp underflows it to 0 (a temperature of 1e-6) the "
        "same quantity as -softplus of a log-sum-exp taken relative to the "
        "pair: optax's loss is then inf (log 0) and its gradient nan, jgd's "
        "the definition's, to float32 rounding "
        "(tests/test_losses_extremes.py: test_ntxent_tiny_temperature)."
    ),
    "0 log 0 in the divergences": (
        "kl_divergence and generalized_kl_divergence give 0 for a zero target "
        "even where log_predictions is -inf (optax: 0 * inf = nan); "
        "kl_divergence_with_log_targets gives 0, and gradient 0, for a log "
        "target of -inf (optax: nan value when log_predictions is -inf too, "
        "nan gradient always). The gradient with respect to a zero target "
        "itself is unbounded (nan in both). tests/test_losses_extremes.py: "
        "test_divergences_with_zero_probabilities."
    ),
    "triplet p-norm": (
        "optax.losses.triplet_margin_loss raises the signed difference to "
        "norm_degree, so norm_degree=1 sums signed differences and odd or "
        "fractional degrees give negative sums or nan; jgd uses |u - v|, the "
        "p-norm of Balntas et al. (identical for even degrees, the default 2). "
        "tests/test_losses_extremes.py: test_triplet_p_norm_golden."
    ),
    "triplet of huge embeddings": (
        "triplet_margin_loss keeps optax's operations where the power sum is "
        "finite and normal, and otherwise computes the distance from the "
        "difference scaled by a power of two: float32 differences of 1e20 give "
        "nan in optax (inf - inf), the right loss in jgd "
        "(tests/test_losses_extremes.py: test_triplet_of_huge_and_tiny_embeddings)."
    ),
    "dice probability check": (
        "optax.losses.dice_loss (and multiclass_generalized_dice_loss) with "
        "apply_softmax=False raises ValueError when the predictions do not sum "
        "to 1 over the classes; that reads values, so under jit it fails with "
        "a tracer error instead. optax.losses.binary_dice_loss with "
        "apply_sigmoid=False always raises (its check sums the single channel). "
        "jgd checks shapes only and computes the loss; the cross-check runs "
        "optax with that one check off (tests/test_losses.py: "
        "_without_value_check; tests/test_losses_extremes.py: "
        "test_dice_does_not_read_values)."
    ),
}
