"""``jgd.groups`` (jgd/transforms/grouping.py): path rules to optimizers.

The catalogue (tests/catalogue/partitioning.py) compares it with
optax.partition on the labels its rules give and runs it through jgd.train;
here: the glob grammar, path strings of dict/list, equinox and flax nnx
trees, regexes and predicates, the errors listing every unmatched or
ambiguous path, the state's names, frozen leaves keeping no state (measured),
and groups under masked.
"""

from __future__ import annotations

import re
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jgd
from jgd.transforms.grouping import _glob, path_string


@pytest.mark.parametrize(
    "pattern,path,hit",
    [
        ("embed/*", "embed/w", True),
        ("embed/*", "embed/w/x", False),  # * is one segment
        ("embed/*", "embed", False),
        ("*/bias", "layer/bias", True),
        ("*/bias", "a/layer/bias", False),
        ("**/bias", "a/layer/bias", True),
        ("**/bias", "bias", True),  # ** may be no segment
        ("backbone/**", "backbone/l0/w", True),
        ("backbone/**", "backbone", True),
        ("backbone/**", "backbones/w", False),
        ("a/**/w", "a/w", True),
        ("a/**/w", "a/x/y/w", True),
        ("layers/*/w*", "layers/3/weight", True),  # * inside a segment
        ("layers/?/w", "layers/12/w", False),
        ("**", "", True),
        ("**", "anything/at/all", True),
    ],
)
def test_glob(pattern, path, hit):
    assert _glob(pattern, path) is hit


class _Layer(eqx.Module):
    weight: jax.Array
    bias: jax.Array


class _Net(eqx.Module):
    layers: tuple
    activation: Any


def test_path_strings_of_every_kind_of_tree():
    """Dict keys, sequence indices and attribute names joined with '/'; an
    nnx Variable is the leaf (no '/value')."""
    paths = lambda tree, **kw: [
        path_string(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree, **kw)[0]
    ]
    tree = {"a": [{"w": 1.0}, (2.0, 3.0)], "b": 4.0}
    assert paths(tree) == ["a/0/w", "a/1/0", "a/1/1", "b"]
    net = _Net((_Layer(jnp.ones(2), jnp.ones(1)),), jax.nn.relu)
    assert paths(eqx.filter(net, eqx.is_array)) == ["layers/0/weight", "layers/0/bias"]
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    tx = jgd.groups({"kernel": jgd.sgd(0.1), "bias": jgd.freeze()})
    labels = tx.labels(nnx.state(model, nnx.Param))
    assert jax.tree.leaves(labels) == ["bias", "kernel"]


def test_regex_fullmatch_predicate_and_state_names():
    """A regex fullmatches the path string; a predicate sees jax's key path
    and the leaf. States are keyed by the glob, 're:' + pattern and the
    predicate's __name__, '#index' on a repeat."""
    params = {"enc": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, "dec": jnp.ones(3)}

    def vectors(path, x):
        return x.ndim == 1 and path[0].key == "enc"

    tx = jgd.groups(
        {
            re.compile("enc/w|de"): jgd.sgd(1.0),  # "de" alone: no fullmatch
            vectors: jgd.freeze(),
            lambda path, x: path_string(path) == "dec": jgd.sgd(0.5),
        }
    )
    assert jax.tree.leaves(tx.labels(params)) == [
        "<lambda>",
        "vectors",
        "re:enc/w|de",
    ]
    state = tx.init(params)
    assert list(state.inner_states) == ["re:enc/w|de", "vectors", "<lambda>"]
    u, _ = tx.update(params, state)
    np.testing.assert_array_equal(u["enc"]["b"], np.zeros(2))
    np.testing.assert_array_equal(u["dec"], np.full(3, -0.5))
    np.testing.assert_array_equal(u["enc"]["w"], -np.ones((2, 2)))
    twice = jgd.groups(
        {lambda p, x: x.ndim == 2: jgd.sgd(1.0), lambda p, x: x.ndim < 2: jgd.sgd(1.0)}
    )
    assert list(twice.init(params).inner_states) == ["<lambda>", "<lambda>#1"]


def test_unmatched_paths_at_update_are_named_as_updates():
    tx = jgd.groups({"a": jgd.sgd(0.1)})
    state = tx.init({"a": jnp.ones(1)})
    with pytest.raises(ValueError) as info:
        tx.update({"a": jnp.ones(1), "b": jnp.ones(1)}, state)
    assert str(info.value) == (
        "jgd.groups: rules must match each updates leaf exactly once; got no rule "
        "for 'b'."
    )


def test_frozen_leaves_keep_no_state():
    """The frozen group's state has no leaves, and every other group holds
    MaskedNode there: the whole state is as large (leaves and bytes) as Adam's
    on the trained leaves alone (measured abstractly: no arrays made)."""
    params = {
        "embed": {"w": jnp.ones((16, 4))},
        "backbone": {"l0": {"w": jnp.ones((32, 32)), "b": jnp.ones(32)}},
        "head": {"b": jnp.ones(4)},
    }
    tx = jgd.groups(
        {
            "embed/*": jgd.adam(1e-3),
            "*/b": jgd.sgd(0.1, 0.9),
            "backbone/**": jgd.freeze(),
        }
    )
    state = jax.eval_shape(tx.init, params)
    assert jax.tree.leaves(state.inner_states["backbone/**"]) == []
    trained = {"embed": params["embed"], "head": params["head"]}
    alone = (
        jax.eval_shape(jgd.adam(1e-3).init, trained["embed"]),
        jax.eval_shape(jgd.sgd(0.1, 0.9).init, trained["head"]),
    )
    size = lambda s: sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(s))
    assert size(state) == size(alone) == (1 + 2 * 64 + 4) * 4
    assert len(jax.tree.leaves(state)) == len(jax.tree.leaves(alone))
    assert not any(x.shape in [(32, 32), (32,)] for x in jax.tree.leaves(state))


def test_groups_under_masked_skip_masked_out_leaves():
    """Leaves masked out above reach groups as MaskedNode: no rule needed."""
    params = {"a": jnp.ones(2), "b": jnp.ones(2)}
    tx = jgd.masked(jgd.groups({"a": jgd.sgd(1.0)}), {"a": True, "b": False})
    u, _ = tx.update(params, tx.init(params))
    np.testing.assert_array_equal(u["a"], -np.ones(2))
    np.testing.assert_array_equal(u["b"], np.ones(2))


def test_groups_match_optax_partition_through_nnx_optimizer():
    """Through flax's nnx.Optimizer (init sees Variables, update plain
    arrays): the same paths both times, optax's numbers."""

    def train(tx):
        model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
        with jax.numpy_dtype_promotion("standard"):  # flax is not strict-clean
            grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((1, 2))) ** 2))(model)
            opt.update(model, grads)
        return jax.tree.leaves(nnx.state(model, nnx.Param))

    ours = train(jgd.groups({"kernel": jgd.sgd(0.1, 0.9), "bias": jgd.freeze()}))
    theirs = train(
        optax.partition(
            {"k": optax.sgd(0.1, 0.9), "b": optax.set_to_zero()},
            lambda p: jax.tree.map(lambda x: "k" if x.ndim == 2 else "b", p),
        )
    )
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_repr_and_replace():
    tx = jgd.groups({"a/*": jgd.sgd(0.1), re.compile("b"): jgd.freeze()})
    assert repr(tx) == (
        "Groups({'a/*': Sgd(learning_rate=0.1, momentum=None, nesterov=False, "
        "accumulator_dtype=None), re.compile('b'): Freeze(mask=True)})"
    )
    assert tx.replace(transforms=(jgd.sgd(0.2), jgd.freeze())).transforms[0] == jgd.sgd(
        0.2
    )
