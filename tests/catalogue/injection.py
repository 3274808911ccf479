"""Cases for hyperparameter injection and reduce_on_plateau.

See tests/catalogue/__init__.py for what each table feeds. reduce_on_plateau
needs ``value=`` in update, which the shared runner does not pass: its
cross-check against optax is in tests/test_plateau.py; hyperparams and
current_hyperparams, the state's settable hyperparameters and the trace
counts are in tests/test_injection.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

import jgd
from jgd import schedules as js
from tests.helpers import f64_count, lr, standard_promotion


def _standard_init(tx):
    """optax's inject_hyperparams evaluates schedules in init, which the
    shared runner calls under strict promotion (optax does not pass it)."""

    def init(params):
        with standard_promotion():
            return tx.init(params)

    return optax.GradientTransformationExtraArgs(init, tx.update)


def _plateau(**kw):
    import jgd.contrib

    return jgd.contrib.reduce_on_plateau(**kw)


# name -> (jgd factory, optax factory), each taking `sched` (bool).
CASES: dict = {
    "inject_hyperparams_adam": (
        lambda s: jgd.inject_hyperparams(jgd.adam)(lr(s, True), b1=0.8),
        lambda s: _standard_init(
            optax.inject_hyperparams(optax.adam)(lr(s, False), b1=0.8)
        ),
    ),
    # jgd's wrapper around an optax factory, inside a jgd chain after a jgd clip.
    "inject_hyperparams_optax_sgd_in_chain": (
        lambda s: jgd.chain(
            jgd.clip(1.0),
            jgd.inject_hyperparams(optax.sgd)(lr(s, True), momentum=0.9),
        ),
        lambda s: _standard_init(
            optax.chain(
                optax.clip(1.0),
                optax.inject_hyperparams(optax.sgd)(lr(s, False), momentum=0.9),
            )
        ),
    ),
    # optax's wrapper around a jgd factory, with a scheduled b1.
    "optax_inject_jgd_scale_by_adam_b1_schedule": (
        lambda s: optax.inject_hyperparams(jgd.scale_by_adam)(
            b1=js.linear_schedule(0.5, 0.9, 30), b2=0.99
        ),
        lambda s: _standard_init(
            optax.inject_hyperparams(optax.scale_by_adam)(
                b1=f64_count(optax.schedules.linear_schedule(0.5, 0.9, 30)), b2=0.99
            )
        ),
    ),
}
SCHEDULED: set[str] = {"inject_hyperparams_adam"}
CONFORMANCE: dict = {}
THROUGH_TRAIN: dict = {
    "inject_hyperparams_adam": lambda: jgd.inject_hyperparams(jgd.adam)(
        learning_rate=0.05, b1=0.8
    ),
    # rtol 0.5: the loss must halve to count as better, so the scale moves.
    "reduce_on_plateau_after_adam": lambda: jgd.chain(
        jgd.adam(0.05), _plateau(factor=0.5, patience=1, rtol=0.5)
    ),
}
BAD_INPUT: list = [
    (
        lambda: jgd.inject_hyperparams(jgd.adam(0.1)),
        TypeError,
        (
            "jgd.inject_hyperparams: inner_factory must be a function returning a "
            "transform (jgd.adam, optax.adam, ...); got Adam(learning_rate=0.1, "
            "b1=0.9, b2=0.999, eps=1e-08, eps_root=0.0, mu_dtype=None, "
            "nesterov=False) (Adam)."
        ),
    ),
    (
        lambda: jgd.inject_hyperparams(jgd.sgd, static_args="mask"),
        ValueError,
        (
            "jgd.inject_hyperparams: static_args must name arguments of inner_factory "
            "(learning_rate, momentum, nesterov, accumulator_dtype); got ['mask']."
        ),
    ),
    (
        lambda: jgd.inject_hyperparams(jgd.adam, hyperparam_dtype="fast"),
        TypeError,
        "jgd.inject_hyperparams: hyperparam_dtype must be a dtype or None; got 'fast'.",
    ),
    (
        lambda: jgd.inject_hyperparams(jgd.adam)(learning_rate=-0.1),
        ValueError,
        "jgd.adam: learning_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.inject_hyperparams(lambda learning_rate: learning_rate)(0.1),
        TypeError,
        (
            "jgd.inject_hyperparams: inner_factory must return a transform with init "
            "and update; got float."
        ),
    ),
    (
        lambda: jgd.hyperparams({"learning_rate": 0.1}),
        TypeError,
        (
            "jgd.hyperparams: opt must be a jgd optimizer or transform (or a "
            "jgd.train.TrainState); got dict."
        ),
    ),
    (
        lambda: jgd.current_hyperparams(
            jgd.chain(jgd.sgd(0.1), jgd.clip(1.0)), (jgd.sgd(0.1).init(jnp.zeros(1)),)
        ),
        TypeError,
        (
            "jgd.current_hyperparams: the state does not match the optimizer at "
            "'<root>': a chain of 2 needs a tuple of 2 states; got tuple."
        ),
    ),
    (
        lambda: jgd.current_hyperparams(
            jgd.scale_by_learning_rate(js.linear_schedule(1.0, 0.0, 10)),
            jgd.base.empty_state(),
        ),
        TypeError,
        (
            "jgd.current_hyperparams: cannot find the step count of the schedule "
            "at 'learning_rate' in the state: the state is not this optimizer's, "
            "or the schedule is used inside a transform jgd cannot read (evaluate "
            "it from that transform's state)."
        ),
    ),
    (
        lambda: _plateau(factor=1.0),
        ValueError,
        "jgd.contrib.reduce_on_plateau: factor must be in (0, 1); got 1.0.",
    ),
    (
        lambda: _plateau(patience=0),
        ValueError,
        "jgd.contrib.reduce_on_plateau: patience must be an integer >= 1; got 0.",
    ),
    (
        lambda: _plateau(patience=2.5),
        TypeError,
        (
            "jgd.contrib.reduce_on_plateau: patience must be an integer >= 1; got 2.5 "
            "(float)."
        ),
    ),
    (
        lambda: _plateau(rtol=0.0, atol=0.0),
        ValueError,
        (
            "jgd.contrib.reduce_on_plateau: rtol and atol must not both be 0 (nothing "
            "would count as an improvement); got rtol=0.0 and atol=0.0."
        ),
    ),
    (
        lambda: _plateau(rtol=1.5),
        ValueError,
        "jgd.contrib.reduce_on_plateau: rtol must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: _plateau(atol=-1.0),
        ValueError,
        "jgd.contrib.reduce_on_plateau: atol must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: _plateau(cooldown=-1),
        ValueError,
        "jgd.contrib.reduce_on_plateau: cooldown must be an integer >= 0; got -1.",
    ),
    (
        lambda: _plateau(accumulation_size=0),
        ValueError,
        (
            "jgd.contrib.reduce_on_plateau: accumulation_size must be an integer >= 1; "
            "got 0."
        ),
    ),
    (
        lambda: _plateau(min_scale=-0.1),
        ValueError,
        "jgd.contrib.reduce_on_plateau: min_scale must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: _plateau().update(jnp.ones(2), _plateau().init(jnp.ones(2))),
        TypeError,
        (
            "jgd.contrib.reduce_on_plateau: update needs value= (the loss or metric to "
            "watch); call update(updates, state, params, value=loss). "
            "jgd.train.make_step passes the batch loss."
        ),
    ),
]
KNOWN_DIFFERENCES: dict = {
    "hyperparam dtype": (
        "jgd.inject_hyperparams stores float hyperparameters as float32, or as "
        "the params' dtype where that is wider (float64); optax stores them in the "
        "params' highest dtype, so under bfloat16 params b2 = 0.999 becomes 1.0 "
        "and learning_rate 1e-3 becomes 0.000999451 (optax issue #1414). An optax "
        "inner factory is handed them weakly typed, as Python floats, so its "
        "bfloat16 state stays bfloat16 and gives optax's numbers without "
        "injection. hyperparam_dtype overrides both, as in optax. "
        "tests/test_injection.py::test_hyperparams_stay_float32_under_bfloat16."
    ),
    "plateau counts": (
        "jgd.contrib.reduce_on_plateau refuses patience < 1 and "
        "accumulation_size < 1. With patience 0 optax reduces the scale after "
        "each improvement (its plateau count is 0 only there) and never on a "
        "plateau; with accumulation_size 0 it never evaluates (its count is "
        "never 0). Silent nonsense is a bug to report. tests/test_errors.py "
        "(BAD_INPUT) and "
        "tests/test_plateau.py::test_optax_reduces_on_improvement_with_patience_zero."
    ),
}
SCHEDULES: dict = {}
