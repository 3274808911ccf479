"""hyperparams, current_hyperparams and inject_hyperparams: paths and values
by hand, schedules read at their own counts (under jit, on a TrainState
packed or not), hyperparameters set in the state between steps, dtypes
(optax issue #1414), and no recompilation when a hyperparameter changes.
The cross-checks against optax are CASES in tests/catalogue/injection.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax._src.base import StatefulSchedule

import jgd
import jgd.contrib as jc
import jgd.train as T
from jgd import schedules as js
from tests.helpers import standard_promotion

LR = js.linear_schedule(1.0, 0.0, 10)  # 1 - t / 10
WD = js.linear_schedule(0.5, 0.0, 5)  # 0.5 - t / 10
MOM = js.linear_schedule(0.0, 0.8, 8)  # t / 10


def test_hyperparams_by_path():
    assert jgd.hyperparams(jgd.adam(1e-3)) == {
        "learning_rate": 1e-3,
        "b1": 0.9,
        "b2": 0.999,
        "eps": 1e-8,
        "eps_root": 0.0,
    }
    mask = {"w": True, "b": False}
    opt = jgd.chain(
        jgd.clip_by_global_norm(1.0),
        jgd.adamw(LR, weight_decay=0.01, mask=mask),
        jgd.masked(jgd.sgd(0.1, momentum=0.9), mask),
        optax.scale(2.0),  # an optax closure: nothing to read
    )
    got = jgd.hyperparams(opt)
    assert got == {
        "0/max_norm": 1.0,
        "1/learning_rate": LR,
        "1/b1": 0.9,
        "1/b2": 0.999,
        "1/eps": 1e-8,
        "1/eps_root": 0.0,
        "1/weight_decay": 0.01,
        "2/inner/learning_rate": 0.1,
        "2/inner/momentum": 0.9,
    }
    assert got["1/learning_rate"] is LR  # the schedule itself
    fn = lambda count: 0.1  # a plain function stays itself
    inj = jgd.inject_hyperparams(jgd.sgd)(fn, momentum=0.9)
    assert jgd.hyperparams(inj) == {"learning_rate": fn, "momentum": 0.9}
    assert jgd.hyperparams(jgd.sgd(fn)) == {"learning_rate": fn}
    assert jgd.hyperparams(optax.adam(0.1)) == {}


def _all_pieces():
    """One optimizer with every way of holding a schedule: a jgd optimizer
    (two counts), a wrapper's inner, jgd's and optax's injection, a plateau."""
    return jgd.chain(
        jgd.adamw(LR, weight_decay=WD),
        jgd.masked(jgd.sgd(MOM), {"w": True, "b": False}),
        jgd.inject_hyperparams(jgd.sgd)(learning_rate=LR, momentum=0.5),
        jgd.inject_hyperparams(optax.sgd)(learning_rate=WD),
        optax.inject_hyperparams(optax.scale)(step_size=-1.0),
        jc.reduce_on_plateau(factor=0.5, patience=1),
    )


@jax.jit
def _step_and_read(opt, g, state, params):
    g, state = opt.update(g, state, params, value=jnp.float32(1.0))
    return g, state, jgd.current_hyperparams(opt, state)


def test_current_hyperparams_reads_each_schedule_at_its_count():
    """After 3 updates (under jit, inside the jitted step): each schedule at
    3; the state's numbers as the user set them; the plateau's scale."""
    params = {"w": jnp.ones(2), "b": jnp.ones(())}
    opt = _all_pieces()
    state = opt.init(params)
    now = jgd.current_hyperparams(opt, state)  # eagerly, before any update
    assert (now["0/learning_rate"], now["2/learning_rate"]) == (1.0, 1.0)
    for i in range(3):
        with standard_promotion():  # the optax pieces need it
            _, state, now = _step_and_read(opt, params, state, params)
        state[2].hyperparams["momentum"] = jnp.float32(0.1 * (i + 1))
    want = {
        "0/learning_rate": 0.7,
        "0/weight_decay": 0.2,
        "1/inner/learning_rate": 0.3,
        "2/learning_rate": 0.7,
        "2/momentum": 0.2,  # set after the second step, read by the third
        "3/learning_rate": 0.2,
        "4/step_size": -1.0,
        "5/scale": 0.25,  # 1.0 twice without improvement, patience 1
    }
    for k, v in want.items():
        np.testing.assert_allclose(now[k], v, rtol=1e-6, err_msg=k)
    assert now["0/b1"] == 0.9 and now["5/factor"] == 0.5
    assert float(jgd.current_hyperparams(opt, state)["2/momentum"]) == np.float32(0.3)
    # A count other than "count": ademamix's b3 reads count_m2.
    opt = jc.ademamix(0.1, b3=LR)
    state = jgd.tree.set(opt.init(params), count_m2=jnp.asarray(4, jnp.int32))
    np.testing.assert_allclose(jgd.current_hyperparams(opt, state)["b3"], 0.6)
    # A schedule the recipe wraps (fromage's learning rate) is still found.
    opt = jgd.fromage(LR)
    state = jgd.tree.set(opt.init(params), count=jnp.asarray(5, jnp.int32))
    np.testing.assert_allclose(
        jgd.current_hyperparams(opt, state)["learning_rate"], 0.5
    )


def test_current_hyperparams_on_a_train_state():
    """From a TrainState whose state is packed in buckets, eagerly and under
    jit; the injected learning rate set in the stored state takes effect
    with no new compile of the step."""
    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    loss = lambda p, x: jnp.sum((p["w"] @ x + p["b"]) ** 2)
    opt = jgd.chain(jgd.adam(LR), jgd.inject_hyperparams(jgd.sgd)(learning_rate=1.0))
    state = T.init(params, opt, flat=True)
    assert isinstance(state.layout, T.Layout)  # both pieces are element-wise
    step = T.make_step(loss)
    for _ in range(2):
        state, _ = step(state, jnp.ones(2))
    now = jax.jit(jgd.current_hyperparams)(state)
    np.testing.assert_allclose(now["0/learning_rate"], 0.8, rtol=1e-6)
    assert jgd.hyperparams(state) == jgd.hyperparams(opt)
    # Set the injected rate in the stored state: 0 stops the second factor.
    stored = jgd.tree.set(state.stored_opt_state, learning_rate=jnp.float32(0.0))
    state = state.replace(stored_opt_state=stored)
    before = state.params
    state, _ = step(state, jnp.ones(2))
    assert jgd.current_hyperparams(state)["1/learning_rate"] == 0.0
    for k in before:
        np.testing.assert_array_equal(state.params[k], before[k])
    assert step._top._cache_size() == 1


TRACES: list = []


@jax.jit
def _update(opt, g, state):
    TRACES.append(1)
    return opt.update(g, state)


def test_changing_hyperparameters_never_recompiles():
    """The state's hyperparams set between steps (as optax's), and a new
    value of a hyperparameter in the optimizer passed to the jitted step:
    one program each."""
    g = {"a": jnp.ones(2)}
    opt = jgd.inject_hyperparams(jgd.sgd)(learning_rate=0.1, momentum=0.0)
    state = opt.init(g)
    TRACES.clear()
    for lr in [0.5, 0.25, 2.0]:
        state.hyperparams["learning_rate"] = jnp.float32(lr)
        u, state = _update(opt, g, state)
        np.testing.assert_allclose(u["a"], -lr, rtol=1e-7)
    assert len(TRACES) == 1
    TRACES.clear()
    for b1 in [0.9, 0.5]:
        adam = jgd.adam(0.1, b1=b1)
        _update(adam, g, adam.init(g))
        inj = opt.replace(hyperparams={"learning_rate": b1, "momentum": 0.1})
        _update(inj, g, inj.init(g))
    assert len(TRACES) == 1  # adam's; inj has opt's structure, compiled above


def test_hyperparams_stay_float32_under_bfloat16():
    """KNOWN_DIFFERENCES['hyperparam dtype'] (optax issue #1414)."""
    p = {"a": jnp.ones(3, jnp.bfloat16)}
    ours = jgd.inject_hyperparams(jgd.adam)(1e-3).init(p).hyperparams
    with standard_promotion():
        theirs = optax.inject_hyperparams(optax.adam)(1e-3).init(p).hyperparams
    assert ours["b2"].dtype == jnp.float32 and float(ours["b2"]) == np.float32(0.999)
    assert theirs["b2"].dtype == jnp.bfloat16 and float(theirs["b2"]) == 1.0
    # hyperparam_dtype decides, as in optax: bf16 makes b2 1.0, which jgd.adam
    # refuses.
    ours = jgd.inject_hyperparams(jgd.sgd, hyperparam_dtype=jnp.bfloat16)(1e-3)
    assert ours.init(p).hyperparams["learning_rate"].dtype == jnp.bfloat16
    ours = jgd.inject_hyperparams(jgd.adam, hyperparam_dtype=jnp.bfloat16)(1e-3)
    with pytest.raises(ValueError, match=r"jgd.adam: b2 must be in \[0, 1\); got"):
        ours.init(p)
    # An optax inner gets them weakly typed: optax.adam's numbers, bf16 state.
    opt = jgd.inject_hyperparams(optax.adam)(0.1)
    with standard_promotion():
        u, s = jax.jit(opt.update)(p, opt.init(p), p)
        u0, s0 = jax.jit(optax.adam(0.1).update)(p, optax.adam(0.1).init(p), p)
    assert u["a"].dtype == s.inner_state[0].nu["a"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(u["a"], u0["a"])
    np.testing.assert_array_equal(s.inner_state[0].nu["a"], s0[0].nu["a"])


def test_hyperparams_follow_float64_params(x64):
    """Wider params widen them: float64 hyperparameters, as optax's."""
    p = jnp.ones(2, jnp.float64)
    hp = jgd.inject_hyperparams(jgd.adam)(1e-3).init(p).hyperparams
    assert hp["learning_rate"].dtype == jnp.float64
    assert float(hp["learning_rate"]) == 1e-3


class _Halving(StatefulSchedule):
    """optax's stateful schedule protocol: halves the rate when value= is
    above 1."""

    def init(self):
        return jnp.float32(1.0)

    def update(self, state, value=0.0, **extra):
        return jnp.where(value > 1.0, state / 2, state)

    def __call__(self, state, **extra):
        return state


def test_stateful_schedules_and_the_old_name():
    """A stateful schedule (optax's protocol) reads the extra arguments;
    inject_stateful_hyperparams is the same wrapper, deprecated as in optax."""
    with pytest.warns(DeprecationWarning, match="use jgd.inject_hyperparams"):
        make = jgd.inject_stateful_hyperparams(jgd.sgd)
    opt = make(learning_rate=_Halving())
    state = opt.init(jnp.zeros(1))
    rates = []
    for value in [2.0, 0.5, 3.0]:
        u, state = opt.update(jnp.ones(1), state, value=value)
        rates.append(-float(u[0]))
    assert rates == [1.0, 0.5, 0.5]
    assert float(jgd.current_hyperparams(opt, state)["learning_rate"]) == 0.25


def test_names_arguments_and_state_fields_are_optaxs():
    import inspect

    def params(fn):
        return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]

    assert params(jgd.inject_hyperparams) == params(optax.inject_hyperparams)
    assert params(jgd.inject_stateful_hyperparams) == params(
        optax.inject_stateful_hyperparams
    )
    assert params(jc.reduce_on_plateau) == params(optax.contrib.reduce_on_plateau)
    assert params(jgd.inject_hyperparams(jgd.adam)) == params(jgd.adam)
    for ours, theirs in [
        (jgd.InjectHyperparamsState, optax.InjectHyperparamsState),
        (jgd.InjectStatefulHyperparamsState, optax.InjectStatefulHyperparamsState),
        (jgd.WrappedScheduleState, optax.schedules._inject.WrappedScheduleState),
        (jc.ReduceLROnPlateauState, optax.contrib.ReduceLROnPlateauState),
    ]:
        assert (ours.__name__, ours._fields) == (theirs.__name__, theirs._fields)
