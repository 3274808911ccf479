"""The models ``jgd bench`` trains: plain functions over dict/list pytrees.

Holds ``Model`` (a name, ``init(seed)`` giving float32 NumPy params,
``batch(seed)`` giving one fixed batch of NumPy arrays, and
``loss(params, batch)``, a scalar) and its builders: ``mlp`` (dense ReLU
layers), ``gpt`` (a causal transformer: embeddings, attention, layer norms,
an MLP, next-token cross-entropy), ``cnn`` (``lax.conv_general_dilated``
layers and a dense head) and ``resmlp`` (residual blocks unrolled by a Python
loop, four leaves each). Every loss is a softmax cross-entropy on random
inputs and labels; init and data are deterministic from the seed. The code
passes under strict dtype promotion and rank promotion set to raise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Model:
    """One workload: ``loss(init(seed), batch(seed))`` is a float32 scalar."""

    name: str
    about: str
    init: Callable[[int], Any]
    batch: Callable[[int], Any]
    loss: Callable[[Any, Any], Any]


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).copy()


def _dense(rng, fan_in: int, fan_out: int, gain: float = 2.0) -> dict:
    """He-initialised weights (``gain / fan_in`` variance) and zero biases."""
    w = _normal(rng, (fan_in, fan_out), math.sqrt(gain / fan_in))
    return {"w": w, "b": np.zeros((fan_out,), np.float32)}


def _row(v):
    """``v`` of shape (n,) as (1, n): rank promotion is set to raise."""
    return v[None, :]


def _cross_entropy(logits, labels):
    """Mean softmax cross-entropy of (N, K) logits against N integer labels."""
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def _classes(rng, n: int, k: int):
    return rng.integers(0, k, size=(n,), dtype=np.int32)


# --------------------------------------------------------------------------
# MLP: dense ReLU layers, cross-entropy.
# --------------------------------------------------------------------------


def mlp(name: str, sizes: tuple[int, ...], batch: int) -> Model:
    """Dense layers ``sizes[0] -> ... -> sizes[-1]`` with ReLU between."""
    import jax

    def init(seed):
        rng = np.random.default_rng(seed)
        layers = [_dense(rng, a, b) for a, b in itertools.pairwise(sizes[:-1])]
        # A small last layer, so the loss starts near log(classes).
        return {"layers": [*layers, _dense(rng, sizes[-2], sizes[-1], 0.1)]}

    def make_batch(seed):
        rng = np.random.default_rng(seed + 1)
        x = _normal(rng, (batch, sizes[0]), 1.0)
        return {"x": x, "y": _classes(rng, batch, sizes[-1])}

    def loss(params, b):
        h = b["x"]
        *hidden, last = params["layers"]
        for layer in hidden:
            h = jax.nn.relu(h @ layer["w"] + _row(layer["b"]))
        return _cross_entropy(h @ last["w"] + _row(last["b"]), b["y"])

    shape = "-".join(map(str, sizes))
    return Model(name, f"MLP {shape}, ReLU, batch {batch}", init, make_batch, loss)


# --------------------------------------------------------------------------
# GPT: a causal transformer, next-token cross-entropy.
# --------------------------------------------------------------------------


def _layer_norm(x, p):
    import jax.numpy as jnp

    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    shape = (1,) * (x.ndim - 1) + p["scale"].shape
    y = (x - mu) * jnp.reciprocal(jnp.sqrt(var + 1e-5))
    return y * p["scale"].reshape(shape) + p["bias"].reshape(shape)


def gpt(
    name: str, *, vocab: int, ctx: int, d: int, layers: int, heads: int, batch: int
) -> Model:
    """A GPT-2-style decoder: token and position embeddings, ``layers``
    pre-norm blocks (causal multi-head attention and a 4x GELU MLP, each with
    a layer norm and a residual), a final layer norm, logits through the
    token embedding (tied). 16 leaves per block, 4 more outside."""
    import jax
    import jax.numpy as jnp

    dh = d // heads

    def init(seed):
        rng = np.random.default_rng(seed)

        def ln():
            return {
                "scale": np.ones((d,), np.float32),
                "bias": np.zeros((d,), np.float32),
            }

        def block():
            attn = {}
            for n in "qkvo":
                attn[f"w{n}"] = _normal(rng, (d, d), 0.02)
                attn[f"b{n}"] = np.zeros((d,), np.float32)
            mlp_ = {
                "w1": _normal(rng, (d, 4 * d), 0.02),
                "b1": np.zeros((4 * d,), np.float32),
                "w2": _normal(rng, (4 * d, d), 0.02 / math.sqrt(2 * layers)),
                "b2": np.zeros((d,), np.float32),
            }
            return {"ln1": ln(), "attn": attn, "ln2": ln(), "mlp": mlp_}

        return {
            "embed": {
                "tok": _normal(rng, (vocab, d), 0.02),
                "pos": _normal(rng, (ctx, d), 0.01),
            },
            "blocks": [block() for _ in range(layers)],
            "ln_f": ln(),
        }

    def make_batch(seed):
        rng = np.random.default_rng(seed + 1)
        return {"tokens": rng.integers(0, vocab, (batch, ctx + 1), dtype=np.int32)}

    def linear(x, w, b):
        return x @ w + b.reshape((1,) * (x.ndim - 1) + b.shape)

    def attention(x, p):
        bsz, t, _ = x.shape
        q, k, v = (
            linear(x, p[f"w{n}"], p[f"b{n}"]).reshape(bsz, t, heads, dh) for n in "qkv"
        )
        scores = jnp.einsum("bthd,bshd->bhts", q, k) / math.sqrt(dh)
        causal = jnp.tril(jnp.ones((t, t), bool))[None, None]
        scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
        out = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(scores, axis=-1), v)
        return linear(out.reshape(bsz, t, d), p["wo"], p["bo"])

    def loss(params, b):
        inputs, targets = b["tokens"][:, :-1], b["tokens"][:, 1:]
        tok = params["embed"]["tok"]
        h = tok[inputs] + params["embed"]["pos"][None]
        for blk in params["blocks"]:
            h = h + attention(_layer_norm(h, blk["ln1"]), blk["attn"])
            m = blk["mlp"]
            a = jax.nn.gelu(linear(_layer_norm(h, blk["ln2"]), m["w1"], m["b1"]))
            h = h + linear(a, m["w2"], m["b2"])
        logits = _layer_norm(h, params["ln_f"]) @ tok.T
        return _cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))

    about = (
        f"GPT: {layers} blocks, d {d}, {heads} heads, vocab {vocab}, "
        f"context {ctx}, batch {batch}"
    )
    return Model(name, about, init, make_batch, loss)


# --------------------------------------------------------------------------
# CNN: convolutions and a dense head.
# --------------------------------------------------------------------------


def cnn(
    name: str,
    *,
    image: tuple[int, int, int],
    channels: tuple[int, int],
    hidden: int,
    classes: int,
    batch: int,
) -> Model:
    """Two 3x3 convolutions (the second with stride 2) with ReLU, a 2x2
    average pool, a dense ReLU layer and a dense classifier; NHWC."""
    import jax
    import jax.numpy as jnp

    hgt, wid, cin = image
    c1, c2 = channels
    pooled = (hgt // 4) * (wid // 4) * c2

    def init(seed):
        rng = np.random.default_rng(seed)

        def conv(i, o):
            return {
                "w": _normal(rng, (3, 3, i, o), math.sqrt(2.0 / (9 * i))),
                "b": np.zeros((o,), np.float32),
            }

        return {
            "conv": [conv(cin, c1), conv(c1, c2)],
            "dense": [_dense(rng, pooled, hidden), _dense(rng, hidden, classes, 0.1)],
        }

    def make_batch(seed):
        rng = np.random.default_rng(seed + 1)
        x = _normal(rng, (batch, hgt, wid, cin), 1.0)
        return {"x": x, "y": _classes(rng, batch, classes)}

    def conv(x, p, stride):
        y = jax.lax.conv_general_dilated(
            x,
            p["w"],
            (stride, stride),
            "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return jax.nn.relu(y + p["b"].reshape(1, 1, 1, -1))

    def loss(params, b):
        h = conv(b["x"], params["conv"][0], 1)
        h = conv(h, params["conv"][1], 2)
        n, hh, ww, c = h.shape
        h = jnp.mean(h.reshape(n, hh // 2, 2, ww // 2, 2, c), axis=(2, 4))
        d1, d2 = params["dense"]
        h = jax.nn.relu(h.reshape(n, -1) @ d1["w"] + _row(d1["b"]))
        return _cross_entropy(h @ d2["w"] + _row(d2["b"]), b["y"])

    about = (
        f"CNN: {hgt}x{wid}x{cin} images, conv {c1}, conv {c2} (stride 2), "
        f"pool, dense {hidden}, {classes} classes, batch {batch}"
    )
    return Model(name, about, init, make_batch, loss)


# --------------------------------------------------------------------------
# Residual MLP: many small leaves, unrolled.
# --------------------------------------------------------------------------


def resmlp(
    name: str, *, blocks: int, width: int, features: int, classes: int, batch: int
) -> Model:
    """An input layer, ``blocks`` residual blocks ``h + relu(h w1 + b1) w2 +
    b2`` unrolled by a Python loop (four leaves each, so XLA sees every layer),
    and a classifier: ``4 * blocks + 4`` leaves."""
    import jax

    def init(seed):
        rng = np.random.default_rng(seed)
        res = []
        for _ in range(blocks):
            res.append(
                {
                    "w1": _dense(rng, width, width)["w"],
                    "b1": np.zeros((width,), np.float32),
                    "w2": _dense(rng, width, width, 1.0 / blocks)["w"],
                    "b2": np.zeros((width,), np.float32),
                }
            )
        return {
            "in": _dense(rng, features, width, 1.0),
            "blocks": res,
            "out": _dense(rng, width, classes, 0.1),
        }

    def make_batch(seed):
        rng = np.random.default_rng(seed + 1)
        x = _normal(rng, (batch, features), 1.0)
        return {"x": x, "y": _classes(rng, batch, classes)}

    def loss(params, b):
        h = b["x"] @ params["in"]["w"] + _row(params["in"]["b"])
        for blk in params["blocks"]:
            a = jax.nn.relu(h @ blk["w1"] + _row(blk["b1"]))
            h = h + a @ blk["w2"] + _row(blk["b2"])
        out = params["out"]
        return _cross_entropy(h @ out["w"] + _row(out["b"]), b["y"])

    about = (
        f"residual MLP: {blocks} unrolled blocks of width {width}, "
        f"{features} features, {classes} classes, batch {batch}"
    )
    return Model(name, about, init, make_batch, loss)
