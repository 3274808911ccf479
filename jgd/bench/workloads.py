"""What ``jgd bench`` runs: workloads, optimizers, variants and presets.

Holds ``WORKLOADS`` (name -> ``jgd.bench.models.Model``: two MLPs, a GPT, a
CNN, deep residual MLPs, and ``-tiny`` versions of each for the harness's
tests), ``OPTIMIZERS`` (each built the same way from jgd and from optax),
``BYTES_PER_PARAM`` and ``WORKING_SET`` (the memory-bandwidth limit's bytes
and floats per parameter), ``VARIANTS`` and ``PRESETS`` (``tiny``,
``quick``, ``full``: which optimizers run on which workload, and how long
each is timed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from jgd.bench import models

LR = 1e-3

# --------------------------------------------------------------------------
# Workloads: real models with real losses on random data.
# --------------------------------------------------------------------------

WORKLOADS: dict[str, models.Model] = {
    m.name: m
    for m in (
        models.mlp("mlp-2M", (784, 1024, 1024, 10), batch=32),
        models.mlp("mlp-20M", (784, 4096, 4096, 10), batch=32),
        models.gpt("gpt", vocab=256, ctx=64, d=128, layers=3, heads=4, batch=16),
        models.cnn("cnn", image=(32, 32, 3), channels=(32, 64), hidden=256,
                   classes=10, batch=32),
        models.resmlp("resmlp-25", blocks=25, width=64, features=64, classes=10,
                      batch=32),
        models.resmlp("resmlp-100", blocks=100, width=64, features=64, classes=10,
                      batch=32),
        # Tiny stand-ins, for the harness's own tests.
        models.mlp("mlp-tiny", (16, 32, 32, 4), batch=8),
        models.gpt("gpt-tiny", vocab=32, ctx=8, d=16, layers=2, heads=2, batch=2),
        models.cnn("cnn-tiny", image=(8, 8, 1), channels=(4, 8), hidden=16,
                   classes=4, batch=4),
        models.resmlp("resmlp-tiny", blocks=6, width=8, features=8, classes=4,
                      batch=4),
    )
}  # fmt: skip


def count(params: Any) -> tuple[int, int]:
    """(leaves, elements) of a params tree."""
    import jax

    leaves = jax.tree.leaves(params)
    return len(leaves), sum(math.prod(x.shape) for x in leaves)


# --------------------------------------------------------------------------
# Optimizers: the same hyperparameters in jgd and optax.
# --------------------------------------------------------------------------

# Minimal bytes one optimizer step moves per float32 parameter (reads +
# writes, 4 bytes each): momentum reads p, g, its trace and writes p and the
# trace; Adam reads p, g, m, v and writes p, m, v. Global-norm clipping must
# read g once more to form the norm before the update pass can start.
BYTES_PER_PARAM = {"adam": 28, "momentum": 20, "clip+adamw": 32}
# Floats per parameter an optimizer step touches (its working set): the limit
# kernels run over a buffer of this many floats per parameter.
WORKING_SET = {"adam": 4, "momentum": 3, "clip+adamw": 4}
OPTIMIZERS = tuple(BYTES_PER_PARAM)


def build_optimizer(lib: Any, name: str) -> Any:
    """The benchmark's optimizer ``name`` from ``lib``, the ``jgd`` or the
    ``optax`` module: the two share names and arguments, so one recipe
    builds both."""
    recipes: dict[str, Callable[[], Any]] = {
        "adam": lambda: lib.adam(LR),
        "momentum": lambda: lib.sgd(LR, momentum=0.9),
        "clip+adamw": lambda: lib.chain(
            lib.clip_by_global_norm(1.0), lib.adamw(LR, weight_decay=1e-4)
        ),
    }
    return recipes[name]()


# --------------------------------------------------------------------------
# Variants and presets.
# --------------------------------------------------------------------------

# The first is the reference every ratio is taken against; optax-again is the
# same step compiled a second time, so its ratio is the cell's own noise.
VARIANTS = ("optax", "optax-again", "jgd", "jgd-step")
REFERENCE = "optax"

_ALL = OPTIMIZERS
PRESETS: dict[str, dict[str, Any]] = {
    # The harness's own tests: seconds.
    "tiny": {
        "cells": {"mlp-tiny": _ALL, "gpt-tiny": ("adam",), "cnn-tiny": ("adam",),
                  "resmlp-tiny": ("adam",)},
        "rounds": 7, "min_round_s": 0.002, "max_k": 50, "compile_repeats": 1,
    },
    # A smoke run of every model family with Adam: a few minutes.
    "quick": {
        "cells": {"mlp-2M": ("adam",), "mlp-20M": ("adam",), "gpt": ("adam",),
                  "cnn": ("adam",), "resmlp-25": ("adam",)},
        "rounds": 7, "min_round_s": 0.05, "max_k": 200, "compile_repeats": 1,
    },
    # What the goals are judged on. resmlp-100 runs Adam only: XLA:CPU takes
    # about a minute to compile each of its steps (benchmarks/README.md).
    "full": {
        "cells": {"mlp-2M": _ALL, "mlp-20M": _ALL, "gpt": _ALL, "cnn": _ALL,
                  "resmlp-100": ("adam",)},
        # One compile varies by up to a quarter here: the median of four,
        # one built in each position of the rotation of the four variants.
        # 21 rounds: a cell's ~90% interval spans its 7th to 15th ratio.
        "rounds": 21, "min_round_s": 0.4, "max_k": 500, "compile_repeats": 4,
    },
}  # fmt: skip
