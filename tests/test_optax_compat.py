"""Points where code written for optax meets jgd values (issue 15): low-precision
hyperparameters, optax's isinstance-based paths, shared state types, ``None``
trees, decay 1.0 and the ``learning_rate`` annotation."""

from __future__ import annotations

import inspect
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from tests.helpers import standard_promotion

LOW = [jnp.bfloat16, jnp.float16]


# --------------------------------------------------------------------------
# 1. Concrete bfloat16 / float16 hyperparameters.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: jnp.dtype(d).name)
def test_low_precision_learning_rate_and_b1_are_accepted(dtype):
    lr, b1 = jnp.asarray(1e-3, dtype), jnp.asarray(0.9, dtype)
    opt = jgd.adam(lr, b1=b1)
    assert opt.learning_rate is lr and opt.b1 is b1
    p = {"w": jnp.ones(3, dtype)}
    u, _ = opt.update(p, opt.init(p), p)
    assert u["w"].dtype == dtype
    with standard_promotion():  # optax's own math needs it
        ref, _ = optax.adam(1e-3, b1=0.9).update(p, optax.adam(1e-3).init(p), p)
    np.testing.assert_allclose(
        np.asarray(u["w"], np.float32), np.asarray(ref["w"], np.float32), rtol=1e-2
    )
    jgd.sgd(lr)  # a second optimizer, a second check
    jgd.sgd(lr, momentum=b1)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: jnp.dtype(d).name)
def test_low_precision_hyperparameters_are_range_checked(dtype):
    with pytest.raises(ValueError, match=r"jgd\.adam: b1 must be in \[0, 1\); got"):
        jgd.adam(1e-3, b1=jnp.asarray(1.5, dtype))
    with pytest.raises(ValueError, match="learning_rate must be finite and >= 0"):
        jgd.adam(jnp.asarray(-1e-3, dtype))
    with pytest.raises(ValueError, match="learning_rate must be finite and >= 0"):
        jgd.adam(jnp.asarray(jnp.inf, dtype))
    # 0.9999 rounds to 1.0 in both formats: the value given is out of range.
    with pytest.raises(ValueError, match="b2 must be in"):
        jgd.adam(1e-3, b2=jnp.asarray(0.9999, dtype))


# --------------------------------------------------------------------------
# 2. optax's isinstance-based paths take jgd values.
# --------------------------------------------------------------------------


def test_isinstance_optax_gradient_transformation_is_a_known_difference():
    # KNOWN_DIFFERENCES['isinstance'] in test_vs_optax.py: a NamedTuple class
    # has metaclass `type`, so nothing can be registered as its virtual
    # subclass. If this starts to hold, update that entry.
    assert type(optax.GradientTransformation) is type
    assert not hasattr(optax.GradientTransformation, "register")
    for tx in (jgd.adam(1e-3), jgd.chain(jgd.clip(1.0), jgd.sgd(0.1))):
        assert not isinstance(tx, optax.GradientTransformation)
        assert not isinstance(tx, optax.GradientTransformationExtraArgs)


def test_with_extra_args_support_wraps_jgd_values():
    p = _params()
    for tx in (jgd.adam(1e-3), jgd.chain(jgd.clip(1.0), jgd.sgd(0.1))):
        wrapped = optax.with_extra_args_support(tx)
        assert isinstance(wrapped, optax.GradientTransformationExtraArgs)
        g = jax.tree.map(lambda x: -x, p)
        u, s = wrapped.update(g, wrapped.init(p), p, loss=jnp.asarray(1.0))
        ref, ref_s = tx.update(g, tx.init(p), p)
        jax.tree.map(np.testing.assert_array_equal, u, ref)
        jax.tree.map(np.testing.assert_array_equal, s, ref_s)


@standard_promotion()  # optax's members need it on the jgd side too
def test_optax_chain_takes_jgd_values():
    _run_both(
        optax.chain(jgd.clip(0.5), optax.adam(1e-2)),
        optax.chain(optax.clip(0.5), optax.adam(1e-2)),
    )
    _run_both(
        optax.chain(optax.clip_by_global_norm(1.0), jgd.adamw(1e-2)),
        optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2)),
    )
    # Extra args reach optax's members and are dropped for jgd's.
    tx = optax.chain(jgd.clip(1.0), optax.sgd(0.1))
    p = _params()
    tx.update(p, tx.init(p), p, value=jnp.asarray(1.0))


# --------------------------------------------------------------------------
# 5. decay = 1.0: the trace is a running sum, as in optax.
# --------------------------------------------------------------------------


def _run_both(jgd_tx, optax_tx, steps=6):
    """Run both on the same params and gradients, comparing every step."""
    params = {"w": jnp.linspace(-1.0, 1.0, 5), "b": jnp.asarray(0.5)}
    p_j = p_o = params
    s_j, s_o = jgd_tx.init(params), optax_tx.init(params)
    for step in range(steps):
        k = float(step + 1)
        g = jax.tree.map(lambda x, k=k: jnp.sin(x * k), p_j)
        u_j, s_j = jgd_tx.update(g, s_j, p_j)
        with standard_promotion():
            u_o, s_o = optax_tx.update(g, s_o, p_o)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=0),
            u_j,
            u_o,
        )
        p_j, p_o = jgd.apply_updates(p_j, u_j), optax.apply_updates(p_o, u_o)
    return s_j, s_o


@pytest.mark.parametrize("nesterov", [False, True])
def test_trace_decay_one_is_a_running_sum_as_optax(nesterov):
    s_j, s_o = _run_both(
        jgd.trace(decay=1.0, nesterov=nesterov),
        optax.trace(decay=1.0, nesterov=nesterov),
    )
    np.testing.assert_allclose(s_j.trace["w"], s_o.trace["w"], rtol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_one_matches_optax(nesterov):
    _run_both(
        jgd.sgd(0.1, momentum=1.0, nesterov=nesterov),
        optax.sgd(0.1, momentum=1.0, nesterov=nesterov),
    )


def test_rmsprop_momentum_one_matches_optax():
    _run_both(jgd.rmsprop(0.1, momentum=1.0), optax.rmsprop(0.1, momentum=1.0))


# --------------------------------------------------------------------------
# 6. learning_rate is annotated as optax.ScalarOrSchedule.
# --------------------------------------------------------------------------

OPTIMIZERS = ["adagrad", "adam", "adamw", "gd", "rmsprop", "sgd"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_learning_rate_annotation_is_optax_scalar_or_schedule(name):
    lr = inspect.signature(getattr(jgd, name)).parameters["learning_rate"]
    # optax's tests skip the schedule checks unless this holds.
    assert lr.annotation in (optax.ScalarOrSchedule, optax.Schedule)
    assert lr.annotation == optax.ScalarOrSchedule
    assert jgd.ScalarOrSchedule == optax.ScalarOrSchedule


# --------------------------------------------------------------------------
# 4. None trees and None leaves, as optax.
# --------------------------------------------------------------------------


def _params():
    return {"a": jnp.arange(3.0), "b": jnp.ones((2, 2)), "c": None}


def test_apply_updates_with_none_params_as_optax():
    u = {"a": jnp.ones(3), "b": jnp.ones((2, 2)), "c": None}
    assert optax.apply_updates(None, u) is None
    assert jgd.apply_updates(None, u) is None
    # A None param stays None whatever the update there.
    u_c = dict(u, c=jnp.ones(4))
    with standard_promotion():
        ref = optax.apply_updates(_params(), u_c)
    got = jgd.apply_updates(_params(), u_c)
    assert got["c"] is None and ref["c"] is None
    np.testing.assert_array_equal(got["a"], ref["a"])
    np.testing.assert_array_equal(got["b"], ref["b"])


def test_apply_updates_still_rejects_mismatched_trees():
    with pytest.raises(TypeError, match="jgd.apply_updates: the updates tree"):
        jgd.apply_updates({"a": jnp.ones(3)}, {"z": jnp.ones(3)})
    with pytest.raises(TypeError, match="jgd.apply_updates: the updates tree"):
        jgd.apply_updates({"a": jnp.ones(3), "c": None}, {"a": jnp.ones(3)})


@pytest.mark.parametrize("wd", [0.1, "schedule"])
def test_add_decayed_weights_with_none_updates_as_optax(wd):
    wd_j = jgd.schedules.constant_schedule(0.1) if wd == "schedule" else wd
    wd_o = optax.schedules.constant_schedule(0.1) if wd == "schedule" else wd
    tj, to = jgd.add_decayed_weights(wd_j), optax.add_decayed_weights(wd_o)
    p = _params()
    sj, so = tj.init(p), to.init(p)
    # The whole tree None.
    assert to.update(None, so, p)[0] is None
    assert tj.update(None, sj, p)[0] is None
    # Some leaves None: those stay None, the others decay.
    g = {"a": jnp.ones(3), "b": None, "c": None}
    with standard_promotion():
        ref, so = to.update(g, so, p)
    got, sj = tj.update(g, sj, p)
    assert got["b"] is None and ref["b"] is None and got["c"] is None
    np.testing.assert_allclose(got["a"], ref["a"], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(sj), jax.tree.leaves(so), strict=True):
        np.testing.assert_array_equal(a, b)


def test_masked_add_decayed_weights_with_none_updates():
    p = _params()
    tx = jgd.add_decayed_weights(
        0.5, mask=lambda q: jax.tree.map(lambda x: x.ndim > 1, q)
    )
    g = {"a": None, "b": jnp.ones((2, 2)), "c": None}
    got, _ = tx.update(g, tx.init(p), p)
    assert got["a"] is None and got["c"] is None
    np.testing.assert_allclose(got["b"], 1.5)


# --------------------------------------------------------------------------
# 3. EmptyState is optax's class once optax is imported.
# --------------------------------------------------------------------------


def _structure(tx, p):
    return jax.tree.structure(tx.init(p))


@pytest.mark.parametrize(
    "pair",
    [
        (lambda: jgd.identity(), lambda: optax.identity()),
        (lambda: jgd.clip(1.0), lambda: optax.clip(1.0)),
        (lambda: jgd.scale(2.0), lambda: optax.scale(2.0)),
        (
            lambda: jgd.chain(jgd.clip(1.0), jgd.sgd(0.1)),
            lambda: optax.chain(optax.clip(1.0), optax.sgd(0.1)),
        ),
        (
            lambda: jgd.chain(jgd.clip_by_global_norm(1.0), optax.adam(1e-3)),
            lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3)),
        ),
        (
            lambda: optax.chain(jgd.clip(1.0), optax.adam(1e-3)),
            lambda: optax.chain(optax.clip(1.0), optax.adam(1e-3)),
        ),
        (lambda: jgd.sgd(0.1), lambda: optax.sgd(0.1)),
    ],
    ids=[
        "identity",
        "clip",
        "scale",
        "chain_sgd",
        "mixed_jgd_chain",
        "optax_chain",
        "sgd",
    ],
)
def test_state_structure_equals_optax(pair):
    # Stateful pieces keep jgd's own NamedTuples (KNOWN_DIFFERENCES in
    # test_vs_optax.py, 'state types'); states of stateless ones match exactly.
    p = {"w": jnp.ones((2, 3)), "b": [jnp.zeros(3), jnp.asarray(1.0)]}
    make_jgd, make_optax = pair
    assert _structure(make_jgd(), p) == _structure(make_optax(), p)


def test_empty_state_names_optax_class_once_imported():
    assert jgd.EmptyState is optax.EmptyState
    assert jgd.base.EmptyState is optax.EmptyState
    assert type(jgd.identity().init(None)) is optax.EmptyState


def test_import_jgd_does_not_import_optax():
    code = (
        "import sys, pickle, jgd\n"
        "assert 'optax' not in sys.modules\n"
        "s = jgd.clip(1.0).init(None)\n"
        "assert type(s) is jgd.EmptyState and repr(s) == 'EmptyState()'\n"
        "assert type(pickle.loads(pickle.dumps(s))) is type(s)\n"
        "assert 'optax' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
