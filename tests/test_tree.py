"""jgd.tree against optax.tree, name by name.

Each utility runs on the same random nested trees (dict, list, tuple; scalar,
matrix, 3-D and zero-size leaves; float32 and float64, complex and int where
optax documents them) and must give optax's structure, dtypes and values, bit
for bit: they are the same operations in the same order. jgd runs under the
suite's strict promotion (and under jit), optax under standard promotion.
Edge cases: empty trees, None leaves where optax allows them, mixed dtypes.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import tree
from tests.helpers import TREE_SHAPES, random_tree, standard_promotion

DTYPES = ["float32", "float64"]


@pytest.fixture(params=DTYPES)
def dtype(request):
    """float32, or float64 with x64 on for the test body."""
    with jax.enable_x64(request.param == "float64"):
        yield jnp.dtype(request.param)


# Eager calls compile one small program per operation and leaf shape, so the
# eager comparison runs on fewer shapes (a scalar, a vector, a zero-size leaf;
# the same Python over leaves as under jit, which gets the whole tree).
EAGER_SHAPES = {"scalar": (), "layers": [(0,)], "head": {"v": (7,)}}


def _trees(dtype, n=3, shapes=TREE_SHAPES):
    return [random_tree(jax.random.key(i), dtype, shapes) for i in range(n)]


def _assert_same(ours, theirs, where="", ulp=0):
    """Same structure, dtypes and values (bit for bit, or within ``ulp``;
    NaNs equal)."""
    assert jax.tree.structure(ours) == jax.tree.structure(theirs), where
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(ours), jax.tree.leaves(theirs)
    ):
        at = f"{where}{jax.tree_util.keystr(path)}"
        assert type(a) is type(b) or (
            isinstance(a, jax.Array) and isinstance(b, jax.Array)
        ), f"{at}: {type(a)} vs {type(b)}"
        assert jnp.result_type(a) == jnp.result_type(b), f"{at}: dtypes"
        if ulp:
            np.testing.assert_array_max_ulp(np.asarray(a), np.asarray(b), ulp)
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=at)


def _check(call, *args, eager_ulp=0):
    """``call(module, *args)`` for jgd.tree (strict promotion) and for
    optax.tree (standard promotion), eager and jitted (where XLA may fuse a
    multiply-add, so jit is compared with jit)."""
    with standard_promotion():
        theirs = call(optax.tree, *args)
        theirs_jit = jax.jit(lambda *a: call(optax.tree, *a))(*args)
    _assert_same(call(tree, *args), theirs, "eager ", eager_ulp)
    _assert_same(jax.jit(lambda *a: call(tree, *a))(*args), theirs_jit, "jit ")


@functools.cache
def _all_at_once(kind, dtype):
    """Every call of a table on ``kind``'s trees in one jitted program per
    library (one compile for the table, not two per call: each call's outputs
    are their own subgraph, so the numbers are the same as compiled alone),
    and eager on the ``EAGER_SHAPES`` trees. Cached per kind and dtype;
    ``_checked`` reads one entry.
    """
    names, args = KINDS[kind](dtype, TREE_SHAPES)
    _, eager_args = KINDS[kind](dtype, EAGER_SHAPES)
    with standard_promotion():
        theirs = {n: CALLS[n](optax.tree, *eager_args) for n in names}
        theirs_jit = jax.jit(lambda *a: {n: CALLS[n](optax.tree, *a) for n in names})(
            *args
        )
    ours = {n: CALLS[n](tree, *eager_args) for n in names}
    ours_jit = jax.jit(lambda *a: {n: CALLS[n](tree, *a) for n in names})(*args)
    return ours, theirs, ours_jit, theirs_jit


def _checked(kind, dtype, name, eager_ulp=0):
    ours, theirs, ours_jit, theirs_jit = _all_at_once(kind, jnp.dtype(dtype).name)
    _assert_same(ours[name], theirs[name], "eager ", eager_ulp)
    _assert_same(ours_jit[name], theirs_jit[name], "jit ")


def _same_dtype_f(x):
    return jnp.asarray(0.25, x.dtype)


# name -> call(module, x, y, z) on three trees of one dtype.
CALLS = {
    "add": lambda T, x, y, z: T.add(x, y),
    "add_three": lambda T, x, y, z: T.add(x, y, z),
    "sub": lambda T, x, y, z: T.sub(x, y),
    "mul": lambda T, x, y, z: T.mul(x, y),
    "div": lambda T, x, y, z: T.div(x, y),
    "scale": lambda T, x, y, z: T.scale(0.3, x),
    "scale_array": lambda T, x, y, z: T.scale(
        jnp.asarray(-2.0, z["head"]["v"].dtype), x
    ),
    "add_scale": lambda T, x, y, z: T.add_scale(x, 0.7, y),
    "conj": lambda T, x, y, z: T.conj(x),
    "real": lambda T, x, y, z: T.real(x),
    "clip": lambda T, x, y, z: T.clip(x, -0.5, 0.25),
    "clip_min": lambda T, x, y, z: T.clip(x, min_value=0.0),
    "clip_max": lambda T, x, y, z: T.clip(x, max_value=0.1),
    "clip_none": lambda T, x, y, z: T.clip(x),
    "where_true": lambda T, x, y, z: T.where(True, x, y),
    "where_array": lambda T, x, y, z: T.where(jnp.asarray(False), x, y),
    "batch_shape": lambda T, x, y, z: T.batch_shape(x, (2, 3)),
    "batch_shape_none": lambda T, x, y, z: T.batch_shape(x),
    "zeros_like": lambda T, x, y, z: T.zeros_like(x),
    "zeros_like_int": lambda T, x, y, z: T.zeros_like(x, jnp.int32),
    "ones_like": lambda T, x, y, z: T.ones_like(x),
    "ones_like_bf16": lambda T, x, y, z: T.ones_like(x, dtype=jnp.bfloat16),
    "full_like": lambda T, x, y, z: T.full_like(x, 0.5),
    "full_like_dtype": lambda T, x, y, z: T.full_like(x, 3, jnp.int32),
    "cast_bf16": lambda T, x, y, z: T.cast(x, jnp.bfloat16),
    "cast_none": lambda T, x, y, z: T.cast(x, None),
    "cast_like": lambda T, x, y, z: T.cast_like(x, T.cast(y, jnp.float16)),
    "dtype": lambda T, x, y, z: T.dtype(x),
    "update_moment": lambda T, x, y, z: T.update_moment(x, y, 0.9, 1),
    "update_moment_2": lambda T, x, y, z: T.update_moment(x, y, 0.999, 2),
    "update_moment_per_elem_norm": lambda T, x, y, z: T.update_moment_per_elem_norm(
        x, T.real(y), 0.99, 2
    ),
    "update_moment_per_elem_norm_3": lambda T, x, y, z: T.update_moment_per_elem_norm(
        x, T.real(y), 0.5, 3
    ),
    "update_infinity_moment": lambda T, x, y, z: T.update_infinity_moment(
        x, y, 0.9, 1e-8
    ),
    "bias_correction": lambda T, x, y, z: T.bias_correction(x, 0.999, jnp.int32(7)),
    "bias_correction_1": lambda T, x, y, z: T.bias_correction(x, 0.9, jnp.int32(1)),
    "vdot": lambda T, x, y, z: T.vdot(x, y),
    "sum": lambda T, x, y, z: T.sum(x),
    "sum_associative": lambda T, x, y, z: T.sum(x, associative_reduction=True),
    "max": lambda T, x, y, z: T.max(x),
    "min": lambda T, x, y, z: T.min(x),
    "size": lambda T, x, y, z: T.size(x),
    "norm": lambda T, x, y, z: T.norm(x),
    "norm_2_squared": lambda T, x, y, z: T.norm(x, 2, squared=True),
    "norm_1": lambda T, x, y, z: T.norm(x, ord=1),
    "norm_1_squared": lambda T, x, y, z: T.norm(x, 1, True),
    "norm_inf": lambda T, x, y, z: T.norm(x, jnp.inf),
    "norm_inf_str": lambda T, x, y, z: T.norm(x, "inf", squared=True),
    "norm_infinity": lambda T, x, y, z: T.norm(x, "infinity"),
    "allclose_same": lambda T, x, y, z: T.allclose(x, T.add(x, T.scale(1e-9, y))),
    "allclose_not": lambda T, x, y, z: T.allclose(x, y),
    "allclose_rtol": lambda T, x, y, z: T.allclose(
        x, T.scale(1.01, x), rtol=0.02, atol=0.0
    ),
    "allclose_nan": lambda T, x, y, z: T.allclose(
        T.scale(jnp.nan, x), T.scale(jnp.nan, x), equal_nan=True
    ),
}

# Python ints and dtypes, not arrays: eager only.
EAGER_ONLY = {"size", "dtype"}

# optax.tree.bias_correction is itself jitted, so "eager" compares jgd's eager
# division with a compiled one, and XLA's CPU division by a broadcast scalar is
# not correctly rounded (1 ulp off NumPy's, differently in a fused loop).
# Compiled on both sides, they agree bit for bit.
EAGER_ULP = {"bias_correction": 1, "bias_correction_1": 1}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_matches_optax(name, dtype):
    x, y, z = _trees(dtype)
    call = CALLS[name]
    if name in EAGER_ONLY:
        with standard_promotion():
            theirs = call(optax.tree, x, y, z)
        assert call(tree, x, y, z) == theirs
        return
    _checked("real", dtype, name, eager_ulp=EAGER_ULP.get(name, 0))


COMPLEX_CALLS = [
    "conj",
    "real",
    "vdot",
    "sum",
    "norm",
    "norm_2_squared",
    "norm_1",
    "norm_inf",
    "update_moment_per_elem_norm",
    "update_moment_per_elem_norm_3",
    "scale",
    "add_scale",
    "mul",
]


@pytest.mark.parametrize("name", COMPLEX_CALLS)
def test_complex_trees_match_optax(name, dtype):
    """Complex leaves: conjugates in vdot, |x|**2 in norm, real moments."""
    _checked("complex", dtype, name)


def _complex_trees(dtype, shapes):
    re, im, other = _trees(dtype, shapes=shapes)
    cdt = jnp.complex64 if dtype == jnp.float32 else jnp.complex128
    x = jax.tree.map(lambda a, b: jax.lax.complex(a, b).astype(cdt), re, im)
    y = jax.tree.map(lambda a, b: jax.lax.complex(b, a).astype(cdt), other, re)
    return x, y, None


INT_CALLS = [
    "sum",
    "max",
    "min",
    "norm",
    "norm_2_squared",
    "norm_1",
    "norm_inf",
    "vdot",
]


@pytest.mark.parametrize("name", INT_CALLS)
def test_int_trees_match_optax(name):
    """int leaves: sums stay int, norms with a root (and max, min, whose
    initial value is a float infinity) become float."""
    _checked("int", jnp.float32, name)


def _int_trees(dtype, shapes):
    x, y, _ = _trees(dtype, shapes=shapes)
    ints = [jax.tree.map(lambda a: (10 * a).astype(jnp.int32), t) for t in (x, y)]
    return (*ints, None)


# kind -> dtype name -> (the calls, their arguments)
KINDS = {
    "real": lambda d, shapes: (
        [n for n in CALLS if n not in EAGER_ONLY],
        tuple(_trees(jnp.dtype(d), shapes=shapes)),
    ),
    "complex": lambda d, shapes: (COMPLEX_CALLS, _complex_trees(jnp.dtype(d), shapes)),
    "int": lambda d, shapes: (INT_CALLS, _int_trees(jnp.dtype(d), shapes)),
}


# --------------------------------------------------------------------------
# Empty trees, None leaves, mixed dtypes.
# --------------------------------------------------------------------------

EMPTY_CALLS = {
    "add": lambda T, e: T.add(e, e),
    "zeros_like": lambda T, e: T.zeros_like(e),
    "vdot": lambda T, e: T.vdot(e, e),
    "sum": lambda T, e: T.sum(e),
    "max": lambda T, e: T.max(e),
    "min": lambda T, e: T.min(e),
    "size": lambda T, e: T.size(e),
    "norm": lambda T, e: T.norm(e),
    "norm_squared": lambda T, e: T.norm(e, squared=True),
    "norm_1": lambda T, e: T.norm(e, 1),
    "norm_inf": lambda T, e: T.norm(e, "inf"),
    "allclose": lambda T, e: T.allclose(e, e),
    "dtype": lambda T, e: T.dtype(e),
    "split_key_like": lambda T, e: T.split_key_like(jax.random.key(0), e),
    "update_moment": lambda T, e: T.update_moment(e, e, 0.9, 2),
}


@pytest.mark.parametrize("empty", [{}, [], (), None, {"a": [], "b": {}}], ids=str)
@pytest.mark.parametrize("name", sorted(EMPTY_CALLS))
def test_empty_trees_match_optax(name, empty, dtype):
    call = EMPTY_CALLS[name]
    with standard_promotion():
        theirs = call(optax.tree, empty)
    ours = call(tree, empty)
    assert type(ours) is type(theirs)
    if isinstance(theirs, jax.Array):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    elif name != "split_key_like":
        assert ours == theirs


def test_only_zero_size_leaves_match_optax(dtype):
    """max/min skip zero-size leaves; with nothing left they give -inf/inf."""
    empty = {"a": jnp.zeros((0,), dtype), "b": [jnp.zeros((2, 0), dtype)]}
    for name in ["max", "min", "sum", "norm", "norm_inf", "vdot"]:
        _check(CALLS[name], empty, empty, None)


def test_none_leaves_match_optax(dtype):
    """A None update leaf gives None in the moment updates and add_scale,
    whatever the other tree holds there; add and friends keep None as None."""
    x, y, _ = _trees(dtype)
    xn = {**x, "scalar": None}
    yn = {**y, "scalar": None}
    y_any = {**y, "scalar": jnp.ones(5, dtype)}  # ignored under the None
    calls = {
        "add_scale": lambda T: T.add_scale(xn, 0.5, y_any),
        "update_moment": lambda T: T.update_moment(xn, y_any, 0.9, 2),
        "update_moment_none": lambda T: T.update_moment(xn, yn, 0.9, 1),
        "update_moment_per_elem_norm": lambda T: T.update_moment_per_elem_norm(
            xn, y_any, 0.9, 2
        ),
        "update_infinity_moment": lambda T: T.update_infinity_moment(xn, yn, 0.9, 1e-3),
        "add": lambda T: T.add(xn, yn),
        "sub": lambda T: T.sub(xn, yn),
        "where": lambda T: T.where(True, xn, yn),
        "sum": lambda T: T.sum(xn),
        "norm": lambda T: T.norm(xn),
        "zeros_like": lambda T: T.zeros_like(xn),
        "cast": lambda T: T.cast(xn, jnp.float16),
    }
    for name, call in calls.items():
        with standard_promotion():
            theirs = call(optax.tree)
        _assert_same(call(tree), theirs, f"{name} ")
        assert jax.tree.structure(call(tree), is_leaf=lambda v: v is None) == (
            jax.tree.structure(theirs, is_leaf=lambda v: v is None)
        ), name


@pytest.mark.parametrize(
    "name", ["sum", "norm", "norm_1", "norm_inf", "vdot", "max", "min", "add"]
)
def test_mixed_dtypes_match_optax_under_strict_promotion(name):
    """Leaves of several dtypes: jgd gives optax's standard-promotion dtype and
    value although the suite runs under strict promotion (reductions combine
    leaves explicitly); leaf-wise ops follow the setting, as jnp does."""
    x = {"a": jnp.ones(3, jnp.float32) / 3, "b": [jnp.arange(4, dtype=jnp.bfloat16)]}
    y = {"a": jnp.full(3, 0.5, jnp.float32), "b": [jnp.ones(4, jnp.bfloat16)]}
    x["c"] = jnp.arange(3, dtype=jnp.int32)
    y["c"] = jnp.arange(3, dtype=jnp.int32)
    _check(CALLS[name], x, y, None)


# --------------------------------------------------------------------------
# dtype: mixed leaves and its handlers.
# --------------------------------------------------------------------------


def test_dtype_matches_optax():
    f32, f16, i32, u32 = jnp.float32, jnp.float16, jnp.int32, jnp.uint32
    trees = [
        {"a": jnp.ones(2, f32), "b": [jnp.ones((), f32)]},
        {
            "a": jnp.ones(2, f16),
            "b": [jnp.ones((), f32)],
            "c": jnp.ones(1, jnp.bfloat16),
        },
        {"a": jnp.ones(2, i32), "b": jnp.ones(2, f16)},
        {"a": jnp.ones(2, i32), "b": jnp.ones(2, u32)},
        {"a": jnp.ones(2, jnp.int8), "b": jnp.ones(2, jnp.uint8)},
        {"a": 1.0, "b": jnp.ones(2, jnp.int8)},
    ]
    for t in trees:
        for handler in [None, "promote", "highest", "lowest"]:
            with standard_promotion():
                try:
                    theirs = optax.tree.dtype(t, handler)
                except ValueError:
                    theirs = ValueError
            if theirs is ValueError:
                with pytest.raises(ValueError, match=r"^jgd\.tree\.dtype: "):
                    tree.dtype(t, handler)
            else:
                assert tree.dtype(t, handler) == theirs, (t, handler)


def test_dtype_errors():
    mixed = {"a": jnp.ones(2, jnp.float32), "b": [jnp.ones(2, jnp.float16)]}
    with pytest.raises(ValueError) as info:
        tree.dtype(mixed)
    assert str(info.value) == (
        "jgd.tree.dtype: the leaves have more than one dtype: float32 at ['a'], "
        "then float16 at ['b'][0]; pass mixed_dtype_handler='promote', 'highest' "
        "or 'lowest'."
    )
    with pytest.raises(ValueError) as info:
        tree.dtype(mixed, "max")
    assert str(info.value) == (
        "jgd.tree.dtype: mixed_dtype_handler must be None, 'promote', 'highest' "
        "or 'lowest'; got 'max'."
    )
    with pytest.raises(ValueError) as info:
        tree.dtype([jnp.ones(1, jnp.int8), jnp.ones(1, jnp.uint8)], "highest")
    assert str(info.value) == (
        "jgd.tree.dtype: neither int8 nor uint8 promotes to the other, so the tree "
        "has no highest dtype; use mixed_dtype_handler='promote' (here int16)."
    )


# --------------------------------------------------------------------------
# Randomness.
# --------------------------------------------------------------------------


def test_random_matches_optax(dtype):
    x = _trees(dtype, 1)[0]
    key = jax.random.key(3)
    unwrap = optax.tree.unwrap_random_key_data
    _assert_same(
        unwrap(tree.split_key_like(key, x)), unwrap(optax.tree.split_key_like(key, x))
    )
    for kwargs in [
        {},
        {"dtype": jnp.float16},
        {"sampler": lambda k, s, d: jax.random.uniform(k, s, d, -2.0, 2.0)},
    ]:
        ours = tree.random_like(key, x, **kwargs)
        _assert_same(ours, optax.tree.random_like(key, x, **kwargs), str(kwargs))
    keyed = {"k": jax.random.key(0), "x": x, "raw": jax.random.PRNGKey(1)}
    _assert_same(tree.unwrap_random_key_data(keyed), unwrap(keyed))


# --------------------------------------------------------------------------
# States: get, get_all_with_path, set, map_params.
# --------------------------------------------------------------------------


def _optax_states():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    chained = optax.chain(optax.add_noise(1.0, 0.9, key=0), optax.scale_by_adam())
    injected = optax.inject_hyperparams(optax.sgd)(
        learning_rate=lambda count: 1 / (count + 1), momentum=0.9
    )
    nested = {"count": 1, "inner": {"count": 2, "lr": [3.0, {"count": 4}]}}
    return {
        "chained": chained.init(params),
        "injected": injected.init(params),
        "adamw": optax.adamw(0.1).init(params),
        "nested": nested,
        "jgd_adam": jgd.adam(0.1).init(params),
        "jgd_chain": jgd.chain(jgd.trace(0.9), jgd.scale_by_adam()).init(params),
    }


def _equal(a, b):
    """Trees with any leaves (arrays, keys, strings) equal, dtypes included."""
    a, b = optax.tree.unwrap_random_key_data((a, b))
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if isinstance(x, (jax.Array, np.ndarray)) or isinstance(y, jax.Array):
            if jnp.result_type(x) != jnp.result_type(y) or not np.array_equal(x, y):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _paths(found):
    return [jax.tree_util.keystr(p) for p, _ in found]


KEYS = [
    "count",
    "mu",
    "learning_rate",
    "hyperparams",
    "AddNoiseState",
    "ScaleByAdamState",
    "TraceState",
    "lr",
    "missing",
]


@pytest.mark.parametrize("state_name", sorted(_optax_states()))
def test_get_matches_optax(state_name):
    state = _optax_states()[state_name]
    filters = [
        None,
        lambda path, value: isinstance(value, jax.Array),
        lambda path, value: (
            bool(path) and getattr(path[-1], "tuple_name", "") == ("ScaleByAdamState")
        ),
    ]
    for key in KEYS:
        for filtering in filters:
            ours = tree.get_all_with_path(state, key, filtering)
            theirs = optax.tree.get_all_with_path(state, key, filtering)
            assert _paths(ours) == _paths(theirs), (key, filtering)
            for (_, a), (_, b) in zip(ours, theirs):
                assert _equal(a, b), (key, filtering)
            try:
                want = optax.tree.get(state, key, "default", filtering)
            except KeyError:
                with pytest.raises(KeyError, match="jgd.tree.get: "):
                    tree.get(state, key, "default", filtering)
            else:
                got = tree.get(state, key, "default", filtering)
                assert _equal(got, want), key


@pytest.mark.parametrize("state_name", sorted(_optax_states()))
def test_set_matches_optax(state_name):
    state = _optax_states()[state_name]
    changes = [
        {"count": jnp.int32(5)},
        {"mu": None},
        {"learning_rate": jnp.asarray(0.5)},
        {"lr": 7.0},
        {"count": 2, "lr": 0.0},
        {"ScaleByAdamState": "replaced"},
        {"missing": 1},
    ]
    for kwargs in changes:
        for filtering in [None, lambda path, value: not isinstance(value, int)]:
            try:
                want = optax.tree.set(state, filtering, **kwargs)
            except KeyError:
                with pytest.raises(KeyError, match="jgd.tree.set: no value matches"):
                    tree.set(state, filtering, **kwargs)
                continue
            got = tree.set(state, filtering, **kwargs)
            if _equal(got, want):
                continue
            # KNOWN_DIFFERENCES['tree.set nested matches']: jgd replaced every
            # match that get finds; optax missed some.
            for key, new in kwargs.items():
                for _, value in tree.get_all_with_path(got, key, filtering):
                    assert _equal(value, new), (key, filtering)
            missed = [
                v
                for k in kwargs
                for _, v in optax.tree.get_all_with_path(want, k, filtering)
                if not _equal(v, kwargs[k])
            ]
            assert missed, kwargs


def test_set_replaces_nested_matches():
    """KNOWN_DIFFERENCES['tree.set nested matches']: under a matching node,
    optax's set looks one level down only, so it leaves a match in a list (or
    a dict, a state) there, though its get finds it."""
    nested = {"count": 1, "inner": {"count": 2, "lr": [3.0, {"count": 4}]}}
    assert [v for _, v in optax.tree.get_all_with_path(nested, "count")] == [1, 2, 4]
    theirs = optax.tree.set(nested, count=0)
    assert theirs["inner"]["lr"][1]["count"] == 4  # missed
    ours = tree.set(nested, count=0)
    assert ours == {"count": 0, "inner": {"count": 0, "lr": [3.0, {"count": 0}]}}
    assert [v for _, v in tree.get_all_with_path(ours, "count")] == [0, 0, 0]


def test_get_and_set_reach_jgd_values():
    """Beyond optax: hyperparameters of jgd values are fields, found by name."""
    opt = jgd.chain(
        jgd.clip(1.0), jgd.adam(jgd.schedules.linear_schedule(0.1, 0.0, 10))
    )
    assert tree.get(opt, "b1") == 0.9
    assert isinstance(tree.get(opt, "learning_rate"), jgd.schedules.PolynomialSchedule)
    assert tree.get(opt, "init_value") == 0.1
    paths = [jax.tree_util.keystr(p) for p, _ in tree.get_all_with_path(opt, "b1")]
    assert paths == [".transforms[1].b1"]
    new = tree.set(opt, b1=0.5, init_value=0.2)
    assert new.transforms[1].b1 == 0.5
    assert new.transforms[1].learning_rate.init_value == 0.2
    assert opt.transforms[1].b1 == 0.9  # a copy
    assert tree.get(tree.set(opt, Adam=jgd.sgd(0.1)), "momentum") is None
    with pytest.raises(ValueError, match=r"^jgd\.adam: b1 must be in \[0, 1\)"):
        tree.set(opt, b1=1.5)  # checked as at construction
    # Under jit, with a traced value.
    lr = jax.jit(
        lambda v: tree.get(tree.set(jgd.adam(0.1), learning_rate=v), "learning_rate")
    )
    assert float(lr(0.3)) == pytest.approx(0.3)


def test_map_params_matches_optax():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    specs = {"w": "W", "b": "B"}
    for ours_opt, their_opt in [
        (jgd.adam(0.1), optax.adam(0.1)),
        (jgd.sgd(0.1, momentum=0.9), optax.sgd(0.1, momentum=0.9)),
        (jgd.adamw(0.1), optax.adamw(0.1)),
    ]:
        ours_state, their_state = ours_opt.init(params), their_opt.init(params)
        for kwargs in [{}, {"transform_non_params": lambda _: None}]:
            ours = tree.map_params(
                ours_opt, lambda p, s: (p.shape, s), ours_state, specs, **kwargs
            )
            theirs = optax.tree.map_params(
                their_opt, lambda p, s: (p.shape, s), their_state, specs, **kwargs
            )
            assert jax.tree.leaves(ours) == jax.tree.leaves(theirs)
        # init given as a function, and is_leaf.
        ours = tree.map_params(
            ours_opt.init, lambda p: p.size, ours_state, is_leaf=lambda x: x is None
        )
        theirs = optax.tree.map_params(
            their_opt.init, lambda p: p.size, their_state, is_leaf=lambda x: x is None
        )
        assert jax.tree.leaves(ours) == jax.tree.leaves(theirs)


# --------------------------------------------------------------------------
# Names.
# --------------------------------------------------------------------------

# jgd.tree.bias_correction keeps the name it had before optax's joined
# (``moments``; optax's is ``moment``): code across jgd calls it.
_OWN_SIGNATURE = {"bias_correction"}


@pytest.mark.parametrize(
    "name", sorted(n for n in dir(optax.tree) if not n.startswith("_"))
)
def test_every_optax_tree_name_is_in_jgd_tree(name):
    assert name in tree.__all__
    if name in _OWN_SIGNATURE:
        return
    ours = inspect.signature(getattr(tree, name)).parameters
    theirs = inspect.signature(getattr(optax.tree, name)).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]


def test_shared_helpers_stay():
    """The helpers jgd's transforms use keep their names (other modules call
    ``tree.coef``, ``tree.promote``, ...)."""
    for name in [
        "check_same_structure",
        "coef",
        "correction",
        "default_float",
        "global_norm",
        "none_under_none",
        "promote",
        "safe_increment",
        "wider_dtype",
    ]:
        assert callable(getattr(tree, name))
    assert jgd.global_norm is tree.global_norm


def _complex_tree(dtype):
    x = jnp.linspace(-2.0, 3.0, 12, dtype=dtype) ** 3 / 7
    z = jax.lax.complex(x, x[::-1])
    return {"v": z[:5], "m": [z[5:].reshape(1, 7)], "s": z[0]}


def test_global_norm_of_complex_leaves_is_real_and_matches_optax(dtype):
    """|x|**2 per complex element, not x**2 (which is complex and can cancel)."""
    z = _complex_tree(dtype)
    with standard_promotion():
        theirs = optax.tree.norm(z)
        theirs_jit = jax.jit(optax.tree.norm)(z)
    _assert_same(tree.global_norm(z), theirs, "eager ")
    _assert_same(jax.jit(tree.global_norm)(z), theirs_jit, "jit ")
    # A real and a complex leaf together: the norm is real, in the wider dtype.
    mixed = {"r": jnp.array([3.0], dtype), "z": jnp.array([1 + 2j, 2 - 4j])}
    n = tree.global_norm(mixed)
    assert n.dtype == dtype
    np.testing.assert_allclose(np.asarray(n), 5.0 * np.sqrt(34.0 / 25.0), rtol=1e-6)


def test_abs_sq_is_optax_numerics_abs_sq():
    from optax._src import numerics

    for x in [_complex_tree(jnp.float32)["v"], jnp.arange(-3.0, 3.0)]:
        with standard_promotion():
            theirs, theirs_jit = numerics.abs_sq(x), jax.jit(numerics.abs_sq)(x)
        _assert_same(tree.abs_sq(x), theirs, "eager ")
        _assert_same(jax.jit(tree.abs_sq)(x), theirs_jit, "jit ")
        assert not jnp.iscomplexobj(tree.abs_sq(x))
