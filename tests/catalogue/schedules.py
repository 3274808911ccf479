"""Cases for The catalogue's schedules (jgd/schedules/), and jgd.tree's
deliberate differences from optax.tree (its cross-checks are in
tests/test_tree.py).

See tests/catalogue/__init__.py for what each table feeds. Golden numbers, the
top-level names and the arguments optax accepts and jgd rejects are in
tests/test_schedules.py.
"""

from __future__ import annotations

import optax

from jgd import schedules as js

CASES: dict = {}
SCHEDULED: set[str] = set()
CONFORMANCE: dict = {}
THROUGH_TRAIN: dict = {}

KNOWN_DIFFERENCES: dict[str, str] = {
    "schedule boundaries and phases": (
        "Schedules that optax builds but that silently skip a piece raise "
        "ValueError in jgd: join_schedules with boundaries that do not increase "
        "(in optax the later piece takes over first, so the one between never "
        "runs); linear_onecycle_schedule and cosine_onecycle_schedule when two "
        "phase boundaries (int(pct_start * transition_steps), "
        "int(pct_final * transition_steps), transition_steps) fall on one step "
        "(optax keys the phases by boundary in a dict, so one overwrites "
        "another: the peak is never reached, or the final value is wrong); "
        "warmup_constant_schedule with warmup_steps <= 0 (optax then holds "
        "init_value for good, never reaching peak_value); negative boundaries of "
        "piecewise_interpolate_schedule. See "
        "tests/test_schedules.py::test_arguments_optax_accepts_jgd_rejects."
    ),
    "tree.set nested matches": (
        "jgd.tree.set replaces every match that get_all_with_path finds. Under a "
        "matching node, optax.tree.set looks one level down only: it leaves a "
        "match in a list, dict or state held by a child that has no match of its "
        "own (inject_hyperparams' WrappedScheduleState.count under "
        "hyperparams_states), though optax.tree.get finds it. See "
        "tests/test_tree.py::test_set_replaces_nested_matches."
    ),
    "tree.bias_correction argument name": (
        "jgd.tree.bias_correction(moments, decay, count) keeps the name its first "
        "argument had in jgd before optax.tree joined (optax's is moment); the "
        "values are optax's bit for bit (compiled; tests/test_tree.py)."
    ),
}

_COSINE_CYCLES = [
    {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 2, "decay_steps": 10},
    {
        "init_value": 0.1,
        "peak_value": 0.5,
        "warmup_steps": 0,
        "decay_steps": 6,
        "end_value": 0.05,
        "exponent": 2.0,
    },
    {
        "init_value": 0.0,
        "peak_value": 0.8,
        "warmup_steps": 3,
        "decay_steps": 8,
        "end_value": 0.01,
    },
]

# name -> (jgd schedule, optax schedule, last step), every integer step compared.
SCHEDULES: dict = {
    "piecewise_interpolate_linear": (
        js.piecewise_interpolate_schedule("linear", 1.0, {8: 0.01, 4: 0.1, 15: 2.0}),
        optax.schedules.piecewise_interpolate_schedule(
            "linear", 1.0, {8: 0.01, 4: 0.1, 15: 2.0}
        ),
        20,
    ),
    "piecewise_interpolate_cosine_from_0": (
        js.piecewise_interpolate_schedule("cosine", 0.5, {0: 2.0, 6: 0.1, 13: 0.5}),
        optax.schedules.piecewise_interpolate_schedule(
            "cosine", 0.5, {0: 2.0, 6: 0.1, 13: 0.5}
        ),
        20,
    ),
    "piecewise_interpolate_no_boundaries": (
        js.piecewise_interpolate_schedule("cosine", 0.3),
        optax.schedules.piecewise_interpolate_schedule("cosine", 0.3),
        5,
    ),
    "warmup_constant": (
        js.warmup_constant_schedule(0.1, 1.0, 7),
        optax.schedules.warmup_constant_schedule(0.1, 1.0, 7),
        12,
    ),
    "warmup_exponential": (
        js.warmup_exponential_decay_schedule(0.0, 1.0, 5, 3, 0.7),
        optax.schedules.warmup_exponential_decay_schedule(0.0, 1.0, 5, 3, 0.7),
        30,
    ),
    "warmup_exponential_all_args": (
        js.warmup_exponential_decay_schedule(
            0.1, 2.0, 4, 3, 0.8, transition_begin=2, staircase=True, end_value=0.5
        ),
        optax.schedules.warmup_exponential_decay_schedule(
            0.1, 2.0, 4, 3, 0.8, transition_begin=2, staircase=True, end_value=0.5
        ),
        40,
    ),
    "warmup_exponential_growth_no_warmup": (
        js.warmup_exponential_decay_schedule(0.0, 0.1, 0, 2, 1.5, end_value=1.0),
        optax.schedules.warmup_exponential_decay_schedule(
            0.0, 0.1, 0, 2, 1.5, end_value=1.0
        ),
        20,
    ),
    "linear_onecycle": (
        js.linear_onecycle_schedule(30, 1.0),
        optax.schedules.linear_onecycle_schedule(30, 1.0),
        40,
    ),
    "linear_onecycle_all_args": (
        js.linear_onecycle_schedule(
            20,
            0.5,
            pct_start=0.25,
            pct_final=0.6,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        optax.schedules.linear_onecycle_schedule(
            20,
            0.5,
            pct_start=0.25,
            pct_final=0.6,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        25,
    ),
    "linear_onecycle_start_at_peak": (
        js.linear_onecycle_schedule(10, 1.0, pct_start=0.0),
        optax.schedules.linear_onecycle_schedule(10, 1.0, pct_start=0.0),
        12,
    ),
    "cosine_onecycle": (
        js.cosine_onecycle_schedule(30, 1.0),
        optax.schedules.cosine_onecycle_schedule(30, 1.0),
        40,
    ),
    "cosine_onecycle_all_args": (
        js.cosine_onecycle_schedule(
            17, 2.0, pct_start=0.5, div_factor=5.0, final_div_factor=20.0
        ),
        optax.schedules.cosine_onecycle_schedule(
            17, 2.0, pct_start=0.5, div_factor=5.0, final_div_factor=20.0
        ),
        22,
    ),
    "sgdr": (
        js.sgdr_schedule(_COSINE_CYCLES),
        optax.schedules.sgdr_schedule(_COSINE_CYCLES),
        30,
    ),
    "sgdr_one_cycle": (
        js.sgdr_schedule(_COSINE_CYCLES[:1]),
        optax.schedules.sgdr_schedule(_COSINE_CYCLES[:1]),
        14,
    ),
}

_SGDR = "jgd.schedules.sgdr_schedule"
_PI = "jgd.schedules.piecewise_interpolate_schedule"
_WE = "jgd.schedules.warmup_exponential_decay_schedule"
_LO = "jgd.schedules.linear_onecycle_schedule"
_CO = "jgd.schedules.cosine_onecycle_schedule"
_JOIN = "jgd.schedules.join_schedules"

# (call, exception type, exact message)
BAD_INPUT: list = [
    (
        lambda: js.piecewise_interpolate_schedule("quadratic", 1.0, {5: 0.5}),
        ValueError,
        f"{_PI}: interpolate_type must be 'linear' or 'cosine'; got 'quadratic'.",
    ),
    (
        lambda: js.piecewise_interpolate_schedule("linear", 1.0, {-5: 0.5}),
        ValueError,
        f"{_PI}: boundaries_and_scales key must be an integer >= 0; got -5.",
    ),
    (
        lambda: js.piecewise_interpolate_schedule("linear", 1.0, {2.5: 0.5}),
        TypeError,
        (f"{_PI}: boundaries_and_scales key must be an integer >= 0; got 2.5 (float)."),
    ),
    (
        lambda: js.piecewise_interpolate_schedule("cosine", 1.0, {5: -0.5}),
        ValueError,
        f"{_PI}: the scale at boundary 5 must be finite and >= 0; got -0.5.",
    ),
    (
        lambda: js.PiecewiseInterpolateSchedule("linear", 1.0, (0.5, 0.5), (10, 5)),
        ValueError,
        f"{_PI}: boundaries must be increasing; got [10, 5].",
    ),
    (
        lambda: js.warmup_constant_schedule(0.0, 1.0, 0),
        ValueError,
        (
            "jgd.schedules.warmup_constant_schedule: warmup_steps must be an integer "
            ">= 1; got 0."
        ),
    ),
    (
        lambda: js.warmup_exponential_decay_schedule(0.0, 1.0, -1, 5, 0.5),
        ValueError,
        f"{_WE}: warmup_steps must be an integer >= 0; got -1.",
    ),
    (
        lambda: js.warmup_exponential_decay_schedule(0.0, 1.0, 5, 0, 0.5),
        ValueError,
        f"{_WE}: transition_steps must be an integer >= 1; got 0.",
    ),
    (
        lambda: js.warmup_exponential_decay_schedule(0.0, 1.0, 5, 5, 0.0),
        ValueError,
        f"{_WE}: decay_rate must be finite and > 0; got 0.0.",
    ),
    (
        lambda: js.warmup_exponential_decay_schedule(
            0.0, 1.0, 5, 5, 0.5, end_value=float("nan")
        ),
        ValueError,
        f"{_WE}: end_value must be finite; got nan.",
    ),
    (
        lambda: js.linear_onecycle_schedule(0, 1.0),
        ValueError,
        f"{_LO}: transition_steps must be an integer >= 1; got 0.",
    ),
    (
        lambda: js.linear_onecycle_schedule(10, 1.0, pct_start=1.5),
        ValueError,
        f"{_LO}: pct_start must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: js.linear_onecycle_schedule(10, 1.0, div_factor=0.0),
        ValueError,
        f"{_LO}: div_factor must be finite and > 0; got 0.0.",
    ),
    (
        lambda: js.linear_onecycle_schedule(10, 1.0, pct_start=0.3, pct_final=0.35),
        ValueError,
        (
            f"{_LO}: the phase boundaries int(pct_start * transition_steps), "
            "int(pct_final * transition_steps), transition_steps must be increasing; "
            "got 3, 3, 10."
        ),
    ),
    (
        lambda: js.linear_onecycle_schedule(10, 1.0, pct_final=1.0),
        ValueError,
        (
            f"{_LO}: the phase boundaries int(pct_start * transition_steps), "
            "int(pct_final * transition_steps), transition_steps must be increasing; "
            "got 3, 10, 10."
        ),
    ),
    (
        lambda: js.cosine_onecycle_schedule(10, 1.0, pct_start=1.0),
        ValueError,
        (
            f"{_CO}: the phase boundaries int(pct_start * transition_steps), "
            "transition_steps must be increasing; got 10, 10."
        ),
    ),
    (
        lambda: js.cosine_onecycle_schedule(10, 1.0, final_div_factor=-1.0),
        ValueError,
        f"{_CO}: final_div_factor must be finite and > 0; got -1.0.",
    ),
    (
        lambda: js.cosine_onecycle_schedule(10, "peak"),
        TypeError,
        f"{_CO}: peak_value must be a number; got 'peak' (str).",
    ),
    (
        lambda: js.sgdr_schedule([]),
        ValueError,
        f"{_SGDR}: cosine_kwargs must hold at least one cycle; got none.",
    ),
    (
        lambda: js.sgdr_schedule(
            [
                {
                    "init_value": 0.0,
                    "peak_value": 1.0,
                    "warmup_steps": 1,
                    "decay_steps": 5,
                },
                {
                    "init_value": 0.0,
                    "peak_value": 1.0,
                    "warmup_steps": 5,
                    "decay_steps": 5,
                },
            ]
        ),
        ValueError,
        f"{_SGDR} (cosine_kwargs[1]): decay_steps must be an integer >= 6; got 5.",
    ),
    (
        lambda: js.sgdr_schedule(
            [{"init_value": 0.0, "peak_value": 1.0, "decay_steps": 5}]
        ),
        TypeError,
        (
            f"{_SGDR}: cosine_kwargs[0] must hold warmup_cosine_decay_schedule's "
            "arguments init_value, peak_value, warmup_steps, decay_steps (and "
            "optionally end_value, exponent); got ['decay_steps', 'init_value', "
            "'peak_value']."
        ),
    ),
    (
        lambda: js.sgdr_schedule([(0.0, 1.0, 1, 5)]),
        TypeError,
        (
            f"{_SGDR}: cosine_kwargs[0] must be a dict of "
            "warmup_cosine_decay_schedule's arguments; got (0.0, 1.0, 1, 5) (tuple)."
        ),
    ),
    (
        lambda: js.SGDRSchedule((js.cosine_decay_schedule(1.0, 5),)),
        TypeError,
        (
            f"{_SGDR}: every cycle must be a warmup_cosine_decay_schedule; got "
            "CosineDecaySchedule(init_value=1.0, decay_steps=5, alpha=0.0, "
            "exponent=1.0)."
        ),
    ),
    (
        lambda: js.join_schedules(
            [js.constant_schedule(1.0)] * 3,
            [10, 5],
        ),
        ValueError,
        f"{_JOIN}: boundaries must be increasing; got [10, 5].",
    ),
    (
        lambda: js.join_schedules([js.constant_schedule(1.0), 0.5], [5]),
        TypeError,
        f"{_JOIN}: every schedule must be callable; got 0.5.",
    ),
    (
        lambda: js.join_schedules([], []),
        ValueError,
        f"{_JOIN}: schedules must hold at least one schedule; got none.",
    ),
]
