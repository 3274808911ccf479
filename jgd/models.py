"""The lessons' small models, as pure ``(init, apply)`` pairs, and toy data sets.

Holds ``Model`` (a named ``(init, apply)`` pair), the factories
``linear_regression``, ``sigmoid_neuron`` (logistic regression) and ``mlp``,
and the data generators ``make_regression`` and ``make_classification`` that
the demo, the lab and the tests train them on.

A model owns no state: ``params = model.init(key)`` builds a pytree of
arrays from an explicit PRNG key, and ``model.apply(params, x)`` is a pure
function of it, so ``jax.grad``, ``jax.jit`` and any jgd or optax optimizer
work on the params directly::

    model = mlp([2, 16, 16, 3])
    params = model.init(jax.random.key(0))
    loss = lambda p: losses.softmax_cross_entropy_with_integer_labels(
        model.apply(p, x), labels).mean()
    grads = jax.grad(loss)(params)

Weights are drawn from a normal distribution centred at 0 with standard
deviation ``1 / sqrt(n_in)`` (``n_in`` the layer's number of inputs), as the
tutorials recommend: small enough that a sigmoid's input stays in its
linear region whatever the number of inputs, random so that units start
different and break symmetry. Biases start at zero. Inputs ``x`` are cast to
the params' dtype, so a bf16 model computes (and returns) bf16.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgd.base import check_dtype, check_int, check_number

__all__ = [
    "Model",
    "linear_regression",
    "make_classification",
    "make_regression",
    "mlp",
    "sigmoid_neuron",
]


class Model(NamedTuple):
    """A model as a pair of pure functions, with a name for plots and logs.

    Attributes:
        init: ``init(key) -> params``, a pytree of arrays drawn from ``key``.
        apply: ``apply(params, x) -> outputs`` for ``x`` of shape
            ``[..., n_in]``.
        name: a short description, e.g. ``"mlp([2, 16, 3])"``.
    """

    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    name: str


# --------------------------------------------------------------------------
# Shared pieces.
# --------------------------------------------------------------------------


def _float_dtype(name: str, dtype: Any) -> Any:
    dtype = check_dtype(name, "dtype", dtype)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name}: dtype must be a floating-point dtype (float32, bfloat16, "
            f"float64, ...); got {dtype}."
        )
    return dtype


def _check_key(name: str, key: Any) -> None:
    if isinstance(key, numbers.Number) or not hasattr(key, "dtype"):
        raise TypeError(
            f"{name}: key must be a JAX PRNG key, e.g. jax.random.key(0); "
            f"got {key!r} ({type(key).__name__})."
        )


def _dense_init(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> dict:
    """``{"w": N(0, 1/n_in) of shape, "b": zeros(shape[1:])}``."""
    scale = jnp.asarray(1.0 / math.sqrt(shape[0]), dtype)
    return {
        "w": jax.random.normal(key, shape, dtype) * scale,
        "b": jnp.zeros(shape[1:], dtype),
    }


def _dense(name: str, layer: dict, x: Any) -> jax.Array:
    """``x @ w + b`` for ``x`` of shape ``[..., n_in]``, in the params' dtype."""
    w, b = layer["w"], layer["b"]
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != w.shape[0]:
        raise ValueError(
            f"{name}: x must have shape (batch, {w.shape[0]}), its last axis "
            f"matching the first axis of w; got x of shape {x.shape} and w of "
            f"shape {w.shape}."
        )
    y = x.astype(w.dtype) @ w
    return y + jnp.broadcast_to(b, y.shape)  # explicit: rank promotion raises


# --------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------


def linear_regression(
    n_in: int, n_out: int | None = None, *, dtype: Any = jnp.float32
) -> Model:
    """Linear regression: one dense layer without activation.

    Update:
        outputs = x @ w + b

    Args:
        n_in: number of input features, an integer >= 1.
        n_out: number of outputs, an integer >= 1, or None (default) for one
            output without a trailing axis: ``w`` is ``(n_in,)``, ``b`` a
            scalar and outputs ``(batch,)``, matching 1-D targets.
        dtype: floating dtype of the params (default float32).

    Returns:
        A ``Model`` with params ``{"w": (n_in,) or (n_in, n_out), "b": () or
        (n_out,)}`` and ``apply(params, x[batch, n_in]) -> (batch,)`` or
        ``(batch, n_out)``. Train it with ``losses.mean_squared_error``.

    Raises:
        TypeError: when a size is not an integer or dtype not floating.
        ValueError: when a size is < 1, or (from apply) when the last axis of
            x is not n_in.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import models
        >>> model = models.linear_regression(3)
        >>> params = model.init(jax.random.key(0))
        >>> params["w"].shape, params["b"].shape
        ((3,), ())
        >>> model.apply(params, jnp.ones((5, 3))).shape
        (5,)
    """
    name = "jgd.models.linear_regression"
    check_int(name, "n_in", n_in, 1)
    if n_out is not None:
        check_int(name, "n_out", n_out, 1)
    dtype = _float_dtype(name, dtype)
    shape = (n_in,) if n_out is None else (n_in, n_out)

    def init(key):
        _check_key(name, key)
        return _dense_init(key, shape, dtype)

    def apply(params, x):
        return _dense(name, params, x)

    label = (
        f"linear_regression({n_in})"
        if n_out is None
        else f"linear_regression({n_in}, {n_out})"
    )
    return Model(init, apply, label)


def sigmoid_neuron(n_in: int, *, dtype: Any = jnp.float32) -> Model:
    """A single sigmoid unit (logistic regression); ``apply`` returns LOGITS.

    The probability of class 1 is ``jax.nn.sigmoid(logits)``. The model stops
    before the sigmoid so that training can use
    ``losses.sigmoid_binary_cross_entropy(logits, labels)``, which is exact
    for logits where ``log(sigmoid(logits))`` would round to ``log(0)``.

    Update:
        logits = x @ w + b
        p(class 1 | x) = sigmoid(logits) = 1 / (1 + exp(-logits))

    Args:
        n_in: number of input features, an integer >= 1.
        dtype: floating dtype of the params (default float32).

    Returns:
        A ``Model`` with params ``{"w": (n_in,), "b": ()}`` and
        ``apply(params, x[batch, n_in]) -> logits (batch,)``.

    Raises:
        TypeError: when n_in is not an integer or dtype not floating.
        ValueError: when n_in < 1, or (from apply) when the last axis of x is
            not n_in.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import models
        >>> model = models.sigmoid_neuron(2)
        >>> params = model.init(jax.random.key(0))
        >>> logits = model.apply(params, jnp.zeros((4, 2)))
        >>> jax.nn.sigmoid(logits)  # zero bias: undecided at x = 0
        Array([0.5, 0.5, 0.5, 0.5], dtype=float32)
    """
    name = "jgd.models.sigmoid_neuron"
    check_int(name, "n_in", n_in, 1)
    dtype = _float_dtype(name, dtype)

    def init(key):
        _check_key(name, key)
        return _dense_init(key, (n_in,), dtype)

    def apply(params, x):
        return _dense(name, params, x)

    return Model(init, apply, f"sigmoid_neuron({n_in})")


def mlp(
    sizes: Sequence[int],
    activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
    *,
    dtype: Any = jnp.float32,
) -> Model:
    """A multilayer perceptron: dense layers, ``activation`` between them.

    Update:
        h_0 = x
        h_i = activation(h_{i-1} @ w_i + b_i)    for i = 1 .. L-1
        outputs = h_{L-1} @ w_L + b_L            (the last layer is linear)

    The outputs are logits for classification (``softmax_cross_entropy*``) or
    values for regression (``mean_squared_error``).

    Args:
        sizes: layer widths ``[n_in, hidden..., n_out]``, at least two
            integers >= 1; e.g. ``[2, 16, 16, 3]`` has two hidden layers.
        activation: the hidden layers' nonlinearity (default ``jax.nn.relu``).
        dtype: floating dtype of the params (default float32).

    Returns:
        A ``Model`` whose params are a list with one ``{"w": (n_in_i,
        n_out_i), "b": (n_out_i,)}`` per layer, and ``apply(params,
        x[batch, n_in]) -> (batch, n_out)``.

    Raises:
        TypeError: when sizes is not a sequence of integers, activation not
            callable or dtype not floating.
        ValueError: when fewer than two sizes are given or one is < 1, or
            (from apply) when the last axis of x is not n_in.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jgd import models
        >>> model = models.mlp([2, 16, 16, 3])
        >>> params = model.init(jax.random.key(0))
        >>> [layer["w"].shape for layer in params]
        [(2, 16), (16, 16), (16, 3)]
        >>> model.apply(params, jnp.ones((5, 2))).shape
        (5, 3)
    """
    name = "jgd.models.mlp"
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(
            f"{name}: sizes must be a list of layer widths like [2, 16, 3]; "
            f"got {sizes!r} ({type(sizes).__name__})."
        )
    if len(sizes) < 2:
        raise ValueError(
            f"{name}: sizes must list at least two widths [n_in, ..., n_out]; "
            f"got {list(sizes)!r}."
        )
    for i, n in enumerate(sizes):
        check_int(name, f"sizes[{i}]", n, 1)
    if not callable(activation):
        raise TypeError(
            f"{name}: activation must be callable, e.g. jax.nn.relu; "
            f"got {activation!r} ({type(activation).__name__})."
        )
    dtype = _float_dtype(name, dtype)
    sizes = [int(n) for n in sizes]
    shapes = list(itertools.pairwise(sizes))

    def init(key):
        _check_key(name, key)
        keys = jax.random.split(key, len(shapes))
        return [_dense_init(k, shape, dtype) for k, shape in zip(keys, shapes)]

    def apply(params, x):
        if not isinstance(params, (list, tuple)) or len(params) != len(shapes):
            raise TypeError(
                f"{name}: params must be the list of {len(shapes)} layers that "
                f"init returns; got {type(params).__name__}"
                f"{f' of length {len(params)}' if isinstance(params, (list, tuple)) else ''}."
            )
        h = x
        for layer in params[:-1]:
            h = activation(_dense(name, layer, h))
        return _dense(name, params[-1], h)

    return Model(init, apply, f"mlp({sizes})")


# --------------------------------------------------------------------------
# Toy data.
# --------------------------------------------------------------------------


def make_regression(
    key: jax.Array,
    n: int,
    n_features: int,
    noise: float = 0.1,
    *,
    dtype: Any = jnp.float32,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """A linear regression problem with known answer.

    Update:
        x ~ N(0, 1)             shape (n, n_features)
        true_w ~ N(0, 1)        shape (n_features,)
        true_b ~ N(0, 1)        scalar
        y = x @ true_w + true_b + noise * N(0, 1)

    Args:
        key: a JAX PRNG key.
        n: number of samples, an integer >= 1.
        n_features: number of features, an integer >= 1.
        noise: standard deviation of the additive noise, a number >= 0
            (default 0.1).
        dtype: floating dtype of the arrays (default float32).

    Returns:
        ``(x, y, true_w, true_b)`` with shapes ``(n, n_features)``, ``(n,)``,
        ``(n_features,)`` and ``()``: the targets and params of
        ``linear_regression(n_features)``.

    Example:
        >>> import jax
        >>> from jgd import models
        >>> x, y, w, b = models.make_regression(jax.random.key(0), 100, 3)
        >>> x.shape, y.shape, w.shape, b.shape
        ((100, 3), (100,), (3,), ())
    """
    name = "jgd.models.make_regression"
    _check_key(name, key)
    check_int(name, "n", n, 1)
    check_int(name, "n_features", n_features, 1)
    check_number(name, "noise", noise, 0)
    dtype = _float_dtype(name, dtype)
    kx, kw, kb, ke = jax.random.split(key, 4)
    x = jax.random.normal(kx, (n, n_features), dtype)
    true_w = jax.random.normal(kw, (n_features,), dtype)
    true_b = jax.random.normal(kb, (), dtype)
    eps = jax.random.normal(ke, (n,), dtype)
    y = x @ true_w + true_b + jnp.asarray(noise, dtype) * eps
    return x, y, true_w, true_b


def make_classification(
    key: jax.Array,
    n: int,
    n_features: int = 2,
    n_classes: int = 2,
    *,
    dtype: Any = jnp.float32,
) -> tuple[jax.Array, jax.Array]:
    """Gaussian blobs, one per class, nearly linearly separable.

    Class ``k``'s points are its centre plus N(0, 1) noise in every feature.
    The centres lie on a circle in the first two features (on a line when
    ``n_features == 1``), spaced so that neighbouring centres are 6 apart:
    each point falls past the midline towards one given neighbour with
    probability Phi(-3), about 0.13%. Classes are balanced (class of sample
    ``i`` is ``i % n_classes`` before a shuffle).

    Update:
        r = 3 / sin(pi / n_classes)
        centre_k = (r cos(2 pi k / n_classes), r sin(2 pi k / n_classes), 0, ...)
        centre_k = (6 (k - (n_classes - 1) / 2),)        if n_features == 1
        x = centre_label + N(0, 1)

    Args:
        key: a JAX PRNG key.
        n: number of samples, an integer >= 1.
        n_features: number of features, an integer >= 1 (default 2).
        n_classes: number of classes, an integer >= 2 (default 2).
        dtype: floating dtype of ``x`` (default float32).

    Returns:
        ``(x, labels)``: ``x`` of shape ``(n, n_features)``, ``labels`` int32
        class indices of shape ``(n,)``. For ``sigmoid_neuron`` (two classes)
        use ``labels`` as 0/1 targets of ``sigmoid_binary_cross_entropy``; for
        ``mlp`` use ``softmax_cross_entropy_with_integer_labels``.

    Example:
        >>> import jax
        >>> from jgd import models
        >>> x, labels = models.make_classification(jax.random.key(0), 100, n_classes=3)
        >>> x.shape, labels.shape, labels.dtype
        ((100, 2), (100,), dtype('int32'))
    """
    name = "jgd.models.make_classification"
    _check_key(name, key)
    check_int(name, "n", n, 1)
    check_int(name, "n_features", n_features, 1)
    check_int(name, "n_classes", n_classes, 2)
    dtype = _float_dtype(name, dtype)
    k_perm, k_noise = jax.random.split(key)
    labels = jax.random.permutation(k_perm, jnp.arange(n, dtype=jnp.int32) % n_classes)
    centres = _blob_centres(n_features, n_classes, dtype)
    x = centres[labels] + jax.random.normal(k_noise, (n, n_features), dtype)
    return x, labels


def _blob_centres(n_features: int, n_classes: int, dtype: Any) -> jax.Array:
    """Centres ``(n_classes, n_features)``, neighbours 6 apart (see above)."""
    k = jnp.arange(n_classes, dtype=jnp.float32)
    if n_features == 1:
        return (6.0 * (k - (n_classes - 1) / 2))[:, None].astype(dtype)
    r = 3.0 / math.sin(math.pi / n_classes)
    angle = 2 * math.pi / n_classes * k
    circle = jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)], axis=1)
    pad = jnp.zeros((n_classes, n_features - 2), jnp.float32)
    return jnp.concatenate([circle, pad], axis=1).astype(dtype)
