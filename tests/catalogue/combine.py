"""The composing wrappers (issue 12): named_chain, flatten,
conditionally_transform/mask, with_extra_args_support, lookahead.

optax pieces sit inside jgd wrappers in some cases (the reverse, jgd pieces
inside optax's wrappers, is in tests/test_combine.py). lookahead runs here on
plain params, the slow ones in its state; its optax twin is optax.lookahead on
LookaheadParams with the slow params carried alongside its state
(``_optax_lookahead_plain``). The LookaheadParams form is cross-checked in
tests/test_combine.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

import jgd
from tests.helpers import lr


def every_third_skipped(step):
    """Transform at steps 0, 2, 3, 5, 6, ...: both branches of the cond run."""
    return step % 3 != 1


def from_step_two(step):
    return step >= 2


def _optax_lookahead_plain(fast, sync_period, slow_step_size, reset_state=False):
    """optax.lookahead on ``LookaheadParams(fast=params, slow)``, the slow
    params kept next to its state and moved by its slow updates: what
    jgd.lookahead computes on plain params, in optax's own code. The state
    ``((fast_state, steps_since_sync), slow)`` has jgd's leaves in jgd's order."""
    inner = optax.lookahead(fast, sync_period, slow_step_size, reset_state)

    def init(params):
        return inner.init(optax.LookaheadParams.init_synced(params)), params

    def update(updates, state, params=None):
        s, slow = state
        u, s = inner.update(updates, s, optax.LookaheadParams(fast=params, slow=slow))
        return u.fast, (s, optax.apply_updates(slow, u.slow))

    return optax.GradientTransformation(init, update)


CASES: dict = {
    "named_chain_mixed": (
        lambda s: jgd.named_chain(
            ("clip", optax.clip(0.5)), ("adam", jgd.adam(lr(s, True)))
        ),
        lambda s: optax.named_chain(
            ("clip", optax.clip(0.5)), ("adam", optax.adam(lr(s, False)))
        ),
    ),
    "flatten_adam": (
        lambda s: jgd.flatten(jgd.adam(lr(s, True))),
        lambda s: optax.flatten(optax.adam(lr(s, False))),
    ),
    "conditionally_transform_mixed": (
        lambda s: jgd.chain(
            jgd.conditionally_transform(
                optax.trace(0.5, nesterov=True), every_third_skipped
            ),
            jgd.scale_by_learning_rate(lr(s, True)),
        ),
        lambda s: optax.chain(
            optax.conditionally_transform(
                optax.trace(0.5, nesterov=True), every_third_skipped
            ),
            optax.scale_by_learning_rate(lr(s, False)),
        ),
    ),
    "conditionally_mask_sgd": (
        lambda s: jgd.conditionally_mask(
            jgd.sgd(lr(s, True), momentum=0.9), every_third_skipped
        ),
        lambda s: optax.conditionally_mask(
            optax.sgd(lr(s, False), momentum=0.9), every_third_skipped
        ),
    ),
    "lookahead_reset_mixed": (
        lambda s: jgd.lookahead(
            optax.sgd(lr(s, False), momentum=0.9), 4, 0.3, reset_state=True
        ),
        lambda s: _optax_lookahead_plain(
            optax.sgd(lr(s, False), momentum=0.9), 4, 0.3, reset_state=True
        ),
    ),
}
SCHEDULED: set[str] = set()  # the inner optimizers carry the schedules
CONFORMANCE: dict = {}

_scale = jgd.scale(1.0)
BAD_INPUT: list = [
    (
        lambda: jgd.named_chain(("a", _scale), ("a", _scale)),
        ValueError,
        "jgd.named_chain: names must be unique; got ['a', 'a'].",
    ),
    (
        lambda: jgd.named_chain(_scale),
        TypeError,
        (
            "jgd.named_chain: every argument must be a (name, transform) pair; got "
            "Scale(step_size=1.0) (Scale)."
        ),
    ),
    (
        lambda: jgd.named_chain((1, _scale)),
        TypeError,
        "jgd.named_chain: names must be strings; got 1 (int).",
    ),
    (
        lambda: jgd.named_chain(("a", 3)),
        TypeError,
        (
            "jgd.named_chain: the transform named 'a' must be a transform with init "
            "and update (jgd or optax); got 3 (int)."
        ),
    ),
    (
        lambda: jgd.named_chain(("a", _scale)).update(jnp.ones(1), (), None),
        TypeError,
        (
            "jgd.named_chain: state must be the dict of states init returned, keyed "
            "['a']; got tuple."
        ),
    ),
    (
        lambda: jgd.flatten(None),
        TypeError,
        (
            "jgd.flatten: inner must be a transform with init and update (jgd or "
            "optax); got None (NoneType)."
        ),
    ),
    (
        lambda: jgd.conditionally_transform(_scale, 3),
        TypeError,
        (
            "jgd.conditionally_transform: should_transform_fn must be a callable "
            "step -> bool; got 3 (int)."
        ),
    ),
    (
        lambda: jgd.conditionally_mask("sgd", from_step_two),
        TypeError,
        (
            "jgd.conditionally_mask: inner must be a transform with init and update "
            "(jgd or optax); got 'sgd' (str)."
        ),
    ),
    (
        lambda: jgd.with_extra_args_support(5),
        TypeError,
        (
            "jgd.with_extra_args_support: tx must be a transform with init and update "
            "(jgd or optax); got 5 (int)."
        ),
    ),
    (
        lambda: jgd.lookahead(jgd.sgd(0.1), 0, 0.5),
        ValueError,
        "jgd.lookahead: sync_period must be an integer >= 1; got 0.",
    ),
    (
        lambda: jgd.lookahead(jgd.sgd(0.1), 2.5, 0.5),
        TypeError,
        "jgd.lookahead: sync_period must be an integer >= 1; got 2.5 (float).",
    ),
    (
        lambda: jgd.lookahead(jgd.sgd(0.1), 2, 1.5),
        ValueError,
        "jgd.lookahead: slow_step_size must be in [0, 1]; got 1.5.",
    ),
    (
        lambda: jgd.lookahead(jgd.sgd(0.1), 2, 0.5).update(
            jnp.ones(1), jgd.lookahead(jgd.sgd(0.1), 2, 0.5).init(jnp.ones(1))
        ),
        ValueError,
        (
            "jgd.lookahead: params are required: call update(updates, state, "
            "params), with the params init was given."
        ),
    ),
    (
        lambda: jgd.lookahead(jgd.sgd(0.1), 2, 0.5).update(
            jnp.ones(1),
            jgd.lookahead(jgd.sgd(0.1), 2, 0.5).init(
                jgd.LookaheadParams.init_synced(jnp.ones(1))
            ),
            jnp.ones(1),
        ),
        TypeError,
        (
            "jgd.lookahead: init was given LookaheadParams, so update needs them too "
            "(params=LookaheadParams(fast, slow)); got a plain tree. Or give init the "
            "plain params: the slow ones then live in the state."
        ),
    ),
    (
        lambda: jgd.lookahead("sgd", 2, 0.5),
        TypeError,
        (
            "jgd.lookahead: fast_optimizer must be a transform with init and update "
            "(jgd or optax); got 'sgd' (str)."
        ),
    ),
]

THROUGH_TRAIN: dict = {
    # every wrapper of combine.py in one optimizer, an optax piece inside
    "named_chain_of_wrappers": lambda: jgd.named_chain(
        (
            "clip",
            jgd.conditionally_transform(
                jgd.with_extra_args_support(optax.clip(0.3)), every_third_skipped
            ),
        ),
        ("adam", jgd.conditionally_mask(jgd.flatten(jgd.adam(0.05)), from_step_two)),
    ),
    # plain params: the slow ones in the state (3 steps cross one sync)
    "lookahead": lambda: jgd.lookahead(jgd.adam(0.05), 2, 0.5, reset_state=True),
}

KNOWN_DIFFERENCES: dict[str, str] = {
    "lookahead on plain params": (
        "optax.lookahead needs LookaheadParams(fast, slow) as params (optax issue "
        "#1429). jgd.lookahead also takes plain params at init: the slow ones then "
        "live in LookaheadState.slow (a third field, None when init is given "
        "LookaheadParams) and update takes and returns plain trees, so it works in "
        "chains and jgd.train. Given LookaheadParams, the updates are optax's. jgd "
        "passes update's extra keyword arguments to the fast optimizer (optax's "
        "lookahead takes none). Its CASES compare with optax.lookahead driven on "
        "LookaheadParams (_optax_lookahead_plain); tests/test_combine.py: "
        "test_lookahead_params_match_optax, test_lookahead_init_plain_update_pair."
    ),
    "lookahead arguments and reset": (
        "optax.lookahead raises a bare 'Synchronization period must be >= 1.' and "
        "takes any slow_step_size; jgd wants an integer sync_period >= 1 and "
        "slow_step_size in [0, 1] (the paper's alpha), in the house messages "
        "(BAD_INPUT). reset_state picks the fresh fast state with a where; optax "
        "blends (1 - sync) * old + sync * fresh, which turns an inf in the old "
        "state into NaN (tests/test_combine.py: "
        "test_lookahead_reset_drops_a_nonfinite_state)."
    ),
    "flatten dtypes": (
        "optax.flatten concatenates leaves of mixed dtypes in the widest and "
        "returns every update in it, and fails on a tree without leaves; "
        "jgd.flatten casts each update back to its leaf's dtype (bf16 in, bf16 "
        "out) and gives an empty tree an empty vector (tests/test_combine.py: "
        "test_flatten_mixed_dtypes_and_empty)."
    ),
    "named_chain names": (
        "optax.named_chain takes any hashable name (typed str) and only checks "
        "that they differ; jgd.named_chain wants strings (BAD_INPUT)."
    ),
}
SCHEDULES: dict = {}
