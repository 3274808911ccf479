"""Every jgd optimizer, building block and schedule against its optax twin.

Each case runs jgd and optax 0.2.8 on the same random nested pytree (dict,
list, tuple; scalar, vector, matrix, 3-D and zero-size leaves) and the same
stream of random gradients; updates and params are compared at every step (so
a divergence is located, not just detected) and state leaves at the end, in
float32 (rtol 1e-6) and float64 (rtol 1e-12). Schedules are compared at every
integer step, boundaries included.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import schedules as js
from tests import catalogue
from tests.helpers import (
    TOL,
    assert_trees_close,
    decay_mask,
    f64_count,
    gradient_stream,
    lr,
    random_tree,
    standard_promotion,
)

STEPS = 50
CLIP = 6.0  # clip_by_global_norm's max_norm: inside the stream's range of norms

# Deliberate differences from optax 0.2.8, each with its reason. Cases below
# compare what is comparable; the tests named here check the difference itself.
KNOWN_DIFFERENCES = {
    "state containers": (
        "jgd.gd's state is (EmptyState(),) where optax.sgd's is (EmptyState(), "
        "EmptyState()); a masked add_decayed_weights keeps its state flat where "
        "optax wraps it in MaskedState. The leaves are the same, so states are "
        "compared leaf by leaf."
    ),
    "state types": (
        "EmptyState is optax's own class once optax is imported (jgd looks in "
        "sys.modules and never imports optax itself, which would add ~0.1 s to "
        "import jgd), so stateless pieces give states whose tree structure equals "
        "optax's (tests/test_optax_compat.py::test_state_structure_equals_optax). "
        "The stateful states (TraceState, ScaleByAdamState, ...) are jgd's own "
        "NamedTuples with optax's names and fields: equal leaf by leaf, but "
        "jax.tree.structure tells them apart from optax's. A state made before "
        "optax is imported keeps jgd's EmptyState."
    ),
    "isinstance": (
        "isinstance(jgd.adam(1e-3), optax.GradientTransformation) is False. optax's "
        "GradientTransformation(ExtraArgs) are NamedTuple classes whose metaclass "
        "is type: they have no ABC register, and isinstance can only be True for "
        "real tuple subclasses, which would make every jgd value a tuple of its "
        "bound methods (len 2, iterable, tuple comparisons) and need optax at "
        "import time. The one isinstance check in optax 0.2.8 "
        "(with_extra_args_support, used by optax.chain) then wraps the jgd value: "
        "it works, but extra keyword arguments do not reach it (no jgd transform "
        "uses them; an optax transform nested in a jgd chain inside optax.chain "
        "would not see them). flax's nnx.Optimizer checks no type. See "
        "test_optax_compat.py: test_with_extra_args_support_wraps_jgd_values, "
        "test_optax_chain_takes_jgd_values, "
        "test_flax_nnx_optimizer_accepts_jgd_and_matches_optax (test_protocol.py)."
    ),
    "schedule arguments": (
        "jgd schedules raise ValueError for transition_steps/decay_steps <= 0, "
        "transition_begin < 0 and decay_rate <= 0, where optax logs and returns "
        "a constant schedule: a silent constant learning rate is a bug to report. "
        "See test_schedule_arguments_optax_accepts_jgd_rejects."
    ),
    "schedule precision": (
        "jgd evaluates schedules in the default float dtype (float64 under x64); "
        "optax divides the int32 step count by an int, which gives float32 even "
        "under x64. The float64 cross-checks therefore feed optax's schedules "
        "the step count as float64 (the same function, evaluated in the precision "
        "under test): see tests.helpers.f64_count."
    ),
    "clip rounding": (
        "jgd.clip_by_global_norm scales by one factor, g * (max_norm / n), as "
        "torch's clip_grad_norm_ does, where optax computes g / n * max_norm per "
        "element: the two round differently (a clipped update can be 1-2 ulp "
        "apart), and 50 steps of Adam grow that past rtol 1e-6 in float32. XLA "
        "fuses one multiply into the optimizer after it, but writes the divided "
        "gradient out (chain(clip, adamw) ~3x adamw's step time on CPU, ~1.2x "
        "with the factor). The multi-step cases therefore compare against "
        "optax's norm with the factor form (_optax_clip_by_global_norm), and "
        "test_clip_by_global_norm_rounding_vs_optax compares with "
        "optax.clip_by_global_norm itself, step by step: bit-identical when "
        "not clipping, within 2 ulp when clipping."
    ),
    "traced float32 hyperparameters": (
        "When an optimizer is passed to jit as an argument without x64, its "
        "hyperparameters are float32 tracers, so 1 - b2 for b2 = 0.999 carries "
        "float32 rounding (~6e-5 relative) where optax folds the Python double. "
        "Cross-checks close over the optimizer (constants, bit-for-bit as optax); "
        "test_protocol.py checks the traced path equals the closed-over one in "
        "float64. jgd.train's make_step and fit take the optimizer from the state "
        "as such an argument (a new learning rate must not recompile), so the same "
        "rounding applies there: tests/test_train_state.py measures it."
    ),
    "loss argument checks": (
        "jgd's softmax cross entropies take where= shaped like the logits or like "
        "the logits without axis, and labels (soft) shaped like the logits: "
        "nothing is broadcast silently, where optax broadcasts. A non-bool where, "
        "an axis of the wrong kind (None, list, float) for the integer-label loss, "
        "an empty or repeated axis tuple raise TypeError/ValueError naming the "
        "argument; optax raises jax's errors from deep inside or (empty tuple) "
        "returns a meaningless loss. NumPy integer axes are accepted. See "
        "tests/test_losses.py: test_the_house_messages_for_axis_and_where, "
        "test_bad_argument_message."
    ),
    "masked label gradients": (
        "Under where=, a masked entry's label gets gradient 0 in jgd and NaN in "
        "optax (labels * -inf), and NaN/inf labels under the mask do not leak into "
        "the loss. Values and logit gradients match optax (tests/test_losses_extremes.py: "
        "test_masked_extreme_logits_match_optax, "
        "test_masked_garbage_stays_out). An unmasked -inf logit with label "
        "0 still gives NaN in both, as 0 * -inf: mask such classes with where."
    ),
}
KNOWN_DIFFERENCES.update(catalogue.KNOWN_DIFFERENCES)


def _optax_clip_by_global_norm(max_norm):
    """KNOWN_DIFFERENCES['clip rounding']: optax.clip_by_global_norm with its
    scale written as one factor, from optax's own tree norm."""

    def update(updates, state, params=None):
        n = optax.tree_utils.tree_norm(updates)
        factor = jnp.where(n < max_norm, jnp.ones_like(n), max_norm / n)
        return jax.tree.map(lambda g: g * factor.astype(g.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# name -> (jgd factory, optax factory), each taking `sched` (bool).
CASES = {
    # optimizers
    "gd": (lambda s: jgd.gd(lr(s, True)), lambda s: optax.sgd(lr(s, False))),
    "sgd": (lambda s: jgd.sgd(lr(s, True)), lambda s: optax.sgd(lr(s, False))),
    "sgd_momentum": (
        lambda s: jgd.sgd(lr(s, True), momentum=0.9),
        lambda s: optax.sgd(lr(s, False), momentum=0.9),
    ),
    "sgd_nesterov": (
        lambda s: jgd.sgd(lr(s, True), momentum=0.8, nesterov=True),
        lambda s: optax.sgd(lr(s, False), momentum=0.8, nesterov=True),
    ),
    "rmsprop": (
        lambda s: jgd.rmsprop(lr(s, True)),
        lambda s: optax.rmsprop(lr(s, False)),
    ),
    "rmsprop_all_flags": (
        lambda s: jgd.rmsprop(
            lr(s, True),
            decay=0.95,
            eps=1e-6,
            initial_scale=0.1,
            eps_in_sqrt=False,
            centered=True,
            momentum=0.9,
            nesterov=True,
            bias_correction=True,
        ),
        lambda s: optax.rmsprop(
            lr(s, False),
            decay=0.95,
            eps=1e-6,
            initial_scale=0.1,
            eps_in_sqrt=False,
            centered=True,
            momentum=0.9,
            nesterov=True,
            bias_correction=True,
        ),
    ),
    "rmsprop_momentum_bias_correction": (
        lambda s: jgd.rmsprop(lr(s, True), momentum=0.5, bias_correction=True),
        lambda s: optax.rmsprop(lr(s, False), momentum=0.5, bias_correction=True),
    ),
    "adagrad": (
        lambda s: jgd.adagrad(lr(s, True)),
        lambda s: optax.adagrad(lr(s, False)),
    ),
    "adagrad_args": (
        lambda s: jgd.adagrad(lr(s, True), initial_accumulator_value=0.0, eps=1e-3),
        lambda s: optax.adagrad(lr(s, False), initial_accumulator_value=0.0, eps=1e-3),
    ),
    "adam": (lambda s: jgd.adam(lr(s, True)), lambda s: optax.adam(lr(s, False))),
    "adam_all_flags": (
        lambda s: jgd.adam(
            lr(s, True), b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8, nesterov=True
        ),
        lambda s: optax.adam(
            lr(s, False), b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8, nesterov=True
        ),
    ),
    "adamw": (lambda s: jgd.adamw(lr(s, True)), lambda s: optax.adamw(lr(s, False))),
    "adamw_mask_tree_wd_schedule": (
        lambda s: jgd.adamw(
            lr(s, True),
            weight_decay=js.linear_schedule(0.1, 0.0, 30),
            mask=decay_mask(random_tree(jax.random.key(0))),
        ),
        lambda s: optax.adamw(
            lr(s, False),
            weight_decay=f64_count(optax.schedules.linear_schedule(0.1, 0.0, 30)),
            mask=decay_mask(random_tree(jax.random.key(0))),
        ),
    ),
    "adamw_mask_callable_nesterov": (
        lambda s: jgd.adamw(
            lr(s, True), weight_decay=0.05, mask=decay_mask, nesterov=True
        ),
        lambda s: optax.adamw(
            lr(s, False), weight_decay=0.05, mask=decay_mask, nesterov=True
        ),
    ),
    # building blocks
    "identity": (lambda s: jgd.identity(), lambda s: optax.identity()),
    "scale": (lambda s: jgd.scale(-0.3), lambda s: optax.scale(-0.3)),
    "scale_by_learning_rate": (
        lambda s: jgd.scale_by_learning_rate(lr(s, True)),
        lambda s: optax.scale_by_learning_rate(lr(s, False)),
    ),
    "scale_by_learning_rate_no_flip": (
        lambda s: jgd.scale_by_learning_rate(lr(s, True), flip_sign=False),
        lambda s: optax.scale_by_learning_rate(lr(s, False), flip_sign=False),
    ),
    "trace": (lambda s: jgd.trace(0.9), lambda s: optax.trace(0.9)),
    "trace_nesterov": (
        lambda s: jgd.trace(0.5, nesterov=True),
        lambda s: optax.trace(0.5, nesterov=True),
    ),
    "scale_by_rms": (lambda s: jgd.scale_by_rms(), lambda s: optax.scale_by_rms()),
    "scale_by_rms_flags": (
        lambda s: jgd.scale_by_rms(
            0.8, 1e-4, 0.5, eps_in_sqrt=False, bias_correction=True
        ),
        lambda s: optax.scale_by_rms(
            0.8, 1e-4, 0.5, eps_in_sqrt=False, bias_correction=True
        ),
    ),
    "scale_by_stddev": (
        lambda s: jgd.scale_by_stddev(),
        lambda s: optax.scale_by_stddev(),
    ),
    "scale_by_stddev_flags": (
        lambda s: jgd.scale_by_stddev(
            0.8, 1e-4, 0.5, eps_in_sqrt=False, bias_correction=True
        ),
        lambda s: optax.scale_by_stddev(
            0.8, 1e-4, 0.5, eps_in_sqrt=False, bias_correction=True
        ),
    ),
    "scale_by_rss": (lambda s: jgd.scale_by_rss(), lambda s: optax.scale_by_rss()),
    "scale_by_adam": (lambda s: jgd.scale_by_adam(), lambda s: optax.scale_by_adam()),
    "scale_by_adam_flags": (
        lambda s: jgd.scale_by_adam(0.5, 0.9, 1e-5, 1e-6, nesterov=True),
        lambda s: optax.scale_by_adam(0.5, 0.9, 1e-5, 1e-6, nesterov=True),
    ),
    "add_decayed_weights": (
        lambda s: jgd.add_decayed_weights(0.1),
        lambda s: optax.add_decayed_weights(0.1),
    ),
    "add_decayed_weights_masked": (
        lambda s: jgd.add_decayed_weights(0.1, decay_mask),
        lambda s: optax.add_decayed_weights(0.1, decay_mask),
    ),
    "clip": (lambda s: jgd.clip(0.5), lambda s: optax.clip(0.5)),
    "clip_by_global_norm": (
        # The stream's global norms run from 4.0 to 7.7 (median 6.0), so with
        # max_norm 6 both branches run (test_clip_by_global_norm_rounding_vs_optax
        # counts them).
        lambda s: jgd.clip_by_global_norm(CLIP),
        lambda s: _optax_clip_by_global_norm(CLIP),
    ),
    "chain_clip_adamw": (
        lambda s: jgd.chain(
            jgd.clip_by_global_norm(CLIP), jgd.adamw(lr(s, True), weight_decay=0.01)
        ),
        lambda s: optax.chain(
            _optax_clip_by_global_norm(CLIP),
            optax.adamw(lr(s, False), weight_decay=0.01),
        ),
    ),
}
CORE = frozenset(CASES)  # the tutorials' optimizers and their blocks
CASES.update(catalogue.CASES)

SCHEDULED = {
    "gd",
    "sgd_momentum",
    "rmsprop_all_flags",
    "adagrad",
    "adam",
    "adamw",
    "adamw_mask_tree_wd_schedule",
    "scale_by_learning_rate",
} | catalogue.SCHEDULED
PARAMS = [(name, False) for name in CASES] + [
    (name, True) for name in sorted(SCHEDULED)
]


def _in_ci() -> frozenset:
    """The cases CI runs in float32 (the rest under ``-m slow``): every core
    case, and one case per kind of jgd value in the catalogue (its first, with
    the defaults; its flag variants under slow). Wrappers built by ``chain``
    or handed to optax are each their own kind. Scheduled runs: the core's,
    and contrib's, whose methods read the learning rate inside their own math;
    the catalogue's others reach it through scale_by_learning_rate, which the
    core's scheduled runs prove."""
    keep, kinds = set(CORE), set()
    for name, (make_jgd, _) in catalogue.CASES.items():
        kind = type(make_jgd(False)).__name__
        if kind in ("Chain", "GradientTransformationExtraArgs") or kind not in kinds:
            keep.add(name)
        kinds.add(kind)
    contrib = set(catalogue.contrib_a.CASES) | set(catalogue.contrib_b.CASES)
    scheduled = {
        (n, True) for n in SCHEDULED if n in keep and (n in CORE or n in contrib)
    }
    return frozenset({(n, False) for n in keep} | scheduled)


IN_CI = _in_ci()


def _params(dtype_in_ci):
    return [
        pytest.param(
            n,
            s,
            id=f"{n}{'-sched' if s else ''}",
            marks=() if dtype_in_ci(n, s) else pytest.mark.slow,
        )
        for n, s in PARAMS
    ]


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


def _cross_check(name, sched, dtype):
    make_jgd, make_optax = CASES[name]
    params = random_tree(jax.random.key(1), dtype)
    grads = gradient_stream(jax.random.key(2), params, STEPS)
    ours, s_ours = _run(make_jgd(sched), params, grads, contextlib.nullcontext)
    theirs, s_theirs = _run(make_optax(sched), params, grads, standard_promotion)
    rtol = TOL[dtype]
    for t, ((u1, p1), (u2, p2)) in enumerate(zip(ours, theirs)):
        assert_trees_close(u1, u2, rtol, where=f"{name} step {t} updates")
        assert_trees_close(p1, p2, rtol, where=f"{name} step {t} params")
    assert_trees_close(s_ours, s_theirs, rtol, where=f"{name} final state")
    for a, b in zip(jax.tree.leaves(s_ours), jax.tree.leaves(s_theirs)):
        assert a.dtype == b.dtype


@pytest.mark.parametrize("name,sched", _params(lambda n, s: (n, s) in IN_CI))
def test_matches_optax_float32(name, sched):
    _cross_check(name, sched, jnp.float32)


# float64: the core cases in CI, the catalogue's under -m slow.
@pytest.mark.parametrize("name,sched", _params(lambda n, s: n in CORE))
def test_matches_optax_float64(name, sched, x64):
    _cross_check(name, sched, jnp.float64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_clip_by_global_norm_rounding_vs_optax(dtype, request):
    """KNOWN_DIFFERENCES['clip rounding'], against optax.clip_by_global_norm
    itself: unclipped updates are bit-identical, clipped ones within 2 ulp."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    params = random_tree(jax.random.key(1), jnp.dtype(dtype))
    grads = gradient_stream(jax.random.key(2), params, STEPS)
    ours, theirs = jgd.clip_by_global_norm(CLIP), optax.clip_by_global_norm(CLIP)
    # one compile each, reused for every step
    our_step, their_step = jax.jit(ours.update), jax.jit(theirs.update)
    clipped = 0
    for t, g in enumerate(grads):
        u1, _ = our_step(g, ours.init(params))
        with standard_promotion():
            u2, _ = their_step(g, theirs.init(params))
        n = float(optax.tree_utils.tree_norm(g))
        clipped += n >= CLIP
        for (path, a), b in zip(
            jax.tree_util.tree_flatten_with_path(u1)[0], jax.tree.leaves(u2)
        ):
            where = f"step {t} (norm {n:.3f}){jax.tree_util.keystr(path)}"
            assert a.dtype == b.dtype, where
            if n < CLIP:
                np.testing.assert_array_equal(a, b, err_msg=where)
            else:
                np.testing.assert_array_max_ulp(np.asarray(a), np.asarray(b), 2)
    assert 0 < clipped < STEPS  # both branches ran


# --------------------------------------------------------------------------
# Schedules at every integer step.
# --------------------------------------------------------------------------

SCHEDULES = {
    "constant": (js.constant_schedule(0.3), optax.schedules.constant_schedule(0.3), 10),
    "linear": (
        js.linear_schedule(1.0, 0.1, 20),
        optax.schedules.linear_schedule(1.0, 0.1, 20),
        30,
    ),
    "linear_begin": (
        js.linear_schedule(0.5, 1.5, 10, transition_begin=5),
        optax.schedules.linear_schedule(0.5, 1.5, 10, transition_begin=5),
        25,
    ),
    "polynomial": (
        js.polynomial_schedule(1.0, 0.01, 2, 30, 3),
        optax.schedules.polynomial_schedule(1.0, 0.01, 2, 30, 3),
        40,
    ),
    "polynomial_sqrt": (
        js.polynomial_schedule(2.0, 0.5, 0.5, 16),
        optax.schedules.polynomial_schedule(2.0, 0.5, 0.5, 16),
        20,
    ),
    "exponential": (
        js.exponential_decay(1.0, 5, 0.5),
        optax.schedules.exponential_decay(1.0, 5, 0.5),
        40,
    ),
    "exponential_staircase_begin_end": (
        js.exponential_decay(
            1.0, 4, 0.7, transition_begin=3, staircase=True, end_value=0.2
        ),
        optax.schedules.exponential_decay(
            1.0, 4, 0.7, transition_begin=3, staircase=True, end_value=0.2
        ),
        40,
    ),
    "exponential_growth_end": (
        js.exponential_decay(0.1, 3, 1.5, end_value=1.0),
        optax.schedules.exponential_decay(0.1, 3, 1.5, end_value=1.0),
        30,
    ),
    "piecewise": (
        js.piecewise_constant_schedule(0.1, {10: 0.5, 5: 2.0, 20: 0.1}),
        optax.schedules.piecewise_constant_schedule(0.1, {10: 0.5, 5: 2.0, 20: 0.1}),
        30,
    ),
    "cosine": (
        js.cosine_decay_schedule(1.0, 25, alpha=0.1, exponent=2.0),
        optax.schedules.cosine_decay_schedule(1.0, 25, alpha=0.1, exponent=2.0),
        35,
    ),
    "warmup_cosine": (
        js.warmup_cosine_decay_schedule(0.0, 1.0, 7, 30, end_value=0.05),
        optax.schedules.warmup_cosine_decay_schedule(0.0, 1.0, 7, 30, end_value=0.05),
        40,
    ),
    "warmup_cosine_no_warmup": (
        js.warmup_cosine_decay_schedule(0.0, 1.0, 0, 30),
        optax.schedules.warmup_cosine_decay_schedule(0.0, 1.0, 0, 30),
        40,
    ),
    "join": (
        js.join_schedules(
            [
                js.constant_schedule(1.0),
                js.linear_schedule(1.0, 0.0, 10),
                js.constant_schedule(0.0),
            ],
            [5, 15],
        ),
        optax.schedules.join_schedules(
            [
                optax.schedules.constant_schedule(1.0),
                optax.schedules.linear_schedule(1.0, 0.0, 10),
                optax.schedules.constant_schedule(0.0),
            ],
            [5, 15],
        ),
        25,
    ),
    "join_with_optax_piece": (
        js.join_schedules(
            [js.constant_schedule(0.5), optax.schedules.cosine_decay_schedule(0.5, 10)],
            [4],
        ),
        optax.schedules.join_schedules(
            [
                optax.schedules.constant_schedule(0.5),
                optax.schedules.cosine_decay_schedule(0.5, 10),
            ],
            [4],
        ),
        20,
    ),
}
SCHEDULES.update(catalogue.SCHEDULES)


def _check_schedule(name):
    ours, theirs, n = SCHEDULES[name]
    counts = jnp.arange(n + 1, dtype=jnp.int32)
    # An optax piece inside a jgd schedule brings optax's standard promotion.
    with standard_promotion() if "optax" in name else contextlib.nullcontext():
        got_jit = jax.jit(jax.vmap(ours))(counts)
        got_eager = [ours(c) for c in counts]
    theirs = f64_count(theirs)
    with standard_promotion():
        want_jit = jax.jit(jax.vmap(theirs))(counts)
        want_eager = [theirs(c) for c in counts]
    rtol = TOL[jax.dtypes.canonicalize_dtype(jnp.float64).type]
    for c in range(n + 1):
        for got, want, how in [
            (got_jit, want_jit, "jit"),
            (got_eager, want_eager, "eager"),
        ]:
            np.testing.assert_allclose(
                np.float64(got[c]),
                np.float64(want[c]),
                rtol=rtol,
                atol=0,
                err_msg=f"{name} at step {c} ({how})",
            )


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_optax(name):
    _check_schedule(name)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_optax_float64(name, x64):
    _check_schedule(name)


@pytest.mark.parametrize(
    "make_ours,make_theirs",
    [
        (
            lambda: js.linear_schedule(1.0, 0.0, 0),
            lambda: optax.schedules.linear_schedule(1.0, 0.0, 0),
        ),
        (
            lambda: js.exponential_decay(1.0, 0, 0.5),
            lambda: optax.schedules.exponential_decay(1.0, 0, 0.5),
        ),
        (
            lambda: js.exponential_decay(1.0, 5, 0.0),
            lambda: optax.schedules.exponential_decay(1.0, 5, 0.0),
        ),
        (
            lambda: js.polynomial_schedule(1.0, 0.0, 1, 5, -2),
            lambda: optax.schedules.polynomial_schedule(1.0, 0.0, 1, 5, -2),
        ),
    ],
)
def test_schedule_arguments_optax_accepts_jgd_rejects(make_ours, make_theirs):
    """KNOWN_DIFFERENCES['schedule arguments']: optax silently accepts these."""
    make_theirs()(3)
    with pytest.raises(ValueError, match=r"^jgd\.schedules\.\w+: \w+ must be"):
        make_ours()
