"""jgd.losses: values against optax, the seeds' worked examples, stability, errors."""

import functools
import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import losses
from tests.helpers import standard_promotion

TOL = {"float32": 1e-6, "float64": 1e-12}


# --------------------------------------------------------------------------
# Against optax: one table, float32 and float64.
# --------------------------------------------------------------------------


def _regression_inputs(key, dtype):
    k1, k2 = jax.random.split(key)
    return (
        3.0 * jax.random.normal(k1, (5, 4), dtype),
        3.0 * jax.random.normal(k2, (5, 4), dtype),
    )


def _binary_inputs(key, dtype, soft=False):
    k1, k2 = jax.random.split(key)
    logits = 4.0 * jax.random.normal(k1, (6, 3), dtype)
    if soft:
        labels = jax.random.uniform(k2, (6, 3), dtype)
    else:
        labels = jax.random.bernoulli(k2, 0.5, (6, 3)).astype(dtype)
    return logits, labels


def _softmax_inputs(key, dtype, soft=False, axis=-1):
    k1, k2 = jax.random.split(key)
    logits = 4.0 * jax.random.normal(k1, (6, 5), dtype)
    if soft:
        labels = jax.nn.softmax(jax.random.normal(k2, (6, 5), dtype), axis=axis)
    else:
        n = logits.shape[axis]
        idx = jax.random.randint(k2, (logits.shape[1 - axis % 2],), 0, n)
        labels = jax.nn.one_hot(idx, n, dtype=dtype, axis=axis)
    return logits, labels


def _integer_inputs(key, dtype, axis=-1):
    k1, k2 = jax.random.split(key)
    logits = 4.0 * jax.random.normal(k1, (6, 5), dtype)
    n = logits.shape[axis]
    return logits, jax.random.randint(k2, (logits.shape[1 - axis % 2],), 0, n)


def _softmax_inputs_3d(key, dtype, axes):
    """Logits (2, 3, 5) with soft labels normalised jointly over ``axes``."""
    k1, k2 = jax.random.split(key)
    logits = 4.0 * jax.random.normal(k1, (2, 3, 5), dtype)
    labels = jax.nn.softmax(jax.random.normal(k2, (2, 3, 5), dtype), axis=axes)
    return logits, labels


def _integer_inputs_3d(key, dtype, axes):
    """Logits (2, 3, 5); labels flat indices into the slice ``logits[axes]``."""
    k1, k2 = jax.random.split(key)
    logits = 4.0 * jax.random.normal(k1, (2, 3, 5), dtype)
    axes = tuple(a % 3 for a in axes)
    batch = tuple(d for i, d in enumerate(logits.shape) if i not in axes)
    n = math.prod(logits.shape[a] for a in axes)
    return logits, jax.random.randint(k2, batch, 0, n)


# Masks for the (6, 5) inputs: row 2 fully masked, the others partly; and one
# flag per example (examples 1 and 4 dropped).
MASK = np.ones((6, 5), bool)
MASK[0, 4] = MASK[1, :2] = MASK[2, :] = MASK[3, 0] = MASK[5, 1:4] = False
ROW_MASK = np.array([True, False, True, True, False, True])
# For the (2, 3, 5) inputs: the (0, 0, :) and (1, :, 2) entries masked.
MASK_3D = np.ones((2, 3, 5), bool)
MASK_3D[0, 0, :] = MASK_3D[1, :, 2] = False


def _pair(name, **kwargs):
    """(jgd call, optax call) of the loss ``name`` with the same kwargs."""
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    return (
        lambda a, b: ours(a, b, **kwargs),
        lambda a, b: theirs(a, b, **kwargs),
    )


# name -> (jgd call, optax call, inputs)
CASES = {
    "squared_error": (
        losses.squared_error,
        optax.losses.squared_error,
        _regression_inputs,
    ),
    "squared_error_no_targets": (
        lambda p, t: losses.squared_error(p),
        lambda p, t: optax.losses.squared_error(p),
        _regression_inputs,
    ),
    "l2_loss": (losses.l2_loss, optax.losses.l2_loss, _regression_inputs),
    "l2_loss_no_targets": (
        lambda p, t: losses.l2_loss(p),
        lambda p, t: optax.losses.l2_loss(p),
        _regression_inputs,
    ),
    "huber_loss": (losses.huber_loss, optax.losses.huber_loss, _regression_inputs),
    "huber_loss_delta": (
        lambda p, t: losses.huber_loss(p, t, delta=2.5),
        lambda p, t: optax.losses.huber_loss(p, t, delta=2.5),
        _regression_inputs,
    ),
    "huber_loss_no_targets": (
        lambda p, t: losses.huber_loss(p, delta=0.5),
        lambda p, t: optax.losses.huber_loss(p, delta=0.5),
        _regression_inputs,
    ),
    "mean_squared_error": (
        losses.mean_squared_error,
        lambda p, t: optax.losses.squared_error(p, t).mean(),
        _regression_inputs,
    ),
    "sum_squared_error": (
        losses.sum_squared_error,
        lambda p, t: optax.losses.l2_loss(p, t).sum(),
        _regression_inputs,
    ),
    "sigmoid_binary_cross_entropy": (
        losses.sigmoid_binary_cross_entropy,
        optax.losses.sigmoid_binary_cross_entropy,
        _binary_inputs,
    ),
    "sigmoid_binary_cross_entropy_soft": (
        losses.sigmoid_binary_cross_entropy,
        optax.losses.sigmoid_binary_cross_entropy,
        lambda k, d: _binary_inputs(k, d, soft=True),
    ),
    "softmax_cross_entropy": (
        losses.softmax_cross_entropy,
        optax.losses.softmax_cross_entropy,
        _softmax_inputs,
    ),
    "softmax_cross_entropy_soft": (
        losses.softmax_cross_entropy,
        optax.losses.softmax_cross_entropy,
        lambda k, d: _softmax_inputs(k, d, soft=True),
    ),
    "softmax_cross_entropy_axis0": (
        lambda x, y: losses.softmax_cross_entropy(x, y, axis=0),
        lambda x, y: optax.losses.softmax_cross_entropy(x, y, axis=0),
        lambda k, d: _softmax_inputs(k, d, soft=True, axis=0),
    ),
    "softmax_cross_entropy_with_integer_labels": (
        losses.softmax_cross_entropy_with_integer_labels,
        optax.losses.softmax_cross_entropy_with_integer_labels,
        _integer_inputs,
    ),
    "softmax_cross_entropy_with_integer_labels_axis0": (
        lambda x, y: losses.softmax_cross_entropy_with_integer_labels(x, y, axis=0),
        lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(
            x, y, axis=0
        ),
        lambda k, d: _integer_inputs(k, d, axis=0),
    ),
}

SCE, SCE_INT = "softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels"
CASES.update(
    {
        "softmax_cross_entropy_where": (
            *_pair(SCE, where=MASK),
            lambda k, d: _softmax_inputs(k, d, soft=True),
        ),
        "softmax_cross_entropy_where_one_hot": (
            *_pair(SCE, where=MASK),
            _softmax_inputs,
        ),
        "softmax_cross_entropy_where_rows": (
            *_pair(SCE, where=ROW_MASK),
            lambda k, d: _softmax_inputs(k, d, soft=True),
        ),
        "softmax_cross_entropy_where_axis0": (
            *_pair(SCE, axis=0, where=MASK),
            lambda k, d: _softmax_inputs(k, d, soft=True, axis=0),
        ),
        "softmax_cross_entropy_axis_1_2": (
            *_pair(SCE, axis=(1, 2)),
            lambda k, d: _softmax_inputs_3d(k, d, (1, 2)),
        ),
        "softmax_cross_entropy_axis_1_2_where": (
            *_pair(SCE, axis=(1, 2), where=MASK_3D),
            lambda k, d: _softmax_inputs_3d(k, d, (1, 2)),
        ),
        "softmax_cross_entropy_axis_2_0_where_rows": (
            *_pair(SCE, axis=(2, 0), where=np.array([True, False, True])),
            lambda k, d: _softmax_inputs_3d(k, d, (2, 0)),
        ),
        "softmax_cross_entropy_axis_none": (
            *_pair(SCE, axis=None),
            lambda k, d: _softmax_inputs_3d(k, d, None),
        ),
        "softmax_cross_entropy_with_integer_labels_where": (
            *_pair(SCE_INT, where=MASK),
            _integer_inputs,
        ),
        "softmax_cross_entropy_with_integer_labels_where_rows": (
            *_pair(SCE_INT, where=ROW_MASK),
            _integer_inputs,
        ),
        "softmax_cross_entropy_with_integer_labels_where_axis0": (
            *_pair(SCE_INT, axis=0, where=MASK),
            lambda k, d: _integer_inputs(k, d, axis=0),
        ),
        "softmax_cross_entropy_with_integer_labels_axis_1_2": (
            *_pair(SCE_INT, axis=(1, 2)),
            lambda k, d: _integer_inputs_3d(k, d, (1, 2)),
        ),
        "softmax_cross_entropy_with_integer_labels_axis_2_1": (
            *_pair(SCE_INT, axis=(2, 1)),
            lambda k, d: _integer_inputs_3d(k, d, (2, 1)),
        ),
        "softmax_cross_entropy_with_integer_labels_axis_2_0": (
            *_pair(SCE_INT, axis=(2, -3)),
            lambda k, d: _integer_inputs_3d(k, d, (2, 0)),
        ),
        "softmax_cross_entropy_with_integer_labels_axis_minus1_tuple": (
            *_pair(SCE_INT, axis=(-1,)),
            lambda k, d: _integer_inputs_3d(k, d, (-1,)),
        ),
        "softmax_cross_entropy_with_integer_labels_axis_1_2_where": (
            *_pair(SCE_INT, axis=(1, 2), where=MASK_3D),
            lambda k, d: _integer_inputs_3d(k, d, (1, 2)),
        ),
        "softmax_cross_entropy_with_integer_labels_axis_2_1_where_rows": (
            *_pair(SCE_INT, axis=(2, 1), where=np.array([False, True])),
            lambda k, d: _integer_inputs_3d(k, d, (2, 1)),
        ),
    }
)


def _check_against_optax(case, dtype):
    ours, theirs, make = CASES[case]
    a, b = make(jax.random.key(7), dtype)

    @jax.jit  # one compilation instead of one per primitive: keeps the suite fast
    def both(a, b):
        got = ours(a, b), jax.grad(lambda a: jnp.sum(ours(a, b)))(a)
        with jax.numpy_dtype_promotion("standard"):
            want = theirs(a, b), jax.grad(lambda a: jnp.sum(theirs(a, b)))(a)
        return got, want

    (got, g), (want, h) = both(a, b)
    assert got.dtype == jnp.dtype(dtype)
    assert got.shape == want.shape
    rtol = TOL[jnp.dtype(dtype).name]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
    # Gradients (with respect to the first argument) agree as well.
    np.testing.assert_allclose(g, h, rtol=rtol, atol=0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_optax_float32(case):
    _check_against_optax(case, jnp.float32)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_optax_float64(case, x64):
    _check_against_optax(case, jnp.float64)


# Every jgd loss with an optax twin; the rest are jgd's own reductions.
TWINS = [
    "squared_error",
    "l2_loss",
    "huber_loss",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]
JGD_ONLY = ["mean_squared_error", "sum_squared_error"]


def test_every_loss_is_classified():
    assert sorted(TWINS + JGD_ONLY) == sorted(losses.__all__)
    for name in TWINS:
        assert hasattr(optax.losses, name), name
    for name in JGD_ONLY:  # if optax gains one, its signature must join TWINS
        assert not hasattr(optax.losses, name), name


@pytest.mark.parametrize("name", TWINS)
def test_signature_matches_optax(name):
    """Same parameter names, order, kinds and defaults: ``import jgd as optax``."""

    def params(fn):
        return [
            (p.name, p.kind, p.default)
            for p in inspect.signature(fn).parameters.values()
        ]

    assert params(getattr(losses, name)) == params(getattr(optax.losses, name))


# --------------------------------------------------------------------------
# Hand-computed values: the seeds' worked examples and closed forms.
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


def test_sum_squared_error_gradient_is_the_delta_rule():
    """-dE/dw = sum_mu (y - yhat) x for a linear unit (the tutorials' update)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3))
    y = rng.normal(size=8)
    w = rng.normal(size=3)
    grad = jax.grad(lambda w: losses.sum_squared_error(jnp.asarray(x) @ w, y))(
        jnp.asarray(w, jnp.float32)
    )
    delta_rule = ((y - x @ w)[:, None] * x).sum(0)
    np.testing.assert_allclose(-np.asarray(grad), delta_rule, rtol=1e-5, atol=1e-6)


def test_mean_squared_error_gradient_is_averaged():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=8).astype(np.float32)
    w = rng.normal(size=3).astype(np.float32)
    grad = jax.grad(lambda w: losses.mean_squared_error(jnp.asarray(x) @ w, y))(w)
    want = (2 * (x @ w - y)[:, None] * x).mean(0)
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-6)


def test_small_values_by_hand():
    p, t = jnp.array([6.0, 1.0, -2.0]), jnp.array([10.0, 1.5, -2.0])
    np.testing.assert_array_equal(losses.squared_error(p, t), [16.0, 0.25, 0.0])
    np.testing.assert_array_equal(losses.l2_loss(p, t), [8.0, 0.125, 0.0])
    assert float(losses.mean_squared_error(p, t)) == pytest.approx(16.25 / 3)
    assert float(losses.sum_squared_error(p, t)) == 8.125
    # Huber, delta 1: 0.5 * e^2 inside, delta * e - delta^2 / 2 outside.
    np.testing.assert_array_equal(losses.huber_loss(p, t), [3.5, 0.125, 0.0])
    np.testing.assert_array_equal(losses.huber_loss(p, t, delta=5.0), [8.0, 0.125, 0.0])
    np.testing.assert_array_equal(losses.huber_loss(p, t, delta=2.0), [6.0, 0.125, 0.0])
    # Cross entropies at zero logits: log 2 per binary decision, log K over K classes.
    np.testing.assert_allclose(
        losses.sigmoid_binary_cross_entropy(jnp.zeros(2), jnp.array([0.0, 1.0])),
        [math.log(2)] * 2,
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        losses.softmax_cross_entropy(jnp.zeros((1, 4)), jnp.eye(4)[:1]),
        [math.log(4)],
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        losses.softmax_cross_entropy_with_integer_labels(
            jnp.log(jnp.array([[0.5, 0.25, 0.25]])), jnp.array([1])
        ),
        [math.log(4)],
        rtol=1e-6,
    )


def test_huber_gradient_is_clipped_error():
    e = jnp.array([-3.0, -0.5, 0.0, 0.25, 2.0])
    g = jax.grad(lambda p: losses.huber_loss(p, delta=1.0).sum())(e)
    np.testing.assert_array_equal(g, [-1.0, -0.5, 0.0, 0.25, 1.0])


def test_integer_labels_equal_one_hot():
    logits = jax.random.normal(jax.random.key(3), (4, 6))
    labels = jnp.array([0, 5, 2, 2])
    np.testing.assert_allclose(
        losses.softmax_cross_entropy_with_integer_labels(logits, labels),
        losses.softmax_cross_entropy(logits, jax.nn.one_hot(labels, 6)),
        rtol=1e-6,
    )


# --------------------------------------------------------------------------
# Stability for extreme logits.
# --------------------------------------------------------------------------


def test_sigmoid_binary_cross_entropy_extreme_logits():
    x = jnp.array([1e4, 1e4, -1e4, -1e4])
    y = jnp.array([1.0, 0.0, 1.0, 0.0])
    loss = losses.sigmoid_binary_cross_entropy(x, y)
    np.testing.assert_array_equal(loss, [0.0, 1e4, 1e4, 0.0])
    grad = jax.grad(lambda x: losses.sigmoid_binary_cross_entropy(x, y).sum())(x)
    np.testing.assert_array_equal(grad, [0.0, 1.0, -1.0, 0.0])  # sigmoid(x) - y


@pytest.mark.parametrize("integer", [False, True])
def test_softmax_cross_entropy_extreme_logits(integer):
    x = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]])
    idx = jnp.array([1, 2])
    if integer:
        fn = lambda x: losses.softmax_cross_entropy_with_integer_labels(x, idx)
    else:
        fn = lambda x: losses.softmax_cross_entropy(x, jax.nn.one_hot(idx, 3))
    np.testing.assert_array_equal(fn(x), [2e4, 0.0])
    grad = jax.grad(lambda x: fn(x).sum())(x)
    assert bool(jnp.all(jnp.isfinite(grad)))
    np.testing.assert_array_equal(grad, [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])


# Extreme logits with masks: -inf and +-1e30 under the mask, a row fully
# masked, a row whose only unmasked logits are huge, a label on a masked entry.
EXTREME_LOGITS = np.array(
    [
        [1e30, -1e30, 0.0, -np.inf],
        [2.0, 1.0, 0.0, 3.0],
        [-np.inf, 1e30, 0.0, 1.0],
        [-np.inf, -np.inf, -1e30, 1e30],
        [np.inf, 5.0, -np.inf, 1.0],
    ]
)
EXTREME_LABELS = np.array([0, 1, 3, 2, 0])
EXTREME_MASK = np.array(
    [
        [True, True, True, False],
        [False, False, False, False],
        [False, True, True, True],
        [False, False, True, True],
        [False, True, False, True],
    ]
)


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masked_extreme_logits_match_optax(integer, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    x = jnp.asarray(EXTREME_LOGITS, dtype)
    idx = jnp.asarray(EXTREME_LABELS)
    y = jax.nn.one_hot(idx, 4, dtype=dtype)
    w = jnp.asarray(EXTREME_MASK)
    name = SCE_INT if integer else SCE
    ours, theirs = getattr(losses, name), getattr(optax.losses, name)
    second = idx if integer else y  # the labels each loss takes

    # The mask is traced: nothing may depend on its values at trace time.
    @functools.partial(jax.jit, static_argnums=0)
    def run(fn, x, w):
        def total(x):
            out = fn(x, second, where=w)
            return out.sum(), out

        grad, out = jax.grad(total, has_aux=True)(x)
        return out, grad

    got, grad = run(ours, x, w)
    with standard_promotion():
        want, want_grad = run(theirs, x, w)
    # optax gives no nan here, and neither do we.
    assert bool(jnp.all(~jnp.isnan(want))) and bool(jnp.all(~jnp.isnan(want_grad)))
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=0)
    np.testing.assert_allclose(grad, want_grad, rtol=TOL[dtype], atol=0)
    np.testing.assert_array_equal(got[1], 0.0)  # the fully masked row
    assert bool(jnp.all(jnp.isfinite(grad)))
    # Masked entries get no gradient; with integer labels, a label on a masked
    # entry still reads its logit (row 4), as in optax.
    read = jnp.asarray(y, bool) if integer else jnp.zeros_like(w)
    assert bool(jnp.all(jnp.where(w | read, 0.0, grad) == 0.0))
    if not integer:
        # With respect to the labels: -log_softmax where kept, 0 where masked
        # (optax's is nan there: labels * -inf).
        gy = jax.grad(lambda y: ours(x, y, where=w).sum())(y)
        assert bool(jnp.all(~jnp.isnan(gy)))
        assert bool(jnp.all(jnp.where(w, 0.0, gy) == 0.0))
        with standard_promotion():
            want_gy = jax.nn.log_softmax(x, where=w)
        np.testing.assert_allclose(
            jnp.where(w, gy, 0.0), jnp.where(w, -want_gy, 0.0), rtol=TOL[dtype]
        )


def test_masked_garbage_labels_do_not_leak():
    """Masked entries contribute nothing, even with nan labels (padding)."""
    x = jnp.array([[1.0, 2.0, -jnp.inf], [0.5, 0.0, 3.0]])
    y = jnp.array([[0.0, 1.0, jnp.nan], [jnp.nan, jnp.inf, 1.0]])
    w = jnp.array([[True, True, False], [False, False, True]])
    loss = losses.softmax_cross_entropy(x, y, where=w)
    np.testing.assert_allclose(loss, [-jax.nn.log_softmax(x[0, :2])[1], 0.0])
    gx, gy = jax.grad(
        lambda x, y: losses.softmax_cross_entropy(x, y, where=w).sum(), (0, 1)
    )(x, y)
    assert bool(jnp.all(jnp.isfinite(gx))) and bool(jnp.all(jnp.isfinite(gy)))


@pytest.mark.parametrize("integer", [False, True])
def test_huge_logits_without_mask_match_optax(integer):
    x = jnp.array([[1e30, -1e30, 0.0], [-1e30, -1e30, 1e30], [1e38, 0.0, -1e38]])
    idx = jnp.array([1, 2, 2])
    if integer:
        ours = lambda x: losses.softmax_cross_entropy_with_integer_labels(x, idx)
        theirs = lambda x: optax.losses.softmax_cross_entropy_with_integer_labels(
            x, idx
        )
    else:
        ours = lambda x: losses.softmax_cross_entropy(x, jax.nn.one_hot(idx, 3))
        theirs = lambda x: optax.losses.softmax_cross_entropy(x, jax.nn.one_hot(idx, 3))
    with standard_promotion():
        want, want_grad = theirs(x), jax.grad(lambda x: theirs(x).sum())(x)
    np.testing.assert_array_equal(ours(x), want)
    np.testing.assert_array_equal(jax.grad(lambda x: ours(x).sum())(x), want_grad)
    np.testing.assert_allclose(ours(x), np.float32([2e30, 0.0, 2e38]), rtol=1e-6)


def test_tuple_axis_labels_are_flat_indices_in_the_given_order():
    """axis=(2, 1): label k is entry (k // 3, k % 3) of logits[b, :, :].T."""
    x = jax.random.normal(jax.random.key(5), (2, 3, 4))
    fn = losses.softmax_cross_entropy_with_integer_labels
    for label in range(12):
        labels = jnp.array([label, 11 - label])
        flat = jnp.swapaxes(x, 1, 2).reshape(2, 12)
        np.testing.assert_allclose(
            fn(x, labels, axis=(2, 1)), fn(flat, labels), rtol=1e-6
        )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("integer", [False, True])
def test_masked_dtype_preserved(dtype, integer):
    x, idx = _integer_inputs(jax.random.key(2), jnp.float32)
    x = x.astype(dtype)
    if integer:
        fn = lambda x: losses.softmax_cross_entropy_with_integer_labels(
            x, idx, where=MASK
        )
    else:
        fn = lambda x: losses.softmax_cross_entropy(
            x, jax.nn.one_hot(idx, 5), where=MASK
        )
    out, grad = jax.jit(lambda x: (fn(x), jax.grad(lambda x: fn(x).sum())(x)))(x)
    assert out.dtype == jnp.dtype(dtype) and grad.dtype == jnp.dtype(dtype)
    assert bool(jnp.all(jnp.isfinite(out))) and bool(jnp.all(jnp.isfinite(grad)))


# --------------------------------------------------------------------------
# Dtypes and jit.
# --------------------------------------------------------------------------

ALL = [
    ("squared_error", _regression_inputs),
    ("l2_loss", _regression_inputs),
    ("huber_loss", _regression_inputs),
    ("mean_squared_error", _regression_inputs),
    ("sum_squared_error", _regression_inputs),
    ("sigmoid_binary_cross_entropy", _binary_inputs),
    ("softmax_cross_entropy", _softmax_inputs),
    ("softmax_cross_entropy_with_integer_labels", _integer_inputs),
]


@pytest.mark.parametrize("name,make", ALL)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_dtype_preserved(name, make, dtype):
    a, b = make(jax.random.key(0), jnp.float32)
    a = a.astype(dtype)  # targets/labels stay float32 (or int): cast inside
    fn = getattr(losses, name)

    def total(a, b):
        out = fn(a, b)
        return jnp.sum(out), out

    (_, out), grad = jax.jit(jax.value_and_grad(total, has_aux=True))(a, b)
    assert out.dtype == jnp.dtype(dtype)
    assert grad.dtype == jnp.dtype(dtype)
    assert bool(jnp.all(jnp.isfinite(out))) and bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize("name,make", ALL)
def test_jit_matches_eager(name, make):
    a, b = make(jax.random.key(1), jnp.float32)
    fn = getattr(losses, name)
    np.testing.assert_allclose(jax.jit(fn)(a, b), fn(a, b), rtol=1e-6)


def test_integer_and_bool_targets_are_cast():
    p = jnp.array([0.5, 2.0])
    np.testing.assert_array_equal(
        losses.squared_error(p, jnp.array([1, 2])), [0.25, 0.0]
    )
    np.testing.assert_array_equal(
        losses.sigmoid_binary_cross_entropy(jnp.zeros(2), jnp.array([True, False])),
        losses.sigmoid_binary_cross_entropy(jnp.zeros(2), jnp.array([1.0, 0.0])),
    )


# --------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "squared_error",
        "l2_loss",
        "huber_loss",
        "mean_squared_error",
        "sum_squared_error",
    ],
)
def test_regression_shape_mismatch(name):
    with pytest.raises(ValueError) as e:
        getattr(losses, name)(jnp.zeros(3), jnp.zeros((3, 1)))
    msg = str(e.value)
    assert msg.startswith(f"jgd.losses.{name}: predictions and targets")
    assert "(3,)" in msg and "(3, 1)" in msg


@pytest.mark.parametrize(
    "name", ["sigmoid_binary_cross_entropy", "softmax_cross_entropy"]
)
def test_classification_shape_mismatch(name):
    with pytest.raises(ValueError) as e:
        getattr(losses, name)(jnp.zeros((4, 3)), jnp.zeros((4, 2)))
    msg = str(e.value)
    assert msg.startswith(f"jgd.losses.{name}: logits and labels")
    assert "(4, 3)" in msg and "(4, 2)" in msg


def test_integer_labels_errors():
    fn = losses.softmax_cross_entropy_with_integer_labels
    name = "jgd.losses.softmax_cross_entropy_with_integer_labels"
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 1\).*\(4, 3\)") as e:
        fn(jnp.zeros((4, 3)), jnp.zeros((4, 1), jnp.int32))
    assert str(e.value).startswith(name)
    with pytest.raises(TypeError, match="labels must be an integer array"):
        fn(jnp.zeros((4, 3)), jnp.zeros(4))
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\).*got 2"):
        fn(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), axis=2)
    with pytest.raises(
        ValueError, match=r"without axis \(1, 2\), \(2,\); got .*\(2, 3\)"
    ):
        fn(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3), jnp.int32), axis=(1, 2))
    for bad in [None, [0, 1], 1.0, (0, "1")]:
        with pytest.raises(
            TypeError, match=r"axis must be an integer or a tuple of integers;"
        ):
            fn(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), axis=bad)


@pytest.mark.parametrize(
    "name", ["softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels"]
)
def test_axis_and_where_errors(name):
    fn = getattr(losses, name)
    x = jnp.zeros((4, 3))
    y = jnp.zeros(4, jnp.int32) if name.endswith("labels") else jnp.zeros((4, 3))
    prefix = f"^jgd.losses.{name}: "
    for bad in [(), (1, -1)]:
        with pytest.raises(ValueError, match=prefix + "axis must name at least one"):
            fn(x, y, axis=bad)
    with pytest.raises(ValueError, match=prefix + r"axis must be in .*got \(0, 2\)"):
        fn(x, y, axis=(0, 2))
    with pytest.raises(TypeError, match=prefix + "where must be a boolean array"):
        fn(x, y, where=jnp.ones((4, 3), jnp.int32))
    with pytest.raises(
        ValueError, match=prefix + r"where must have .*\(4, 3\).*\(4,\); got .*\(3,\)"
    ):
        fn(x, y, where=jnp.ones(3, bool))


def test_non_float_predictions_and_bad_delta():
    with pytest.raises(
        TypeError, match=r"^jgd.losses.squared_error: predictions .*int32"
    ):
        losses.squared_error(jnp.array([1, 2]), jnp.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^jgd.losses.softmax_cross_entropy: logits"):
        losses.softmax_cross_entropy(jnp.zeros((2, 3), jnp.int32), jnp.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"^jgd.losses.huber_loss: delta must be finite and > 0"
    ):
        losses.huber_loss(jnp.zeros(2), delta=0.0)
    with pytest.raises(
        TypeError, match=r"^jgd.losses.huber_loss: delta must be a number"
    ):
        losses.huber_loss(jnp.zeros(2), delta="1")


def test_traced_delta():
    e = jnp.array([0.5, 3.0])
    got = jax.jit(lambda d: losses.huber_loss(e, delta=d))(jnp.float32(2.0))
    np.testing.assert_array_equal(got, [0.125, 4.0])
