"""The workloads, optimizers, variants and presets of ``jgd bench``.

Holds ``WORKLOADS`` (pytrees of float32 shapes: single big leaves, a
transformer-like tree, many small leaves), ``BYTES_PER_PARAM`` and
``WORKING_SET`` (the limit's bytes and floats per parameter),
``OPTIMIZERS`` (each as jgd, optax and torch.optim builds of the same
hyperparameters), ``VARIANTS`` and ``PRESETS`` (``tiny`` for tests,
``quick``, ``full``, with the skip rule they use).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

LR = 1e-3

# --------------------------------------------------------------------------
# Workloads: pytrees of float32 shapes.
# --------------------------------------------------------------------------


def _transformer(d: int = 256, layers: int = 6, vocab: int = 2048, ctx: int = 512):
    """A GPT-like params tree: embeddings, per layer two layer norms,
    attention q/k/v/o matrices with biases and an MLP, a final layer norm.
    The defaults give 100 leaves and 5.39M params."""

    def ln():
        return {"scale": (d,), "bias": (d,)}

    def layer():
        attn = {f"w{n}": (d, d) for n in "qkvo"} | {f"b{n}": (d,) for n in "qkvo"}
        mlp = {"w1": (d, 4 * d), "b1": (4 * d,), "w2": (4 * d, d), "b2": (d,)}
        return {"ln1": ln(), "attn": attn, "ln2": ln(), "mlp": mlp}

    return {
        "embed": {"tok": (vocab, d), "pos": (ctx, d)},
        "layers": [layer() for _ in range(layers)],
        "ln_f": ln(),
    }


def _many(leaves: int, size: int):
    return [(size,) for _ in range(leaves)]


WORKLOADS: dict[str, Callable[[], Any]] = {
    "leaf-1M": lambda: {"w": (1_000_000,)},
    "leaf-10M": lambda: {"w": (10_000_000,)},
    "leaf-50M": lambda: {"w": (50_000_000,)},
    "transformer": _transformer,
    "1000x1000": lambda: _many(1000, 1000),
    "10000x100": lambda: _many(10000, 100),
    # Tiny stand-ins, for the harness's own tests.
    "leaf-4k": lambda: {"w": (4096,)},
    "transformer-tiny": lambda: _transformer(d=8, layers=2, vocab=16, ctx=4),
    "30x100": lambda: _many(30, 100),
}


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(i, int) for i in x)


def _shapes(workload: str) -> Any:
    return WORKLOADS[workload]()


def _count(shapes: Any) -> tuple[int, int]:
    import jax

    leaves = jax.tree.leaves(shapes, is_leaf=_is_shape)
    return len(leaves), sum(math.prod(s) for s in leaves)


def _numpy_tree(shapes: Any, seed: int, scale: float) -> Any:
    """A tree of float32 NumPy arrays with the given shapes (normal * scale)."""
    import jax

    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: rng.standard_normal(s, dtype=np.float32) * np.float32(scale),
        shapes,
        is_leaf=_is_shape,
    )


# --------------------------------------------------------------------------
# Optimizers: the same hyperparameters in jgd, optax and torch.optim.
# --------------------------------------------------------------------------

# Minimal bytes one step moves per float32 parameter (reads + writes, 4 bytes
# each): sgd reads p, g and writes p; momentum, RMSprop and AdaGrad add one
# state buffer; Adam two. Global-norm clipping must read g once more to form
# the norm before the update pass can start.
BYTES_PER_PARAM = {
    "sgd": 12,
    "momentum": 20,
    "adam": 28,
    "adamw": 28,
    "rmsprop": 20,
    "adagrad": 20,
    "clip+adamw": 32,
}
# Floats per parameter a step touches (its working set): the limit kernels
# run over a buffer of this many floats per parameter.
WORKING_SET = {"sgd": 2, "momentum": 3, "adam": 4, "adamw": 4, "rmsprop": 3,
               "adagrad": 3, "clip+adamw": 4}  # fmt: skip


def _build_opt(lib, name: str):
    """The benchmark's optimizer ``name`` from ``lib``, jgd or optax: the two
    share names and arguments, so one recipe builds both."""
    return {
        "sgd": lambda: lib.sgd(LR),
        "momentum": lambda: lib.sgd(LR, momentum=0.9),
        "adam": lambda: lib.adam(LR),
        "adamw": lambda: lib.adamw(LR, weight_decay=1e-4),
        "rmsprop": lambda: lib.rmsprop(LR, decay=0.9, eps=1e-8),
        "adagrad": lambda: lib.adagrad(LR, initial_accumulator_value=0.1, eps=1e-7),
        "clip+adamw": lambda: lib.chain(
            lib.clip_by_global_norm(1.0), lib.adamw(LR, weight_decay=1e-4)
        ),
    }[name]()


def _jgd_opt(name: str):
    import jgd

    return _build_opt(jgd, name)


def _optax_opt(name: str):
    import optax

    return _build_opt(optax, name)


def _torch_opt(name: str, params: list, mode: str):
    """(optimizer, clip or None) for torch; ``mode`` is "foreach" or "fused".
    Raises ``_Unsupported`` where torch has no such implementation."""
    import torch

    kw = {mode: True}
    o = torch.optim
    if name == "rmsprop" and mode == "fused":
        raise _Unsupported("torch.optim.RMSprop has no fused implementation")
    make = {
        "sgd": lambda: o.SGD(params, lr=LR, **kw),
        "momentum": lambda: o.SGD(params, lr=LR, momentum=0.9, **kw),
        "adam": lambda: o.Adam(params, lr=LR, **kw),
        "adamw": lambda: o.AdamW(params, lr=LR, weight_decay=1e-4, **kw),
        "rmsprop": lambda: o.RMSprop(params, lr=LR, alpha=0.9, eps=1e-8, **kw),
        "adagrad": lambda: o.Adagrad(
            params, lr=LR, initial_accumulator_value=0.1, eps=1e-7, **kw
        ),
        "clip+adamw": lambda: o.AdamW(params, lr=LR, weight_decay=1e-4, **kw),
    }
    clip = None
    if name == "clip+adamw":

        def clip():
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)

    return make[name](), clip


OPTIMIZERS = tuple(BYTES_PER_PARAM)


class _Unsupported(Exception):
    """This variant cannot run this cell (recorded as skipped, with the reason)."""


# --------------------------------------------------------------------------
# Variants and presets.
# --------------------------------------------------------------------------

VARIANTS = ("jgd", "jgd-flat", "jgd-step", "optax", "torch-foreach", "torch-fused")


def _skip_rule(limits: dict[str, tuple[int, int, tuple[str, ...] | None]]):
    """``limits[variant] = (max_leaves, over, optimizers)``: the variant is
    skipped on workloads with more than ``max_leaves`` leaves, and on those
    with more than ``over`` leaves runs only ``optimizers`` (None: all).

    Why presets need it: per-leaf jax programs (jgd's and optax's bare
    ``update``) compile in time that grows faster than linearly with the leaf
    count (XLA:CPU emits kernels per leaf; see the compile sweep), make_step
    packs a 10000-leaf gradient with one concatenate that XLA:CPU compiles in
    tens of seconds, and torch steps over 10000 leaves are slow."""

    def skip(workload, n_leaves, opt_name, variant):
        if variant not in limits:
            return None
        max_leaves, over, optimizers = limits[variant]
        if n_leaves > max_leaves:
            return (
                f"this preset runs {variant} on at most {max_leaves} leaves "
                "(compile time; see the compile sweep and benchmarks/README.md)"
            )
        if n_leaves > over and optimizers is not None and opt_name not in optimizers:
            return (
                f"this preset runs {variant} on more than {over} leaves only for "
                + ", ".join(optimizers)
            )
        return None

    return skip


_HEAVY = ("adam", "clip+adamw")

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "workloads": ("leaf-4k", "transformer-tiny", "30x100"),
        "optimizers": ("sgd", "adam", "clip+adamw"),
        "rounds": 7,
        "min_round_s": 0.002,
        "max_k": 50,
        "limits": {},
        "compile_sweep": (3, 30),
    },
    "quick": {
        "workloads": ("leaf-1M", "leaf-10M", "transformer", "1000x1000"),
        "optimizers": ("adam", "clip+adamw"),
        "rounds": 7,
        "min_round_s": 0.02,
        "max_k": 1000,
        "limits": {"jgd": (1000, 100, ("adam",)), "optax": (1000, 100, ("adam",))},
        "compile_sweep": (),
    },
    "full": {
        "workloads": (
            "leaf-1M", "leaf-10M", "leaf-50M", "transformer", "1000x1000", "10000x100"
        ),
        "optimizers": OPTIMIZERS,
        "rounds": 9,
        "min_round_s": 0.05,
        "max_k": 2000,
        "limits": {
            "jgd": (1000, 1000, None),
            "optax": (1000, 1000, None),
            "jgd-step": (10000, 1000, _HEAVY),
            "torch-foreach": (10000, 1000, _HEAVY),
            "torch-fused": (10000, 1000, _HEAVY),
        },
        "compile_sweep": (10, 100, 300, 1000, 2000),
    },
}  # fmt: skip
