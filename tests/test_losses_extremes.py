"""jgd.losses at extreme inputs, with masked garbage, and golden numbers.

Logits of +-1e4 and +-1e30, probabilities of exactly 0 and 1, vectors of
1e30 and 1e-30: values and gradients against optax where optax is finite, and
where optax gives nan or inf but the math has a finite answer, against that
answer (tests/catalogue/losses.py KNOWN_DIFFERENCES names each test here).
The golden tests need no optax: the seeds' worked examples and hand-computed
values. Jitted as tests/test_losses.py does (``AS_WRITTEN``), to stay fast.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import losses
from tests.test_losses import (
    AS_WRITTEN,
    MASK,
    TOL,
    VARIANTS,
    _run,
    optax_side,
)

jit = jax.jit(compiler_options=AS_WRITTEN)


def _finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


def _close(got, want, rtol=TOL["float32"]):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=0)


# --------------------------------------------------------------------------
# Logits of +-1e4 and +-1e30, labels of exactly 0 and 1: as optax, finite.
# --------------------------------------------------------------------------

X3 = np.float32([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]])
HUGE3 = np.float32([[1e30, -1e30, 0.0], [-1e30, -1e30, 1e30], [1e38, 0.0, -1e38]])
IDX = np.int32([1, 2, 0])
ONE_HOT = np.eye(3, dtype=np.float32)[IDX]
SOFT = np.float32([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.25, 0.25, 0.5]])
FLAT_X = np.float32([1e4, -1e4, 1e4, -1e4, 0.0, 1e30, -1e30])
FLAT_Y = np.float32([1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0])

EXTREME_LOGITS = [
    ("softmax_cross_entropy", lambda L, x: L.softmax_cross_entropy(x, ONE_HOT)),
    ("soft labels", lambda L, x: L.softmax_cross_entropy(x, SOFT)),
    ("integer", lambda L, x: L.softmax_cross_entropy_with_integer_labels(x, IDX)),
    ("safe", lambda L, x: L.safe_softmax_cross_entropy(x, SOFT)),
    ("poly", lambda L, x: L.poly_loss_cross_entropy(x, ONE_HOT)),
    ("multiclass_hinge", lambda L, x: L.multiclass_hinge_loss(x, IDX)),
    ("multiclass_perceptron", lambda L, x: L.multiclass_perceptron_loss(x, IDX)),
    ("multiclass_sparsemax", lambda L, x: L.multiclass_sparsemax_loss(x, IDX)),
    ("ranking", lambda L, x: L.ranking_softmax_loss(x, SOFT, reduce_fn=None)),
    ("dice", lambda L, x: L.dice_loss(x[None], ONE_HOT[None])),
    (
        "fenchel_young",
        lambda L, x: L.make_fenchel_young_loss(jax.nn.logsumexp)(x, SOFT),
    ),
]
EXTREME_ELEMENTWISE = [
    ("sigmoid_bce", lambda L, x: L.sigmoid_binary_cross_entropy(x, FLAT_Y)),
    ("focal", lambda L, x: L.sigmoid_focal_loss(x, FLAT_Y)),
    (
        "focal gamma alpha",
        lambda L, x: L.sigmoid_focal_loss(x, FLAT_Y, alpha=0.3, gamma=0.5),
    ),
    ("sparsemax", lambda L, x: L.sparsemax_loss(x, FLAT_Y)),
    ("hinge", lambda L, x: L.hinge_loss(x, 2 * FLAT_Y - 1)),
    ("perceptron", lambda L, x: L.perceptron_loss(x, 2 * FLAT_Y - 1)),
    ("log_cosh", lambda L, x: L.log_cosh(x)),
    ("huber", lambda L, x: L.huber_loss(x, delta=2.0)),
]


def test_extreme_logits_match_optax_and_stay_finite():
    cases = [(n, f, X3) for n, f in EXTREME_LOGITS]
    cases += [(n, f, HUGE3) for n, f in EXTREME_LOGITS]
    cases += [(n, f, FLAT_X) for n, f in EXTREME_ELEMENTWISE]

    @jit
    def run():
        ours, theirs = [], []
        for _, f, x in cases:
            x = jnp.asarray(x)
            ours.append(_run(f, losses, (x,), (0,)))
            with optax_side():
                theirs.append(_run(f, optax.losses, (x,), (0,)))
        return ours, theirs

    ours, theirs = run()
    for (name, _, x), got, want in zip(cases, ours, theirs, strict=True):
        assert _finite(want), name  # optax is finite here, and so are we
        assert _finite(got), name
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(g, w, rtol=TOL["float32"], err_msg=name)
    # Golden: the label's logit 2e4 below the best, and the label's the best.
    (value, (grad,)) = ours[0]
    np.testing.assert_array_equal(value[:2], [2e4, 0.0])
    np.testing.assert_array_equal(grad[:2], [[1, -1, 0], [0, 0, 0]])


# Extreme logits with masks: -inf and +-1e30 under the mask, a row fully
# masked, a row whose only unmasked logits are huge, a label on a masked entry.
MASKED_LOGITS = np.array(
    [
        [1e30, -1e30, 0.0, -np.inf],
        [2.0, 1.0, 0.0, 3.0],
        [-np.inf, 1e30, 0.0, 1.0],
        [-np.inf, -np.inf, -1e30, 1e30],
        [np.inf, 5.0, -np.inf, 1.0],
    ]
)
MASKED_LABELS = np.int32([0, 1, 3, 2, 0])
MASKED_WHERE = np.array(
    [
        [True, True, True, False],
        [False, False, False, False],
        [False, True, True, True],
        [False, False, True, True],
        [False, True, False, True],
    ]
)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masked_extreme_logits_match_optax(dtype, request):
    """KNOWN_DIFFERENCES 'masked label gradients' (tests/test_vs_optax.py)."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    x = jnp.asarray(MASKED_LOGITS, dtype)
    y = jax.nn.one_hot(MASKED_LABELS, 4, dtype=dtype)
    w = jnp.asarray(MASKED_WHERE)
    idx = jnp.asarray(MASKED_LABELS)

    def soft(L, x, y):
        return L.softmax_cross_entropy(x, y, where=w)

    def integer(L, x):
        return L.softmax_cross_entropy_with_integer_labels(x, idx, where=w)

    @jit  # the mask is traced: nothing may depend on its values at trace time
    def run(x, y, w):
        ours = _run(soft, losses, (x, y), (0, 1)), _run(integer, losses, (x,), (0,))
        with optax_side():
            theirs = _run(soft, optax.losses, (x, y), (0,))
            theirs = theirs, _run(integer, optax.losses, (x,), (0,))
        return ours, theirs, jax.nn.log_softmax(x, where=w)

    ((out, (gx, gy)), (iout, (igx,))), theirs, log_p = run(x, y, w)
    ((want, (want_gx,)), (iwant, (iwant_gx,))) = theirs

    # optax gives no nan here (but for the labels' gradient), nor do we; -inf
    # is right for a label on a masked entry of logit +inf (row 4).
    def no_nan(tree):
        return not any(bool(jnp.any(jnp.isnan(x))) for x in jax.tree.leaves(tree))

    assert no_nan((out, gx, gy, iout, igx)) and no_nan((want, want_gx, iwant, iwant_gx))
    _close((out, gx, iout, igx), (want, want_gx, iwant, iwant_gx), TOL[dtype])
    np.testing.assert_array_equal(out[1], 0.0)  # the fully masked row
    # Masked entries get no gradient; with integer labels, a label on a masked
    # entry still reads its logit (row 4), as in optax.
    assert bool(jnp.all(jnp.where(w, 0.0, gx) == 0.0))
    assert bool(jnp.all(jnp.where(w | (y > 0), 0.0, igx) == 0.0))
    # With respect to the labels: -log_softmax where kept, 0 where masked
    # (optax's is nan there: labels * -inf).
    assert bool(jnp.all(jnp.where(w, 0.0, gy) == 0.0))
    _close(jnp.where(w, gy, 0.0), jnp.where(w, -log_p, 0.0), TOL[dtype])


# --------------------------------------------------------------------------
# Norms of huge and tiny vectors.
# --------------------------------------------------------------------------

U = np.float32([[1.0, 2.0, -0.5], [0.25, -3.0, 1.0], [-1.0, 0.0, 2.0]])
T3 = np.float32([[3.0, 1.0, 1.0], [1.0, 1.0, -2.0], [0.5, 0.5, 0.5]])


def test_cosine_of_huge_and_tiny_vectors():
    """KNOWN_DIFFERENCES 'cosine of huge and tiny vectors': a cosine does not
    change when a vector is scaled by 2**100 or 2**-100 (1.3e30, 7.9e-31), and
    jgd's, formed from power-of-two-scaled vectors, does not change to the
    bit; optax's squared norms overflow (cos 0) or underflow (inf or nan)."""
    big, tiny = 2.0**100, 2.0**-100

    def cos(L, p, t):
        return L.cosine_similarity(p, t)

    def dist(L, p, t):
        return L.cosine_distance(p, t, where=np.ones((3, 3), bool))

    @jit
    def run(u, t):
        ours = [
            _run(f, losses, (c * u, t), (0, 1))
            for f in (cos, dist)
            for c in (1.0, big, tiny)
        ]
        with optax_side():
            theirs = [
                _run(cos, optax.losses, (c * u, t), (0,))[0] for c in (1.0, big, tiny)
            ]
            eps = _run(
                lambda L, p, t: L.cosine_similarity(p, t, epsilon=1e-3),
                optax.losses,
                (tiny * u, t),
                (0,),
            )
        mine_eps = _run(
            lambda L, p, t: L.cosine_similarity(p, t, epsilon=1e-3),
            losses,
            (tiny * u, t),
            (0,),
        )
        return ours, theirs, eps, mine_eps

    ours, (ref, optax_big, optax_tiny), optax_eps, mine_eps = run(
        jnp.asarray(U), jnp.asarray(T3)
    )
    (v, (gp, gt)), (vb, (gpb, gtb)), (vt, (gpt, gtt)) = ours[:3]
    assert _finite(ours)
    np.testing.assert_array_equal(v, ref)  # optax on the unscaled vectors
    np.testing.assert_array_equal(vb, v)
    np.testing.assert_array_equal(vt, v)
    np.testing.assert_array_equal(gpb * big, gp)  # d cos / d(c u) = (d cos / d u) / c
    np.testing.assert_array_equal(gpt * tiny, gp)
    np.testing.assert_array_equal(gtb, gt)
    np.testing.assert_array_equal(gtt, gt)
    np.testing.assert_array_equal(ours[4][0], 1.0 - v)  # cosine_distance, huge
    # optax: cos 0 for the huge vectors, inf or nan for the tiny ones.
    np.testing.assert_array_equal(optax_big, 0.0)
    assert not _finite(optax_tiny)
    # With epsilon the tiny norms are clipped, by definition: as optax.
    _close(mine_eps, optax_eps)


def _np_triplet(a, p, n, degree, margin, eps):
    def d(u, v):
        return (np.sum(np.abs(u - v) ** degree, axis=-1) + eps) ** (1 / degree)

    return np.maximum(d(a, p) - d(a, n) + margin, 0.0)


def test_triplet_p_norm_golden():
    """KNOWN_DIFFERENCES 'triplet p-norm': the p-norm of |u - v| for every
    degree (NumPy in float64), where optax raises the signed difference."""
    rng = np.random.default_rng(0)
    a, p, n = rng.normal(size=(3, 6, 4))
    args = tuple(jnp.asarray(x, jnp.float32) for x in (a, p, n))
    degrees = (1, 3, 1.5, 2)

    @jit
    def run(a, p, n):
        ours = [
            losses.triplet_margin_loss(a, p, n, norm_degree=k, margin=0.5)
            for k in degrees
        ]
        with optax_side():
            theirs = [
                optax.losses.triplet_margin_loss(a, p, n, norm_degree=k, margin=0.5)
                for k in degrees
            ]
        return ours, theirs

    ours, theirs = run(*args)
    for k, got, want in zip(degrees, ours, theirs, strict=True):
        ref = _np_triplet(a, p, n, k, 0.5, 1e-6)
        np.testing.assert_allclose(
            got, ref, rtol=2e-6, atol=1e-6, err_msg=f"degree {k}"
        )
        if k == 2:
            np.testing.assert_array_equal(got, want)
        else:
            assert not np.allclose(want, ref, equal_nan=False), k  # optax's differ


def test_triplet_of_huge_and_tiny_embeddings():
    """KNOWN_DIFFERENCES 'triplet of huge embeddings': with eps = 0 the loss
    scales with the embeddings; optax's squares overflow (nan at 2**70)."""
    rng = np.random.default_rng(1)
    a, p, n = (jnp.asarray(x, jnp.float32) for x in rng.normal(size=(3, 5, 3)))
    big, tiny = 2.0**70, 2.0**-70

    def loss(L, a, p, n, c):
        return L.triplet_margin_loss(c * a, c * p, c * n, margin=c * 0.5, eps=0.0) / c

    @jit
    def run(a, p, n):
        ours = [
            _run(
                lambda L, a, p, n, c=c: loss(L, a, p, n, c),
                losses,
                (a, p, n),
                (0, 1, 2),
            )
            for c in (1.0, big, tiny)
        ]
        with optax_side():
            theirs = [loss(optax.losses, a, p, n, c) for c in (1.0, big)]
        return ours, theirs

    (ref, huge, small), (optax_ref, optax_huge) = run(a, p, n)
    assert _finite((ref, huge, small))
    assert bool(jnp.any(ref[0] > 0))  # some triplets violate the margin
    np.testing.assert_array_equal(ref[0], optax_ref)
    _close(huge, ref)
    _close(small, ref)
    assert bool(jnp.all(jnp.isnan(optax_huge)))


def _np_ntxent(cos, labels, temperature):
    """NT-Xent in float64 with a stable log-sum-exp (the definition)."""
    s = cos / temperature
    n = len(labels)
    total, pairs = 0.0, 0
    for i in range(n):
        neg = s[i][labels != labels[i]]
        for j in range(n):
            if j != i and labels[j] == labels[i]:
                terms = np.append(neg, s[i, j])
                m = terms.max()
                total += m + np.log(np.sum(np.exp(terms - m))) - s[i, j]
                pairs += 1
    return total / pairs


def test_ntxent_tiny_temperature():
    """KNOWN_DIFFERENCES 'ntxent at extremes': at temperature 1e-6, a pair
    whose normaliser underflows is inf in optax (nan gradient); jgd gives the
    definition's value. Axis-aligned embeddings: their cosines are exact."""
    e = jnp.float32([[1, 0], [1, 0], [0, 1], [-1, 0], [0, -1], [0, -1]])
    labels = np.array([0, 0, 0, 1, 2, 2])
    cos = np.asarray(e, np.float64) @ np.asarray(e, np.float64).T

    @jit
    def run(e, big):
        ours = [
            jax.value_and_grad(lambda e, t=t: losses.ntxent(e, labels, t))(e)
            for t in (1e-6, 0.07)
        ]
        huge = losses.ntxent(big * e, labels, 0.07)
        with optax_side():
            theirs = jax.value_and_grad(lambda e: optax.losses.ntxent(e, labels, 1e-6))(
                e
            )
            optax_huge = optax.losses.ntxent(big * e, labels, 0.07)
        return ours, huge, theirs, optax_huge

    ((tiny, g_tiny), (normal, _)), huge, (optax_tiny, optax_g), optax_huge = run(
        e, 2.0**100
    )
    assert _finite((tiny, g_tiny))
    np.testing.assert_allclose(tiny, _np_ntxent(cos, labels, 1e-6), rtol=1e-6)
    np.testing.assert_allclose(normal, _np_ntxent(cos, labels, 0.07), rtol=1e-6)
    assert not _finite((optax_tiny, optax_g))
    # Embeddings of 1.3e30: the same cosines, the same loss; optax's are 0.
    np.testing.assert_array_equal(huge, normal)
    assert not np.isclose(optax_huge, normal)


# --------------------------------------------------------------------------
# Probabilities of exactly 0 and 1.
# --------------------------------------------------------------------------


def test_divergences_with_zero_probabilities():
    """KNOWN_DIFFERENCES '0 log 0 in the divergences'."""
    with np.errstate(divide="ignore"):
        log_p = jnp.asarray(np.log(np.float32([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])))
        t = jnp.float32([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        log_t = jnp.asarray(np.log(np.asarray(t)))

    @jit
    def run(log_p, t, log_t):
        ours = (
            _run(lambda L, p: L.kl_divergence(p, t), losses, (log_p,), (0,)),
            _run(
                lambda L, p, q: L.kl_divergence_with_log_targets(p, q),
                losses,
                (log_p, log_t),
                (0, 1),
            ),
            _run(
                lambda L, p: L.generalized_kl_divergence(p, t), losses, (log_p,), (0,)
            ),
        )
        with optax_side():
            theirs = (
                optax.losses.kl_divergence(log_p, t),
                optax.losses.kl_divergence_with_log_targets(log_p, log_t),
                jax.grad(
                    lambda q: optax.losses.kl_divergence_with_log_targets(
                        log_p[1:], q
                    ).sum()
                )(log_t[1:]),
            )
        return ours, theirs

    ((kl, (g_kl,)), (kll, (g_p, g_t)), (gkl, _)), (optax_kl, optax_kll, optax_g_t) = (
        run(log_p, t, log_t)
    )
    log2 = math.log(2.0)  # row 0: 1 * (0 - log 0.5); row 1: the same
    np.testing.assert_allclose(kl, [log2, log2], rtol=1e-6)
    np.testing.assert_allclose(kll, kl, rtol=1e-6)
    np.testing.assert_allclose(gkl, kl, rtol=1e-6)  # the measures sum to 1
    np.testing.assert_array_equal(g_kl, -t)
    np.testing.assert_array_equal(g_p, -t)
    # d/d log_t of exp(log_t) (log_t - log_p) is t (log_t - log_p + 1): 0 at t = 0.
    np.testing.assert_allclose(g_t, [[1 + log2, 0, 0], [0, 0, 1 + log2]], rtol=1e-6)
    # optax: nan where a zero target meets a zero prediction, and a nan gradient.
    assert np.isnan(optax_kl[0]) and np.isnan(optax_kll[0])
    np.testing.assert_allclose(optax_kl[1], kl[1], rtol=1e-6)
    assert np.isnan(optax_g_t).any()


def test_dice_does_not_read_values():
    """KNOWN_DIFFERENCES 'dice probability check': jgd's dice losses take
    probabilities under jit; optax's raise on predictions that do not sum to
    1, and binary_dice_loss(apply_sigmoid=False) raises even on valid ones
    (its check sums over the single channel)."""
    probs = jnp.float32([[0.9, 0.2, 0.8]])
    targets = jnp.float32([[1.0, 0.0, 1.0]])
    # I = 1.7, P = 1.9, T = 2: 1 - 1.7 / (1.7 + 0.5 * 0.2 + 0.5 * 0.3) = 1 - 1.7 / 1.95.
    got = jit(
        lambda p: losses.binary_dice_loss(p, targets, apply_sigmoid=False, smooth=0.0)
    )(probs)
    np.testing.assert_allclose(got, [1 - 1.7 / 1.95], rtol=1e-6)
    unnormalised = jnp.float32([[[0.9, 0.3], [0.2, 0.6]]])
    one_hot = jnp.float32([[[1.0, 0.0], [0.0, 1.0]]])
    got = jit(lambda p: losses.dice_loss(p, one_hot, apply_softmax=False, smooth=0.0))(
        unnormalised
    )
    # Class 0: 1 - 0.9 / (0.9 + 0.1 + 0.05); class 1: 1 - 0.6 / (0.6 + 0.15 + 0.2).
    np.testing.assert_allclose(got, [(1 - 0.9 / 1.05 + 1 - 0.6 / 0.95) / 2], rtol=1e-6)
    with optax_side():
        with pytest.raises(ValueError, match="must be valid probability"):
            optax.losses.binary_dice_loss(probs, targets, apply_sigmoid=False)
        with pytest.raises(ValueError, match="must be valid probability"):
            optax.losses.dice_loss(unnormalised, one_hot, apply_softmax=False)


# --------------------------------------------------------------------------
# Masked garbage.
# --------------------------------------------------------------------------


def test_masked_garbage_stays_out():
    """KNOWN_DIFFERENCES 'masked entries in every loss': nan and inf under
    the mask change no value and reach no gradient; a fully masked vector
    gets gradient 0 (optax: nan)."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 6, 5)).astype(np.float32)
    probs = np.float32(np.exp(y) / np.exp(y).sum(-1, keepdims=True))
    garbage = np.where(MASK, 0.0, np.float32(np.nan)).astype(np.float32)
    infs = np.where(MASK, 0.0, np.float32(np.inf)).astype(np.float32)
    calls = {
        "cosine": lambda x, y: losses.cosine_similarity(x, y, where=MASK),
        "kl": lambda x, y: losses.kl_divergence(x, y, where=MASK),
        "kl log targets": lambda x, y: losses.kl_divergence_with_log_targets(
            x, y, where=MASK
        ),
        "generalized kl": lambda x, y: losses.generalized_kl_divergence(
            x, y, where=MASK
        ),
        "poly": lambda x, y: losses.poly_loss_cross_entropy(x, y, where=MASK),
        "softmax ce": lambda x, y: losses.softmax_cross_entropy(x, y, where=MASK),
        "ranking": lambda x, y: losses.ranking_softmax_loss(
            x, y, where=MASK, weights=y + 1
        ),
    }

    @jit
    def run(x, y, garbage, infs):
        out = {}
        for name, f in calls.items():
            clean = f(x, y)
            dirty, grads = jax.value_and_grad(lambda a, b, f=f: f(a, b).sum(), (0, 1))(
                x + garbage, y + infs
            )
            out[name] = clean, dirty, grads
        return out

    for name, (clean, dirty, grads) in run(x, probs, garbage, infs).items():
        np.testing.assert_array_equal(dirty.sum(), clean.sum(), err_msg=name)
        assert _finite(grads), name
        for g in grads:
            assert bool(jnp.all(jnp.where(MASK, 0.0, g) == 0.0)), name

    # Fully masked vectors (one flag per example): gradient 0, optax's nan.
    rows = np.array([True, False, True, True, False, True])

    @jit
    def rows_run(x, y):
        ours = jax.grad(lambda x: losses.cosine_similarity(x, y, where=rows).sum())(x)
        with optax_side():
            theirs = jax.grad(
                lambda x: optax.losses.cosine_similarity(
                    x, y, where=rows[:, None]
                ).sum()
            )(x)
        return ours, theirs

    ours, theirs = rows_run(x, y)
    np.testing.assert_array_equal(ours[~rows], 0.0)
    np.testing.assert_array_equal(ours[rows], theirs[rows])
    assert bool(jnp.all(jnp.isnan(theirs[~rows])))


# --------------------------------------------------------------------------
# bfloat16, for real.
# --------------------------------------------------------------------------


# The losses with constants or tricks that bf16 could break: 1e-7, eps, the
# power-of-two scale's bit operations, 0 log 0, exp(gamma log).
BF16 = [
    "cosine_similarity",
    "kl_divergence_with_log_targets",
    "multiclass_generalized_dice_loss",
    "sigmoid_focal_loss",
    "smooth_labels",
    "triplet_margin_loss",
]


def test_bfloat16_values_and_gradients_are_finite():
    """bf16 values and gradients, computed (tests/test_losses.py checks every
    loss's dtypes by tracing)."""
    inputs = []
    for name in BF16:
        args = VARIANTS[name][0].inputs(0, jnp.float32)
        inputs.append(
            tuple(a.astype(jnp.bfloat16) if a.dtype == jnp.float32 else a for a in args)
        )

    @jit
    def run(inputs):
        return [
            _run(VARIANTS[n][0].call, losses, args, VARIANTS[n][0].grad)
            for n, args in zip(BF16, inputs, strict=True)
        ]

    for name, result in zip(BF16, run(inputs), strict=True):
        assert _finite(result), name
        assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(result)), name


# --------------------------------------------------------------------------
# Golden numbers: the seeds' worked examples and closed forms.
# --------------------------------------------------------------------------


def test_seed_backprop_example():
    """Seed 001: w = 2, x = 3, target 10: prediction 6, error 6 - 10 = -4,
    slope 2 * -4 * 3 = -24; with learning rate 0.01, w becomes 2.24."""
    x, target = 3.0, 10.0

    def loss(w):
        return losses.squared_error(w * x, jnp.asarray(target))

    w = jnp.asarray(2.0)
    assert float(loss(w)) == 16.0
    assert float(jax.grad(loss)(w)) == -24.0
    assert (
        float(jax.grad(lambda w: losses.mean_squared_error(w * x, target))(w)) == -24.0
    )
    opt = jgd.gd(0.01)
    updates, _ = opt.update(jax.grad(loss)(w), opt.init(w), w)
    np.testing.assert_allclose(jgd.apply_updates(w, updates), 2.24, rtol=1e-7)


def test_squared_error_reductions_give_the_delta_rule():
    """SSE: -dE/dw = sum_mu (y - yhat) x for a linear unit (the tutorials'
    update); MSE: the same, averaged and doubled."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=8).astype(np.float32)
    w = rng.normal(size=3).astype(np.float32)
    sse = jax.grad(lambda w: losses.sum_squared_error(jnp.asarray(x) @ w, y))(w)
    mse = jax.grad(lambda w: losses.mean_squared_error(jnp.asarray(x) @ w, y))(w)
    delta_rule = ((y - x @ w)[:, None] * x).sum(0)
    np.testing.assert_allclose(-np.asarray(sse), delta_rule, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mse, -2 * delta_rule / 8, rtol=1e-5, atol=1e-6)


_P, _T = np.float32([6.0, 1.0, -2.0]), np.float32([10.0, 1.5, -2.0])
_S, _PM = np.float32([2.0, 0.5, -1.0]), np.int32([1, 1, -1])
_SCORES = np.float32([[2.0, 1.5, 0.0], [0.0, 3.0, 1.0]])
_Y4 = np.float32([0.0, 1.0, 0.0, 0.0])
_LOG2 = math.log(2.0)
_RNG = np.random.default_rng(5)
_L46, _X34 = _RNG.normal(size=(4, 6)).astype(np.float32), _RNG.normal(size=(3, 4))
_X12 = np.broadcast_to(_X34.astype(np.float32), (12, 3, 4))
_INT = losses.softmax_cross_entropy_with_integer_labels


def _huber_grad():
    e = jnp.float32([-3.0, -0.5, 0.0, 0.25, 2.0])
    return jax.grad(lambda p: losses.huber_loss(p, delta=1.0).sum())(e)


def _safe_value_and_grad():
    x = jnp.float32([[0.0, 0.0, -np.inf]])
    y = jnp.float32([[1.0, 0.0, 0.0]])
    v, g = jax.value_and_grad(lambda x: losses.safe_softmax_cross_entropy(x, y).sum())(
        x
    )
    return jnp.concatenate([v[None], g[0]])


# (what, computed, hand value or a second computation it must equal)
GOLDEN = [
    ("squared_error", lambda: losses.squared_error(_P, _T), [16.0, 0.25, 0.0]),
    ("l2_loss", lambda: losses.l2_loss(_P, _T), [8.0, 0.125, 0.0]),
    ("mean_squared_error", lambda: losses.mean_squared_error(_P, _T), 16.25 / 3),
    ("sum_squared_error", lambda: losses.sum_squared_error(_P, _T), 8.125),
    # Huber: 0.5 e^2 inside delta, delta e - delta^2 / 2 outside; its gradient
    # is the error clipped to [-delta, delta].
    ("huber", lambda: losses.huber_loss(_P, _T), [3.5, 0.125, 0.0]),
    ("huber delta 5", lambda: losses.huber_loss(_P, _T, delta=5.0), [8.0, 0.125, 0.0]),
    ("huber gradient", _huber_grad, [-1.0, -0.5, 0.0, 0.25, 1.0]),
    ("log_cosh", lambda: losses.log_cosh(_P, _T), np.log(np.cosh(_P - _T))),
    # Cross entropies at zero logits: log 2 per binary decision, log K of K.
    (
        "sigmoid bce, int labels",
        lambda: losses.sigmoid_binary_cross_entropy(jnp.zeros(2), np.int32([0, 1])),
        [_LOG2, _LOG2],
    ),
    (
        "sigmoid bce, bool labels",
        lambda: losses.sigmoid_binary_cross_entropy(
            jnp.zeros(2), np.array([True, False])
        ),
        [_LOG2, _LOG2],
    ),
    (
        "softmax ce",
        lambda: losses.softmax_cross_entropy(jnp.zeros((1, 4)), np.eye(4)[:1]),
        [math.log(4)],
    ),
    # Focal: gamma 0 is the cross entropy; at p_t = 1/2, times 1/4.
    (
        "focal gamma 0",
        lambda: losses.sigmoid_focal_loss(_S, _PM > 0, gamma=0.0),
        lambda: losses.sigmoid_binary_cross_entropy(_S, _PM > 0),
    ),
    ("focal", lambda: losses.sigmoid_focal_loss(jnp.zeros(1), np.ones(1)), [_LOG2 / 4]),
    # Margins: hinge max(0, 1 - s t), perceptron max(0, -s t).
    ("hinge", lambda: losses.hinge_loss(_S, _PM), [0.0, 0.5, 0.0]),
    ("perceptron", lambda: losses.perceptron_loss(-_S, _PM), [2.0, 0.5, 1.0]),
    (
        "multiclass hinge",
        lambda: losses.multiclass_hinge_loss(_SCORES, np.int32([0, 0])),
        [0.5, 4.0],
    ),
    (
        "multiclass perceptron",
        lambda: losses.multiclass_perceptron_loss(_SCORES, np.int32([0, 2])),
        [0.0, 2.0],
    ),
    # Sparsemax: sparse_plus of -logits for label 1: 0, (z + 1)^2 / 4, z.
    (
        "sparsemax",
        lambda: losses.sparsemax_loss(np.float32([2.0, 0.0, -2.0]), np.ones(3)),
        [0.0, 0.25, 2.0],
    ),
    # Label smoothing: (1 - a) y + a / K; with where, K counts the kept.
    ("smooth_labels", lambda: losses.smooth_labels(_Y4, 0.2), [0.05, 0.85, 0.05, 0.05]),
    (
        "smooth_labels where",
        lambda: losses.smooth_labels(
            _Y4, 0.2, where=np.array([True, True, False, False])
        ),
        [0.1, 0.9, 0.1, 0.1],
    ),
    # Poly-1: cross entropy + epsilon (1 - p_t), with p_t = 1/2.
    (
        "poly",
        lambda: losses.poly_loss_cross_entropy(
            jnp.log(np.float32([[0.5, 0.25, 0.25]])), np.eye(3)[:1], epsilon=3.0
        ),
        [_LOG2 + 1.5],
    ),
    # Safe softmax cross entropy: a ruled-out class (-inf) with label 0 adds 0;
    # value log 2, gradient softmax - labels.
    ("safe softmax ce", _safe_value_and_grad, [_LOG2, -0.5, 0.5, 0.0]),
    # Integer labels are one-hot labels without the one-hot array; with
    # axis=(2, 1) label k is entry (k // 3, k % 3) of logits[b].T.
    (
        "integer = one-hot",
        lambda: _INT(_L46, np.int32([0, 5, 2, 2])),
        lambda: losses.softmax_cross_entropy(_L46, np.eye(6)[[0, 5, 2, 2]]),
    ),
    (
        "integer, tuple axes",
        lambda: _INT(_X12, np.arange(12), axis=(2, 1)),
        lambda: _INT(np.swapaxes(_X12, 1, 2).reshape(12, 12), np.arange(12)),
    ),
    (
        "integer targets",
        lambda: losses.squared_error(np.float32([0.5, 2]), np.int32([1, 2])),
        [0.25, 0.0],
    ),
]


def test_golden_values():
    """Hand-computed values (no optax), all in one compilation."""

    @jit
    def run():
        return [(f(), want() if callable(want) else None) for _, f, want in GOLDEN]

    for (what, _, want), (got, other) in zip(GOLDEN, run(), strict=True):
        want = other if callable(want) else np.float32(want)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=what)
