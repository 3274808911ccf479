"""Cases for jgd.contrib: adopt, ademamix, simplified_ademamix, cocob, mechanize,
momo, sophia.

See tests/catalogue/__init__.py for what each table feeds. momo, momo_adam and
sophia take extra update arguments (``value=``, ``obj_fn=``) that the shared
runners do not pass: tests/test_contrib_b.py cross-checks them step by step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

import jgd
from jgd import schedules as js
from jgd.base import Transform, empty_state, register
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


@register
class _SquaredGradients(Transform):
    """Sophia-G's Hessian-diagonal estimate, g * g (the Gauss-Newton-Bartlett
    estimator with one sample): it needs no obj_fn, so sophia can join the
    shared runners, which pass none."""

    packable = True  # element-wise

    def init(self, params):
        return empty_state()

    def update(self, updates, state, params=None, **extra_args):
        return jax.tree.map(jnp.square, updates), state


def _sophia_g(lr):
    """Sophia-G, refreshed every step; like sign methods it needs a decaying
    learning rate (steps are clipped to lr where the estimate is small)."""
    return C.sophia(
        js.exponential_decay(lr, 300, 0.5),
        update_interval=1,
        hessian_diagonal_fn=_SquaredGradients(),
    )


# cocob and mechanize do not reach Rosenbrock's minimum in 5000 steps, and
# momo/momo_adam need value=: tests/test_contrib_b.py runs them its own way.
CONFORMANCE: dict = {
    # ADOPT's default b2 (0.9999) needs ~20000 steps on Rosenbrock.
    "contrib.adopt": (lambda lr: C.adopt(lr, b2=0.99), 0.05, 0.02, 5000),
    "contrib.adopt_nesterov": (
        lambda lr: C.adopt(lr, b2=0.99, nesterov=True),
        0.05,
        0.02,
        5000,
    ),
    # The default b3 (0.9999) is for long runs (the paper's appendix C.1.5).
    "contrib.ademamix": (lambda lr: C.ademamix(lr, b3=0.999), 0.05, 0.01, 5000),
    # b1 = 0.99 accumulates ~100 gradients: its oscillation outlasts 1000 steps.
    "contrib.simplified_ademamix": (
        lambda lr: C.simplified_ademamix(lr, b1=0.9, alpha=2.0),
        0.01,
        0.0005,
        5000,
    ),
    "contrib.sophia_g": (_sophia_g, 0.05, 0.01, 5000),
}

BAD_INPUT: list = [
    (
        lambda: C.adopt(0.1, b1=1.0),
        ValueError,
        "jgd.contrib.adopt: b1 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: C.adopt(0.1, clip_value_fn=3),
        TypeError,
        "jgd.contrib.adopt: clip_value_fn must be a callable; got 3 (int).",
    ),
    (
        lambda: C.scale_by_adopt(eps=-1.0),
        ValueError,
        "jgd.contrib.scale_by_adopt: eps must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: C.ademamix(0.1, b3=1.5),
        ValueError,
        "jgd.contrib.ademamix: b3 must be in [0, 1); got 1.5.",
    ),
    (
        lambda: C.ademamix(0.1, alpha=-1.0),
        ValueError,
        "jgd.contrib.ademamix: alpha must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: C.ademamix(0.1, weight_decay=-0.1),
        ValueError,
        "jgd.contrib.ademamix: weight_decay must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: C.scale_by_ademamix(mu_dtype="floaty"),
        TypeError,
        "jgd.contrib.scale_by_ademamix: mu_dtype must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: C.simplified_ademamix(0.1, b1=1.0),
        ValueError,
        "jgd.contrib.simplified_ademamix: b1 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: C.scale_by_simplified_ademamix(alpha=math.nan),
        ValueError,
        "jgd.contrib.scale_by_simplified_ademamix: alpha must be finite and >= 0; got nan.",
    ),
    (
        lambda: C.cocob(-1.0),
        ValueError,
        "jgd.contrib.cocob: learning_rate must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: C.cocob(alpha=0.0),
        ValueError,
        "jgd.contrib.cocob: alpha must be finite and > 0; got 0.0.",
    ),
    (
        lambda: C.scale_by_cocob(eps=0.0),
        ValueError,
        "jgd.contrib.scale_by_cocob: eps must be finite and > 0; got 0.0.",
    ),
    (
        lambda: C.scale_by_cocob().update(
            {"w": jnp.ones(2)}, C.scale_by_cocob().init({"w": jnp.ones(2)})
        ),
        ValueError,
        (
            "jgd.contrib.scale_by_cocob: update needs params (COCOB bets from params - "
            "init_particles); call update(grads, state, params)."
        ),
    ),
    (
        lambda: C.mechanize("adam"),
        TypeError,
        (
            "jgd.contrib.mechanize: base_optimizer must be a transform with init and "
            "update (jgd or optax); got 'adam' (str)."
        ),
    ),
    (
        lambda: C.mechanize(jgd.adam(0.1), num_betas=0),
        ValueError,
        "jgd.contrib.mechanize: num_betas must be an integer >= 1; got 0.",
    ),
    (
        lambda: C.mechanize(jgd.adam(0.1), s_init=0.0),
        ValueError,
        "jgd.contrib.mechanize: s_init must be finite and > 0; got 0.0.",
    ),
    (
        lambda: C.mechanize(jgd.adam(0.1)).update(
            jnp.ones(2), C.mechanize(jgd.adam(0.1)).init(jnp.ones(2))
        ),
        ValueError,
        (
            "jgd.contrib.mechanize: update needs params (Mechanic steps from x0 - "
            "params); call update(grads, state, params)."
        ),
    ),
    (
        lambda: C.momo(beta=1.0),
        ValueError,
        "jgd.contrib.momo: beta must be in [0, 1); got 1.0.",
    ),
    (
        lambda: C.momo(lower_bound=math.inf),
        ValueError,
        "jgd.contrib.momo: lower_bound must be finite; got inf.",
    ),
    (
        lambda: C.momo().update(jnp.ones(2), C.momo().init(jnp.ones(2)), jnp.ones(2)),
        ValueError,
        (
            "jgd.contrib.momo: update needs value=, the loss at params "
            "(jax.value_and_grad gives it); call update(grads, state, params, value=loss)."
        ),
    ),
    (
        lambda: C.momo_adam(b2=-0.1),
        ValueError,
        "jgd.contrib.momo_adam: b2 must be in [0, 1); got -0.1.",
    ),
    (
        lambda: C.momo_adam(weight_decay=-1.0),
        ValueError,
        "jgd.contrib.momo_adam: weight_decay must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: C.sophia(0.1, update_interval=0),
        ValueError,
        "jgd.contrib.sophia: update_interval must be an integer >= 1; got 0.",
    ),
    (
        lambda: C.sophia(0.1, clip_threshold=0.0),
        ValueError,
        "jgd.contrib.sophia: clip_threshold must be finite and > 0; got 0.0.",
    ),
    (
        lambda: C.sophia(0.1, verbose=True),
        ValueError,
        (
            "jgd.contrib.sophia: print_win_rate_every_n_steps must be an integer >= 1; "
            "got 0."
        ),
    ),
    (
        lambda: C.sophia(0.1, hessian_diagonal_fn=3),
        TypeError,
        (
            "jgd.contrib.sophia: hessian_diagonal_fn must be a transform with init and "
            "update (jgd or optax); got 3 (int)."
        ),
    ),
    (
        lambda: C.hutchinson_estimator_diag_hessian(3),
        TypeError,
        (
            "jgd.contrib.hutchinson_estimator_diag_hessian: random_seed must be a PRNG "
            "key (jax.random.key(0) or jax.random.PRNGKey(0)) or None; got 3."
        ),
    ),
    (
        lambda: C.sophia(0.1).update(
            jnp.ones(2), C.sophia(0.1).init(jnp.ones(2)), jnp.ones(2)
        ),
        ValueError,
        (
            "jgd.contrib.sophia: update needs obj_fn=, the loss as a function of the "
            "params alone (lambda p: loss_fn(p, batch))."
        ),
    ),
]

# sophia runs as Sophia-G: jgd.train.make_step passes no obj_fn= (Hutchinson's
# estimator). make_step passes value= to momo, but the shared hand-written loop
# does not: tests/test_contrib_b.py checks momo through make_step.
THROUGH_TRAIN: dict = {
    "contrib.adopt": lambda: C.adopt(0.01, nesterov=True),
    "contrib.ademamix": lambda: C.ademamix(
        0.01, b3=0.99, weight_decay=0.1, mask=decay_mask
    ),
    "contrib.simplified_ademamix": lambda: C.simplified_ademamix(0.01, alpha=2.0),
    "contrib.cocob": lambda: C.cocob(weight_decay=0.01),
    "contrib.mechanize": lambda: C.mechanize(jgd.adam(0.1)),
    "contrib.sophia_g": lambda: C.sophia(
        0.01, update_interval=2, hessian_diagonal_fn=_SquaredGradients()
    ),
    # make_step passes value=, which MoMo reads.
    "contrib.momo": lambda: C.momo(0.5),
    "contrib.momo_adam": lambda: C.momo_adam(0.05),
}

KNOWN_DIFFERENCES: dict[str, str] = {
    "ademamix mu_dtype": (
        "optax.contrib.scale_by_ademamix starts m1, m2 and nu in mu_dtype but "
        "never casts them back, so after one step they take the update's dtype "
        "(the state's structure changes and a jitted loop retraces); jgd keeps "
        "them in mu_dtype, as optax's scale_by_adam does. The first step agrees. "
        "See tests/test_contrib_b.py::test_ademamix_mu_dtype_stays_where_optax_drifts."
    ),
    "complex second moments": (
        "For complex parameters jgd's scale_by_simplified_ademamix and momo_adam "
        "accumulate |g|^2 in their second moments, as every other second moment "
        "(optax's included) does; optax's accumulate g * g, complex, so their "
        "step is not Adam's. Real parameters agree. See "
        "tests/test_contrib_b.py::test_complex_second_moments_use_abs_squared."
    ),
}

SCHEDULES: dict = {}
