"""Cases for jgd.contrib: muon, schedule-free, prodigy, dog, dowg.

See tests/catalogue/__init__.py for what each table feeds. Cross-checks that
need their own runner (scale_by_muon, which optax runs only on a single array
or with an explicit tree of dimension numbers) and the conformance checks of
dog and the schedule-free methods (their states hold a bool and a step count
that starts at 1, as optax's) live in tests/test_contrib_a.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import jgd
import jgd.contrib as jc
from jgd import schedules as js
from tests.helpers import decay_mask, f64_count, lr, random_tree

oc = optax.contrib


def _dims(cls):
    """Dimension numbers for the standard tree (tests/helpers.TREE_SHAPES):
    the matrix as it is, the 3-D tensor as a (2*3) x 2 matrix, the rest to
    AdamW."""

    def fn(params):
        return jax.tree.map(
            lambda x: cls() if x.ndim == 2 else cls((0, 1), 2) if x.ndim == 3 else None,
            params,
        )

    return fn


def _dims_tree(cls):
    """A prefix of the standard tree: ``head`` as a whole to AdamW, the 3-D
    (2, 3, 2) tensor as 3 matrices of 2 x 2 (axis 1 a batch axis)."""
    return {
        "scalar": None,
        "layers": [{"w": cls(), "b": None}, (cls(0, 2), None)],
        "head": None,
    }


# A weight-decay mask as a tree of bools (the matrix and the 3-D tensor).
_DECAY_TREE = decay_mask(random_tree(jax.random.key(0)))
_MUON_FLAGS = {
    "beta": 0.9,
    "eps": 1e-6,
    "weight_decay": 0.1,
    "weight_decay_mask": decay_mask,
    "ns_steps": 3,
    "nesterov": False,
    "adaptive": True,
    "adam_b1": 0.8,
    "adam_b2": 0.99,
    "adam_eps_root": 1e-8,
    "adam_weight_decay": 0.01,
    "adam_learning_rate": 0.02,
    "consistent_rms": 0.2,
}


def _optax_warmup(kind: str, learning_rate: float, warmup_steps: int, **kw):
    """optax.contrib.schedule_free_{sgd,adamw} with a warm-up. Under x64 it
    is rebuilt from its parts with the warm-up evaluated at the float64 step
    count (KNOWN_DIFFERENCES['schedule precision'] in tests/test_vs_optax.py:
    optax's own would compute it in float32)."""
    make = oc.schedule_free_sgd if kind == "sgd" else oc.schedule_free_adamw
    if not jax.config.jax_enable_x64:
        return make(learning_rate, warmup_steps, **kw)
    sched = f64_count(
        optax.schedules.warmup_constant_schedule(0, learning_rate, warmup_steps)
    )
    if kind == "sgd":
        inner = optax.sgd(sched)
        if kw.get("weight_decay") is not None:
            inner = optax.chain(optax.add_decayed_weights(kw["weight_decay"]), inner)
    else:
        inner = optax.chain(
            optax.scale_by_rms(
                decay=kw.get("b2", 0.999),
                eps=kw.get("eps", 1e-8),
                eps_in_sqrt=False,
                bias_correction=True,
            ),
            optax.add_decayed_weights(kw.get("weight_decay", 0.0)),
            optax.scale_by_learning_rate(sched),
        )
    return oc.schedule_free(
        inner,
        sched,
        b1=kw.get("b1", 0.9),
        weight_lr_power=kw.get("weight_lr_power", 2.0),
        state_dtype=kw.get("state_dtype"),
    )


_SF_ADAMW_FLAGS = {
    "b1": 0.8,
    "b2": 0.99,
    "eps": 1e-6,
    "weight_decay": 0.01,
    "weight_lr_power": 1.0,
    "state_dtype": jnp.float32,
}
_PRODIGY_FLAGS = {
    "betas": (0.8, 0.99),
    "beta3": 0.9,
    "eps": 1e-6,
    "estim_lr0": 1e-3,
    "estim_lr_coef": 0.5,
    "weight_decay": 0.01,
    "safeguard_warmup": True,
}


CASES: dict = {
    # muon
    "muon": (lambda s: jc.muon(lr(s, True)), lambda s: oc.muon(lr(s, False))),
    "muon_flags": (
        lambda s: jc.muon(lr(s, True), **_MUON_FLAGS),
        lambda s: oc.muon(lr(s, False), **_MUON_FLAGS),
    ),
    "muon_dion_aol": (
        lambda s: jc.muon(lr(s, True), ns_coeffs="dion", preconditioning="aol"),
        lambda s: oc.muon(lr(s, False), ns_coeffs="dion", preconditioning="aol"),
    ),
    "muon_schatten_mu_dtype": (
        lambda s: jc.muon(lr(s, True), preconditioning="schatten", mu_dtype="float32"),
        lambda s: oc.muon(lr(s, False), preconditioning="schatten", mu_dtype="float32"),
    ),
    "muon_spectral_rows": (
        lambda s: jc.muon(
            lr(s, True),
            ns_coeffs=((3.0, -3.2, 1.2), (3.4445, -4.7750, 2.0315)),
            ns_steps=4,
            preconditioning="spectral",
        ),
        lambda s: oc.muon(
            lr(s, False),
            ns_coeffs=((3.0, -3.2, 1.2), (3.4445, -4.7750, 2.0315)),
            ns_steps=4,
            preconditioning="spectral",
        ),
    ),
    "muon_dimension_numbers_fn": (
        lambda s: jc.muon(
            lr(s, True), muon_weight_dimension_numbers=_dims(jc.MuonDimensionNumbers)
        ),
        lambda s: oc.muon(
            lr(s, False), muon_weight_dimension_numbers=_dims(oc.MuonDimensionNumbers)
        ),
    ),
    "muon_dimension_numbers_tree": (
        lambda s: jc.muon(
            lr(s, True),
            weight_decay=0.1,
            weight_decay_mask=_DECAY_TREE,
            muon_weight_dimension_numbers=_dims_tree(jc.MuonDimensionNumbers),
            consistent_rms=0.2,
        ),
        lambda s: oc.muon(
            lr(s, False),
            weight_decay=0.1,
            weight_decay_mask=_DECAY_TREE,
            muon_weight_dimension_numbers=_dims_tree(oc.MuonDimensionNumbers),
            consistent_rms=0.2,
        ),
    ),
    # schedule-free
    "schedule_free_adamw": (
        lambda s: jc.schedule_free_adamw(lr(s, True)),
        lambda s: oc.schedule_free_adamw(lr(s, False)),
    ),
    "schedule_free_adamw_flags": (
        lambda s: jc.schedule_free_adamw(lr(s, True), **_SF_ADAMW_FLAGS),
        lambda s: oc.schedule_free_adamw(lr(s, False), **_SF_ADAMW_FLAGS),
    ),
    "schedule_free_adamw_warmup": (
        lambda s: jc.schedule_free_adamw(0.05, warmup_steps=10, weight_decay=0.01),
        lambda s: _optax_warmup("adamw", 0.05, 10, weight_decay=0.01),
    ),
    "schedule_free_sgd": (
        lambda s: jc.schedule_free_sgd(lr(s, True)),
        lambda s: oc.schedule_free_sgd(lr(s, False)),
    ),
    "schedule_free_sgd_warmup_decay": (
        lambda s: jc.schedule_free_sgd(
            0.05, warmup_steps=10, b1=0.95, weight_decay=0.01, weight_lr_power=1.0
        ),
        lambda s: _optax_warmup(
            "sgd", 0.05, 10, b1=0.95, weight_decay=0.01, weight_lr_power=1.0
        ),
    ),
    "schedule_free": (
        lambda s: jc.schedule_free(jgd.adam(lr(s, True), b1=0.0), lr(s, True)),
        lambda s: oc.schedule_free(optax.adam(lr(s, False), b1=0.0), lr(s, False)),
    ),
    "schedule_free_optax_base_state_dtype": (
        lambda s: jc.schedule_free(
            optax.sgd(0.05), 0.05, b1=0.8, weight_lr_power=0.5, state_dtype="float32"
        ),
        lambda s: oc.schedule_free(
            optax.sgd(0.05), 0.05, b1=0.8, weight_lr_power=0.5, state_dtype="float32"
        ),
    ),
    # prodigy, dog, dowg
    # Its warmup starts at 0.005: at a zero learning rate prodigy's defaults
    # divide 0 by 0 (optax's too), and every step would be NaN.
    "prodigy": (
        lambda s: jc.prodigy(lr(s, True, 0.005)),
        lambda s: oc.prodigy(lr(s, False, 0.005)),
    ),
    "prodigy_flags": (
        lambda s: jc.prodigy(lr(s, True), **_PRODIGY_FLAGS),
        lambda s: oc.prodigy(lr(s, False), **_PRODIGY_FLAGS),
    ),
    "dog": (lambda s: jc.dog(lr(s, True)), lambda s: oc.dog(lr(s, False))),
    "dog_distance_decay_mask": (
        lambda s: jc.dog(
            lr(s, True),
            init_step=("distance", 0.1),
            eps=1e-6,
            weight_decay=0.01,
            mask=decay_mask,
        ),
        lambda s: oc.dog(
            lr(s, False),
            init_step=("distance", 0.1),
            eps=1e-6,
            weight_decay=0.01,
            mask=decay_mask,
        ),
    ),
    "dog_learning_rate": (
        lambda s: jc.dog(lr(s, True), init_step=("learning_rate", 0.01)),
        lambda s: oc.dog(lr(s, False), init_step=("learning_rate", 0.01)),
    ),
    "dowg": (lambda s: jc.dowg(lr(s, True)), lambda s: oc.dowg(lr(s, False))),
    "dowg_flags": (
        lambda s: jc.dowg(
            lr(s, True), init_estim_sq_dist=0.01, eps=1e-6, weight_decay=0.01
        ),
        lambda s: oc.dowg(
            lr(s, False), init_estim_sq_dist=0.01, eps=1e-6, weight_decay=0.01
        ),
    ),
}
SCHEDULED: set[str] = {
    "muon",
    "muon_flags",
    "schedule_free_adamw",
    "schedule_free_adamw_flags",
    "schedule_free_sgd",
    "schedule_free",
    "prodigy",
    "prodigy_flags",
    "dog",
    "dowg",
}

# muon, dog and the schedule-free methods are in tests/test_contrib_a.py
# (OWN_CONFORMANCE): one shared check each does not fit (see there).
CONFORMANCE: dict = {
    # A decaying multiplier, as Prodigy's authors recommend (a schedule from
    # 1.0 down): without one neither reaches 1e-3 on Rosenbrock in 5000 steps.
    "prodigy": (
        lambda lr: jc.prodigy(js.cosine_decay_schedule(lr, 5000)),
        1.0,
        1.0,
        5000,
    ),
    "dowg": (
        lambda lr: jc.dowg(js.cosine_decay_schedule(lr, 5000, alpha=0.5)),
        1.0,
        1.0,
        5000,
    ),
}

BAD_INPUT: list = [
    (
        lambda: jc.muon(-0.1),
        ValueError,
        "jgd.contrib.muon: learning_rate must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jc.muon(0.1, beta=1.0),
        ValueError,
        "jgd.contrib.muon: beta must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jc.muon(0.1, ns_coeffs="fast"),
        ValueError,
        (
            "jgd.contrib.muon: ns_coeffs must be a preset in ['dion', 'standard'] or "
            "numbers; got 'fast'."
        ),
    ),
    (
        lambda: jc.muon(0.1, ns_coeffs=(3.0, -4.0)),
        ValueError,
        (
            "jgd.contrib.muon: ns_coeffs must be 3 numbers or rows of 3 numbers; got "
            "(3.0, -4.0) (shape (2,))."
        ),
    ),
    (
        lambda: jc.muon(0.1, ns_coeffs="dion", ns_steps=3),
        ValueError,
        "jgd.contrib.muon: ns_steps must be >= the 5 rows of ns_coeffs; got 3.",
    ),
    (
        lambda: jc.muon(0.1, preconditioning="svd"),
        ValueError,
        (
            "jgd.contrib.muon: preconditioning must be one of 'frobenius', 'spectral', "
            "'aol', 'schatten'; got 'svd'."
        ),
    ),
    (
        lambda: jc.muon(0.1, adam_b2=1.0),
        ValueError,
        "jgd.contrib.muon: adam_b2 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jc.muon(0.1, consistent_rms=-0.2),
        ValueError,
        "jgd.contrib.muon: consistent_rms must be finite and >= 0; got -0.2.",
    ),
    (
        lambda: jc.muon(0.1, weight_decay=-1.0),
        ValueError,
        "jgd.contrib.muon: weight_decay must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jc.scale_by_muon(ns_steps=-1),
        ValueError,
        "jgd.contrib.scale_by_muon: ns_steps must be an integer >= 0; got -1.",
    ),
    (
        lambda: jc.scale_by_muon(eps=-1e-8),
        ValueError,
        "jgd.contrib.scale_by_muon: eps must be finite and >= 0; got -1e-08.",
    ),
    (
        lambda: jc.scale_by_muon(mu_dtype="floaty"),
        TypeError,
        "jgd.contrib.scale_by_muon: mu_dtype must be a dtype or None; got 'floaty'.",
    ),
    (
        lambda: jc.schedule_free("sgd", 0.1),
        TypeError,
        (
            "jgd.contrib.schedule_free: base_optimizer must be a transform with init "
            "and update (jgd or optax); got 'sgd' (str)."
        ),
    ),
    (
        lambda: jc.schedule_free(jgd.sgd(0.1), 0.1, b1=0.0),
        ValueError,
        "jgd.contrib.schedule_free: b1 must be in (0, 1]; got 0.0.",
    ),
    (
        lambda: jc.schedule_free(jgd.sgd(0.1), 0.1, weight_lr_power=-2.0),
        ValueError,
        "jgd.contrib.schedule_free: weight_lr_power must be finite and >= 0; got -2.0.",
    ),
    (
        lambda: jc.schedule_free_adamw(0.1, warmup_steps=0),
        ValueError,
        "jgd.contrib.schedule_free_adamw: warmup_steps must be an integer >= 1; got 0.",
    ),
    (
        lambda: jc.schedule_free_adamw(0.1, b2=1.0),
        ValueError,
        "jgd.contrib.schedule_free_adamw: b2 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jc.schedule_free_adamw(js.constant_schedule(0.1), warmup_steps=5),
        TypeError,
        (
            "jgd.contrib.schedule_free_adamw: learning_rate must be a number; got "
            "ConstantSchedule(value=0.1) (ConstantSchedule)."
        ),
    ),
    (
        lambda: jc.schedule_free_sgd(0.1, weight_decay=-0.1),
        ValueError,
        (
            "jgd.contrib.schedule_free_sgd: weight_decay must be finite and >= 0; "
            "got -0.1."
        ),
    ),
    (
        lambda: jc.schedule_free_eval_params((), {"w": jnp.ones(2)}),
        TypeError,
        (
            "jgd.contrib.schedule_free_eval_params: state must be a ScheduleFreeState "
            "or hold exactly one; got tuple holding 0."
        ),
    ),
    (
        lambda: jc.prodigy(betas=(0.9,)),
        TypeError,
        "jgd.contrib.prodigy: betas must be a pair (beta1, beta2); got (0.9,).",
    ),
    (
        lambda: jc.prodigy(betas=(0.9, 1.0)),
        ValueError,
        "jgd.contrib.prodigy: betas[1] must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jc.prodigy(estim_lr0=0.0),
        ValueError,
        "jgd.contrib.prodigy: estim_lr0 must be finite and > 0; got 0.0.",
    ),
    (
        lambda: jc.prodigy(beta3=1.0),
        ValueError,
        "jgd.contrib.prodigy: beta3 must be in [0, 1); got 1.0.",
    ),
    (
        lambda: jc.dog(init_step=("guess", 1e-6)),
        ValueError,
        (
            "jgd.contrib.dog: init_step must be a pair (kind, value) with kind one of "
            "'distance', 'learning_rate', 'heuristic'; got ('guess', 1e-06)."
        ),
    ),
    (
        lambda: jc.dog(init_step=("distance", -1.0)),
        ValueError,
        "jgd.contrib.dog: init_step value must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jc.dog(weight_decay=-0.1),
        ValueError,
        "jgd.contrib.dog: weight_decay must be finite and >= 0; got -0.1.",
    ),
    (
        lambda: jc.dowg(init_estim_sq_dist=-1.0),
        ValueError,
        "jgd.contrib.dowg: init_estim_sq_dist must be finite and >= 0; got -1.0.",
    ),
    (
        lambda: jc.dowg(eps=-1e-4),
        ValueError,
        "jgd.contrib.dowg: eps must be finite and >= 0; got -0.0001.",
    ),
]

THROUGH_TRAIN: dict = {
    "muon": lambda: jc.muon(0.05, weight_decay=0.01),
    "muon_dimension_numbers": lambda: jc.muon(
        0.05, muon_weight_dimension_numbers=_dims(jc.MuonDimensionNumbers)
    ),
    "schedule_free_adamw": lambda: jc.schedule_free_adamw(0.05, weight_decay=0.01),
    "schedule_free_sgd": lambda: jc.schedule_free_sgd(0.05, warmup_steps=2),
    "schedule_free": lambda: jc.schedule_free(jgd.adam(0.05, b1=0.0), 0.05),
    "prodigy": lambda: jc.prodigy(weight_decay=0.01),
    "dog": lambda: jc.dog(init_step=("distance", 0.1)),
    "dowg": lambda: jc.dowg(weight_decay=0.01),
}

KNOWN_DIFFERENCES: dict[str, str] = {
    "muon ns_coeffs dtype": (
        "MuonState.ns_coeffs is stored in the params' widest float dtype (optax: "
        "the default float dtype), so a bf16 model's optimizer state is all "
        "bf16 (tests/test_conformance.py::test_dtypes_are_kept). The values are "
        "rounded through the default float first, as optax's are when it casts "
        "them to each leaf's dtype, so updates are the same: "
        "tests/test_contrib_a.py::test_muon_bf16_matches_optax."
    ),
    "scale_by_muon on a tree": (
        "optax.contrib.scale_by_muon with weight_dimension_numbers=None works on "
        "a single array only (a tree of matrices raises a tree-structure error, "
        "though its docstring says None means every leaf is a matrix); jgd's "
        "treats every leaf as a matrix. With an explicit tree the two agree: "
        "tests/test_contrib_a.py::test_scale_by_muon_tree_without_dimension_numbers "
        "and test_scale_by_muon_matches_optax."
    ),
    "muon schatten on complex": (
        "The Schatten-4 preconditioning scales X by ||X X^H||_F^(-1/2) (the "
        "Schatten-4 norm, Grishina et al. 2025); optax 0.2.8 uses X X^T, which is "
        "the same for real X and not a norm for complex X. "
        "tests/test_contrib_a.py::test_schatten_first_step_complex."
    ),
    "muon rescaling floor": (
        "The AOL and Schatten-4 first Newton-Schulz steps floor their rescaling "
        "sums at scale_by_muon's/muon's eps; optax 0.2.8 does not pass eps on "
        "and floors at 1e-8 whatever eps is. Only a matrix with a (near-)zero "
        "row can tell: tests/test_contrib_a.py::test_aol_first_step_floors_at_eps."
    ),
    "prodigy on complex": (
        "jgd's prodigy accumulates |d g|**2 for complex params (a real second "
        "moment, as optax's Adam does); optax.contrib.prodigy computes (d g)**2, "
        "complex. Real params: the same numbers, in optax's order of operations. "
        "tests/test_contrib_a.py::test_prodigy_complex_second_moment_is_real."
    ),
    "schedule_free_eval_params state": (
        "jgd.contrib.schedule_free_eval_params also takes a state holding one "
        "ScheduleFreeState (a chain's tuple) and raises TypeError otherwise; "
        "optax's takes the ScheduleFreeState only (ValueError or AttributeError "
        "otherwise). tests/test_contrib_a.py::test_schedule_free_eval_params."
    ),
}
SCHEDULES: dict = {}
