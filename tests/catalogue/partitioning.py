"""Cases for selection and partitioning (jgd/transforms/partitioning.py,
grouping.py and masking.py's prefixes): ``partition``/``multi_transform``,
``freeze``, ``selective_transform`` and ``groups``.

See tests/catalogue/__init__.py for what each table feeds. Labels are prefix,
full and callable trees over tests.helpers' standard tree; jgd and optax
pieces mix inside (an optax.adam under a jgd label, a jgd partition inside
optax.chain). ``groups`` has no optax twin: it is compared with
optax.partition on the labels its rules give.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import optax

import jgd
from tests.helpers import lr, standard_promotion

# Over tests.helpers.TREE_SHAPES: {"scalar", "layers": [{"w", "b"}, (3-D,
# zero-size)], "head": {"v"}}.
PREFIX_LABELS = {"scalar": "sgd", "layers": "adam", "head": "sgd"}
FULL_LABELS = {
    "scalar": "v",
    "layers": [{"w": "m", "b": "v"}, ("m", "v")],
    "head": {"v": "v"},
}
_FREEZE = {"scalar": False, "layers": [False, True], "head": False}
# The labels the "groups" case's rules give the standard tree.
_GROUP_LABELS = {
    "scalar": "re:scal.*",
    "layers": [{"w": "layers/0/*", "b": "layers/0/*"}, ("**/1/*", "**/1/*")],
    "head": {"v": "<lambda>"},
}


def by_ndim(tree):
    """Matrices and up 'm', vectors and scalars 'v'."""
    return jax.tree.map(lambda x: "m" if x.ndim >= 2 else "v", tree)


def _standard(tx):
    """optax.adam fails strict promotion (a Python float ** the int32 count),
    which the runner keeps on for the jgd side; its update traced under
    standard promotion, as the optax side runs."""

    def update(updates, state, params=None):
        with standard_promotion():
            return tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update)


CASES: dict = {
    "partition_prefix_labels": (
        lambda s: jgd.partition(
            {"adam": jgd.adam(lr(s, True)), "sgd": jgd.sgd(lr(s, True), 0.9)},
            PREFIX_LABELS,
        ),
        lambda s: optax.partition(
            {"adam": optax.adam(lr(s, False)), "sgd": optax.sgd(lr(s, False), 0.9)},
            PREFIX_LABELS,
        ),
    ),
    # An optax.adam under one jgd label, jgd's adamw under the other.
    "multi_transform_callable_labels_optax_inside": (
        lambda s: jgd.multi_transform(
            {"m": _standard(optax.adam(0.05)), "v": jgd.adamw(lr(s, True), 1e-3)},
            by_ndim,
        ),
        lambda s: optax.multi_transform(
            {"m": optax.adam(0.05), "v": optax.adamw(lr(s, False), 1e-3)}, by_ndim
        ),
    ),
    # A full label tree, a partition inside a masked inside a chain, after a
    # freeze with a prefix mask.
    "partition_full_labels_nested_freeze": (
        lambda s: jgd.chain(
            jgd.freeze(_FREEZE),
            jgd.masked(
                jgd.partition(
                    {"m": jgd.scale_by_adam(), "v": jgd.trace(0.5)}, FULL_LABELS
                ),
                {"scalar": False, "layers": True, "head": True},
            ),
            jgd.scale(-0.05),
        ),
        lambda s: optax.chain(
            optax.freeze(_FREEZE),
            optax.masked(
                optax.partition(
                    {"m": optax.scale_by_adam(), "v": optax.trace(0.5)}, FULL_LABELS
                ),
                {"scalar": False, "layers": True, "head": True},
            ),
            optax.scale(-0.05),
        ),
    ),
    "jgd_partition_in_optax_chain": (
        lambda s: optax.chain(
            jgd.partition({"m": jgd.scale_by_rms(), "v": jgd.identity()}, by_ndim),
            optax.scale(-0.05),
        ),
        lambda s: optax.chain(
            optax.partition(
                {"m": optax.scale_by_rms(), "v": optax.identity()}, by_ndim
            ),
            optax.scale(-0.05),
        ),
    ),
    "selective_transform": (
        lambda s: jgd.selective_transform(
            jgd.adam(lr(s, True)),
            freeze_mask={"scalar": True, "layers": False, "head": True},
        ),
        lambda s: optax.selective_transform(
            optax.adam(lr(s, False)),
            freeze_mask={"scalar": True, "layers": False, "head": True},
        ),
    ),
    "groups": (
        lambda s: jgd.groups(
            {
                "layers/0/*": jgd.adam(lr(s, True)),
                "**/1/*": jgd.freeze(),
                re.compile("scal.*"): jgd.sgd(lr(s, True), 0.9),
                lambda path, x: x.ndim == 1 and path[0].key == "head": jgd.rmsprop(
                    0.01
                ),
            }
        ),
        lambda s: optax.partition(
            {
                "layers/0/*": optax.adam(lr(s, False)),
                "**/1/*": optax.freeze(True),
                "re:scal.*": optax.sgd(lr(s, False), 0.9),
                "<lambda>": optax.rmsprop(0.01),
            },
            _GROUP_LABELS,
        ),
    ),
}
SCHEDULED: set[str] = set()  # inner schedules are the inner cases' business
CONFORMANCE: dict = {}

_W = {"w": jnp.ones(2), "b": jnp.ones(2)}
_PARTITION_MISMATCH = (
    "jgd.partition: param_labels must be a tree shaped like the params or a "
    "prefix of them; first difference:"
)
BAD_INPUT: list = [
    (
        lambda: jgd.partition({}, {"w": "a"}),
        TypeError,
        (
            "jgd.partition: transforms must be a non-empty mapping from labels to "
            "transforms; got {}."
        ),
    ),
    (
        lambda: jgd.partition({"a": 0.1}, {"w": "a"}),
        TypeError,
        (
            "jgd.partition: transforms['a'] must be a transform with init and update "
            "(jgd or optax); got 0.1 (float)."
        ),
    ),
    (
        lambda: jgd.partition(
            {"a": jgd.sgd(0.1), "b": jgd.sgd(0.2)}, {"w": "a", "b": "c"}
        ),
        ValueError,
        (
            "jgd.partition: every label in param_labels must be a key of transforms "
            "['a', 'b']; got ['c']."
        ),
    ),
    (
        lambda: jgd.partition({"a": jgd.sgd(0.1)}, {"w": jnp.array(1)}),
        TypeError,
        (
            "jgd.partition: param_labels must be a tree of hashable labels (keys of "
            "transforms) shaped like the params or a prefix of them, or a callable "
            "params -> such a tree; got Array(1, dtype=int32, weak_type=True) "
            "(ArrayImpl) at ['w']."
        ),
    ),
    (
        lambda: jgd.partition({"a": jgd.sgd(0.1), 1: jgd.sgd(0.2)}, {"w": "a"}),
        TypeError,
        (
            "jgd.partition: the labels (keys of transforms) must be comparable with "
            "each other, as jax sorts a dict's keys; got ['a', 1]."
        ),
    ),
    # The first params leaf no label covers, and the nearest label.
    (
        lambda: jgd.partition({"a": jgd.sgd(0.1)}, {"w": "a", "c": "a"}).init(_W),
        TypeError,
        f"{_PARTITION_MISMATCH} params has ['b'], param_labels has ['c'].",
    ),
    # A label deeper than the params.
    (
        lambda: jgd.partition({"a": jgd.sgd(0.1)}, {"w": {"x": "a"}, "b": "a"}).init(
            _W
        ),
        TypeError,
        f"{_PARTITION_MISMATCH} params has ['w'], param_labels has ['w']['x'].",
    ),
    # A label with no params under it (a callable's tree, checked at init).
    (
        lambda: jgd.partition(
            {"a": jgd.sgd(0.1)}, lambda p: {"w": "a", "b": "a", "z": "a"}
        ).init(_W),
        TypeError,
        f"{_PARTITION_MISMATCH} params has ['b'], param_labels has ['z'].",
    ),
    (
        lambda: jgd.masked(jgd.sgd(0.1), {"w": True}).init(_W),
        TypeError,
        (
            "jgd.masked: mask must be a tree shaped like the params or a prefix of "
            "them; first difference: params has ['b'], mask has ['w']."
        ),
    ),
    (
        lambda: jgd.freeze({"w": 1.0}),
        TypeError,
        (
            "jgd.freeze: mask must be a tree of bools (shaped like the params or a "
            "prefix of them) or a callable params -> such a tree; got 1.0 (float) at "
            "['w']."
        ),
    ),
    (
        lambda: jgd.selective_transform(jgd.sgd(0.1), freeze_mask={"w": "yes"}),
        TypeError,
        (
            "jgd.selective_transform: freeze_mask must be a tree of bools (shaped like "
            "the params or a prefix of them) or a callable params -> such a tree; got "
            "'yes' (str) at ['w']."
        ),
    ),
    (
        lambda: jgd.selective_transform("adam", freeze_mask=True),
        TypeError,
        (
            "jgd.selective_transform: optimizer must be a transform with init and "
            "update (jgd or optax); got 'adam' (str)."
        ),
    ),
    (
        lambda: jgd.groups({}),
        TypeError,
        (
            "jgd.groups: rules must be a non-empty mapping from rules to transforms; "
            "got {}."
        ),
    ),
    (
        lambda: jgd.groups({3: jgd.sgd(0.1)}),
        TypeError,
        (
            "jgd.groups: each rule must be a path glob (str), a compiled regex or a "
            "predicate (path, leaf) -> bool; got 3 (int)."
        ),
    ),
    (
        lambda: jgd.groups({"a/b**": jgd.sgd(0.1)}),
        ValueError,
        (
            "jgd.groups: ** must be a whole path segment (any number of segments); "
            "got 'a/b**'. Use * inside a segment."
        ),
    ),
    (
        lambda: jgd.groups({"**": "sgd"}),
        TypeError,
        (
            "jgd.groups: rules['**'] must be a transform with init and update (jgd or "
            "optax); got 'sgd' (str)."
        ),
    ),
    (
        lambda: jgd.groups({"*/w": jgd.sgd(0.1), "a/*": jgd.sgd(0.2)}).init(
            {"a": _W, "b": _W, "c": {"v": jnp.ones(1)}}
        ),
        ValueError,
        (
            "jgd.groups: rules must match each params leaf exactly once; got no rule "
            "for 'b/b', 'c/v'; several rules for 'a/w' ('*/w', 'a/*')."
        ),
    ),
    (
        lambda: jgd.groups({lambda path, x: x.ndim: jgd.sgd(0.1)}).init(
            {"w": jnp.ones(2)}
        ),
        TypeError,
        (
            "jgd.groups: a predicate rule must return a Python bool; got 1 (int) "
            "from the rule <lambda> at 'w'."
        ),
    ),
]
THROUGH_TRAIN: dict = {
    "partition": lambda: jgd.partition(
        {"adam": jgd.adam(0.05), "sgd": jgd.sgd(0.1, momentum=0.9)},
        {"w": "adam", "k": "adam", "b": "sgd", "s": "sgd"},
    ),
    "groups": lambda: jgd.groups(
        {
            "w": jgd.lamb(0.05),
            "k": jgd.freeze(),
            re.compile("b|s"): jgd.chain(jgd.clip(0.5), jgd.sgd(0.1, momentum=0.9)),
        }
    ),
}
KNOWN_DIFFERENCES: dict = {
    "partition prefixes by key path": (
        "jgd.partition, masked, freeze and selective_transform lay a label or "
        "mask tree whose node types differ from the params' (a dict over a flax "
        "nnx State or an equinox module) by key path, where optax raises jax's "
        "structure error; a structural prefix runs as optax's (equal states). "
        "See tests/test_partitioning.py::test_dict_labels_over_nnx_state and "
        "::test_dict_labels_over_an_equinox_module."
    ),
    "freeze default": (
        "jgd.freeze() with no mask freezes everything it is given (mask=True), "
        "so that jgd.groups({...: jgd.freeze()}) freezes a group; optax.freeze "
        "has no default. See tests/test_grouping.py::test_frozen_leaves_keep_no_state."
    ),
    "selective_transform callable mask": (
        "jgd.selective_transform takes a callable freeze_mask (params -> tree of "
        "bools); optax's maps the callable itself to 'freeze' and freezes "
        "everything. See tests/test_partitioning.py::test_selective_transform_callable_mask."
    ),
}
SCHEDULES: dict = {}
