"""No silent wrong results (issue 13): float16 adaptive optimizers (classic and
Adam's relatives) stay finite (KNOWN_DIFFERENCES['float16 adaptive
optimizers'] in tests/catalogue/safety.py) and keep bf16/f32 numbers;
schedules report the values they pass through, so a negative learning rate is
refused while a negative schedule elsewhere is not; the float32 rule for
hyperparameters holds under x64 too."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
from jgd import schedules as js
from tests.catalogue.safety import KNOWN_DIFFERENCES

F16_STREAM = [  # zeros, subnormals, |g| > 256 (g**2 overflows float16), mixed
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 0.005, 1000.0, -60000.0],
    [1e-7, 0.0, 0.0, 0.0],
    [0.0, 0.0, 60000.0, 1e-3],
]

FLOAT16_OPTIMIZERS = {
    "adam": lambda m: m.adam(1e-3),
    "adamw": lambda m: m.adamw(1e-3),
    "nadam": lambda m: m.adam(1e-3, nesterov=True),
    "rmsprop": lambda m: m.rmsprop(1e-3),
    "rmsprop_centered": lambda m: m.rmsprop(
        1e-3, centered=True, momentum=0.9, bias_correction=True
    ),
    "rmsprop_eps_outside": lambda m: m.rmsprop(1e-3, eps_in_sqrt=False),
    "adagrad": lambda m: m.adagrad(1e-3),
    # Adam's relatives (jgd/transforms/adam_family.py, adan_lion_adadelta.py).
    "amsgrad": lambda m: m.amsgrad(1e-3),
    "adamaxw": lambda m: m.adamaxw(1e-3),  # adamax's direction, then decay
    "adabelief": lambda m: m.adabelief(1e-3, nesterov=True),
    "radam": lambda m: m.radam(1e-3, b2=0.9),  # rectified from step 6 on
    "yogi": lambda m: m.yogi(1e-3),
    "adan": lambda m: m.adan(1e-3),
    "adadelta": lambda m: m.adadelta(1.0),
}
# ro < t, so RAdam's rectified step (ro >= threshold = 5) needs a longer stream.
STREAMS = {"radam": F16_STREAM * 2}


def _run(opt, stream, dtype):
    params = {"w": jnp.ones(4, dtype)}
    state = opt.init(params)
    out = []
    for g in stream:
        u, state = opt.update({"w": jnp.asarray(g, dtype)}, state, params)
        out.append(u["w"])
    return out, state


@pytest.mark.parametrize("name", sorted(FLOAT16_OPTIMIZERS))
def test_float16_adaptive_optimizers_stay_finite(name):
    """Finite float16 gradients, zeros included, give finite float16 updates
    equal to the float32 computation up to two float16 roundings (the
    direction, then its product with the learning rate); optax (in float16)
    gives NaN or inf on the same stream, or (AdaGrad) a zero step."""
    assert "float16 adaptive optimizers" in KNOWN_DIFFERENCES
    make, stream = FLOAT16_OPTIMIZERS[name], STREAMS.get(name, F16_STREAM)
    f16, state = _run(make(jgd), stream, jnp.float16)
    # The same gradients (rounded to float16 first) through float32.
    stream32 = [np.float16(g).astype(np.float32) for g in stream]
    f32, _ = _run(make(jgd), stream32, jnp.float32)
    for step, (u16, u32) in enumerate(zip(f16, f32)):
        assert u16.dtype == jnp.float16
        assert np.isfinite(np.asarray(u16, np.float32)).all(), (step, u16)
        np.testing.assert_allclose(
            np.asarray(u16, np.float32), u32, rtol=2e-3, atol=6e-8, err_msg=str(step)
        )
    for leaf in jax.tree.leaves(state):  # moments of float16 leaves: float32
        assert leaf.dtype in (jnp.float32, jnp.int32, jnp.float16)
    with jax.numpy_dtype_promotion("standard"):
        theirs, _ = _run(make(optax), stream, jnp.float16)
    # NaN, inf, or (AdaGrad: an overflowed sum of squares) a zero step.
    assert not all(
        np.allclose(np.asarray(u, np.float32), u32, rtol=0.1, atol=1e-6)
        for u, u32 in zip(theirs, f32)
    )


def test_float16_moments_are_float32_and_others_keep_their_dtype():
    params = {
        "h": jnp.ones(2, jnp.float16),
        "b": jnp.ones(2, jnp.bfloat16),
        "f": jnp.ones(2, jnp.float32),
    }
    state = jgd.scale_by_adam().init(params)
    assert {k: v.dtype for k, v in state.nu.items()} == {
        "h": jnp.float32,
        "b": jnp.bfloat16,
        "f": jnp.float32,
    }
    bf16 = jgd.scale_by_adam(mu_dtype=jnp.bfloat16).init(params)
    assert {v.dtype for v in bf16.mu.values()} == {jnp.dtype(jnp.bfloat16)}
    for tx in (jgd.scale_by_rms(), jgd.scale_by_stddev(), jgd.scale_by_rss()):
        s = tx.init(params)
        moments = [x for x in jax.tree.leaves(s) if x.ndim]
        assert [x.dtype for x in moments][-3:] == [
            jnp.bfloat16,
            jnp.float32,
            jnp.float32,
        ]  # sorted keys b, f, h


def test_adam_relatives_keep_float16_moments_in_float32():
    params = {"b": jnp.ones(2, jnp.bfloat16), "h": jnp.ones(2, jnp.float16)}
    for tx in (
        jgd.scale_by_amsgrad(),
        jgd.scale_by_adamax(),
        jgd.scale_by_belief(),
        jgd.scale_by_radam(),
        jgd.scale_by_yogi(),
        jgd.scale_by_adan(),
        jgd.scale_by_adadelta(),
    ):
        state = tx.init(params)
        for field, moment in state._asdict().items():
            if field in ("count", "t"):
                continue
            # adan's previous gradient g is kept exactly, in float16.
            h = jnp.float16 if field == "g" else jnp.float32
            got = (moment["b"].dtype, moment["h"].dtype)
            assert got == (jnp.bfloat16, h), f"{type(tx).__name__}.{field}: {got}"


# radam is left out: its float32 rectifier r rounds a little differently from
# optax's (within test_vs_optax's rtol), which can move a bfloat16 step by one
# ulp; the same before the float16 path.
@pytest.mark.parametrize(
    "name", ["adam", "amsgrad", "adamaxw", "adabelief", "yogi", "adan", "adadelta"]
)
def test_bf16_equals_optax_bit_for_bit(name):
    """The float16 path leaves bfloat16 alone: optax's numbers exactly."""
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=5), jnp.bfloat16)}
    grads = [jnp.asarray(rng.normal(size=5), jnp.bfloat16) for _ in range(2)]
    ours, theirs = getattr(jgd, name)(1e-2), getattr(optax, name)(1e-2)
    s1, s2 = ours.init(params), theirs.init(params)
    for g in grads:
        u1, s1 = ours.update({"w": g}, s1, params)
        with jax.numpy_dtype_promotion("standard"):
            u2, s2 = theirs.update({"w": g}, s2, params)
        np.testing.assert_array_equal(u1["w"], u2["w"])
        assert u1["w"].dtype == jnp.bfloat16


def test_float32_rule_holds_under_x64(x64):
    """Decided: hyperparameters must be valid in float32 even under x64 (a
    value is checked once, at construction, whatever the params' dtype)."""
    with pytest.raises(ValueError, match="in float32 too"):
        jgd.adam(1e-3, b1=0.99999999999)
    jgd.adam(1e-3, b1=0.9999999)  # below 1 in float32: fine


def test_traced_hyperparameters_are_not_checked():
    def f(b1):
        return jgd.adam(1e-3, b1=b1).b1

    assert float(jax.jit(f)(0.5)) == 0.5


SCHEDULES = {
    "constant": (js.constant_schedule(2.0), {"value": 2.0}),
    "linear": (js.linear_schedule(1.0, 0.0, 10), {"init_value": 1.0, "end_value": 0.0}),
    "exponential": (js.exponential_decay(1.0, 5, 0.5), {"init_value": 1.0}),
    "cosine": (
        js.cosine_decay_schedule(2.0, 10, alpha=0.5),
        {"init_value": 2.0, "alpha * init_value": 1.0},
    ),
    "piecewise": (js.piecewise_constant_schedule(3.0, {5: 0.1}), {"init_value": 3.0}),
    "onecycle": (js.cosine_onecycle_schedule(100, 1.0), {"peak_value": 1.0}),
    "warmup_cosine": (
        js.warmup_cosine_decay_schedule(0.0, 1.0, 5, 20, 0.1),
        {"init_value": 0.0, "peak_value": 1.0, "end_value": 0.1},
    ),
    "join": (
        js.join_schedules(
            [js.constant_schedule(1.0), js.linear_schedule(1.0, 0.5, 5)], [3]
        ),
        {
            "schedules[0].value": 1.0,
            "schedules[1].init_value": 1.0,
            "schedules[1].end_value": 0.5,
        },
    ),
    "join_with_a_function": (
        js.join_schedules([js.constant_schedule(1.0), lambda c: -1.0], [3]),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_known_values_fix_the_sign(name):
    """The known values are >= 0 here, and so is every value over 120 steps."""
    schedule, expected = SCHEDULES[name]
    assert schedule.known_values() == expected
    if expected:
        assert min(expected.values()) >= 0
        values = np.asarray(schedule(jnp.arange(0, 120, 7)))
        assert (values >= 0).all(), values


def test_negative_schedules_are_refused_only_as_learning_rates():
    """Decided: a schedule may be negative (a value of anything); as a learning
    rate its known values must be >= 0, as a float's. A callable whose values
    are not known passes (optax's schedules included)."""
    negative = js.linear_schedule(-1.0, 1.0, 10)
    assert float(negative(0)) == -1.0
    with pytest.raises(ValueError, match="learning_rate's init_value"):
        jgd.adam(negative)
    jgd.adam(optax.linear_schedule(-1.0, 1.0, 10))
    jgd.sgd(js.linear_schedule(1.0, 0.0, 10))  # decays to 0: fine


def test_join_schedules_refuses_a_number_when_built():
    """Found fixed already: a number among the schedules raises at once."""
    with pytest.raises(TypeError, match="every schedule must be callable; got 3.0"):
        js.join_schedules([js.constant_schedule(1.0), 3.0], [10])


def test_scale_by_learning_rate_none_is_still_identity():
    """optax's meaning is kept for the building block; the optimizers refuse."""
    tx = jgd.scale_by_learning_rate(None)
    u, _ = tx.update({"w": jnp.ones(2)}, tx.init(None))
    np.testing.assert_array_equal(u["w"], jnp.ones(2))
