"""Cases for L-BFGS and its line searches (jgd/optimizers/quasi_newton.py, jgd/transforms/linesearch.py).

See tests/catalogue/__init__.py for what each table feeds. The line searches
need ``value=``, ``grad=`` and ``value_fn=`` in ``update``, which the generic
runners do not pass: only the configurations without a line search join
CASES, CONFORMANCE and THROUGH_TRAIN, and tests/test_quasi_newton.py
cross-checks the line searches against optax step by step.
"""

from __future__ import annotations

import math

import optax

import jgd
from tests.helpers import lr

CASES: dict = {
    "scale_by_lbfgs": (
        lambda s: jgd.scale_by_lbfgs(),
        lambda s: optax.scale_by_lbfgs(),
    ),
    "scale_by_lbfgs_memory3_unscaled": (
        lambda s: jgd.scale_by_lbfgs(memory_size=3, scale_init_precond=False),
        lambda s: optax.scale_by_lbfgs(memory_size=3, scale_init_precond=False),
    ),
    "lbfgs_no_linesearch": (
        lambda s: jgd.lbfgs(lr(s, True), memory_size=4, linesearch=None),
        lambda s: optax.lbfgs(lr(s, False), memory_size=4, linesearch=None),
    ),
    "lbfgs_no_linesearch_no_lr": (
        lambda s: jgd.lbfgs(memory_size=1, linesearch=None),
        lambda s: optax.lbfgs(memory_size=1, linesearch=None),
    ),
}
SCHEDULED: set[str] = {"lbfgs_no_linesearch"}
CONFORMANCE: dict = {
    "lbfgs_no_linesearch": (
        lambda lr: jgd.lbfgs(lr, linesearch=None),
        1.0,
        1.0,
        200,
    ),
    "lbfgs_no_linesearch_memory3": (
        lambda lr: jgd.lbfgs(lr, memory_size=3, linesearch=None),
        1.0,
        0.5,
        300,
    ),
}
BAD_INPUT: list = [
    (
        lambda: jgd.lbfgs(memory_size=0),
        ValueError,
        "jgd.lbfgs: memory_size must be an integer >= 1; got 0.",
    ),
    (
        lambda: jgd.lbfgs(memory_size=2.5),
        TypeError,
        "jgd.lbfgs: memory_size must be an integer >= 1; got 2.5 (float).",
    ),
    (
        lambda: jgd.lbfgs(-1.0),
        ValueError,
        "jgd.lbfgs: learning_rate must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.lbfgs(linesearch="zoom"),
        TypeError,
        (
            "jgd.lbfgs: linesearch must be a transform (jgd's or optax's) or None; "
            "got 'zoom' (str)."
        ),
    ),
    (
        lambda: jgd.scale_by_lbfgs(memory_size=-3),
        ValueError,
        "jgd.scale_by_lbfgs: memory_size must be an integer >= 1; got -3.",
    ),
    (
        lambda: jgd.scale_by_zoom_linesearch(0),
        ValueError,
        (
            "jgd.scale_by_zoom_linesearch: max_linesearch_steps must be an integer "
            ">= 1; got 0."
        ),
    ),
    (
        lambda: jgd.scale_by_zoom_linesearch(10, max_learning_rate=0.0),
        ValueError,
        (
            "jgd.scale_by_zoom_linesearch: max_learning_rate must be finite and > 0; "
            "got 0.0."
        ),
    ),
    (
        lambda: jgd.scale_by_zoom_linesearch(10, slope_rtol=1.5),
        ValueError,
        "jgd.scale_by_zoom_linesearch: slope_rtol must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.scale_by_zoom_linesearch(10, curv_rtol=-math.inf),
        ValueError,
        "jgd.scale_by_zoom_linesearch: curv_rtol must be finite and >= 0; got -inf.",
    ),
    (
        lambda: jgd.scale_by_zoom_linesearch(10, increase_factor=0.5),
        ValueError,
        (
            "jgd.scale_by_zoom_linesearch: increase_factor must be finite and >= 1; "
            "got 0.5."
        ),
    ),
    (
        lambda: jgd.scale_by_zoom_linesearch(10, initial_guess_strategy="two"),
        ValueError,
        (
            "jgd.scale_by_zoom_linesearch: initial_guess_strategy must be 'one' or "
            "'keep'; got 'two'."
        ),
    ),
    (
        lambda: jgd.lbfgs(linesearch=jgd.scale_by_zoom_linesearch(5, tol=-1.0)),
        ValueError,
        "jgd.scale_by_zoom_linesearch: tol must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_backtracking_linesearch(-1),
        ValueError,
        (
            "jgd.scale_by_backtracking_linesearch: max_backtracking_steps must be an "
            "integer >= 0; got -1."
        ),
    ),
    (
        lambda: jgd.scale_by_backtracking_linesearch(10, decrease_factor=1.0),
        ValueError,
        (
            "jgd.scale_by_backtracking_linesearch: decrease_factor must be in (0, 1); "
            "got 1.0."
        ),
    ),
    (
        lambda: jgd.scale_by_backtracking_linesearch(10, max_learning_rate=-1.0),
        ValueError,
        (
            "jgd.scale_by_backtracking_linesearch: max_learning_rate must be finite "
            "and > 0; got -1.0."
        ),
    ),
    (
        lambda: jgd.scale_by_backtracking_linesearch(10, increase_factor=0.9),
        ValueError,
        (
            "jgd.scale_by_backtracking_linesearch: increase_factor must be finite "
            "and >= 1; got 0.9."
        ),
    ),
]
# The line searches need value=/value_fn= that make_step does not pass yet:
# only the configurations without one run through jgd.train here.
THROUGH_TRAIN: dict = {
    # make_step passes value=, grad= and value_fn=, so the line searches run.
    "lbfgs": lambda: jgd.lbfgs(),
    "lbfgs_backtracking": lambda: jgd.lbfgs(
        linesearch=jgd.scale_by_backtracking_linesearch(max_backtracking_steps=15)
    ),
    "lbfgs_no_linesearch": lambda: jgd.lbfgs(0.5, memory_size=3, linesearch=None),
    "lbfgs_no_linesearch_no_lr": lambda: jgd.lbfgs(linesearch=None),
}
KNOWN_DIFFERENCES: dict[str, str] = {
    "lbfgs weights dtype": (
        "jgd.scale_by_lbfgs keeps weights_memory (the rho = 1/<y, s> of each "
        "pair) in the params' widest real dtype; optax in the default float "
        "dtype (jnp.zeros(memory_size)). The same for float32 params without "
        "x64 and float64 params with it (every cross-check); for bfloat16 params "
        "jgd's state stays bfloat16, as jgd's states do (the conformance suite's "
        "test_dtypes_are_kept), where optax's weights are float32. See "
        "tests/test_quasi_newton.py::test_bfloat16_keeps_its_dtype."
    ),
    "linesearch counts": (
        "The line searches' info.num_linesearch_steps is int32 in jgd, as every "
        "jgd count; optax makes it with jnp.asarray(0), int64 under x64. Values "
        "are equal; tests/test_quasi_newton.py's float64 cross-checks compare "
        "that leaf's value and skip its dtype."
    ),
}
SCHEDULES: dict = {}
