"""Cases for SGD variants, small element-wise blocks and clipping
(jgd/optimizers/sgd_variants.py, jgd/transforms/elementwise.py,
jgd/transforms/clipping.py).

See tests/catalogue/__init__.py for what each table feeds. Names the generic
tables cannot take are checked in tests/test_elementwise.py: polyak_sgd and
scale_by_polyak (``value=``), noisy_sgd and add_noise (a key in the state),
scale_by_distance_over_gradients (optax's scalar-leaf shape) and the function
per_example_global_norm_clip; noisy_sgd, polyak_sgd and the optimistic
methods (a bool in the state) also run their conformance checks there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import jgd
from jgd import schedules as js
from tests.helpers import lr


def _optax_rprop_now(*args):
    """KNOWN_DIFFERENCES['rprop returns this step']: optax.scale_by_rprop's
    own state arithmetic, returning the step it stores for this update instead
    of the previous one (optax PR #1725)."""
    inner = optax.scale_by_rprop(*args)

    def update(updates, state, params=None):
        _, state = inner.update(updates, state, params)
        return state.prev_updates, state

    return optax.GradientTransformation(inner.init, update)


def _stateless_fn(updates, params):
    return jax.tree.map(lambda g, p: g - 0.1 * p, updates, params)


def _tree_map_fn(g, p):
    return g * jnp.cos(p)


RPROP_ARGS = (0.5, 0.3, 1.5, 0.1, 0.8)  # both step-size bounds are reached

CASES: dict = {
    # optimizers
    "sign_sgd": (
        lambda s: jgd.sign_sgd(lr(s, True)),
        lambda s: optax.sign_sgd(lr(s, False)),
    ),
    "signum": (
        lambda s: jgd.signum(lr(s, True)),
        lambda s: optax.signum(lr(s, False)),
    ),
    "signum_args": (
        lambda s: jgd.signum(lr(s, True), beta=0.5, accumulator_dtype=jnp.bfloat16),
        lambda s: optax.signum(lr(s, False), beta=0.5, accumulator_dtype=jnp.bfloat16),
    ),
    "rprop": (
        lambda s: jgd.rprop(0.05),
        lambda s: optax.chain(_optax_rprop_now(0.05), optax.scale(-1.0)),
    ),
    "rprop_args": (
        lambda s: jgd.rprop(*RPROP_ARGS),
        lambda s: optax.chain(_optax_rprop_now(*RPROP_ARGS), optax.scale(-1.0)),
    ),
    "optimistic_gradient_descent": (
        lambda s: jgd.optimistic_gradient_descent(lr(s, True)),
        lambda s: optax.optimistic_gradient_descent(lr(s, False)),
    ),
    "optimistic_gradient_descent_args": (
        lambda s: jgd.optimistic_gradient_descent(lr(s, True), 0.7, 0.2),
        lambda s: optax.optimistic_gradient_descent(lr(s, False), 0.7, 0.2),
    ),
    "optimistic_adam_v2": (
        lambda s: jgd.optimistic_adam_v2(lr(s, True)),
        lambda s: optax.optimistic_adam_v2(lr(s, False)),
    ),
    "optimistic_adam_v2_args": (
        lambda s: jgd.optimistic_adam_v2(
            lr(s, True),
            alpha=0.3,
            beta=0.6,
            b1=0.8,
            b2=0.99,
            eps=1e-6,
            eps_root=1e-8,
            mu_dtype=jnp.bfloat16,
            nesterov=False,
        ),
        lambda s: optax.optimistic_adam_v2(
            lr(s, False),
            alpha=0.3,
            beta=0.6,
            b1=0.8,
            b2=0.99,
            eps=1e-6,
            eps_root=1e-8,
            mu_dtype=jnp.bfloat16,
            nesterov=False,
        ),
    ),
    # building blocks
    "scale_by_sign": (lambda s: jgd.scale_by_sign(), lambda s: optax.scale_by_sign()),
    "scale_by_rprop": (
        lambda s: jgd.scale_by_rprop(*RPROP_ARGS),
        lambda s: _optax_rprop_now(*RPROP_ARGS),
    ),
    "scale_by_optimistic_gradient": (
        lambda s: jgd.scale_by_optimistic_gradient(0.7, 0.2),
        lambda s: optax.scale_by_optimistic_gradient(0.7, 0.2),
    ),
    "ema": (lambda s: jgd.ema(0.9), lambda s: optax.ema(0.9)),
    "ema_args": (
        lambda s: jgd.ema(0.5, debias=False, accumulator_dtype=jnp.bfloat16),
        lambda s: optax.ema(0.5, debias=False, accumulator_dtype=jnp.bfloat16),
    ),
    "centralize": (lambda s: jgd.centralize(), lambda s: optax.centralize()),
    "keep_params_nonnegative": (
        lambda s: jgd.chain(jgd.scale(-0.3), jgd.keep_params_nonnegative()),
        lambda s: optax.chain(optax.scale(-0.3), optax.keep_params_nonnegative()),
    ),
    "zero_nans": (lambda s: jgd.zero_nans(), lambda s: optax.zero_nans()),
    "set_to_zero": (lambda s: jgd.set_to_zero(), lambda s: optax.set_to_zero()),
    "stateless": (
        lambda s: jgd.stateless(_stateless_fn),
        lambda s: optax.stateless(_stateless_fn),
    ),
    "stateless_with_tree_map": (
        lambda s: jgd.stateless_with_tree_map(_tree_map_fn),
        lambda s: optax.stateless_with_tree_map(_tree_map_fn),
    ),
    "normalize_by_update_norm": (
        lambda s: jgd.normalize_by_update_norm(),
        lambda s: optax.normalize_by_update_norm(),
    ),
    "normalize_by_update_norm_args": (
        lambda s: jgd.normalize_by_update_norm(scale_factor=-0.5, eps=1e-3),
        lambda s: optax.normalize_by_update_norm(scale_factor=-0.5, eps=1e-3),
    ),
    "scale_by_schedule": (
        lambda s: jgd.scale_by_schedule(lr(True, True)),
        lambda s: optax.scale_by_schedule(lr(True, False)),
    ),
    "clip_by_block_rms": (
        # The stream's leaves have rms near 1: some blocks are clipped, some not.
        lambda s: jgd.clip_by_block_rms(0.9),
        lambda s: optax.clip_by_block_rms(0.9),
    ),
    "adaptive_grad_clip": (
        lambda s: jgd.adaptive_grad_clip(0.5),
        lambda s: optax.adaptive_grad_clip(0.5),
    ),
    "adaptive_grad_clip_axis": (
        # axis=() (element-wise units) is the one axis every leaf, the scalar
        # included, has; other axes are checked in tests/test_elementwise.py.
        lambda s: jgd.adaptive_grad_clip(0.8, eps=0.1, axis=()),
        lambda s: optax.adaptive_grad_clip(0.8, eps=0.1, axis=()),
    ),
}

SCHEDULED: set[str] = {
    "sign_sgd",
    "signum",
    "optimistic_gradient_descent",
    "optimistic_adam_v2",
}

# Sign methods need a decaying step to settle; rprop adapts its own.
CONFORMANCE: dict = {
    "sign_sgd": (
        lambda lr: jgd.sign_sgd(js.exponential_decay(lr, 700, 0.5)),
        0.05,
        0.003,
        5000,
    ),
    "signum": (
        lambda lr: jgd.signum(js.exponential_decay(lr, 300, 0.5)),
        0.1,
        0.01,
        5000,
    ),
    "rprop": (lambda lr: jgd.rprop(lr), 0.1, 0.01, 3000),
}

BAD_INPUT: list = [
    (
        lambda: jgd.sign_sgd(-1.0),
        ValueError,
        "jgd.sign_sgd: learning_rate must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.signum(0.1, beta=1.0),
        ValueError,
        "jgd.signum: beta must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.signum(0.1, accumulator_dtype="floaty"),
        TypeError,
        "jgd.signum: accumulator_dtype must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: jgd.noisy_sgd(0.1, eta=-0.01, key=0),
        ValueError,
        "jgd.noisy_sgd: eta must be finite and >= 0; got -0.01.",
    ),
    (
        lambda: jgd.noisy_sgd(0.1, key="seed"),
        TypeError,
        (
            "jgd.noisy_sgd: key must be a jax.random.key, a raw jax.random.PRNGKey or "
            "an integer seed; got 'seed' (str)."
        ),
    ),
    (
        lambda: jgd.polyak_sgd(scaling=-1.0),
        ValueError,
        "jgd.polyak_sgd: scaling must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.polyak_sgd(variant="sps-"),
        ValueError,
        "jgd.polyak_sgd: variant must be 'sps' or 'sps+'; got 'sps-'.",
    ),
    (
        lambda: jgd.polyak_sgd(max_learning_rate=-0.5),
        ValueError,
        "jgd.polyak_sgd: max_learning_rate must be finite and >= 0; got -0.5.",
    ),
    (
        lambda: jgd.rprop(0.1, eta_minus=1.5),
        ValueError,
        "jgd.rprop: eta_minus must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.rprop(0.1, eta_plus=0.9),
        ValueError,
        "jgd.rprop: eta_plus must be finite and >= 1; got 0.9.",
    ),
    (
        lambda: jgd.rprop(0.1, min_step_size=0.5, max_step_size=0.1),
        ValueError,
        "jgd.rprop: max_step_size must be finite and >= 0.5; got 0.1.",
    ),
    (
        lambda: jgd.optimistic_gradient_descent(0.1, alpha=-1.0),
        ValueError,
        "jgd.optimistic_gradient_descent: alpha must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.optimistic_gradient_descent(
            0.1, beta=jgd.schedules.constant_schedule(1.0)
        ),
        TypeError,
        (
            "jgd.optimistic_gradient_descent: beta must be a number; got "
            "ConstantSchedule(value=1.0) (ConstantSchedule)."
        ),
    ),
    (
        lambda: jgd.optimistic_adam_v2(0.1, b2=1.0),
        ValueError,
        "jgd.optimistic_adam_v2: b2 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.optimistic_adam_v2(0.1, beta=-0.5),
        ValueError,
        "jgd.optimistic_adam_v2: beta must be finite and >= 0; got -0.5.",
    ),
    # building blocks
    (
        lambda: jgd.ema(1.0),
        ValueError,
        "jgd.ema: decay must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.add_noise(0.01, -0.5, 0),
        ValueError,
        "jgd.add_noise: gamma must be finite and >= 0; got -0.5.",
    ),
    (
        lambda: jgd.add_noise(0.01, 0.55, 0, seed=1),
        ValueError,
        "jgd.add_noise: give key or seed, not both; got key=0, seed=1.",
    ),
    (
        lambda: jgd.scale_by_polyak(f_min=float("nan")),
        ValueError,
        "jgd.scale_by_polyak: f_min must be finite; got nan.",
    ),
    (
        lambda: jgd.scale_by_schedule(0.1),
        TypeError,
        (
            "jgd.scale_by_schedule: step_size_fn must be a schedule (a callable of the "
            "step count); got 0.1 (float)."
        ),
    ),
    (
        lambda: jgd.scale_by_distance_over_gradients(reps_rel=0.0),
        ValueError,
        (
            "jgd.scale_by_distance_over_gradients: reps_rel must be finite and > 0; "
            "got 0.0."
        ),
    ),
    (
        lambda: jgd.scale_by_distance_over_gradients(param_dtype="floaty"),
        TypeError,
        (
            "jgd.scale_by_distance_over_gradients: param_dtype must be a dtype or None; "
            "got 'floaty'."
        ),
    ),
    (
        lambda: jgd.normalize_by_update_norm(eps=-1.0),
        ValueError,
        "jgd.normalize_by_update_norm: eps must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.stateless(3),
        TypeError,
        "jgd.stateless: f must be a function; got 3 (int).",
    ),
    (
        lambda: jgd.clip_by_block_rms(0.0),
        ValueError,
        "jgd.clip_by_block_rms: threshold must be finite and > 0; got 0.0.",
    ),
    (
        lambda: jgd.adaptive_grad_clip(-0.1),
        ValueError,
        "jgd.adaptive_grad_clip: clipping must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.adaptive_grad_clip(0.1, axis=1.5),
        TypeError,
        (
            "jgd.adaptive_grad_clip: axis must be None, an int or a tuple of ints; "
            "got 1.5."
        ),
    ),
    (
        lambda: jgd.per_example_global_norm_clip([jnp.ones((3, 2))], -1.0),
        ValueError,
        (
            "jgd.per_example_global_norm_clip: l2_norm_clip must be >= 0 (inf: no "
            "clipping); got -1.0."
        ),
    ),
    (
        lambda: jgd.per_example_global_norm_clip(
            [jnp.ones((3, 2)), jnp.ones((2,))], 1.0
        ),
        ValueError,
        (
            "jgd.per_example_global_norm_clip: every leaf of grads must have the batch "
            "axis first, of one size for all; got shapes [(3, 2), (2,)]."
        ),
    ),
]

THROUGH_TRAIN: dict = {
    "sign_sgd": lambda: jgd.sign_sgd(0.01),
    "signum": lambda: jgd.signum(0.01, beta=0.5),
    "noisy_sgd": lambda: jgd.noisy_sgd(0.05, key=jax.random.key(3)),
    "rprop": lambda: jgd.rprop(0.01),
    "optimistic_gradient_descent": lambda: jgd.optimistic_gradient_descent(
        0.05, 0.8, 0.4
    ),
    "optimistic_adam_v2": lambda: jgd.optimistic_adam_v2(0.01, alpha=0.5),
    # make_step passes value=, which the Polyak step reads.
    "polyak_sgd": lambda: jgd.polyak_sgd(max_learning_rate=0.5, f_min=-1.0),
}

KNOWN_DIFFERENCES: dict[str, str] = {
    "rprop returns this step": (
        "optax 0.2.8's scale_by_rprop (and rprop) computes this step's update "
        "into its state but returns the state's previous one: zeros on the first "
        "step, every step one behind (optax PR #1725). jgd returns this step's, "
        "as Riedmiller & Braun (1993), Igel & Hüsken's iRprop- and torch.optim."
        "Rprop: the first step is -learning_rate * sign(g). The states agree at "
        "every step. The CASES compare with optax's own state arithmetic "
        "returning the stored step (_optax_rprop_now in tests/catalogue/"
        "elementwise.py); tests/test_elementwise.py::test_rprop_golden_steps "
        "checks the paper's numbers and test_rprop_against_optax_one_step_behind "
        "that optax's step t+1 is jgd's step t wherever the sign held."
    ),
    "polyak_sgd scaling": (
        "optax 0.2.8's polyak_sgd is chain(sgd(scaling), scale_by_polyak(...)): "
        "the Polyak step is computed from the already scaled gradient, so the "
        "update is min(gap / (s**2 ||g||**2 + eps), max_lr) * s * g, which "
        "divides an uncapped step by s, against its docstring's s * min(gap / "
        "(||g||**2 + eps), max_lr). jgd follows the docstring (the Polyak step "
        "of the gradient, then scaling as a learning rate): the same numbers "
        "when scaling is 1, the default. Its state holds optax's leaves (a "
        "schedule's count), the two parts in the other order. See "
        "tests/test_elementwise.py::"
        "test_polyak_sgd_scaling_follows_the_documented_formula."
    ),
    "scale_by_distance_over_gradients scalar leaves": (
        "optax keeps a shape-(1,) sum of squared gradients per leaf (as jgd's "
        "state does), and on a scalar leaf its update broadcasts to shape (1,), "
        "so the param becomes a vector; jgd's update keeps the leaf's shape, the "
        "same number. It also keeps the state's dtypes from step to step. The "
        "cross-check (tests/test_elementwise.py::"
        "test_distance_over_gradients_matches_optax) reshapes optax's update."
    ),
}

SCHEDULES: dict = {}
