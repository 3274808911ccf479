"""Accumulation and non-finite steps (issue 12): ``MultiSteps``,
``apply_every``, ``apply_if_finite`` and ``clip_by_global_norm``'s
``record_norm``.

The ``CASES`` mix jgd and optax pieces inside each other (optax.MultiSteps
over jgd.adam, jgd.MultiSteps over optax.sgd). ``apply_if_finite`` and
``record_norm`` have states with a field optax lacks: their cross-checks are
in tests/test_nonfinite.py, on streams with NaN and Inf steps.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

import jgd
from tests.helpers import lr


def _acc_dtype():
    """jgd's default accumulator (None: float32, float64 under x64) as an
    explicit dtype for optax, whose default float32 rounds float64 gradients
    (KNOWN_DIFFERENCES['multisteps accumulator dtype'])."""
    return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def _k_schedule(step):
    """Two mini-steps for the first two updates, then three."""
    return jnp.where(step < 2, 2, 3)


# Inner optimizers whose updates have at most one product per sum (sgd,
# momentum, weight decay): see KNOWN_DIFFERENCES['multisteps fma'] for Adam's.
CASES: dict = {
    # optax's wrapper over a jgd optimizer, skipping large mini-steps (the
    # stream's squared norms run 16-59): both branches of the skip run.
    "multi_steps_skip_large_jgd_inner": (
        lambda s: jgd.MultiSteps(
            jgd.chain(jgd.add_decayed_weights(0.01), jgd.sgd(0.05, momentum=0.5)),
            2,
            should_skip_update_fn=functools.partial(
                jgd.skip_large_updates, max_squared_norm=40.0
            ),
        ),
        lambda s: optax.MultiSteps(
            jgd.chain(jgd.add_decayed_weights(0.01), jgd.sgd(0.05, momentum=0.5)),
            2,
            should_skip_update_fn=functools.partial(
                optax.skip_large_updates, max_squared_norm=40.0
            ),
            accumulator_dtype=_acc_dtype(),
        ),
    ),
    # jgd's wrapper over an optax optimizer; a schedule of k; summed
    # gradients; optax's skip_not_finite (never skips here: its skip_state
    # is compared).
    "multi_steps_sum_k_schedule_optax_inner": (
        lambda s: jgd.MultiSteps(
            optax.sgd(0.02, momentum=0.9),
            _k_schedule,
            use_grad_mean=False,
            should_skip_update_fn=optax.skip_not_finite,
        ),
        lambda s: optax.MultiSteps(
            optax.sgd(0.02, momentum=0.9),
            _k_schedule,
            use_grad_mean=False,
            should_skip_update_fn=optax.skip_not_finite,
            accumulator_dtype=_acc_dtype(),
        ),
    ),
    "apply_every_sgd": (
        lambda s: jgd.chain(jgd.apply_every(3), jgd.sgd(lr(s, True))),
        lambda s: optax.chain(optax.apply_every(3), optax.sgd(lr(s, False))),
    ),
}
# That the inner schedule counts optimizer steps, not mini-steps, is checked
# by tests/test_accumulate.py::test_inner_schedule_counts_optimizer_steps.
SCHEDULED: set[str] = set()
CONFORMANCE: dict = {}

BAD_INPUT: list = [
    (
        lambda: jgd.MultiSteps(jgd.adam(0.1), 0),
        ValueError,
        "jgd.MultiSteps: every_k_schedule must be an integer >= 1; got 0.",
    ),
    (
        lambda: jgd.MultiSteps(jgd.adam(0.1), 2.0),
        TypeError,
        (
            "jgd.MultiSteps: every_k_schedule must be an integer >= 1 or a callable "
            "gradient_step -> k; got 2.0 (float)."
        ),
    ),
    (
        lambda: jgd.MultiSteps("adam", 2),
        TypeError,
        (
            "jgd.MultiSteps: opt must be a transform with init and update (jgd or "
            "optax); got 'adam' (str)."
        ),
    ),
    (
        lambda: jgd.MultiSteps(jgd.adam(0.1), 2, use_grad_mean=1),
        TypeError,
        "jgd.MultiSteps: use_grad_mean must be a bool; got 1.",
    ),
    (
        lambda: jgd.MultiSteps(jgd.adam(0.1), 2, should_skip_update_fn=True),
        TypeError,
        (
            "jgd.MultiSteps: should_skip_update_fn must be None or a callable "
            "(updates, gradient_step, params) -> (bool, skip_state); got True."
        ),
    ),
    (
        lambda: jgd.MultiSteps(jgd.adam(0.1), 2, accumulator_dtype="floaty"),
        TypeError,
        "jgd.MultiSteps: accumulator_dtype must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: jgd.apply_every(0),
        ValueError,
        "jgd.apply_every: k must be an integer >= 1; got 0.",
    ),
    (
        lambda: jgd.apply_every(2.5),
        TypeError,
        "jgd.apply_every: k must be an integer >= 1; got 2.5 (float).",
    ),
    (
        lambda: jgd.apply_if_finite(jgd.adam(0.1), -1),
        ValueError,
        "jgd.apply_if_finite: max_consecutive_errors must be an integer >= 0; got -1.",
    ),
    (
        lambda: jgd.apply_if_finite(jgd.adam(0.1), 1.5),
        TypeError,
        (
            "jgd.apply_if_finite: max_consecutive_errors must be an integer >= 0; "
            "got 1.5 (float)."
        ),
    ),
    (
        lambda: jgd.apply_if_finite(None, 3),
        TypeError,
        (
            "jgd.apply_if_finite: inner must be a transform with init and update "
            "(jgd or optax); got None (NoneType)."
        ),
    ),
    (
        lambda: jgd.clip_by_global_norm(1.0, record_norm="yes"),
        TypeError,
        "jgd.clip_by_global_norm: record_norm must be a bool; got 'yes'.",
    ),
]

THROUGH_TRAIN: dict = {
    "multi_steps_adam": lambda: jgd.MultiSteps(jgd.adam(0.05), 2),
    "apply_every_sgd": lambda: jgd.chain(
        jgd.apply_every(2), jgd.sgd(0.1, momentum=0.9)
    ),
    "apply_if_finite_clip_adam": lambda: jgd.apply_if_finite(
        jgd.chain(jgd.clip_by_global_norm(1.0, record_norm=True), jgd.adam(0.05)), 2
    ),
}

KNOWN_DIFFERENCES: dict = {
    "multisteps accumulator dtype": (
        "jgd.MultiSteps' accumulator_dtype defaults to None: float32, or the "
        "gradient's dtype where that is wider (float64, complex). optax 0.2.8's "
        "default float32 rounds float64 gradients to float32 and drops the "
        "imaginary part of complex ones. Equal for float32 and bfloat16 "
        "gradients. The float64 cases give optax float64 explicitly; "
        "tests/test_accumulate.py::test_default_accumulator_dtype checks it."
    ),
    "accumulate k=1": (
        "With k the int 1, jgd.MultiSteps keeps acc_grads=() and "
        "jgd.apply_every grad_acc=(): no second param-sized buffer, where "
        "optax keeps zeros (MultiSteps) or a copy of the last update "
        "(apply_every). Updates and every other field are equal: "
        "tests/test_accumulate.py::test_k1_keeps_no_accumulator."
    ),
    "multisteps inner runs on the k-th mini-step only": (
        "optax.MultiSteps runs the inner optimizer on every mini-step and "
        "discards the result with emit * update (and where); jgd runs it under "
        "lax.cond on the k-th mini-step only. The same numbers with finite "
        "gradients; k - 1 of k inner updates saved; peak memory 2.2 "
        "param-sized buffers below optax's at k = 1, 0.2 above at k = 4 "
        "(benchmarks/results/multisteps_memory.md); a NaN or Inf from a "
        "discarded inner update "
        "cannot leak out as 0 * NaN, and the accumulator resets to 0 where "
        "optax's (1 - emit) * acc keeps a NaN for good "
        "(tests/test_accumulate.py::test_nan_does_not_stick_in_the_accumulator)."
    ),
    "multisteps fma": (
        "In float32, an Adam inside optax.MultiSteps gives updates up to 1 ulp "
        "from Adam's own on the same mean gradients: optax computes the inner "
        "update at every mini-step and selects it, XLA fuses the selection "
        "into the moment updates, and LLVM (XLA:CPU always allows FMA "
        "contraction) contracts another product of b1 * mu + (1 - b1) * g into "
        "an FMA. jgd runs the inner under lax.cond and gives Adam's own "
        "numbers bit for bit; over 50 steps optax's ulp grows past rtol 1e-6. "
        "optax.apply_every's emit * acc meets a following momentum's add the "
        "same way. The CASES therefore use inners with one product per sum "
        "(sgd, momentum, weight decay), which agree in float32; "
        "tests/test_accumulate.py::test_adam_inside_equals_a_hand_loop_bit_for_bit "
        "and ::test_adam_inside_matches_optax_float64 (rtol 1e-12, jgd and "
        "optax inside each other) check Adam."
    ),
    "apply_every static k": (
        "jgd.apply_every's k is static (a step count: it sets the state's "
        "shape at k=1); optax's may be an array."
    ),
    "apply_if_finite give-up": (
        "jgd.apply_if_finite follows optax PR #1746: the step that gives up "
        "(accepts a non-finite update after max_consecutive_errors skipped) "
        "resets notfinite_count to 0, so the next non-finite steps are "
        "skipped again; optax 0.2.8 keeps counting and accepts every later "
        "one. tests/test_nonfinite.py::test_give_up_resets_the_count_pr_1746."
    ),
    "apply_if_finite state": (
        "ApplyIfFiniteState has optax's four fields, then notfinite_leaves "
        "(jgd.LeafFlags: one bool per leaf, the paths static) naming where "
        "the first non-finite values of the latest bad run were "
        "(jgd.nonfinite_paths). Compared with optax field by field on optax's "
        "fields: tests/test_nonfinite.py::test_matches_optax_on_optax_fields."
    ),
    "clip_by_global_norm record_norm": (
        "jgd.clip_by_global_norm(max_norm, record_norm=True) keeps the "
        "pre-clip norm in ClipByGlobalNormState(global_norm) (optax issue "
        "#326; torch's clip_grad_norm_ returns it). Opt-in: by default the "
        "state is EmptyState(), as optax's, so states compare field by field. "
        "tests/test_nonfinite.py::test_record_norm_is_the_pre_clip_norm."
    ),
}
SCHEDULES: dict = {}
