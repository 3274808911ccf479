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
import math

import jax
import jax.numpy as jnp
import optax

import jgd
from jgd import schedules as js
from jgd.transforms import masking  # not yet re-exported by jgd.transforms
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
    # Followed by a step size: applied as they are, g * |p| grows the params
    # geometrically, past float32's range at step 34 of 50 (NaN compared with
    # NaN from there on).
    "scale_by_param_block_norm": (
        lambda s: jgd.chain(jgd.scale_by_param_block_norm(), jgd.scale(-0.05)),
        lambda s: optax.chain(optax.scale_by_param_block_norm(), optax.scale(-0.05)),
    ),
    "scale_by_param_block_norm_floor": (
        # Norms of the leaves run from 0 to about 5: the floor acts on some.
        lambda s: jgd.chain(jgd.scale_by_param_block_norm(2.0), jgd.scale(-0.05)),
        lambda s: optax.chain(optax.scale_by_param_block_norm(2.0), optax.scale(-0.05)),
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
    "adafactor",
    "adafactor_factored_flags",
    "novograd",
}

E = js.exponential_decay  # the trust-ratio and normalised methods need decay

CONFORMANCE: dict = {
    "lamb": (lambda lr: jgd.lamb(E(lr, 2000, 0.3)), 0.01, 0.02, 5000),
    "lamb_wd_mask": (
        lambda lr: jgd.lamb(
            E(lr, 2000, 0.3),
            weight_decay=1e-4,
            mask=lambda p: jax.tree.map(lambda x: x.ndim >= 1, p),
        ),
        0.01,
        0.02,
        5000,
    ),
    "lars": (lambda lr: jgd.lars(lr), 1.0, 1.0, 5000),
    "lars_nesterov_wd": (
        lambda lr: jgd.lars(
            lr, weight_decay=1e-4, trust_coefficient=0.01, nesterov=True
        ),
        0.1,
        0.1,
        5000,
    ),
    "fromage": (lambda lr: jgd.fromage(E(lr, 1000, 0.3)), 0.01, 0.1, 5000),
    "adafactor": (lambda lr: jgd.adafactor(E(lr, 1000, 0.5)), 0.05, 0.03, 5000),
    "adafactor_factored_momentum_wd": (
        lambda lr: jgd.adafactor(
            E(lr, 1000, 0.5),
            min_dim_size_to_factor=2,
            momentum=0.9,
            dtype_momentum=None,
            weight_decay_rate=1e-4,
        ),
        0.05,
        0.03,
        5000,
    ),
    "adafactor_absolute_unfactored": (
        lambda lr: jgd.adafactor(
            E(lr, 1000, 0.5),
            multiply_by_parameter_scale=False,
            clipping_threshold=None,
            factored=False,
        ),
        0.03,
        0.01,
        5000,
    ),
    "sm3": (lambda lr: jgd.sm3(lr), 0.5, 1.0, 5000),
    "sm3_no_momentum": (lambda lr: jgd.sm3(lr, momentum=0.0), 0.5, 0.5, 5000),
    "novograd": (lambda lr: jgd.novograd(E(lr, 1000, 0.3)), 0.01, 0.02, 5000),
    "novograd_wd": (
        lambda lr: jgd.novograd(E(lr, 1000, 0.3), weight_decay=1e-3),
        0.01,
        0.02,
        5000,
    ),
}

_MASK_ERR = (
    "must be a tree of bools (shaped like the params or a prefix of them) or "
    "a callable params -> such a tree; got"
)
_W = {"w": jnp.zeros(2)}

BAD_INPUT: list = [
    (
        lambda: jgd.lamb(-0.1),
        ValueError,
        "jgd.lamb: learning_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.lamb(0.1, b1=1.0),
        ValueError,
        "jgd.lamb: b1 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.lamb(0.1, weight_decay=-1.0),
        ValueError,
        "jgd.lamb: weight_decay must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.lamb(0.1, mask={"w": jnp.array([True, False])}),
        TypeError,
        (
            f"jgd.lamb: mask {_MASK_ERR} Array([ True, False], dtype=bool) "
            "(ArrayImpl) at ['w']."
        ),
    ),
    (
        lambda: jgd.lamb(0.1).update(_W, jgd.lamb(0.1).init(_W)),
        ValueError,
        (
            "jgd.lamb: update needs params (weight decay adds weight_decay * params); "
            "call update(grads, state, params)."
        ),
    ),
    (
        lambda: jgd.lars(0.1, momentum=1.5),
        ValueError,
        "jgd.lars: momentum must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.lars(0.1, trust_coefficient=-0.001),
        ValueError,
        "jgd.lars: trust_coefficient must be finite and >= 0; got -0.001.",
    ),
    (
        lambda: jgd.lars(0.1, trust_ratio_mask=None),
        TypeError,
        f"jgd.lars: trust_ratio_mask {_MASK_ERR} None.",
    ),
    (
        lambda: jgd.lars(0.1, weight_decay_mask=[1, 0]),
        TypeError,
        f"jgd.lars: weight_decay_mask {_MASK_ERR} 1 (int) at [0].",
    ),
    (
        lambda: jgd.fromage(-0.1),
        ValueError,
        "jgd.fromage: learning_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.fromage(0.1, min_norm=-1.0),
        ValueError,
        "jgd.fromage: min_norm must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.adafactor(0.1, clipping_threshold=0.0),
        ValueError,
        "jgd.adafactor: clipping_threshold must be finite and > 0; got 0.0.",
    ),
    (
        lambda: jgd.adafactor(0.1, min_dim_size_to_factor=2.5),
        TypeError,
        (
            "jgd.adafactor: min_dim_size_to_factor must be an integer >= 0; got 2.5 "
            "(float)."
        ),
    ),
    (
        lambda: jgd.adafactor(0.1, decay_offset=-1),
        ValueError,
        "jgd.adafactor: decay_offset must be finite and >= 0; got -1.",
    ),
    (
        lambda: jgd.adafactor(0.1, momentum=1.5),
        ValueError,
        "jgd.adafactor: momentum must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.adafactor(0.1, weight_decay_rate=-0.1),
        ValueError,
        "jgd.adafactor: weight_decay_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.adafactor(0.1, decay_rate=-0.8),
        ValueError,
        "jgd.adafactor: decay_rate must be finite and >= 0; got -0.8.",
    ),
    (
        lambda: jgd.adafactor(0.1, dtype_momentum="floaty"),
        TypeError,
        "jgd.adafactor: dtype_momentum must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: jgd.sm3(0.1, momentum=1.0),
        ValueError,
        "jgd.sm3: momentum must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.sm3(-0.1),
        ValueError,
        "jgd.sm3: learning_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.sm3(0.1).init({"w": jnp.zeros(2, jnp.complex64)}),
        ValueError,
        (
            "jgd.sm3: complex params are not supported (nor in optax); got complex64 "
            "at ['w']."
        ),
    ),
    (
        lambda: jgd.novograd(0.1, b2=1.0),
        ValueError,
        "jgd.novograd: b2 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jgd.novograd(0.1, weight_decay=-0.1),
        ValueError,
        "jgd.novograd: weight_decay must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jgd.novograd(0.1).update(_W, jgd.novograd(0.1).init(_W)),
        ValueError,
        (
            "jgd.novograd: update needs params (weight decay is part of the step); "
            "call update(grads, state, params)."
        ),
    ),
    (
        lambda: jgd.scale_by_trust_ratio(eps=-1.0),
        ValueError,
        "jgd.scale_by_trust_ratio: eps must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_trust_ratio().update(
            _W, jgd.scale_by_trust_ratio().init(_W)
        ),
        ValueError,
        (
            "jgd.scale_by_trust_ratio: update needs params (the trust ratio uses the "
            "params' norms); call update(grads, state, params)."
        ),
    ),
    (
        lambda: jgd.scale_by_param_block_norm(-1.0),
        ValueError,
        "jgd.scale_by_param_block_norm: min_scale must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jgd.scale_by_param_block_rms(math.nan),
        ValueError,
        "jgd.scale_by_param_block_rms: min_scale must be finite and >= 0; got nan.",
    ),
    (
        lambda: jgd.scale_by_factored_rms(decay_rate_fn=3),
        TypeError,
        (
            "jgd.scale_by_factored_rms: decay_rate_fn must be a callable "
            "(step, decay_rate) -> decay; got 3."
        ),
    ),
    (
        lambda: jgd.scale_by_factored_rms(min_dim_size_to_factor=-1),
        ValueError,
        (
            "jgd.scale_by_factored_rms: min_dim_size_to_factor must be an integer >= 0; "
            "got -1."
        ),
    ),
    (
        lambda: jgd.scale_by_sm3(b2=1.5),
        ValueError,
        "jgd.scale_by_sm3: b2 must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.scale_by_novograd(mu_dtype="x"),
        TypeError,
        "jgd.scale_by_novograd: mu_dtype must be a dtype or None; got 'x'.",
    ),
    (
        lambda: masking.masked(jgd.adam(0.1), None),
        TypeError,
        f"jgd.masked: mask {_MASK_ERR} None.",
    ),
    (
        lambda: masking.masked(3, True),
        TypeError,
        (
            "jgd.masked: inner must be a transform with init and update (jgd or "
            "optax); got 3 (int)."
        ),
    ),
    (
        lambda: masking.masked(jgd.adam(0.1), {"a": "yes"}),
        TypeError,
        f"jgd.masked: mask {_MASK_ERR} 'yes' (str) at ['a'].",
    ),
]

# tests/test_catalogue_train.py's params: w (8, 6), k (2, 3, 6), b (6,), s ().
_TRAIN_MASK = {"w": True, "k": True, "b": False, "s": False}

THROUGH_TRAIN: dict = {
    "lamb": lambda: jgd.lamb(0.01, weight_decay=0.01, mask=decay_mask),
    "lamb_tree_mask": lambda: jgd.lamb(
        js.linear_schedule(0.02, 0.0, 3), weight_decay=0.01, mask=_TRAIN_MASK
    ),
    "lars": lambda: jgd.lars(
        0.1,
        weight_decay=1e-3,
        weight_decay_mask=_TRAIN_MASK,
        trust_ratio_mask=decay_mask,
        nesterov=True,
    ),
    "fromage": lambda: jgd.fromage(0.01),
    "fromage_schedule": lambda: jgd.fromage(js.linear_schedule(0.02, 0.01, 3)),
    "adafactor": lambda: jgd.adafactor(0.01, min_dim_size_to_factor=2),
    "adafactor_momentum_wd": lambda: jgd.adafactor(
        0.01,
        min_dim_size_to_factor=3,
        decay_offset=0,
        momentum=0.9,
        weight_decay_rate=1e-3,
        weight_decay_mask=decay_mask,
    ),
    "sm3": lambda: jgd.sm3(0.05),
    "novograd": lambda: jgd.novograd(0.01, weight_decay=1e-3),
}

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

KNOWN_DIFFERENCES["fromage shrink"] = (
    "With a schedule, optax.fromage decays the params by mult - 1, mult = "
    "1 / sqrt(1 + lr**2), computed from the schedule's float32 value: at lr = "
    "0.01, mult - 1 = -5e-5 keeps ~3 significant digits (a relative error up to "
    "~1e-3, ~1e-5 of the update). jgd writes it -lr**2 / (s * (1 + s)), s = "
    "sqrt(1 + lr**2), exact to rounding; the same for a traced learning rate "
    "(jit over the optimizer, as jgd.train). A Python float keeps optax's form, "
    "exact in double. So fromage is not in SCHEDULED; tests/test_per_leaf.py: "
    "test_fromage_schedule_is_optax_recipe_with_exact_shrink cross-checks "
    "against optax's own chain with the shrink rewritten (float32 and float64), "
    "test_fromage_shrink_float32_golden shows jgd's float32 step right to "
    "rounding where optax's is off by more than 1e-4 in some elements."
)

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
