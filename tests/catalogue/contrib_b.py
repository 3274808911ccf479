"""Cases for jgd.contrib: adopt, ademamix, simplified_ademamix, cocob, mechanize,
momo, sophia.

See tests/catalogue/__init__.py for what each table feeds. momo, momo_adam and
sophia take extra update arguments (``value=``, ``obj_fn=``) that the shared
runners do not pass: tests/test_contrib_b.py cross-checks them step by step.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

import jgd
from jgd import schedules as js
from tests.helpers import decay_mask, f64_count, lr

C = jgd.contrib
OC = optax.contrib


def _b3(jgd_side: bool):
    """A schedule for ademamix's b3 (the paper warms b3 up)."""
    if jgd_side:
        return js.linear_schedule(0.9, 0.999, 30)
    return f64_count(optax.schedules.linear_schedule(0.9, 0.999, 30))


def _alpha(jgd_side: bool):
    """A schedule for the AdEMAMix mixing weights (the paper warms alpha up)."""
    if jgd_side:
        return js.linear_schedule(0.0, 4.0, 25)
    return f64_count(optax.schedules.linear_schedule(0.0, 4.0, 25))


def _sqrt(count):
    return count**0.5


CASES: dict = {
    # ADOPT
    "contrib.adopt": (
        lambda s: C.adopt(lr(s, True)),
        lambda s: OC.adopt(lr(s, False)),
    ),
    "contrib.adopt_flags": (
        lambda s: C.adopt(
            lr(s, True),
            0.8,
            0.99,
            1e-4,
            jnp.bfloat16,
            nesterov=True,
            clip_value_fn=_sqrt,
        ),
        lambda s: OC.adopt(
            lr(s, False),
            0.8,
            0.99,
            1e-4,
            jnp.bfloat16,
            nesterov=True,
            clip_value_fn=_sqrt,
        ),
    ),
    "contrib.adopt_no_clipping": (
        lambda s: C.adopt(lr(s, True), use_clipping=False),
        lambda s: OC.adopt(lr(s, False), use_clipping=False),
    ),
    "contrib.scale_by_adopt": (
        lambda s: C.scale_by_adopt(),
        lambda s: OC.scale_by_adopt(),
    ),
    # AdEMAMix
    "contrib.ademamix": (
        lambda s: C.ademamix(lr(s, True)),
        lambda s: OC.ademamix(lr(s, False)),
    ),
    "contrib.ademamix_schedules_decay": (
        lambda s: C.ademamix(
            lr(s, True),
            b1=0.8,
            b2=0.99,
            b3=_b3(True),
            alpha=_alpha(True),
            eps=1e-6,
            eps_root=1e-8,
            weight_decay=0.01,
            mask=decay_mask,
        ),
        lambda s: OC.ademamix(
            lr(s, False),
            b1=0.8,
            b2=0.99,
            b3=_b3(False),
            alpha=_alpha(False),
            eps=1e-6,
            eps_root=1e-8,
            weight_decay=0.01,
            mask=decay_mask,
        ),
    ),
    "contrib.scale_by_ademamix": (
        lambda s: C.scale_by_ademamix(b3=0.99),
        lambda s: OC.scale_by_ademamix(b3=0.99),
    ),
    # Simplified AdEMAMix
    "contrib.simplified_ademamix": (
        lambda s: C.simplified_ademamix(lr(s, True)),
        lambda s: OC.simplified_ademamix(lr(s, False)),
    ),
    "contrib.simplified_ademamix_flags": (
        lambda s: C.simplified_ademamix(
            lr(s, True), 0.9, 0.99, _alpha(True), 1e-6, 1e-8, 0.01, decay_mask
        ),
        lambda s: OC.simplified_ademamix(
            lr(s, False), 0.9, 0.99, _alpha(False), 1e-6, 1e-8, 0.01, decay_mask
        ),
    ),
    "contrib.scale_by_simplified_ademamix": (
        lambda s: C.scale_by_simplified_ademamix(alpha=2.0),
        lambda s: OC.scale_by_simplified_ademamix(alpha=2.0),
    ),
    # COCOB
    "contrib.cocob": (lambda s: C.cocob(), lambda s: OC.cocob()),
    "contrib.cocob_args": (
        lambda s: C.cocob(lr(s, True), 50.0, 1e-6, 0.01, decay_mask),
        lambda s: OC.cocob(lr(s, False), 50.0, 1e-6, 0.01, decay_mask),
    ),
    "contrib.scale_by_cocob": (
        lambda s: C.scale_by_cocob(20.0),
        lambda s: OC.scale_by_cocob(20.0),
    ),
    # Mechanic, around jgd's optimizers and optax's twins
    "contrib.mechanize_adam": (
        lambda s: C.mechanize(jgd.adam(lr(s, True))),
        lambda s: OC.mechanize(optax.adam(lr(s, False))),
    ),
    "contrib.mechanize_sgd_args": (
        lambda s: C.mechanize(jgd.sgd(1.0, momentum=0.9), 0.1, 1e-6, 1e-4, 3),
        lambda s: OC.mechanize(optax.sgd(1.0, momentum=0.9), 0.1, 1e-6, 1e-4, 3),
    ),
}

SCHEDULED: set[str] = {
    "contrib.cocob_args",
    "contrib.mechanize_adam",
    "contrib.adopt",
    "contrib.ademamix_schedules_decay",
    "contrib.simplified_ademamix",
}

CONFORMANCE: dict = {}

BAD_INPUT: list = []

THROUGH_TRAIN: dict = {}

KNOWN_DIFFERENCES: dict[str, str] = {}

SCHEDULES: dict = {}
