"""jgd.models: shapes, math, init scale, determinism, dtypes, gradients, data, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
from jgd import losses, models

FACTORIES = {
    "linear_regression": lambda **kw: models.linear_regression(3, **kw),
    "linear_regression_2out": lambda **kw: models.linear_regression(3, 2, **kw),
    "sigmoid_neuron": lambda **kw: models.sigmoid_neuron(3, **kw),
    "mlp": lambda **kw: models.mlp([3, 8, 8, 2], **kw),
}
OUT_SHAPE = {  # for x of shape (5, 3)
    "linear_regression": (5,),
    "linear_regression_2out": (5, 2),
    "sigmoid_neuron": (5,),
    "mlp": (5, 2),
}


def _x(n=5, d=3, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, d)), jnp.float32)


# --------------------------------------------------------------------------
# Shapes and math.
# --------------------------------------------------------------------------


def test_param_shapes():
    key = jax.random.key(0)
    p = models.linear_regression(3).init(key)
    assert (p["w"].shape, p["b"].shape) == ((3,), ())
    p = models.linear_regression(3, 2).init(key)
    assert (p["w"].shape, p["b"].shape) == ((3, 2), (2,))
    p = models.sigmoid_neuron(4).init(key)
    assert (p["w"].shape, p["b"].shape) == ((4,), ())
    p = models.mlp([2, 16, 16, 3]).init(key)
    assert isinstance(p, list)
    assert [(q["w"].shape, q["b"].shape) for q in p] == [
        ((2, 16), (16,)),
        ((16, 16), (16,)),
        ((16, 3), (3,)),
    ]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_output_shapes_and_leading_axes(name):
    model = FACTORIES[name]()
    params = model.init(jax.random.key(1))
    assert model.apply(params, _x()).shape == OUT_SHAPE[name]
    # Any leading axes: one example, or a (2, 5) grid of examples.
    assert model.apply(params, _x()[0]).shape == OUT_SHAPE[name][1:]
    assert model.apply(params, _x(10).reshape(2, 5, 3)).shape == (2, *OUT_SHAPE[name])


def test_names():
    assert models.linear_regression(3).name == "linear_regression(3)"
    assert models.linear_regression(3, 2).name == "linear_regression(3, 2)"
    assert models.sigmoid_neuron(3).name == "sigmoid_neuron(3)"
    assert models.mlp([2, 16, 3]).name == "mlp([2, 16, 3])"
    model = models.mlp((2, 3))
    assert isinstance(model, models.Model)
    assert model._fields == ("init", "apply", "name")


def test_linear_and_mlp_math_against_numpy():
    x = np.asarray(_x(), np.float64)
    p = models.linear_regression(3, 2).init(jax.random.key(2))
    p = {"w": p["w"], "b": p["b"] + jnp.array([0.5, -1.0])}  # nonzero bias
    w, b = np.asarray(p["w"], np.float64), np.asarray(p["b"], np.float64)
    np.testing.assert_allclose(
        models.linear_regression(3, 2).apply(p, x), x @ w + b, rtol=1e-5
    )

    model = models.mlp([3, 8, 4, 2], activation=jnp.tanh)
    params = model.init(jax.random.key(3))
    h = x
    for i, layer in enumerate(params):
        h = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        if i < len(params) - 1:
            h = np.tanh(h)
    np.testing.assert_allclose(model.apply(params, x), h, rtol=1e-5, atol=1e-6)


def test_mlp_default_activation_is_relu_and_last_layer_linear():
    model = models.mlp([1, 1, 1])
    params = [
        {"w": jnp.array([[1.0]]), "b": jnp.array([0.0])},
        {"w": jnp.array([[-2.0]]), "b": jnp.array([-1.0])},
    ]
    x = jnp.array([[-3.0], [2.0]])
    # relu(-3) = 0 -> -2*0 - 1 = -1; relu(2) = 2 -> -4 - 1 = -5 (no relu at the end)
    np.testing.assert_array_equal(model.apply(params, x), [[-1.0], [-5.0]])


def test_sigmoid_neuron_returns_logits():
    model = models.sigmoid_neuron(2)
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    x = jnp.array([[3.0, 1.0], [0.0, 1.0]])
    logits = model.apply(params, x)
    np.testing.assert_array_equal(logits, [1.5, -1.5])
    np.testing.assert_allclose(
        jax.nn.sigmoid(logits), 1 / (1 + np.exp(-np.array([1.5, -1.5]))), rtol=1e-6
    )


# --------------------------------------------------------------------------
# Initialisation.
# --------------------------------------------------------------------------


def test_init_scale_linear():
    # 160,000 draws: the sample std's relative error is ~0.2%; 2% is 10 sigma.
    p = models.linear_regression(400, 400).init(jax.random.key(4))
    w = np.asarray(p["w"], np.float64)
    assert abs(w.std() * np.sqrt(400) - 1) < 0.02
    assert abs(w.mean()) < 5 * (1 / 20) / np.sqrt(w.size)
    np.testing.assert_array_equal(p["b"], np.zeros(400))


def test_init_scale_per_layer_fan_in():
    # Layer 2 has 10,000 draws: relative error of the std ~0.7%; 5% is 7 sigma.
    params = models.mlp([1000, 200, 50]).init(jax.random.key(5))
    for layer, fan_in in zip(params, [1000, 200]):
        w = np.asarray(layer["w"], np.float64)
        assert abs(w.std() * np.sqrt(fan_in) - 1) < 0.05, fan_in
        np.testing.assert_array_equal(layer["b"], 0.0)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_init_is_deterministic_per_key(name):
    model = FACTORIES[name]()
    a = model.init(jax.random.key(6))
    b = model.init(jax.random.key(6))
    c = model.init(jax.random.key(7))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    wa, wc = jax.tree.leaves(a)[1], jax.tree.leaves(c)[1]  # leaves: b, w, ...
    assert not np.array_equal(wa, wc)
    # The legacy uint32 key form works too.
    legacy = model.init(jax.random.PRNGKey(6))
    assert jax.tree.structure(legacy) == jax.tree.structure(a)


def test_mlp_layers_get_different_keys():
    params = models.mlp([4, 4, 4]).init(jax.random.key(8))
    assert not np.array_equal(params[0]["w"], params[1]["w"])


# --------------------------------------------------------------------------
# Dtypes, jit, gradients.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_dtype_kwarg(name, dtype):
    model = FACTORIES[name](dtype=dtype)
    params = model.init(jax.random.key(9))
    assert all(leaf.dtype == jnp.dtype(dtype) for leaf in jax.tree.leaves(params))
    out = model.apply(params, _x())  # float32 inputs are cast to the params' dtype
    assert out.dtype == jnp.dtype(dtype)


def test_float64(x64):
    model = models.mlp([3, 4, 1], dtype=jnp.float64)
    params = model.init(jax.random.key(10))
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
    assert model.apply(params, _x()).dtype == jnp.float64


def test_integer_inputs_are_cast():
    model = models.linear_regression(2)
    params = {"w": jnp.array([1.5, 2.0]), "b": jnp.array(1.0)}
    np.testing.assert_array_equal(model.apply(params, jnp.array([[1, 2]])), [6.5])


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_jit_and_grad_through_model(name):
    model = FACTORIES[name]()
    params = model.init(jax.random.key(11))
    x = _x()
    target = jnp.ones(OUT_SHAPE[name])

    def loss(p):
        return losses.mean_squared_error(model.apply(p, x), target)

    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    np.testing.assert_allclose(value, loss(params), rtol=1e-6)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params)):
        assert g.shape == p.shape and g.dtype == p.dtype
        assert bool(jnp.all(jnp.isfinite(g)))
    assert any(bool(jnp.any(g != 0)) for g in jax.tree.leaves(grads))


def test_linear_regression_gradient_closed_form():
    """d MSE / d w = 2/m X^T (X w + b - y), d MSE / d b = 2/m sum(X w + b - y)."""
    model = models.linear_regression(3)
    x, y, _, _ = models.make_regression(jax.random.key(12), 20, 3)
    params = model.init(jax.random.key(13))
    grads = jax.grad(lambda p: losses.mean_squared_error(model.apply(p, x), y))(params)
    xn, yn = np.asarray(x, np.float64), np.asarray(y, np.float64)
    r = xn @ np.asarray(params["w"], np.float64) - yn  # b starts at 0
    np.testing.assert_allclose(grads["w"], 2 / 20 * xn.T @ r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["b"], 2 / 20 * r.sum(), rtol=1e-5, atol=1e-6)


def test_seed_worked_example_through_the_model():
    """Seed 001: w = 2, x = 3, target 10 -> slope -24 -> w = 2.24 at lr 0.01."""
    model = models.linear_regression(1)
    params = {"w": jnp.array([2.0]), "b": jnp.array(0.0)}
    x, y = jnp.array([[3.0]]), jnp.array([10.0])

    def loss(p):
        return losses.mean_squared_error(model.apply(p, x), y)

    grads = jax.grad(loss)(params)
    assert float(grads["w"][0]) == -24.0
    opt = jgd.gd(0.01)
    updates, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_allclose(
        jgd.apply_updates(params, updates)["w"], [2.24], rtol=1e-7
    )


def _train(model, loss, params, opt, steps):
    state = opt.init(params)

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return (jgd.apply_updates(params, updates), state), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))(
        (params, state)
    )
    return params


def test_sigmoid_neuron_learns_two_blobs():
    x, labels = models.make_classification(jax.random.key(14), 400)
    model = models.sigmoid_neuron(2)

    def loss(p):
        return losses.sigmoid_binary_cross_entropy(model.apply(p, x), labels).mean()

    params = _train(model, loss, model.init(jax.random.key(15)), jgd.gd(0.5), 100)
    accuracy = jnp.mean((model.apply(params, x) > 0) == (labels == 1))
    assert float(accuracy) > 0.97


def test_mlp_learns_three_blobs():
    x, labels = models.make_classification(jax.random.key(16), 300, n_classes=3)
    model = models.mlp([2, 16, 3])

    def loss(p):
        logits = model.apply(p, x)
        return losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    params = _train(model, loss, model.init(jax.random.key(17)), jgd.adam(0.05), 150)
    accuracy = jnp.mean(jnp.argmax(model.apply(params, x), axis=-1) == labels)
    assert float(accuracy) > 0.95


# --------------------------------------------------------------------------
# Data.
# --------------------------------------------------------------------------


def test_make_regression():
    x, y, w, b = models.make_regression(jax.random.key(18), 4000, 3, noise=0.1)
    assert (x.shape, y.shape, w.shape, b.shape) == ((4000, 3), (4000,), (3,), ())
    assert all(a.dtype == jnp.float32 for a in (x, y, w, b))
    residual = np.asarray(y - (x @ w + b), np.float64)
    # 4,000 draws: relative error of the std ~1.1%; 10% is 9 sigma.
    assert abs(residual.std() / 0.1 - 1) < 0.1
    x0, y0, w0, b0 = models.make_regression(jax.random.key(18), 50, 2, noise=0.0)
    np.testing.assert_allclose(y0, x0 @ w0 + b0, rtol=1e-6)
    again = models.make_regression(jax.random.key(18), 50, 2, noise=0.0)
    jax.tree.map(np.testing.assert_array_equal, (x0, y0, w0, b0), again)
    xb, yb, _, _ = models.make_regression(jax.random.key(0), 8, 2, dtype=jnp.bfloat16)
    assert xb.dtype == yb.dtype == jnp.bfloat16


@pytest.mark.parametrize("n_features,n_classes", [(2, 2), (2, 3), (5, 4), (1, 3)])
def test_make_classification_blobs(n_features, n_classes):
    n = 300 * n_classes
    x, labels = models.make_classification(jax.random.key(19), n, n_features, n_classes)
    assert x.shape == (n, n_features) and x.dtype == jnp.float32
    assert labels.shape == (n,) and labels.dtype == jnp.int32
    np.testing.assert_array_equal(np.bincount(labels, minlength=n_classes), 300)
    xn, ln = np.asarray(x, np.float64), np.asarray(labels)
    means = np.stack([xn[ln == k].mean(0) for k in range(n_classes)])
    # Neighbouring centres are 6 apart (means of 300 points: sd ~0.06 per axis).
    d = np.linalg.norm(means[:, None] - means[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(d.min(1), 6.0, atol=0.5)
    # Noise is N(0, 1) around the centre in every feature.
    spread = np.concatenate([xn[ln == k] - means[k] for k in range(n_classes)])
    np.testing.assert_allclose(spread.std(0), 1.0, atol=0.1)
    # Nearly separable: the nearest class mean is right for > 98% of points
    # (expected error about 0.13% per neighbour).
    nearest = np.argmin(np.linalg.norm(xn[:, None] - means[None], axis=-1), axis=1)
    assert (nearest == ln).mean() > 0.98


def test_make_classification_deterministic_and_dtype():
    a = models.make_classification(jax.random.key(20), 40)
    b = models.make_classification(jax.random.key(20), 40)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    x, labels = models.make_classification(jax.random.key(20), 40, dtype=jnp.bfloat16)
    assert x.dtype == jnp.bfloat16 and labels.dtype == jnp.int32


# --------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,exc,message",
    [
        (lambda: models.linear_regression(0), ValueError,
         "jgd.models.linear_regression: n_in must be an integer >= 1; got 0."),
        (lambda: models.linear_regression(3, -1), ValueError,
         "jgd.models.linear_regression: n_out must be an integer >= 1; got -1."),
        (lambda: models.linear_regression(3.0), TypeError,
         "jgd.models.linear_regression: n_in must be an integer >= 1; got 3.0 (float)."),
        (lambda: models.sigmoid_neuron(True), TypeError,
         "jgd.models.sigmoid_neuron: n_in must be an integer >= 1; got True (bool)."),
        (lambda: models.mlp([2]), ValueError,
         "jgd.models.mlp: sizes must list at least two widths [n_in, ..., n_out]; got [2]."),
        (lambda: models.mlp([2, 0, 1]), ValueError,
         "jgd.models.mlp: sizes[1] must be an integer >= 1; got 0."),
        (lambda: models.mlp([2, 1.5, 1]), TypeError,
         "jgd.models.mlp: sizes[1] must be an integer >= 1; got 1.5 (float)."),
        (lambda: models.mlp(3), TypeError,
         "jgd.models.mlp: sizes must be a list of layer widths like [2, 16, 3]; got 3 (int)."),
        (lambda: models.mlp([2, 3], activation="relu"), TypeError,
         "jgd.models.mlp: activation must be callable, e.g. jax.nn.relu; got 'relu' (str)."),
        (lambda: models.mlp([2, 3], dtype=jnp.int32), TypeError,
         "jgd.models.mlp: dtype must be a floating-point dtype"),
        (lambda: models.sigmoid_neuron(2).init(0), TypeError,
         "jgd.models.sigmoid_neuron: key must be a JAX PRNG key, e.g. jax.random.key(0); got 0 (int)."),
        (lambda: models.make_regression(jax.random.key(0), 10, 2, noise=-1.0), ValueError,
         "jgd.models.make_regression: noise must be finite and >= 0; got -1.0."),
        (lambda: models.make_classification(jax.random.key(0), 10, n_classes=1), ValueError,
         "jgd.models.make_classification: n_classes must be an integer >= 2; got 1."),
        (lambda: models.make_classification(jax.random.key(0), 0), ValueError,
         "jgd.models.make_classification: n must be an integer >= 1; got 0."),
    ],
)  # fmt: skip
def test_argument_errors(call, exc, message):
    with pytest.raises(exc) as e:
        call()
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_wrong_input_width_names_both_shapes(name):
    model = FACTORIES[name]()
    params = model.init(jax.random.key(21))
    with pytest.raises(ValueError) as e:
        model.apply(params, jnp.zeros((5, 4)))
    msg = str(e.value)
    assert msg.startswith(f"jgd.models.{name.removesuffix('_2out')}: x must have shape")
    assert "(5, 4)" in msg and "(3," in msg


def test_mlp_params_of_wrong_length():
    model = models.mlp([2, 3, 1])
    params = model.init(jax.random.key(22))
    with pytest.raises(
        TypeError, match=r"^jgd.models.mlp: params must be the list of 2"
    ):
        model.apply(params[:1], jnp.zeros((1, 2)))
