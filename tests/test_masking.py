"""``masked`` (jgd/transforms/masking.py) against ``optax.masked``.

Each case runs jgd and optax on the standard nested tree (scalar, matrix, 3-D
and zero-size leaves) over 50 random gradients, float32 and float64, through
tests/catalogue/per_leaf.py's ``cross_check`` (the runner of
tests/test_vs_optax.py): tree, prefix and callable masks, a nested chain, a
masked inside a masked, an optax transform inside jgd's, extra arguments.
The module is not yet re-exported at ``jgd.masked``; it is imported as
``jgd.transforms.masking``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd.transforms import masking
from tests.catalogue.per_leaf import PREFIX_MASK, cross_check
from tests.helpers import assert_trees_close, decay_mask, random_tree

LR = 0.05
TREE_MASK = jax.tree.map(lambda p: p.ndim == 1, random_tree(jax.random.key(0)))


def _chain_jgd():
    return jgd.chain(
        jgd.scale_by_adam(),
        jgd.add_decayed_weights(0.1),
        jgd.scale_by_learning_rate(LR),
    )


def _chain_optax():
    return optax.chain(
        optax.scale_by_adam(),
        optax.add_decayed_weights(0.1),
        optax.scale_by_learning_rate(LR),
    )


CASES = {
    "tree_mask_adam": (
        lambda: masking.masked(jgd.adam(LR), TREE_MASK),
        lambda: optax.masked(optax.adam(LR), TREE_MASK),
    ),
    "prefix_mask_trace": (
        lambda: masking.masked(jgd.trace(0.9), PREFIX_MASK),
        lambda: optax.masked(optax.trace(0.9), PREFIX_MASK),
    ),
    "single_bool_mask": (
        lambda: masking.masked(jgd.scale_by_trust_ratio(), False),
        lambda: optax.masked(optax.scale_by_trust_ratio(), False),
    ),
    "callable_mask_nested_chain": (
        lambda: masking.masked(_chain_jgd(), decay_mask),
        lambda: optax.masked(_chain_optax(), decay_mask),
    ),
    "masked_in_masked_in_chain": (
        lambda: jgd.chain(
            masking.masked(
                jgd.chain(
                    masking.masked(jgd.scale_by_rms(), decay_mask), jgd.trace(0.5)
                ),
                PREFIX_MASK,
            ),
            jgd.scale(-LR),
        ),
        lambda: optax.chain(
            optax.masked(
                optax.chain(
                    optax.masked(optax.scale_by_rms(), decay_mask), optax.trace(0.5)
                ),
                PREFIX_MASK,
            ),
            optax.scale(-LR),
        ),
    ),
    # An optax transform that passes strict promotion, which the jgd side of
    # the runner keeps on (optax.adam does not).
    "optax_inner": (
        lambda: masking.masked(optax.trace(0.9), decay_mask),
        lambda: optax.masked(optax.trace(0.9), decay_mask),
    ),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_masked_matches_optax(name, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    ours, theirs = CASES[name]
    params = random_tree(jax.random.key(1), jnp.dtype(dtype))
    cross_check(ours(), theirs(), params, name)


def test_state_holds_only_the_masked_in_leaves():
    """As optax's: MaskedState(inner_state), MaskedNode where the mask is off."""
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    mask = {"w": True, "b": False}
    ours = masking.masked(jgd.trace(0.9), mask).init(params)
    theirs = optax.masked(optax.trace(0.9), mask).init(params)
    assert isinstance(ours, masking.MaskedState)
    assert isinstance(ours.inner_state.trace["b"], masking.MaskedNode)
    assert jax.tree.leaves(ours.inner_state.trace["b"]) == []
    assert type(ours).__name__ == type(theirs).__name__ == "MaskedState"
    assert ours._fields == theirs._fields
    np.testing.assert_array_equal(ours.inner_state.trace["w"], np.zeros((2, 2)))


def test_callable_mask_sees_params_at_init_and_updates_at_update():
    """As optax: the callable gets the params in init, the updates in update."""
    seen = []

    def mask(tree):
        seen.append(float(tree["w"][0]))
        return {"w": True}

    tx = masking.masked(jgd.scale(2.0), mask)
    state = tx.init({"w": jnp.array([1.0])})
    u, _ = tx.update({"w": jnp.array([3.0])}, state, {"w": jnp.array([1.0])})
    assert seen == [1.0, 3.0]
    np.testing.assert_array_equal(u["w"], [6.0])


def test_mask_compatible_extra_args():
    """With mask_compatible_extra_args, an extra argument shaped like the
    updates reaches the inner transform masked, as in optax."""
    got = {}

    def update(updates, state, params=None, **extra_args):
        got.update(extra_args)
        return updates, state

    inner = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)
    updates = {"a": jnp.ones(2), "b": jnp.ones(3)}
    mask = {"a": True, "b": False}
    for flag in [False, True]:
        tx = masking.masked(inner, mask, mask_compatible_extra_args=flag)
        tx.update(updates, tx.init(updates), tags={"a": 1, "b": 2}, step=7)
        want = {"a": 1, "b": masking.MaskedNode()} if flag else {"a": 1, "b": 2}
        assert got == {"tags": want, "step": 7}


def test_tree_map_params_sees_through_masked():
    """optax.tree_utils.tree_map_params finds the params-shaped state inside
    jgd's masked, through its placeholder special case."""
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    tx = masking.masked(jgd.trace(0.9), {"w": True, "b": False})
    state = tx.init(params)
    state = state._replace(
        inner_state=state.inner_state._replace(
            trace={"w": jnp.full((2, 2), 3.0), "b": masking.MaskedNode()}
        )
    )
    doubled = optax.tree_utils.tree_map_params(
        tx,
        lambda x: 2 * x,
        state,
        is_leaf=lambda v: isinstance(v, masking.MaskedNode),
    )
    np.testing.assert_array_equal(doubled.inner_state.trace["w"], np.full((2, 2), 6.0))


def test_masked_is_a_value_with_a_static_mask():
    """The inner transform's hyperparameters are leaves, the mask static:
    under jit with the transform an argument, equal masks do not retrace."""
    params = random_tree(jax.random.key(0))
    traces = []

    @jax.jit
    def step(tx, g, s, p):
        traces.append(1)
        return tx.update(g, s, p)

    for rate in [0.1, 0.2]:
        tx = masking.masked(jgd.adam(rate), jax.tree.map(bool, TREE_MASK))
        assert jax.tree.leaves(tx)[0] == rate
        step(tx, params, tx.init(params), params)
    assert len(traces) == 1
    assert repr(masking.masked(jgd.scale(2.0), {"w": True})) == (
        "Masked(inner=Scale(step_size=2.0), mask={'w': True}, "
        "mask_compatible_extra_args=False)"
    )


def test_lars_and_lamb_states_are_optax_structures():
    """lars and lamb compose masked as optax does: the same state containers,
    leaf for leaf (only the NamedTuple classes are jgd's own)."""
    params = random_tree(jax.random.key(0))
    pairs = [
        (jgd.lars(0.1), optax.lars(0.1)),
        (jgd.lamb(0.1, mask=decay_mask), optax.lamb(0.1, mask=decay_mask)),
        (
            jgd.adafactor(0.1, weight_decay_rate=0.1, weight_decay_mask=PREFIX_MASK),
            optax.adafactor(0.1, weight_decay_rate=0.1, weight_decay_mask=PREFIX_MASK),
        ),
    ]

    def names(x):
        """The NamedTuple classes in a state, depth first."""
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return [type(x).__name__] + [n for f in x for n in names(f)]
        if isinstance(x, (tuple, list)):
            return [n for f in x for n in names(f)]
        if isinstance(x, dict):
            return [n for k in sorted(x) for n in names(x[k])]
        return []

    for ours, theirs in pairs:
        s1, s2 = ours.init(params), theirs.init(params)
        assert names(s1) == names(s2)
        assert [x.shape for x in jax.tree.leaves(s1)] == [
            x.shape for x in jax.tree.leaves(s2)
        ]


def test_dict_mask_over_nnx_state_and_equinox_module():
    """A dict prefix over an nnx State (or an equinox module) is laid by key
    path, where optax raises jax's structure error; it gives the numbers of
    the structural mask, which optax takes."""
    eqx = pytest.importorskip("equinox")
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    structural = jax.tree.map(lambda x: x.ndim == 2, params)
    want = optax.masked(optax.scale(-1.0), structural)
    want = want.update(params, want.init(params))[0]
    tx = masking.masked(jgd.scale(-1.0), {"kernel": True, "bias": False})
    got = tx.update(params, tx.init(params))[0]
    assert_trees_close(jax.tree.leaves(got), jax.tree.leaves(want), rtol=0)
    with pytest.raises(ValueError):
        optax.masked(optax.scale(-1.0), {"kernel": True, "bias": False}).init(params)

    class Layer(eqx.Module):
        weight: jax.Array
        bias: jax.Array

    layer = Layer(jnp.ones((2, 2)), jnp.ones(2))
    tx = masking.masked(jgd.scale(-1.0), {"weight": True, "bias": False})
    got = tx.update(layer, tx.init(layer))[0]
    np.testing.assert_array_equal(got.weight, -np.ones((2, 2)))
    np.testing.assert_array_equal(got.bias, np.ones(2))
    # A module of bools is a mask, though equinox makes it callable.
    mask = Layer(True, False)
    assert masking.masked(jgd.scale(-1.0), mask).update(layer, tx.init(layer))[
        0
    ].bias.tolist() == [1.0, 1.0]


def test_a_mismatched_mask_names_both_sides():
    params = {"layer": {"w": jnp.ones(2), "b": jnp.ones(2)}}
    tx = masking.masked(jgd.scale(2.0), {"layer": {"w": True, "bais": False}})
    with pytest.raises(TypeError) as info:
        tx.init(params)
    assert str(info.value) == (
        "jgd.masked: mask must be a tree shaped like the params or a prefix of "
        "them; first difference: params has ['layer']['b'], mask has "
        "['layer']['bais']."
    )
