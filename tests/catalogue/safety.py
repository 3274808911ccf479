"""Issue 13's tables: hyperparameters that would give silent wrong results
(NaN at step 1, an uphill step, a truncated moment) refused at construction,
and the float16 difference of the adaptive optimizers (Adam's relatives too).
Checked by tests/test_errors.py (BAD_INPUT) and tests/test_safety.py."""

from __future__ import annotations

import jax.numpy as jnp

import jgd
from jgd import schedules as js

CASES: dict = {}
SCHEDULED: set[str] = set()
CONFORMANCE: dict = {}
THROUGH_TRAIN: dict = {}
SCHEDULES: dict = {}

_F32 = "in float32 too (jgd's float unless x64 is on)"
_DTYPE = "must be a floating-point dtype (float32, bfloat16, float16, float64) or None"

BAD_INPUT: list = [
    # A learning rate of None leaves the gradient as the step: uphill.
    (
        lambda: jgd.gd(None),
        TypeError,
        "jgd.gd: learning_rate must be a number or a schedule; got None (NoneType).",
    ),
    (
        lambda: jgd.adamw(None),
        TypeError,
        "jgd.adamw: learning_rate must be a number or a schedule; got None (NoneType).",
    ),
    # The same for every optimizer whose learning rate has no meaningful None
    # (adadelta, adafactor and lbfgs keep theirs: see KNOWN_DIFFERENCES).
    *[
        (
            lambda name=name: getattr(jgd, name)(None),
            TypeError,
            (
                f"jgd.{name}: learning_rate must be a number or a schedule; got "
                "None (NoneType)."
            ),
        )
        for name in (
            "adabelief",
            "adamax",
            "adamaxw",
            "adan",
            "amsgrad",
            "lion",
            "radam",
            "yogi",
            "lamb",
            "lars",
            "novograd",
            "sm3",
            "noisy_sgd",
            "optimistic_adam_v2",
            "optimistic_gradient_descent",
            "sign_sgd",
            "signum",
        )
    ],
    # Valid in float64, not once rounded to float32 (jgd's float without x64).
    (
        lambda: jgd.adam(1e-3, b1=0.99999999999),
        ValueError,
        (
            f"jgd.adam: b1 must be in [0, 1) {_F32}; got 0.99999999999, which is 1.0 "
            "in float32."
        ),
    ),
    (
        lambda: jgd.scale_by_adam(b2=1 - 1e-9),
        ValueError,
        (
            f"jgd.scale_by_adam: b2 must be in [0, 1) {_F32}; got 0.999999999, which "
            "is 1.0 in float32."
        ),
    ),
    (
        lambda: jgd.rmsprop(0.1, decay=1 - 1e-10),
        ValueError,
        (
            f"jgd.rmsprop: decay must be in [0, 1) {_F32}; got 0.9999999999, which is "
            "1.0 in float32."
        ),
    ),
    (
        lambda: jgd.gd(1e39),
        ValueError,
        (
            f"jgd.gd: learning_rate must be finite and >= 0 {_F32}; got 1e+39, which "
            "is inf in float32."
        ),
    ),
    (
        lambda: jgd.adagrad(0.1, eps=1e40),
        ValueError,
        (
            f"jgd.adagrad: eps must be finite and >= 0 {_F32}; got 1e+40, which is inf "
            "in float32."
        ),
    ),
    # An integer moment truncates (1 - b1) * g to 0.
    (
        lambda: jgd.adam(1e-3, mu_dtype=jnp.int32),
        TypeError,
        f"jgd.adam: mu_dtype {_DTYPE}; got int32.",
    ),
    (
        lambda: jgd.sgd(0.1, momentum=0.9, accumulator_dtype="int8"),
        TypeError,
        f"jgd.sgd: accumulator_dtype {_DTYPE}; got int8.",
    ),
    (
        lambda: jgd.trace(0.9, accumulator_dtype=bool),
        TypeError,
        f"jgd.trace: accumulator_dtype {_DTYPE}; got bool.",
    ),
    # A jgd schedule's known values, as a learning rate, must be >= 0.
    (
        lambda: jgd.sgd(js.linear_schedule(-1.0, 1.0, 10)),
        ValueError,
        "jgd.sgd: learning_rate's init_value must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.adam(js.warmup_cosine_decay_schedule(0.0, 1e-3, 5, 50, -1e-4)),
        ValueError,
        "jgd.adam: learning_rate's end_value must be finite and >= 0; got -0.0001.",
    ),
    (
        lambda: jgd.scale_by_learning_rate(js.cosine_decay_schedule(1.0, 10, -0.5)),
        ValueError,
        (
            "jgd.scale_by_learning_rate: learning_rate's alpha * init_value must be "
            "finite and >= 0; got -0.5."
        ),
    ),
    (
        lambda: jgd.adam(
            js.join_schedules(
                [js.constant_schedule(0.1), js.exponential_decay(-0.1, 5, 0.5)], [10]
            )
        ),
        ValueError,
        (
            "jgd.adam: learning_rate's schedules[1].init_value must be finite and >= 0; "
            "got -0.1."
        ),
    ),
    # 0**power (c**exponent) ends the schedule: a negative one gives inf there.
    (
        lambda: js.polynomial_schedule(1.0, 0.0, -1.0, 10),
        ValueError,
        "jgd.schedules.polynomial_schedule: power must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: js.cosine_decay_schedule(1.0, 10, exponent=-2.0),
        ValueError,
        (
            "jgd.schedules.cosine_decay_schedule: exponent must be finite and >= 0; "
            "got -2.0."
        ),
    ),
    (
        lambda: js.warmup_cosine_decay_schedule(0.0, 1.0, 2, 10, exponent=-1.0),
        ValueError,
        (
            "jgd.schedules.warmup_cosine_decay_schedule: exponent must be finite and "
            ">= 0; got -1.0."
        ),
    ),
]

KNOWN_DIFFERENCES: dict = {
    "float16 adaptive optimizers": (
        "scale_by_adam, scale_by_rms, scale_by_stddev and scale_by_rss (so adam, "
        "adamw, nadam, rmsprop, adagrad), and Adam's relatives scale_by_amsgrad, "
        "scale_by_adamax, scale_by_belief, scale_by_radam, scale_by_yogi, "
        "scale_by_adan and scale_by_adadelta (so amsgrad, adamax, adamaxw, "
        "adabelief, radam, yogi, adan, adadelta) keep their moments of float16 "
        "leaves in float32 (adan's previous gradient stays float16, exact), "
        "compute in float32 and round the update back to float16 (saturating at "
        "65504; jgd/transforms/lowp.py). optax computes in float16, where eps = "
        "1e-8 is 0 and g**2 under- or overflows: a zero gradient gives NaN, "
        "|g| > 256 gives inf or a zero step (optax issue #1754). bfloat16, float32 "
        "and float64 leaves are unchanged, bit for bit. Still unsafe in float16 "
        "(norms of a leaf overflow): lamb, lars, adafactor, fromage, novograd, "
        "sm3 (tests/test_property.py FLOAT16_UNSAFE). "
        "tests/test_safety.py::test_float16_adaptive_optimizers_stay_finite."
    ),
    "hyperparameters valid in float32": (
        "A hyperparameter must pass its range check also once rounded to float32 "
        "(b1 = 1 - 1e-11 is 1.0 there, 1e39 is inf); optax takes them and gives "
        "NaN or inf at the first step. tests/catalogue/safety.py BAD_INPUT."
    ),
    "classic optimizers refuse learning_rate=None": (
        "optax.sgd(None), optax.adam(None), ... leave out the scaling, so the step "
        "is +gradient direction (uphill); jgd.gd/sgd/rmsprop/adagrad/adam/adamw "
        "raise, and so do the other optimizers whose None means nothing (radam, "
        "yogi, lamb, sign_sgd, ...). adadelta(None) takes the paper's step (a "
        "factor 1, downhill), adafactor(None) and lbfgs(None) mean 'no scaling' "
        "before their own sign flip or line search, as optax's. "
        "scale_by_learning_rate(None) is still the identity, as optax's. "
        "tests/catalogue/safety.py BAD_INPUT."
    ),
    "negative schedules as learning rates": (
        "A jgd schedule passed as a learning rate must have known values (init, "
        "peak, end, alpha * init) >= 0, as a float learning rate must; the "
        "schedule itself may be negative elsewhere (schedule.known_values()). "
        "Negative powers and exponents of polynomial and cosine schedules raise "
        "(inf at the end of the transition in optax). tests/test_safety.py."
    ),
}
