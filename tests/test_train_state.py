"""jgd.train: the optimizer as a value in the state, the layout, safe failures.

What is proven here: a new learning rate, b1, weight decay or schedule value
in ``state.opt`` reuses the compiled step and takes effect, while a new
static field compiles anew; ``fit`` reuses its compiled epoch across calls;
big leaves stay resident (no slice in the step) and small ones are packed;
optimizers that need leaf boundaries (optax's lamb, adafactor, masked,
multi_transform) run leaf by leaf and give the hand-written optax step's
numbers, and are refused by ``flat=True`` or on a packed state; a donated
state is refused with a jgd error; ``fit`` hands back the last good params.
"""

from __future__ import annotations

import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
import jgd.train as T
from jgd.bench import models
from tests.helpers import standard_promotion


def _params(big=8):
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.normal(size=(big, 4)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
        "s": jnp.asarray(0.5, jnp.float32),
    }


def _counting_loss():
    traces = []

    def loss(p, x):
        traces.append(1)
        y = x @ p["w"] + p["b"][None, :]
        return jnp.mean(y**2) + p["s"] ** 2

    return loss, traces


X = jnp.asarray(np.random.default_rng(1).normal(size=(5, 8)), jnp.float32)


def _steps(opt, n=3, **init_kw):
    loss, _ = _counting_loss()
    state = T.init(_params(), opt, **init_kw)
    step = T.make_step(loss)
    with standard_promotion():  # optax's own code needs it
        for _ in range(n):
            state, _ = step(state, X)
    return state


# --------------------------------------------------------------------------
# The optimizer travels in the state.
# --------------------------------------------------------------------------

NEW_VALUES = {
    "learning_rate": (jgd.adam(1e-2), lambda o: o.replace(learning_rate=3e-4)),
    "b1": (jgd.adam(1e-2), lambda o: o.replace(b1=0.5)),
    "weight_decay": (
        jgd.adamw(1e-2, weight_decay=1e-4),
        lambda o: o.replace(weight_decay=0.3),
    ),
    "schedule": (
        jgd.sgd(jgd.schedules.linear_schedule(0.1, 0.0, 10)),
        lambda o: o.replace(learning_rate=jgd.schedules.linear_schedule(0.5, 0.1, 10)),
    ),
}


@pytest.mark.parametrize("name", list(NEW_VALUES))
def test_a_new_hyperparameter_value_reuses_the_compiled_step(name):
    opt, change = NEW_VALUES[name]
    loss, traces = _counting_loss()
    step = T.make_step(loss)
    state, _ = step(T.init(_params(), opt), X)
    changed = state.replace(opt=change(state.opt))
    state, _ = step(changed, X)
    state, _ = step(state, X)
    assert len(traces) == 1
    # The new value took effect: the same two steps from the same state with
    # the changed optimizer built fresh give the same params.
    fresh = T.init(_params(), opt)
    ref_step = T.make_step(_counting_loss()[0])
    fresh, _ = ref_step(fresh, X)
    fresh = fresh.replace(opt=change(opt))
    for _ in range(2):
        fresh, _ = ref_step(fresh, X)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(fresh.params)):
        np.testing.assert_array_equal(a, b)
    unchanged = _steps(opt, n=3)
    assert not np.array_equal(state.params["w"], unchanged.params["w"])


def test_a_new_static_field_compiles_anew():
    loss, traces = _counting_loss()
    step = T.make_step(loss)
    state, _ = step(T.init(_params(), jgd.sgd(0.1, momentum=0.9)), X)
    state, _ = step(state.replace(opt=state.opt.replace(nesterov=True)), X)
    assert len(traces) == 2


def test_make_step_no_longer_takes_the_optimizer():
    with pytest.raises(TypeError, match=r"make_step: the optimizer travels in the"):
        T.make_step(lambda p, x: jnp.sum(p), jgd.adam(0.1))


def test_fit_reuses_its_compiled_epoch_for_a_new_learning_rate():
    loss, traces = _counting_loss()
    data = jnp.asarray(np.random.default_rng(2).normal(size=(12, 8)), jnp.float32)
    kw = {"epochs": 2, "batch_size": 4, "progress": False}
    p1, h1 = T.fit(loss, _params(), jgd.adam(1e-2), data, **kw)
    p2, h2 = T.fit(loss, _params(), jgd.adam(3e-2), data, **kw)
    assert len(traces) == 1
    assert h1.compile_time > 0 and h2.compile_time == 0.0
    assert not np.array_equal(p1["w"], p2["w"])
    # A static change compiles a new epoch.
    T.fit(loss, _params(), jgd.sgd(0.1, momentum=0.9, nesterov=True), data, **kw)
    assert len(traces) == 2


# --------------------------------------------------------------------------
# The layout.
# --------------------------------------------------------------------------


def test_big_leaves_stay_resident_and_only_small_ones_are_packed():
    big = T.PACK_BELOW // 4  # w has PACK_BELOW elements
    params = _params(big)
    state = T.init(params, jgd.adam(1e-3), flat=True)
    stored = state.stored_params
    assert stored["leaf['w']"].shape == (big, 4)  # the leaf itself
    assert stored["float32"].shape == (5,)  # b and s, packed
    text = T.make_step(lambda p, x: jnp.sum(p["w"]) + jnp.sum(p["b"]) + p["s"]).lower(
        state, 0.0
    )
    # One slice per packed leaf, none for the resident one.
    assert text.as_text().count("dynamic_slice") == 2
    # No threshold: everything resident, no slice at all.
    state = T.init(params, jgd.adam(1e-3), flat=True, pack_below=0)
    assert state.layout.buckets == ()
    lowered = T.make_step(lambda p, x: jnp.sum(p["w"])).lower(state, 0.0)
    assert "dynamic_slice" not in lowered.as_text()


def test_the_default_packs_only_many_small_leaves_or_a_big_model():
    """Packing costs a fixed few tens of microseconds a step: flat=None packs
    when there are PACK_MIN_LEAVES small leaves or PACK_MIN_SIZE elements,
    and stores a small model of few leaves leaf by leaf; flat=True packs."""
    few = {f"b{i}": jnp.zeros(8) for i in range(T.PACK_MIN_LEAVES - 1)}
    assert isinstance(T.init(few, jgd.adam(1e-3)).layout, T.PerLeaf)
    assert isinstance(T.init(few, jgd.adam(1e-3), flat=True).layout, T.Layout)
    many = {**few, "one_more": jnp.zeros(8)}
    assert isinstance(T.init(many, jgd.adam(1e-3)).layout, T.Layout)
    # Few small leaves, but a big model: packed, the big leaves resident.
    rows = -(-T.PACK_MIN_SIZE // T.PACK_BELOW)
    big = {"b": jnp.zeros(8), "w": jnp.zeros((rows, T.PACK_BELOW))}
    state = T.init(big, jgd.adam(1e-3))
    assert isinstance(state.layout, T.Layout)
    assert state.stored_params["leaf['w']"].shape == big["w"].shape
    assert isinstance(T.init({"w": big["w"][:-1]}, jgd.adam(1e-3)).layout, T.PerLeaf)


def test_packed_resident_and_leaf_by_leaf_give_the_same_numbers():
    opt = jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adamw(1e-2, weight_decay=0.1))
    runs = [_steps(opt, pack_below=b) for b in (0, 1 << 30)] + [_steps(opt, flat=False)]
    for other in runs[1:]:
        for a, b in zip(jax.tree.leaves(runs[0].params), jax.tree.leaves(other.params)):
            np.testing.assert_allclose(a, b, rtol=2e-6)


def _hand_written(tx, n=3):
    @jax.jit
    def step(p, s, x):
        with standard_promotion():
            g = jax.grad(_counting_loss()[0])(p, x)
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

    p = _params()
    s = tx.init(p)
    for _ in range(n):
        p, s = step(p, s, X)
    return p


LEAF_BOUND = {
    "lamb": lambda: optax.lamb(1e-2),
    "adafactor": lambda: optax.adafactor(1e-2, min_dim_size_to_factor=4),
    "masked": lambda: optax.masked(
        optax.adam(1e-2), {"w": True, "b": False, "s": True}
    ),
    "multi_transform": lambda: optax.multi_transform(
        {"a": optax.adam(1e-2), "s": optax.sgd(0.1)}, {"w": "a", "b": "s", "s": "a"}
    ),
    "jgd_chain_with_lamb": lambda: jgd.chain(
        jgd.clip_by_global_norm(1.0), optax.scale_by_trust_ratio(), jgd.scale(-0.01)
    ),
}


@pytest.mark.parametrize("name", list(LEAF_BOUND))
def test_transforms_that_need_leaves_run_on_leaves_with_optax_numbers(name):
    state = _steps(LEAF_BOUND[name]())
    assert isinstance(state.layout, T.PerLeaf)
    expected = _hand_written(LEAF_BOUND[name]())
    for k in expected:
        np.testing.assert_allclose(state.params[k], expected[k], rtol=1e-6, err_msg=k)


def test_flat_true_refuses_a_transform_that_needs_leaves():
    with pytest.raises(
        ValueError,
        match=r"jgd.train.init: scale_by_trust_ratio \(optax\) needs leaf "
        r"boundaries.*flat=False",
    ):
        T.init(_params(), LEAF_BOUND["jgd_chain_with_lamb"](), flat=True)


def test_wrappers_pack_when_what_they_wrap_does():
    """A wrapper whose own math is element-wise (named_chain,
    conditionally_transform, with_extra_args_support) is packed over an
    element-wise inner and gives the leaf-by-leaf numbers; over a per-matrix
    inner it is refused by flat=True, naming that inner."""
    opt = jgd.named_chain(
        ("clip", jgd.clip_by_global_norm(1.0)),
        ("adam", jgd.conditionally_transform(jgd.adam(1e-2), lambda c: c >= 1)),
    )
    packed = _steps(opt, flat=True)
    assert not isinstance(packed.layout, T.PerLeaf)
    leaves = _steps(opt, flat=False)
    for k in leaves.params:
        # The clip's global norm sums the bucket in another order than the
        # leaves (an ulp apart, jax 0.5.3's XLA more than the newest); Adam
        # carries that into its 1e-2 steps at ~1e-8, which a param near zero
        # would read as a large relative error: atol is set by the step size.
        np.testing.assert_allclose(
            packed.params[k], leaves.params[k], rtol=1e-6, atol=1e-7
        )
    inner = jgd.with_extra_args_support(jgd.lamb(1e-2))
    with pytest.raises(ValueError, match=r"ScaleByTrustRatio needs leaf boundaries"):
        T.init(_params(), jgd.named_chain(("lamb", inner)), flat=True)


def test_a_packed_state_refuses_an_optimizer_that_needs_leaves():
    state = T.init(_params(), jgd.adam(1e-2), flat=True)
    step = T.make_step(_counting_loss()[0])
    bad = state.replace(opt=jgd.chain(optax.scale_by_trust_ratio(), jgd.scale(-0.1)))
    with pytest.raises(ValueError, match=r"make_step: .*needs leaf boundaries.*init"):
        step(bad, X)
    masked = state.replace(
        opt=jgd.adamw(1e-2, mask={"w": True, "b": False, "s": False})
    )
    with pytest.raises(ValueError, match=r"mask groups the leaves differently"):
        step(masked, X)
    state = T.init(
        _params(), jgd.adamw(1e-2, mask={"w": True, "b": False, "s": False}), flat=True
    )
    regrouped = state.replace(
        opt=jgd.adamw(1e-2, mask={"w": False, "b": True, "s": False})
    )
    with pytest.raises(ValueError, match=r"mask groups the leaves differently"):
        step(regrouped, X)
    step(state, X)  # the state itself was not consumed by the refusals


def test_an_optax_optimizer_travels_in_the_state():
    state = _steps(optax.adam(1e-2))
    expected = _hand_written(optax.adam(1e-2))
    for k in expected:
        np.testing.assert_allclose(state.params[k], expected[k], rtol=1e-6, err_msg=k)


# --------------------------------------------------------------------------
# Safe failures.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("grad_buffer", [None, True])
@pytest.mark.parametrize("flat", [None, False])
def test_a_donated_state_is_refused_with_a_jgd_error(flat, grad_buffer):
    state = T.init(_params(), jgd.adam(1e-2), flat=flat)
    step = T.make_step(_counting_loss()[0], grad_buffer=grad_buffer)
    new, _ = step(state, X)
    with pytest.raises(ValueError, match=r"make_step: this TrainState was donated"):
        step(state, X)
    with pytest.raises(ValueError, match=r"TrainState.params: this TrainState was"):
        _ = state.params
    compiled = step.lower(new, X).compile()
    newer, _ = compiled(new, X)
    with pytest.raises(ValueError, match=r"make_step: this TrainState was donated"):
        compiled(new, X)
    with pytest.raises(ValueError, match=r"make_step: this TrainState was donated"):
        step.lower(new, X)
    step(newer, X)  # the returned state is fine


def test_donate_false_keeps_the_old_state():
    state = T.init(_params(), jgd.adam(1e-2))
    step = T.make_step(_counting_loss()[0], donate=False)
    a, _ = step(state, X)
    b, _ = step(state, X)
    np.testing.assert_array_equal(a.params["w"], b.params["w"])


def test_fit_hands_back_the_last_good_params_when_stopped():
    loss, _ = _counting_loss()
    data = jnp.asarray(np.random.default_rng(2).normal(size=(12, 8)), jnp.float32)
    seen = {}

    def stop_at_two(epoch, params, metrics):
        seen[epoch] = params
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as err:
        T.fit(
            loss,
            _params(),
            jgd.adam(1e-2),
            data,
            epochs=5,
            batch_size=4,
            progress=False,
            callbacks=[stop_at_two],
        )
    assert len(err.value.history.loss) == 3
    for k in seen[2]:
        np.testing.assert_array_equal(err.value.params[k], seen[2][k])
    assert any("last completed epoch" in n for n in err.value.__notes__)


def _hand_written_jgd(opt, params, n=3):
    """The hand-written step closing over ``opt`` (constants)."""
    loss = _counting_loss()[0]

    @jax.jit
    def step(p, s, x):
        u, s = opt.update(jax.grad(loss)(p, x), s, p)
        return jgd.apply_updates(p, u), s

    s = opt.init(params)
    for _ in range(n):
        params, s = step(params, s, X.astype(params["w"].dtype))
    return params


def test_make_step_equals_the_hand_written_step_in_float64(x64):
    """KNOWN_DIFFERENCES['traced float32 hyperparameters']: the optimizer is
    an argument of make_step, so in float32 its 1 - b2 carries float32
    rounding; in float64 nothing else differs."""
    opt = jgd.adamw(1e-2, b2=0.999, weight_decay=0.1)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), _params())
    state = T.init(params, opt)
    step = T.make_step(_counting_loss()[0])
    for _ in range(3):
        state, _ = step(state, X.astype(jnp.float64))
    expected = _hand_written_jgd(opt, params)
    for k in expected:
        np.testing.assert_allclose(state.params[k], expected[k], rtol=1e-12, err_msg=k)


def test_make_step_vmaps_over_learning_rates_and_differentiates_in_them():
    state = T.init({"w": jnp.ones(3)}, jgd.sgd(0.1))
    step = T.make_step(lambda p, x: jnp.sum((p["w"] - x) ** 2), donate=False)

    def trained(lr):
        return step(state.replace(opt=state.opt.replace(learning_rate=lr)), 0.0)[0]

    # One step of w - lr * 2w from w = 1.
    out = jax.vmap(lambda lr: trained(lr).params["w"])(jnp.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(out, [[0.8] * 3, [0.6] * 3, [0.4] * 3], rtol=1e-6)
    slope = jax.grad(lambda lr: jnp.sum(trained(lr).params["w"]))(0.1)
    np.testing.assert_allclose(slope, -6.0, rtol=1e-6)


def _copies_of_donated_params(step, state, x) -> int:
    """The compiled step's copies of its array arguments (the donated params
    and optimizer state: the batch is never written)."""
    text = step.lower(state, x).compile().as_text()
    entry = text[text.index("ENTRY") :]
    args = re.findall(r"(%\S+) = \S+\[\d[^\]]*\]\S* parameter\(", entry)
    return sum(entry.count(f" copy({a})") for a in args)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU compiler option")
@pytest.mark.parametrize("flat", [True, False])
def test_make_step_updates_donated_params_without_copying_them(flat):
    """On CPU the default options drop XLA's copy of each donated param the
    backward pass reads (XLA's own defaults keep it), packed or leaf by leaf,
    with the same numbers bit for bit, and the step still runs inside an
    outer jit."""
    model = models.mlp("mlp", (32, 128, 128, 10), batch=8)
    params, x, loss = model.init(0), model.batch(0), model.loss
    opt = jgd.adam(1e-2)
    ours, xlas = T.make_step(loss), T.make_step(loss, compiler_options={})
    assert _copies_of_donated_params(xlas, T.init(params, opt, flat=flat), x) > 0
    assert _copies_of_donated_params(ours, T.init(params, opt, flat=flat), x) == 0
    finals = []
    for step in (ours, xlas, jax.jit(T.make_step(loss, donate=False))):
        state = T.init(params, opt, flat=flat)
        for _ in range(3):
            state, _ = step(state, x)
        finals.append(state.params)
    for other in finals[1:]:
        jax.tree.map(np.testing.assert_array_equal, finals[0], other)
    with pytest.raises(TypeError, match="compiler_options must be a dict"):
        T.make_step(loss, compiler_options=[("a", 1)])  # type: ignore[arg-type]


def _pointers(tree):
    return [x.unsafe_buffer_pointer() for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("flat", [True, False])
def test_a_kept_gradient_buffer_is_reused_and_changes_no_number(flat):
    """With grad_buffer=True each call writes its gradient into the memory of
    the one before (no fresh allocation, the point on CPU), called eagerly or
    compiled ahead of time, with the same numbers bit for bit, and a new
    learning rate still reuses the program. A state of other shapes gets a
    buffer of its own."""
    loss, traces = _counting_loss()
    kept, plain = T.make_step(loss, grad_buffer=True), T.make_step(loss)
    finals = []
    for step in (kept, plain):
        state = T.init(_params(), jgd.adam(1e-2), flat=flat)
        state, _ = step(state, X)
        first = step._buffer and _pointers(step._buffer[1])
        state, _ = step(state.replace(opt=state.opt.replace(learning_rate=3e-3)), X)
        compiled = step.lower(state, X).compile()
        state, _ = compiled(state, X)
        if step is kept:
            assert len(traces) == 1
            assert _pointers(step._buffer[1]) == first
            n = len(jax.tree.leaves(state.stored_params))
            assert len(first) == n
        else:
            assert step._buffer is None  # 37 floats: below the default's size
        finals.append(state.params)
    jax.tree.map(np.testing.assert_array_equal, *finals)
    wide = [T.init(_params(big=16), jgd.adam(1e-2), flat=flat) for _ in range(2)]
    for _ in range(2):
        wide = [step(s, jnp.tile(X, 2))[0] for step, s in zip((kept, plain), wide)]
    jax.tree.map(np.testing.assert_array_equal, wide[0].params, wide[1].params)
    shapes = lambda t: [x.shape for x in jax.tree.leaves(t)]
    assert shapes(kept._buffer[1]) == shapes(wide[0].stored_params)


@pytest.mark.parametrize("grad_buffer", [False, True])
def test_a_step_that_fails_while_running_says_so_and_loses_only_its_state(
    grad_buffer,
):
    """A failure inside the step (here a host callback raising) is reported
    as that, with the donated state gone (not as a state passed twice), and
    takes the kept gradient with it; the next call on a fresh state makes a
    new one and gives the plain step's numbers."""
    fail = [False]

    def check():
        if fail[0]:
            raise RuntimeError("boom")

    def loss(p, x):
        jax.debug.callback(check)
        return jnp.mean((x @ p["w"] + p["b"][None, :]) ** 2) + p["s"] ** 2

    kept, plain = T.make_step(loss, grad_buffer=grad_buffer), T.make_step(loss)
    state, _ = kept(T.init(_params(), jgd.adam(1e-2)), X)
    fail[0] = True
    with pytest.raises(
        ValueError, match=r"make_step: the step failed while running"
    ) as err:
        kept(state, X)
    assert "boom" in str(err.value) and err.value.__cause__ is not None
    assert kept._buffer is None
    with pytest.raises(ValueError, match=r"make_step: this TrainState was donated"):
        kept(state, X)
    fail[0] = False
    ours, ref = T.init(_params(), jgd.adam(1e-2)), T.init(_params(), jgd.adam(1e-2))
    for _ in range(2):
        ours, ref = kept(ours, X)[0], plain(ref, X)[0]
    assert (kept._buffer is not None) == grad_buffer
    jax.tree.map(np.testing.assert_array_equal, ours.params, ref.params)


def _minor_faults_per_step(step, state, x, n=5):
    import resource

    for _ in range(3):  # the first calls compile and allocate
        state, _ = step(state, x)
    jax.block_until_ready(state.stored_params)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        state, _ = step(state, x)
    jax.block_until_ready(state.stored_params)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n


@pytest.mark.skipif(
    jax.default_backend() != "cpu" or sys.platform != "linux",
    reason="XLA:CPU with glibc's allocator",
)
def test_a_32_mib_gradient_is_not_paged_in_afresh_every_step():
    """The reason for the kept buffer: a 32 MiB gradient (8,192 pages) is
    faulted in again on every step without it, and not with the default."""
    w = jnp.asarray(np.random.default_rng(0).normal(size=(4096, 2048)), jnp.float32)
    x = jnp.ones((8, 4096), jnp.float32)
    loss = lambda p, x: jnp.mean((x @ p["w"]) ** 2)
    faults = {
        kept: _minor_faults_per_step(
            T.make_step(loss, grad_buffer=None if kept else False),
            T.init({"w": w * 0.01}, jgd.sgd(1e-3, momentum=0.9)),
            x,
        )
        for kept in (True, False)
    }
    assert faults[False] > 4096, faults  # glibc maps the gradient anew
    assert faults[True] < 1024, faults


def test_the_default_keeps_a_gradient_buffer_for_big_params_on_cpu(monkeypatch):
    """None keeps one when the params reach GRAD_BUFFER_MIN_BYTES on CPU, and
    never with donate=False or inside an outer jit."""
    import jgd.train.step as step_module

    loss = _counting_loss()[0]
    step = T.make_step(loss)
    step(T.init(_params(), jgd.sgd(0.1)), X)
    assert step._buffer is None
    monkeypatch.setattr(step_module, "GRAD_BUFFER_MIN_BYTES", 37 * 4)  # _params()
    step = T.make_step(loss)
    state, _ = step(T.init(_params(), jgd.sgd(0.1)), X)
    assert (step._buffer is not None) == (jax.default_backend() == "cpu")
    keeping = T.make_step(loss, donate=False)
    keeping(state, X)
    assert keeping._buffer is None
    nested = T.make_step(loss)
    jax.jit(nested)(state, X)
    assert nested._buffer is None
    with pytest.raises(TypeError, match="grad_buffer must be None, True or False"):
        T.make_step(loss, grad_buffer="yes")  # type: ignore[arg-type]


def test_make_step_passes_optax_extra_args_so_lbfgs_runs(x64):
    """make_step hands the optimizer value=, grad= and value_fn= (optax's
    extra arguments): optax.lbfgs and its zoom line search give the hand
    loop's numbers. Its state holds one zeros buffer in two fields, which
    init must copy apart for a donating step."""
    b = jnp.asarray([0.0, 1.0, 2.0])

    def loss(p, batch):
        return jnp.sum((p["w"] - batch) ** 2) + jnp.sum(p["v"] ** 4)

    params = {"w": jnp.ones(3), "v": jnp.full(2, 0.5)}
    opt = optax.lbfgs()
    state = T.init(params, opt)
    step = T.make_step(loss)
    with standard_promotion():
        for _ in range(4):
            state, _ = step(state, b)
        p, s = params, opt.init(params)
        f = lambda q: loss(q, b)

        @jax.jit  # eager, the line search's while loop compiles on every call
        def hand(p, s):
            v, g = jax.value_and_grad(f)(p)
            u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
            return optax.apply_updates(p, u), s

        for _ in range(4):
            p, s = hand(p, s)
    for k in p:
        np.testing.assert_allclose(state.params[k], p[k], rtol=1e-12, err_msg=k)
    assert float(loss(state.params, b)) < float(loss(params, b)) / 4
