"""Cases for the per-leaf optimizers and blocks (jgd/optimizers/per_leaf.py,
jgd/transforms/per_leaf.py) and ``masked`` (jgd/transforms/masking.py).

See tests/catalogue/__init__.py for what each table feeds. sm3 and
scale_by_sm3 are not in CASES: optax fails on the standard tree's scalar leaf,
so tests/test_per_leaf.py cross-checks them on a tree without one
(``cross_check`` below, the runner of tests/test_vs_optax.py with a tree of
one's choice).
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import optax

import jgd
from jgd import schedules as js
from tests.helpers import (
    TOL,
    assert_trees_close,
    decay_mask,
    f64_count,
    gradient_stream,
    lr,
    standard_promotion,
)

# A prefix of tests.helpers.TREE_SHAPES: the whole "layers" subtree in, the
# rest out.
PREFIX_MASK = {"scalar": False, "layers": True, "head": False}


def _wd_schedule(jgd_side: bool):
    if jgd_side:
        return js.linear_schedule(0.1, 0.0, 30)
    return f64_count(optax.schedules.linear_schedule(0.1, 0.0, 30))


def capped_decay(i, decay_rate):
    """A custom ``decay_rate_fn``: Adafactor's power decay, capped at
    ``decay_rate`` (Zhai et al., 2021), in float32 as optax's default."""
    t = jnp.asarray(i, jnp.float32) + 1.0
    return jnp.minimum(1.0 - t**-0.8, jnp.asarray(decay_rate, jnp.float32))


CASES: dict = {
    # optimizers
    "lamb": (lambda s: jgd.lamb(lr(s, True)), lambda s: optax.lamb(lr(s, False))),
    "lamb_flags_callable_mask": (
        lambda s: jgd.lamb(
            lr(s, True), 0.8, 0.99, 1e-5, 1e-7, weight_decay=0.1, mask=decay_mask
        ),
        lambda s: optax.lamb(
            lr(s, False), 0.8, 0.99, 1e-5, 1e-7, weight_decay=0.1, mask=decay_mask
        ),
    ),
    "lamb_prefix_mask_wd_schedule": (
        lambda s: jgd.lamb(
            lr(s, True), weight_decay=_wd_schedule(True), mask=PREFIX_MASK
        ),
        lambda s: optax.lamb(
            lr(s, False), weight_decay=_wd_schedule(False), mask=PREFIX_MASK
        ),
    ),
    "lars": (lambda s: jgd.lars(lr(s, True)), lambda s: optax.lars(lr(s, False))),
    "lars_flags": (
        lambda s: jgd.lars(
            lr(s, True),
            weight_decay=0.01,
            weight_decay_mask=decay_mask,
            trust_coefficient=0.02,
            eps=1e-3,
            trust_ratio_mask=PREFIX_MASK,
            momentum=0.8,
            nesterov=True,
        ),
        lambda s: optax.lars(
            lr(s, False),
            weight_decay=0.01,
            weight_decay_mask=decay_mask,
            trust_coefficient=0.02,
            eps=1e-3,
            trust_ratio_mask=PREFIX_MASK,
            momentum=0.8,
            nesterov=True,
        ),
    ),
    "lars_no_decay_mask_wd_schedule": (
        lambda s: jgd.lars(
            lr(s, True),
            weight_decay=_wd_schedule(True),
            weight_decay_mask=None,
            trust_ratio_mask=decay_mask,
        ),
        lambda s: optax.lars(
            lr(s, False),
            weight_decay=_wd_schedule(False),
            weight_decay_mask=None,
            trust_ratio_mask=decay_mask,
        ),
    ),
    "fromage": (
        lambda s: jgd.fromage(lr(s, True)),
        lambda s: optax.fromage(lr(s, False)),
    ),
    "fromage_min_norm": (
        lambda s: jgd.fromage(lr(s, True), min_norm=0.5),
        lambda s: optax.fromage(lr(s, False), min_norm=0.5),
    ),
    "adafactor": (
        lambda s: jgd.adafactor(lr(s, True)),
        lambda s: optax.adafactor(lr(s, False)),
    ),
    "adafactor_factored_flags": (
        # (3, 4) is factored, (2, 3, 2) is not (its second largest axis is 2).
        lambda s: jgd.adafactor(
            lr(s, True),
            min_dim_size_to_factor=3,
            decay_rate=0.7,
            clipping_threshold=1.5,
            momentum=0.9,
            weight_decay_rate=0.01,
            eps=1e-20,
            weight_decay_mask=decay_mask,
        ),
        lambda s: optax.adafactor(
            lr(s, False),
            min_dim_size_to_factor=3,
            decay_rate=0.7,
            clipping_threshold=1.5,
            momentum=0.9,
            weight_decay_rate=0.01,
            eps=1e-20,
            weight_decay_mask=decay_mask,
        ),
    ),
    "adafactor_factored_3d_no_param_scale": (
        # min_dim_size_to_factor=2 factors the 3-D leaf too.
        lambda s: jgd.adafactor(
            lr(s, True),
            min_dim_size_to_factor=2,
            multiply_by_parameter_scale=False,
            clipping_threshold=None,
            momentum=0.5,
            dtype_momentum=None,
            weight_decay_rate=_wd_schedule(True),
            weight_decay_mask=PREFIX_MASK,
        ),
        lambda s: optax.adafactor(
            lr(s, False),
            min_dim_size_to_factor=2,
            multiply_by_parameter_scale=False,
            clipping_threshold=None,
            momentum=0.5,
            dtype_momentum=None,
            weight_decay_rate=_wd_schedule(False),
            weight_decay_mask=PREFIX_MASK,
        ),
    ),
    "adafactor_unfactored_no_lr": (
        lambda s: jgd.adafactor(
            None, min_dim_size_to_factor=2, factored=False, weight_decay_rate=0.001
        ),
        lambda s: optax.adafactor(
            None, min_dim_size_to_factor=2, factored=False, weight_decay_rate=0.001
        ),
    ),
    "novograd": (
        lambda s: jgd.novograd(lr(s, True)),
        lambda s: optax.novograd(lr(s, False)),
    ),
    "novograd_flags": (
        lambda s: jgd.novograd(lr(s, True), 0.8, 0.5, 1e-4, 1e-6, weight_decay=0.01),
        lambda s: optax.novograd(lr(s, False), 0.8, 0.5, 1e-4, 1e-6, weight_decay=0.01),
    ),
    # building blocks
    "scale_by_trust_ratio": (
        lambda s: jgd.scale_by_trust_ratio(),
        lambda s: optax.scale_by_trust_ratio(),
    ),
    "scale_by_trust_ratio_flags": (
        lambda s: jgd.scale_by_trust_ratio(0.5, 0.3, 0.1),
        lambda s: optax.scale_by_trust_ratio(0.5, 0.3, 0.1),
    ),
    "scale_by_param_block_norm": (
        lambda s: jgd.scale_by_param_block_norm(),
        lambda s: optax.scale_by_param_block_norm(),
    ),
    "scale_by_param_block_norm_floor": (
        # Norms of the leaves run from 0 to about 5: the floor acts on some.
        lambda s: jgd.scale_by_param_block_norm(2.0),
        lambda s: optax.scale_by_param_block_norm(2.0),
    ),
    "scale_by_param_block_rms": (
        lambda s: jgd.scale_by_param_block_rms(),
        lambda s: optax.scale_by_param_block_rms(),
    ),
    "scale_by_param_block_rms_floor": (
        lambda s: jgd.scale_by_param_block_rms(1.0),
        lambda s: optax.scale_by_param_block_rms(1.0),
    ),
    "scale_by_factored_rms": (
        lambda s: jgd.scale_by_factored_rms(),
        lambda s: optax.scale_by_factored_rms(),
    ),
    "scale_by_factored_rms_flags": (
        lambda s: jgd.scale_by_factored_rms(
            True, 0.5, 0, 2, 1e-10, decay_rate_fn=capped_decay
        ),
        lambda s: optax.scale_by_factored_rms(
            True, 0.5, 0, 2, 1e-10, decay_rate_fn=capped_decay
        ),
    ),
    "scale_by_novograd": (
        lambda s: jgd.scale_by_novograd(),
        lambda s: optax.scale_by_novograd(),
    ),
    "scale_by_novograd_mu_dtype": (
        lambda s: jgd.scale_by_novograd(0.8, 0.9, 1e-3, 1e-4, 0.1, jnp.bfloat16),
        lambda s: optax.scale_by_novograd(0.8, 0.9, 1e-3, 1e-4, 0.1, jnp.bfloat16),
    ),
}

SCHEDULED: set[str] = {
    "lamb",
    "lars_flags",
    "fromage",
    "adafactor",
    "adafactor_factored_flags",
    "novograd",
}

CONFORMANCE: dict = {}

BAD_INPUT: list = []

THROUGH_TRAIN: dict = {}

KNOWN_DIFFERENCES: dict[str, str] = {
    "sm3 on a scalar leaf": (
        "optax.scale_by_sm3 (and optax.sm3) fail on a 0-d leaf (IndexError: its "
        "init gives the leaf no accumulator, its update reads one). jgd treats a "
        "scalar as a one-element vector, mu = [acc], so the standard tree runs. "
        "tests/test_per_leaf.py: test_sm3_matches_optax_without_scalar_leaf "
        "cross-checks on a tree without a scalar; test_sm3_scalar_leaf_is_a_vector "
        "checks the scalar against the same leaf as shape (1,)."
    ),
    "sm3 learning-rate schedule": (
        "optax.sm3 ends in scale(-learning_rate), so it takes only a number; "
        "jgd.sm3 ends in scale_by_learning_rate and also takes a schedule (same "
        "state, EmptyState, for a number). tests/test_per_leaf.py: "
        "test_sm3_schedule_matches_optax_chain."
    ),
}

SCHEDULES: dict = {}


# --------------------------------------------------------------------------
# The runner of tests/test_vs_optax.py, for a tree of one's choice.
# --------------------------------------------------------------------------

STEPS = 50


def _run(opt, params, grads, promotion):
    step = jax.jit(lambda g, s, p: opt.update(g, s, p))
    state = opt.init(params)
    history = []
    for g in grads:
        with promotion():
            updates, state = step(g, state, params)
        params = jgd.apply_updates(params, updates)
        history.append((updates, params))
    return history, state


def _split_complex(tree):
    """Complex leaves as (real, imag) pairs, so they compare as floats."""

    def split(x):
        return (x.real, x.imag) if jnp.iscomplexobj(x) else x

    return jax.tree.map(split, tree)


def cross_check(ours, theirs, params, name, steps=STEPS):
    """jgd's ``ours`` and optax's ``theirs`` on ``params`` and the same
    random gradients: updates and params every step, state at the end, at
    the tolerance of the params' dtype (f32 1e-6, f64 1e-12; complex64 as
    float32, real and imaginary parts apart)."""
    dtype = jax.tree.leaves(params)[0].dtype.type
    grads = gradient_stream(jax.random.key(2), params, steps)
    mine, s_mine = _run(ours, params, grads, contextlib.nullcontext)
    other, s_other = _run(theirs, params, grads, standard_promotion)
    rtol = TOL[jnp.finfo(dtype).dtype.type]  # complex64: float32's
    mine, other, s_mine, s_other = _split_complex((mine, other, s_mine, s_other))
    for t, ((u1, p1), (u2, p2)) in enumerate(zip(mine, other)):
        assert_trees_close(u1, u2, rtol, where=f"{name} step {t} updates")
        assert_trees_close(p1, p2, rtol, where=f"{name} step {t} params")
    assert_trees_close(s_mine, s_other, rtol, where=f"{name} final state")
    for a, b in zip(jax.tree.leaves(s_mine), jax.tree.leaves(s_other)):
        assert a.dtype == b.dtype, name
