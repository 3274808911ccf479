"""Cases for Adam's relatives (jgd/optimizers/adam_family.py, their blocks in
jgd/transforms/adam_family.py and jgd/transforms/adan_lion_adadelta.py).

See tests/catalogue/__init__.py for what each table feeds. Golden numbers,
complex parameters and the known differences' own tests are in
tests/test_adam_family.py.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax

import jgd
from jgd import schedules as js
from tests.helpers import decay_mask, f64_count, lr


def _pair(name, **kwargs):
    """A (jgd, optax) case of the optimizer ``name`` with the same kwargs."""
    return (
        lambda s: getattr(jgd, name)(lr(s, True), **kwargs),
        lambda s: getattr(optax, name)(lr(s, False), **kwargs),
    )


def _block(name, *args, **kwargs):
    """A (jgd, optax) case of the building block ``name``."""
    return (
        lambda s: getattr(jgd, name)(*args, **kwargs),
        lambda s: getattr(optax, name)(*args, **kwargs),
    )


CASES: dict = {
    # optimizers
    "nadam": _pair("nadam"),
    "nadam_flags": _pair(
        "nadam",
        b1=0.8,
        b2=0.99,
        eps=1e-6,
        eps_root=1e-8,
        mu_dtype=jnp.bfloat16,
    ),
    "nadam_nesterov_off": _pair("nadam", nesterov=False),
    "nadamw": _pair("nadamw"),
    "nadamw_mask_wd_schedule": (
        lambda s: jgd.nadamw(
            lr(s, True),
            b1=0.8,
            weight_decay=js.linear_schedule(0.1, 0.0, 30),
            mask=decay_mask,
        ),
        lambda s: optax.nadamw(
            lr(s, False),
            b1=0.8,
            weight_decay=f64_count(optax.schedules.linear_schedule(0.1, 0.0, 30)),
            mask=decay_mask,
        ),
    ),
    "radam": _pair("radam"),
    # b2 = 0.99: ro is about t early on (1, 2.0, 2.99, 3.97, 4.96, ...), so
    # the first four steps take momentum SGD and the rectified steps follow.
    # (With threshold 3, step 4's rectifier was NaN, in optax too, and the
    # other 46 steps compared NaN with NaN.)
    "radam_flags": _pair(
        "radam",
        b1=0.8,
        b2=0.99,
        eps=1e-6,
        eps_root=1e-8,
        threshold=4.0,
        nesterov=True,
    ),
    "amsgrad": _pair("amsgrad"),
    "amsgrad_flags": _pair(
        "amsgrad",
        b1=0.8,
        b2=0.99,
        eps=1e-6,
        eps_root=1e-8,
        mu_dtype=jnp.bfloat16,
        bias_correction_mu=False,
        bias_correction_nu=False,
    ),
    "amsgrad_bias_correction_mu_only": _pair("amsgrad", bias_correction_nu=False),
    "adamax": _pair("adamax"),
    "adamax_args": _pair("adamax", b1=0.8, b2=0.95, eps=1e-4),
    "adamaxw": _pair("adamaxw"),
    "adamaxw_mask": _pair("adamaxw", weight_decay=0.05, mask=decay_mask),
    "adabelief": _pair("adabelief"),
    "adabelief_flags": _pair(
        "adabelief", b1=0.8, b2=0.99, eps=1e-8, eps_root=0.0, nesterov=True
    ),
    "adadelta": _pair("adadelta"),
    "adadelta_weight_decay_mask": _pair(
        "adadelta",
        rho=0.95,
        eps=1e-4,
        weight_decay=0.01,
        weight_decay_mask=decay_mask,
    ),
    # KNOWN_DIFFERENCES['adadelta learning_rate=None']: jgd's default is
    # optax's learning_rate=1.
    "adadelta_default_learning_rate": (
        lambda s: jgd.adadelta(),
        lambda s: optax.adadelta(1.0),
    ),
    "yogi": _pair("yogi"),
    "yogi_args": _pair("yogi", b1=0.8, b2=0.99, eps=1e-4),
    "lion": _pair("lion"),
    "lion_mu_dtype_mask": _pair(
        "lion",
        b1=0.8,
        b2=0.95,
        mu_dtype=jnp.bfloat16,
        weight_decay=0.05,
        mask=decay_mask,
    ),
    "adan": _pair("adan"),
    "adan_args_mask": _pair(
        "adan",
        b1=0.9,
        b2=0.8,
        b3=0.95,
        eps=1e-6,
        eps_root=1e-6,
        weight_decay=0.02,
        mask=decay_mask,
    ),
    # building blocks
    "scale_by_amsgrad": _block("scale_by_amsgrad"),
    "scale_by_amsgrad_flags": _block(
        "scale_by_amsgrad", 0.5, 0.9, 1e-5, 1e-6, None, False, True
    ),
    "scale_by_adamax": _block("scale_by_adamax", 0.5, 0.9, 1e-5),
    "scale_by_belief": _block("scale_by_belief"),
    "scale_by_belief_nesterov": _block(
        "scale_by_belief", 0.5, 0.9, 1e-8, 1e-10, nesterov=True
    ),
    "scale_by_radam": _block("scale_by_radam"),
    "scale_by_radam_flags": _block(
        "scale_by_radam", 0.5, 0.9, 1e-5, 1e-6, 4.0, nesterov=True
    ),
    "scale_by_yogi": _block("scale_by_yogi"),
    "scale_by_yogi_args": _block("scale_by_yogi", 0.5, 0.9, 1e-4, 1e-6, 0.1),
    "scale_by_adan": _block("scale_by_adan"),
    "scale_by_adan_args": _block("scale_by_adan", 0.9, 0.8, 0.95, 1e-6, 1e-6),
    "scale_by_lion": _block("scale_by_lion"),
    "scale_by_lion_smooth": _block(
        "scale_by_lion", 0.8, 0.95, jnp.bfloat16, mode="smooth", smooth_beta=2.0
    ),
    "scale_by_lion_refined": _block("scale_by_lion", mode="refined"),
    "scale_by_adadelta": _block("scale_by_adadelta"),
    "scale_by_adadelta_args": _block("scale_by_adadelta", 0.5, 1e-3),
}

SCHEDULED: set[str] = {
    "nadam",
    "nadamw_mask_wd_schedule",
    "radam_flags",
    "amsgrad",
    "adamax",
    "adamaxw_mask",
    "adabelief",
    "adadelta_weight_decay_mask",
    "yogi",
    "lion",
    "adan_args_mask",
}

# Rosenbrock from (-1.2, 1) starts with gradients of ~200: the learning rates
# there are those that reach (1, 1) within the steps, found by a small sweep.
CONFORMANCE: dict = {
    "nadam": (lambda lr: jgd.nadam(lr), 0.05, 0.01, 5000),
    "nadamw": (lambda lr: jgd.nadamw(lr, weight_decay=1e-4), 0.05, 0.01, 5000),
    # b2 = 0.99: with 0.999 the rectifier keeps RAdam's steps small for
    # ~2 / (1 - b2) steps, and a learning rate large enough to make up for it
    # throws the first (unrectified, momentum-SGD) steps far off the valley.
    "radam": (lambda lr: jgd.radam(lr, b2=0.99), 0.05, 0.003, 5000),
    "radam_nesterov": (
        lambda lr: jgd.radam(lr, b2=0.99, nesterov=True),
        0.05,
        0.003,
        5000,
    ),
    # AMSGrad's nu_max keeps the first gradient's size (~200 on Rosenbrock).
    "amsgrad": (lambda lr: jgd.amsgrad(lr), 0.05, 0.5, 5000),
    "amsgrad_no_bias_correction": (
        lambda lr: jgd.amsgrad(lr, bias_correction_mu=False, bias_correction_nu=False),
        0.05,
        0.05,
        5000,
    ),
    "adamax": (lambda lr: jgd.adamax(lr), 0.05, 0.01, 5000),
    "adamaxw": (lambda lr: jgd.adamaxw(lr), 0.05, 0.01, 5000),
    "adabelief": (lambda lr: jgd.adabelief(lr), 0.05, 0.01, 5000),
    "adabelief_nesterov": (
        lambda lr: jgd.adabelief(lr, nesterov=True),
        0.05,
        0.01,
        5000,
    ),
    # Adadelta's steps grow with its own history of steps: on Rosenbrock it
    # settles only with a decaying learning rate.
    "adadelta": (
        lambda lr: jgd.adadelta(js.cosine_decay_schedule(lr, 5000)),
        3.0,
        1.0,
        5000,
    ),
    "yogi": (lambda lr: jgd.yogi(lr), 0.05, 0.05, 5000),
    # A sign method (steps of lr in every coordinate) settles as lr decays.
    "lion": (
        lambda lr: jgd.lion(js.cosine_decay_schedule(lr, 5000)),
        0.02,
        0.01,
        5000,
    ),
    "adan": (lambda lr: jgd.adan(lr), 0.05, 0.01, 5000),
}

BAD_INPUT: list = [
    (
        lambda: jgd.nadam(1e-3, b1=1.0),
        ValueError,
        "jgd.nadam: b1 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.nadamw(1e-3, weight_decay=-1.0),
        ValueError,
        "jgd.nadamw: weight_decay must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.radam(-0.1),
        ValueError,
        "jgd.radam: learning_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.radam(0.1, threshold=math.inf),
        ValueError,
        "jgd.radam: threshold must be finite and >= 4; got inf.",
    ),
    (
        # KNOWN_DIFFERENCES['radam threshold below 4']
        lambda: jgd.radam(0.1, threshold=3.0),
        ValueError,
        "jgd.radam: threshold must be finite and >= 4; got 3.0.",
    ),
    (
        lambda: jgd.scale_by_radam(threshold=1.5),
        ValueError,
        "jgd.scale_by_radam: threshold must be finite and >= 4; got 1.5.",
    ),
    (
        lambda: jgd.radam(0.1, b2=1.0),
        ValueError,
        "jgd.radam: b2 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.amsgrad(0.1, eps_root=-1.0),
        ValueError,
        "jgd.amsgrad: eps_root must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.amsgrad(0.1, mu_dtype="floaty"),
        TypeError,
        "jgd.amsgrad: mu_dtype must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: jgd.adamax(0.1, b2=1.0),
        ValueError,
        "jgd.adamax: b2 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.adamaxw(0.1, weight_decay=-0.5),
        ValueError,
        "jgd.adamaxw: weight_decay must be finite and >= 0; got -0.5.",
    ),
    (
        lambda: jgd.adabelief(0.1, eps=-1e-16),
        ValueError,
        "jgd.adabelief: eps must be finite and >= 0; got -1e-16.",
    ),
    (
        lambda: jgd.adabelief(0.1, eps_root=math.nan),
        ValueError,
        "jgd.adabelief: eps_root must be finite and >= 0; got nan.",
    ),
    (
        lambda: jgd.adadelta(rho=1.0),
        ValueError,
        "jgd.adadelta: rho must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.adadelta(eps=0.0),
        ValueError,
        "jgd.adadelta: eps must be finite and > 0; got 0.0.",
    ),
    (
        lambda: jgd.adadelta(-1.0),
        ValueError,
        "jgd.adadelta: learning_rate must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.adadelta(weight_decay=-0.1),
        ValueError,
        "jgd.adadelta: weight_decay must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.yogi("fast"),
        TypeError,
        "jgd.yogi: learning_rate must be a number or a schedule; got 'fast' (str).",
    ),
    (
        lambda: jgd.yogi(0.1, eps=-1e-3),
        ValueError,
        "jgd.yogi: eps must be finite and >= 0; got -0.001.",
    ),
    (
        lambda: jgd.lion(0.1, b1=1.5),
        ValueError,
        "jgd.lion: b1 must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.lion(0.1, weight_decay=-1e-3),
        ValueError,
        "jgd.lion: weight_decay must be finite and >= 0; got -0.001.",
    ),
    (
        lambda: jgd.adan(0.1, b3=-0.1),
        ValueError,
        "jgd.adan: b3 must be in [0, 1); got -0.1.",
    ),
    (
        lambda: jgd.adan(0.1, eps_root=-1.0),
        ValueError,
        "jgd.adan: eps_root must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_amsgrad(b2=-0.5),
        ValueError,
        "jgd.scale_by_amsgrad: b2 must be in [0, 1); got -0.5.",
    ),
    (
        lambda: jgd.scale_by_adamax(eps=-1.0),
        ValueError,
        "jgd.scale_by_adamax: eps must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_belief(b1=1.0),
        ValueError,
        "jgd.scale_by_belief: b1 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.scale_by_radam(threshold="five"),
        TypeError,
        "jgd.scale_by_radam: threshold must be a number; got 'five' (str).",
    ),
    (
        lambda: jgd.scale_by_yogi(initial_accumulator_value=-1.0),
        ValueError,
        "jgd.scale_by_yogi: initial_accumulator_value must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_adan(b1=1.0),
        ValueError,
        "jgd.scale_by_adan: b1 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.scale_by_lion(mode="soft"),
        ValueError,
        "jgd.scale_by_lion: mode must be one of 'hard', 'smooth', 'refined'; got 'soft'.",
    ),
    (
        lambda: jgd.scale_by_lion(mode="smooth", smooth_beta=0.0),
        ValueError,
        "jgd.scale_by_lion: smooth_beta must be finite and > 0; got 0.0.",
    ),
    (
        lambda: jgd.scale_by_lion(mu_dtype="floaty"),
        TypeError,
        "jgd.scale_by_lion: mu_dtype must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: jgd.scale_by_adadelta(rho=-0.1),
        ValueError,
        "jgd.scale_by_adadelta: rho must be in [0, 1); got -0.1.",
    ),
]

# Element-wise all of them: jgd.train may pack their small leaves; the masks
# (decay_mask, a callable) split the packed buckets.
THROUGH_TRAIN: dict = {
    "nadam": lambda: jgd.nadam(0.01),
    "nadamw": lambda: jgd.nadamw(0.01, weight_decay=0.1, mask=decay_mask),
    "radam": lambda: jgd.radam(0.01, b2=0.99, threshold=4.0, nesterov=True),
    "amsgrad": lambda: jgd.amsgrad(0.01),
    "adamax": lambda: jgd.adamax(0.01),
    "adamaxw": lambda: jgd.adamaxw(0.01, weight_decay=0.1),
    "adabelief": lambda: jgd.adabelief(0.01),
    "adadelta": lambda: jgd.adadelta(weight_decay=0.01, weight_decay_mask=decay_mask),
    "yogi": lambda: jgd.yogi(0.01),
    "lion": lambda: jgd.lion(1e-3, mask=decay_mask),
    "adan": lambda: jgd.adan(0.01, weight_decay=0.02),
}

KNOWN_DIFFERENCES: dict[str, str] = {
    "radam threshold below 4": (
        "jgd.radam and jgd.scale_by_radam refuse threshold < 4, which optax "
        "accepts. The rectifier r = sqrt((ro - 4)(ro - 2) ro_inf / ((ro_inf - "
        "4)(ro_inf - 2) ro)) is the root of a negative number for 2 < ro < 4, "
        "and ro passes through that range as t grows, so such a threshold "
        "turns the params into NaN for good (optax.radam(threshold=3.0, "
        "b2=0.99) does at step 4); below 2, r is real but outside the paper's "
        "derivation (Liu et al. take the rectified step only for ro > 4). See "
        "tests/test_adam_family.py::test_radam_rectifies_once_ro_reaches_the_threshold."
    ),
    "adadelta learning_rate=None": (
        "optax.adadelta's default learning_rate=None scales by nothing "
        "(scale_by_learning_rate(None) is the identity), so its update is "
        "+sqrt(e_x + eps) / sqrt(e_g + eps) * g and apply_updates climbs the "
        "loss. jgd.adadelta() takes Zeiler's step, minus that (a learning rate "
        "of 1): the case adadelta_default_learning_rate compares it with "
        "optax.adadelta(1.0), and tests/test_adam_family.py::"
        "test_adadelta_default_descends_as_the_paper checks Algorithm 1's numbers "
        "and that optax's default climbs."
    ),
    "adadelta complex": (
        "optax.scale_by_adadelta accumulates g**2 (tree.update_moment, order 2), "
        "so for complex updates e_g is complex and the step takes complex roots; "
        "jgd accumulates |g|**2 as every other second moment in optax does "
        "(update_moment_per_elem_norm). Real updates give the same numbers. See "
        "tests/test_adam_family.py::test_adadelta_complex_uses_abs_squared."
    ),
}

SCHEDULES: dict = {}
