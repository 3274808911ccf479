"""``partition``/``multi_transform``, ``freeze`` and ``selective_transform``
(jgd/transforms/partitioning.py) beyond the catalogue's cross-checks
(tests/catalogue/partitioning.py): states shaped as optax's, flax nnx ``State``
and equinox params with labels given as dicts (by key path), optax's
``tree_map_params``, extra arguments, values that print and do not retrace
when an inner learning rate changes, and jgd.train refusing to pack them.
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
import jgd.train as T
from tests.helpers import TREE_SHAPES, assert_trees_close, standard_promotion

PARAMS = {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([0.5])}
GRADS = {"w": jnp.array([[0.5, 1.0]]), "b": jnp.array([2.0])}


def _steps(tx, params, grads, n=1):
    """``n`` eager steps of ``tx`` on the same gradients; the params."""
    state = tx.init(params)
    for _ in range(n):
        updates, state = tx.update(grads, state, params)
        params = jgd.apply_updates(params, updates)
    return params, state


def test_hand_computed_selective_transform():
    """sgd with momentum 0.9 on the trainable leaf: u1 = -0.1 g,
    u2 = -0.1 (g + 0.9 g); the frozen leaf does not move."""
    tx = jgd.selective_transform(
        jgd.sgd(0.1, momentum=0.9), freeze_mask={"w": True, "b": False}
    )
    params, state = _steps(tx, PARAMS, GRADS, 2)
    np.testing.assert_allclose(params["b"], [0.5 - 0.2 - 0.1 * 1.9 * 2.0], rtol=1e-6)
    np.testing.assert_array_equal(params["w"], PARAMS["w"])
    assert jax.tree.leaves(state.inner_states["freeze"]) == []


def test_states_have_optax_structure():
    """The same containers, dict keys and MaskedNode places as optax's (the
    NamedTuple classes print alike, so the structures print alike)."""
    params = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s, jnp.float32),
        TREE_SHAPES,
        is_leaf=lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s),
    )
    labels = {"scalar": "a", "layers": "b", "head": "a"}
    mask = {"scalar": True, "layers": [False, True], "head": False}
    pairs = [
        (
            jgd.partition({"a": jgd.adam(0.1), "b": jgd.sgd(0.1, 0.9)}, labels),
            optax.partition({"a": optax.adam(0.1), "b": optax.sgd(0.1, 0.9)}, labels),
        ),
        (jgd.freeze(mask), optax.freeze(mask)),
        (
            jgd.selective_transform(jgd.adam(0.1), freeze_mask=mask),
            optax.selective_transform(optax.adam(0.1), freeze_mask=mask),
        ),
    ]
    for ours, theirs in pairs:  # abstract: no arrays made
        s1, s2 = jax.eval_shape(ours.init, params), jax.eval_shape(theirs.init, params)
        assert str(jax.tree.structure(s1)) == str(jax.tree.structure(s2))
        assert jax.tree.leaves(s1) == jax.tree.leaves(s2)
    assert jgd.MultiTransformState is jgd.PartitionState
    assert jgd.multi_transform is jgd.partition
    assert jgd.PartitionState._fields == optax.PartitionState._fields


class _Net(nnx.Module):
    def __init__(self):
        self.embed = nnx.Embed(4, 2, rngs=nnx.Rngs(0))
        self.lin = nnx.Linear(2, 2, rngs=nnx.Rngs(1))


def _nnx_train(tx):
    """A step of nnx.Optimizer; the params."""
    model = _Net()
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    loss = lambda m: jnp.sum(m.lin(m.embed(jnp.array([1, 2]))) ** 2)
    with standard_promotion():  # flax itself does not pass strict promotion
        opt.update(model, nnx.grad(loss)(model))
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_dict_labels_over_nnx_state():
    """nnx.Optimizer gives init a State of Variables and update plain arrays;
    a dict prefix, a State of labels (which optax refuses at update: a Param
    node where the updates have an array) and jgd.groups all work there and
    give optax's numbers (optax with a callable)."""

    def by_ndim(p):
        return jax.tree.map(lambda x: "a" if x.ndim == 2 else "b", p)

    inner = lambda lib: {"a": lib.sgd(0.1, 0.9), "b": lib.sgd(0.5)}
    want = _nnx_train(optax.partition(inner(optax), by_ndim))
    state_labels = by_ndim(nnx.state(_Net(), nnx.Param))
    for labels in [
        {"embed": "a", "lin": {"kernel": "a", "bias": "b"}},
        state_labels,
    ]:
        got = _nnx_train(jgd.partition(inner(jgd), labels))
        assert_trees_close(got, want, rtol=1e-6)
    with pytest.raises(ValueError, match="structure"):
        _nnx_train(optax.partition(inner(optax), state_labels))
    # A typo names both sides, the Variable as the leaf.
    tx = jgd.partition(inner(jgd), {"embed": "a", "linear": "b"})
    with pytest.raises(TypeError) as info:
        tx.init(nnx.state(_Net(), nnx.Param))
    assert str(info.value) == (
        "jgd.partition: param_labels must be a tree shaped like the params or a "
        "prefix of them; first difference: params has ['lin']['bias'], "
        "param_labels has ['linear']."
    )


class _Layer(eqx.Module):
    weight: jax.Array
    bias: jax.Array


class _MLP(eqx.Module):
    layers: tuple
    activation: Any


def _mlp_params():
    """An equinox model as eqx.filter gives it: None for the activation."""
    layer = lambda n: _Layer(jnp.full((n, 2), 0.5), jnp.zeros(2))
    return eqx.filter(_MLP((layer(3), layer(2)), jax.nn.relu), eqx.is_array)


def test_dict_labels_over_an_equinox_module():
    """A dict (keys for the module's attributes) labels an equinox model; its
    activation is None in the filtered params and needs no label.
    Equal to optax with the labels as a tree of the module's own shape."""
    params = _mlp_params()
    grads = jax.tree.map(lambda x: jnp.ones_like(x) * 0.3, params)
    structural = jax.tree_util.tree_map_with_path(
        lambda path, _: "a" if path[1].idx == 0 else "b", params
    )
    # optax calls a module of labels (it is callable): give it a function.
    theirs = optax.partition(
        {"a": optax.sgd(0.1, 0.9), "b": optax.sgd(1.0)}, lambda p: structural
    )
    want, _ = _steps(theirs, params, grads)
    for labels in [{"layers": ("a", "b")}, structural]:
        ours = jgd.partition({"a": jgd.sgd(0.1, 0.9), "b": jgd.sgd(1.0)}, labels)
        got, _ = _steps(ours, params, grads)
        assert_trees_close(jax.tree.leaves(got), jax.tree.leaves(want), rtol=1e-6)
    # freeze with a dict mask over the module: layer 0 frozen.
    got, state = _steps(jgd.freeze({"layers": [True, False]}), params, grads)
    np.testing.assert_array_equal(got.layers[0].weight, params.layers[0].weight)
    np.testing.assert_allclose(got.layers[1].bias, params.layers[1].bias + 0.3)
    assert jax.tree.leaves(state) == []


def test_selective_transform_callable_mask():
    """KNOWN_DIFFERENCES['selective_transform callable mask']: a callable
    freeze_mask is called on the params; optax freezes everything."""
    mask = lambda p: jax.tree.map(lambda x: x.ndim == 2, p)
    ours, _ = _steps(
        jgd.selective_transform(jgd.sgd(0.1), freeze_mask=mask), PARAMS, GRADS
    )
    theirs, _ = _steps(
        optax.selective_transform(optax.sgd(0.1), freeze_mask=mask), PARAMS, GRADS
    )
    np.testing.assert_array_equal(ours["w"], PARAMS["w"])
    np.testing.assert_allclose(ours["b"], [0.5 - 0.2], rtol=1e-6)
    np.testing.assert_array_equal(theirs["b"], PARAMS["b"])  # optax: all frozen


def test_tree_map_params_sees_through_partition():
    """optax.tree_utils.tree_map_params finds the params-shaped states inside
    jgd's partition (its placeholder goes down whole, as in optax)."""
    tx = jgd.partition({"a": jgd.trace(0.9), "b": jgd.scale(1.0)}, {"w": "a", "b": "b"})
    state = tx.init(PARAMS)
    doubled = optax.tree_utils.tree_map_params(
        tx,
        lambda x: x if isinstance(x, jgd.MaskedNode) else x + 3.0,
        state,
        is_leaf=lambda v: isinstance(v, jgd.MaskedNode),
    )
    trace = doubled.inner_states["a"].inner_state.trace
    np.testing.assert_array_equal(trace["w"], np.full((1, 2), 3.0))
    assert isinstance(trace["b"], jgd.MaskedNode)


def test_mask_compatible_extra_args():
    """Each group's transform sees an extra argument shaped like the updates
    masked to its own leaves, as in optax."""
    seen = []

    def update(updates, state, params=None, **extra_args):
        seen.append(extra_args["tags"])
        return updates, state

    inner = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)
    tx = jgd.partition(
        {"a": inner, "b": jgd.identity()},
        {"w": "a", "b": "b"},
        mask_compatible_extra_args=True,
    )
    tx.update(GRADS, tx.init(PARAMS), tags={"w": 1, "b": 2})
    assert seen == [{"w": 1, "b": jgd.MaskedNode()}]


def test_update_refuses_a_foreign_state():
    tx = jgd.partition({"a": jgd.sgd(0.1)}, {"w": "a", "b": "a"})
    with pytest.raises(TypeError) as info:
        tx.update(GRADS, jgd.sgd(0.1).init(PARAMS))
    assert str(info.value) == (
        "jgd.partition: state must be the PartitionState init returned, with one "
        "entry per label ['a']; got tuple."
    )


def test_values_print_and_inner_rates_are_leaves():
    """One jitted function taking the optimizer as an argument: a new inner
    learning rate is a new leaf value, not a new trace (one trace per kind of
    optimizer); the values print their settings."""
    traces = []

    @jax.jit
    def step(tx, g, p):
        traces.append(type(tx).__name__)
        return tx.update(g, tx.init(p), p)[0]

    kinds = [
        lambda r: jgd.partition(
            {"a": jgd.adam(r), "b": jgd.sgd(r)}, {"w": "a", "b": "b"}
        ),
        lambda r: jgd.selective_transform(
            jgd.sgd(r), freeze_mask={"w": True, "b": False}
        ),
        lambda r: jgd.groups({"w": jgd.sgd(r), re.compile("b"): jgd.freeze()}),
    ]
    for make in kinds:
        for rate in [0.1, 0.2]:
            tx = make(rate)
            assert rate in jax.tree.leaves(tx)
            u = step(tx, GRADS, PARAMS)
        want_b = 0.0 if type(tx).__name__ == "Groups" else -0.2 * 2.0
        np.testing.assert_allclose(u["b"], [want_b], rtol=1e-6)
    assert traces == ["Partition", "SelectiveTransform", "Groups"]
    assert repr(kinds[0](0.1)) == (
        "Partition(transforms={'a': Adam(learning_rate=0.1, b1=0.9, b2=0.999, "
        "eps=1e-08, eps_root=0.0, mu_dtype=None, nesterov=False), 'b': "
        "Sgd(learning_rate=0.1, momentum=None, nesterov=False, "
        "accumulator_dtype=None)}, param_labels={'b': 'b', 'w': 'a'}, "
        "mask_compatible_extra_args=False)"
    )
    assert repr(kinds[1](0.1)) == (
        "SelectiveTransform(optimizer=Sgd(learning_rate=0.1, momentum=None, "
        "nesterov=False, accumulator_dtype=None), freeze_mask={'b': False, 'w': True})"
    )
    assert repr(jgd.freeze()) == "Freeze(mask=True)"


def test_jgd_train_stores_them_leaf_by_leaf_and_refuses_flat():
    """Labels and masks need leaf boundaries: jgd.train keeps the user's
    leaves (THROUGH_TRAIN checks the numbers) and refuses flat=True."""
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    tx = jgd.groups({"w": jgd.adam(0.1), "b": jgd.freeze()})
    assert isinstance(T.init(params, tx).layout, T.layout.PerLeaf)
    with pytest.raises(ValueError, match="Groups needs leaf boundaries"):
        T.init(params, tx, flat=True)
