"""jgd.train: the compiled step, flat-resident storage and fit.

What is proven here: full-batch gd reaches numpy's least-squares answer; SGD
and mini-batches make the documented number of steps and visit every sample
once per epoch in an order that changes between epochs and is reproducible
from the key; flat and leaf-by-leaf steps agree (sgd, adam, adamw with and
without a mask, a chain with clip_by_global_norm) on 100- and 1000-leaf trees
of float32 and bfloat16 leaves; nothing retraces across steps or epochs;
donation frees the old state and never the caller's arrays; bad input fails
with a message that names the problem; the seeds' sigmoid neuron and ReLU MLP
learn a small classification set.
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
import jgd.train as T
from jgd import losses, models
from tests.helpers import standard_promotion

# --------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------


def mixed_tree(n_leaves, seed, bf16_every=3):
    """A dict of ``n_leaves`` small N(0, 1) leaves of varied shapes (scalars,
    vectors, matrices), every ``bf16_every``-th one bfloat16, the rest
    float32."""
    shapes = [(), (3,), (2, 2), (5,), (1, 3)]
    rng = np.random.default_rng(seed)
    tree = {}
    for i in range(n_leaves):
        dtype = jnp.bfloat16 if i % bf16_every == 0 else jnp.float32
        x = rng.normal(size=shapes[i % len(shapes)]).astype(np.float32)
        tree[f"leaf{i:04d}"] = jnp.asarray(x.astype(dtype))
    return tree


def tree_loss(params, target):
    """Sum over leaves of squared distance to ``target`` (a float32 scalar),
    each leaf weighted differently so that gradients differ between leaves."""
    total = jnp.zeros([], jnp.float32)
    for i, x in enumerate(jax.tree.leaves(params)):
        w = jnp.float32(1.0 + (i % 7) / 7)
        total = total + w * jnp.sum(jnp.square(x.astype(jnp.float32) - target))
    return total


def assert_close_by_dtype(actual, expected, where="", f32_rtol=2e-6):
    """Compare leaf by leaf to the rounding of the leaf's dtype: a few float32
    ulps, or one bfloat16 rounding (2**-8 relative, doubled for a value that
    sits on either side of a rounding boundary). The trees here hold values of
    order 1, so the same bound applies in absolute terms to values that come
    out near 0 by cancellation."""
    pa = jax.tree_util.tree_flatten_with_path(actual)[0]
    pe = jax.tree.leaves(expected)
    assert len(pa) == len(pe), f"{where}: {len(pa)} leaves vs {len(pe)}"
    for (path, a), e in zip(pa, pe):
        assert a.dtype == e.dtype, f"{where}{jax.tree_util.keystr(path)}: dtype"
        assert a.shape == e.shape, f"{where}{jax.tree_util.keystr(path)}: shape"
        rtol = 2**-7 if a.dtype == jnp.bfloat16 else f32_rtol
        np.testing.assert_allclose(
            np.asarray(a, np.float64),
            np.asarray(e, np.float64),
            rtol=rtol,
            atol=rtol,
            err_msg=f"{where}{jax.tree_util.keystr(path)}",
        )


def run_steps(params, opt, flat, targets):
    state = T.init(params, opt, flat=flat)
    step = T.make_step(tree_loss, grad_norm=True)
    metrics = []
    for t in targets:
        state, m = step(state, jnp.float32(t))
        metrics.append(m)
    return state, metrics


def decay_matrices(params):
    """A mask function: decay leaves with two or more dimensions only."""
    return jax.tree.map(lambda x: x.ndim >= 2, params)


OPTIMIZERS = {
    "sgd": lambda: jgd.sgd(0.05, momentum=0.9),
    "adam": lambda: jgd.adam(0.05),
    "adamw": lambda: jgd.adamw(0.05, weight_decay=0.1, mask=decay_matrices),
    "clip_chain": lambda: jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adamw(0.05)),
}

TARGETS = (0.5, -0.25, 1.0)


def _compare_paths(params, opt, loose_float32=False):
    flat_state, flat_m = run_steps(params, opt, True, TARGETS)
    leaf_state, leaf_m = run_steps(params, opt, False, TARGETS)
    assert isinstance(flat_state.layout, T.Layout)
    assert isinstance(leaf_state.layout, T.PerLeaf)
    f32_rtol = 2**-7 if loose_float32 else 2e-6
    assert_close_by_dtype(flat_state.params, leaf_state.params, "params", f32_rtol)
    opt_flat, opt_leaf = flat_state.opt_state, leaf_state.opt_state
    assert jax.tree.structure(opt_flat) == jax.tree.structure(opt_leaf)
    assert_close_by_dtype(opt_flat, opt_leaf, "opt_state", f32_rtol)
    for mf, ml in zip(flat_m, leaf_m):
        # The loss reads the params, which agree only to f32_rtol after a step.
        loss_rtol = f32_rtol if loose_float32 else 1e-6
        np.testing.assert_allclose(mf["loss"], ml["loss"], rtol=loss_rtol)
        # The global norm sums each bf16 leaf (leaf by leaf) or each bf16
        # bucket (flat) in bf16: one bf16 rounding apart.
        np.testing.assert_allclose(mf["grad_norm"], ml["grad_norm"], rtol=2**-7)
    assert int(flat_state.step) == int(leaf_state.step) == len(TARGETS)


# --------------------------------------------------------------------------
# Flat-resident storage agrees with leaf by leaf.
# --------------------------------------------------------------------------


# CI runs masked adamw (buckets split by dtype and mask); the others, whose
# pieces the 10-leaf tests check, under -m slow: each compiles a 100-term loss
# twice.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=() if n == "adamw" else pytest.mark.slow)
        for n in OPTIMIZERS
    ],
)
def test_flat_and_leaf_steps_agree_on_100_leaves(name):
    # clip_by_global_norm sums each bf16 leaf (leaf by leaf) or the bf16
    # bucket (flat) in bf16, so the two norms, and with them the clipped
    # float32 updates, are one bf16 rounding apart; float32-only trees agree
    # to float32 rounding (test_global_norm_clipping_is_exact_across_buckets).
    params = mixed_tree(100, 1)
    _compare_paths(params, OPTIMIZERS[name](), loose_float32=name == "clip_chain")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_flat_and_leaf_steps_agree_on_1000_leaves(name):
    # About two minutes each on two cores, mostly compiling: the loss has 1000
    # terms, and the leaf-by-leaf step over 1000 leaves compiles slower still
    # (the cost flat storage removes). The default run checks 1000 leaves
    # against NumPy instead (test_flat_step_on_1000_leaves_matches_numpy_...).
    params = mixed_tree(1000, 2)
    _compare_paths(params, OPTIMIZERS[name](), loose_float32=name == "clip_chain")


@jax.custom_vjp
def given_gradient(params, grads):
    """A loss of 0 whose gradient with respect to ``params`` is ``grads``."""
    return jnp.zeros([], jnp.float32)


given_gradient.defvjp(
    lambda p, g: (jnp.zeros([], jnp.float32), g),
    lambda g, ct: (jax.tree.map(lambda x: x * ct.astype(x.dtype), g), None),
)


def numpy_adamw_steps(params, grads_seq, lr, wd, mask, b1=0.9, b2=0.999, eps=1e-8):
    """AdamW leaf by leaf in NumPy (float64 math, each stored value rounded
    to its leaf's dtype as jgd stores it)."""
    out = {}
    for k, p in params.items():
        dt = p.dtype
        p = np.asarray(p, np.float64)
        m = np.zeros_like(p)
        v = np.zeros_like(p)
        for t, grads in enumerate(grads_seq, start=1):
            g = np.asarray(grads[k], np.float64)
            m = np.asarray((b1 * m + (1 - b1) * g).astype(dt), np.float64)
            v = np.asarray((b2 * v + (1 - b2) * g * g).astype(dt), np.float64)
            u = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            if mask[k]:
                u = u + wd * p
            p = np.asarray((p - lr * u).astype(dt), np.float64)
        out[k] = p
    return out


def test_flat_step_on_1000_leaves_matches_numpy_leaf_by_leaf():
    params = mixed_tree(1000, 2)
    grads_seq = [mixed_tree(1000, seed) for seed in (9, 10, 11)]
    mask = decay_matrices(params)
    opt = jgd.adamw(0.05, weight_decay=0.1, mask=decay_matrices)
    state = T.init(params, opt)
    assert len(state.layout.buckets) == 4  # {f32, bf16} x {decayed, not}
    step = T.make_step(given_gradient)
    for g in grads_seq:
        state, _ = step(state, g)
    expected = numpy_adamw_steps(params, grads_seq, 0.05, 0.1, mask)
    got = state.params
    for k in params:
        assert got[k].dtype == params[k].dtype
        rtol = 2**-7 if params[k].dtype == jnp.bfloat16 else 1e-5
        np.testing.assert_allclose(
            np.asarray(got[k], np.float64), expected[k], rtol=rtol, atol=rtol, err_msg=k
        )


def test_global_norm_clipping_is_exact_across_buckets():
    # float32 only (mixed_tree's leaf 0 is bfloat16, whose squares XLA sums in
    # bfloat16 or float32 depending on the version).
    params = jax.tree.map(lambda x: x.astype(jnp.float32), mixed_tree(10, 4))
    opt = jgd.chain(jgd.clip_by_global_norm(0.5), optax.clip(0.1), jgd.sgd(0.1))
    flat, flat_m = run_steps(params, opt, True, TARGETS)
    leaf, leaf_m = run_steps(params, opt, False, TARGETS)
    assert_close_by_dtype(flat.params, leaf.params)
    assert float(flat_m[0]["grad_norm"]) > 0.5  # clipping was active
    np.testing.assert_allclose(
        flat_m[-1]["grad_norm"], leaf_m[-1]["grad_norm"], rtol=1e-6
    )


def test_flat_layout_buckets_by_dtype_and_mask():
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3), "e": jnp.ones(4, jnp.bfloat16)}
    state = T.init(params, jgd.adamw(0.1, mask=decay_matrices), flat=True)
    layout = state.layout
    assert {b.name: b.size for b in layout.buckets} == {
        "float32/mask=1": 6,
        "float32/mask=0": 3,
        "bfloat16/mask=0": 4,
    }
    assert all(x.ndim == 1 for x in state.stored_params.values())
    assert state.stored_params["bfloat16/mask=0"].dtype == jnp.bfloat16
    # Without a mask, one bucket per dtype.
    state = T.init(params, jgd.adam(0.1), flat=True)
    assert state.layout.names == ("float32", "bfloat16")
    # The user's tree comes back with its dtypes.
    back = state.params
    assert jax.tree.structure(back) == jax.tree.structure(params)
    assert back["e"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(back["w"], params["w"])


def test_masked_adamw_flat_matches_optax():
    params = mixed_tree(12, 3, bf16_every=100)  # float32 only
    mask = jax.tree.map(lambda x: x.ndim >= 2, params)
    state, _ = run_steps(
        params, jgd.adamw(0.05, weight_decay=0.5, mask=mask), True, TARGETS
    )
    tx = optax.adamw(0.05, weight_decay=0.5, mask=mask)

    @jax.jit
    def optax_step(p, s, t):
        with standard_promotion():
            u, s = tx.update(jax.grad(tree_loss)(p, t), s, p)
            return optax.apply_updates(p, u), s

    p, s = params, tx.init(params)
    for t in TARGETS:
        p, s = optax_step(p, s, jnp.float32(t))
    assert_close_by_dtype(state.params, p)


def test_mask_as_prefix_of_the_params_tree():
    params = {"dense": {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, "scale": jnp.ones(())}
    state = T.init(
        params, jgd.adamw(0.1, mask={"dense": True, "scale": False}), flat=True
    )
    assert {b.name: b.size for b in state.layout.buckets} == {
        "float32/mask=1": 6,
        "float32/mask=0": 1,
    }


def test_empty_params_with_a_masked_optimizer():
    opt = jgd.adamw(0.1, mask=decay_matrices)
    state = T.init({}, opt, flat=True)
    assert state.layout.buckets == () and state.layout.masks == 1
    state, m = T.make_step(lambda p, x: jnp.sum(x), grad_norm=True)(state, jnp.ones(2))
    assert state.params == {} and int(state.step) == 1
    np.testing.assert_array_equal(m["grad_norm"], 0.0)


def test_elementwise_mask_is_stored_leaf_by_leaf_and_refused_packed():
    params = {"w": jnp.ones(3)}
    opt = jgd.adamw(0.1, weight_decay=0.5, mask={"w": jnp.array([True, False, True])})
    with pytest.raises(
        ValueError, match=r"one concrete bool per params leaf.*\['w'\].*flat=False"
    ):
        T.init(params, opt, flat=True)
    state = T.init(params, opt)  # the default stores such a mask leaf by leaf
    assert isinstance(state.layout, T.PerLeaf)
    state, _ = T.make_step(lambda p, x: jnp.sum(p["w"] * x))(state, jnp.ones(3))
    # Decayed, not, decayed: 0.9 - 0.1 * 0.5 where the mask is True.
    np.testing.assert_allclose(state.params["w"], [0.85, 0.9, 0.85], rtol=1e-6)


def test_mask_that_does_not_match_the_params_is_a_type_error():
    params = {"w": jnp.ones(3), "b": jnp.ones(())}
    with pytest.raises(
        TypeError, match="jgd.train.init: the weight-decay mask must be"
    ):
        T.init(params, jgd.adamw(0.1, mask={"v": True}))


def test_state_is_a_pytree_that_jit_and_tree_map_see():
    state = T.init({"w": jnp.ones(3), "b": jnp.zeros(())}, jgd.adam(0.1), flat=True)
    leaves = jax.tree.leaves(state.replace(opt=None))
    # params bucket, count, mu bucket, nu bucket, step: a handful of buffers.
    assert len(leaves) == 5
    # The optimizer's hyperparameters are leaves too.
    assert jax.tree.leaves(state.opt) == jax.tree.leaves(jgd.adam(0.1))
    copy = jax.jit(lambda s: s)(state)
    assert copy.layout == state.layout
    np.testing.assert_array_equal(copy.params["w"], np.ones(3))


# --------------------------------------------------------------------------
# The step: donation, no retrace, metrics, aux, errors.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("flat", [True, False])
def test_step_donates_the_old_state_but_never_the_callers_params(flat):
    params = {"w": jnp.ones(3), "b": jnp.zeros(())}
    state = T.init(params, jgd.adam(0.1), flat=flat)
    step = T.make_step(lambda p, x: jnp.sum((p["w"] * x + p["b"]) ** 2))
    old = jax.tree.leaves(state.stored_params)
    new, _ = step(state, jnp.ones(3))
    assert all(x.is_deleted() for x in old)  # donation was usable
    assert not any(x.is_deleted() for x in jax.tree.leaves(params))
    kept = new.params  # a fresh copy: survives the next donating step
    step(new, jnp.ones(3))
    np.testing.assert_array_equal(kept["b"].shape, ())
    assert not kept["w"].is_deleted()


@pytest.mark.parametrize("flat", [True, False])
def test_step_does_not_retrace_across_steps(flat):
    traces = []

    def loss(p, x):
        traces.append(1)
        return jnp.sum((p * x - 1.0) ** 2)

    opt = jgd.adam(0.1)
    state = T.init(jnp.ones(4), opt, flat=flat)
    step = T.make_step(loss)
    for _ in range(4):
        state, _ = step(state, jnp.full(4, 2.0))
    assert len(traces) == 1
    assert int(state.step) == 4


def test_step_metrics_hold_loss_gradient_norm_and_aux():
    def loss(p, x):
        err = p * x - 1.0
        return jnp.sum(err**2), {"max_err": jnp.max(jnp.abs(err))}

    opt = jgd.gd(0.0)  # no movement: the metrics are those of the initial params
    state = T.init(jnp.array([1.0, 2.0]), opt)
    step = T.make_step(loss, has_aux=True, grad_norm=True)
    state, m = step(state, jnp.array([3.0, 1.0]))
    # err = [2, 1]; loss = 5; grad = 2 * err * x = [12, 2].
    np.testing.assert_allclose(m["loss"], 5.0)
    np.testing.assert_allclose(m["grad_norm"], np.sqrt(12.0**2 + 2.0**2), rtol=1e-6)
    np.testing.assert_allclose(m["aux"]["max_err"], 2.0)
    # Without asking, no norm: it costs a read of the gradient.
    _, m = T.make_step(loss, has_aux=True)(state, jnp.array([3.0, 1.0]))
    assert sorted(m) == ["aux", "loss"]


def test_step_rejects_a_loss_that_is_not_a_scalar():
    opt = jgd.gd(0.1)
    step = T.make_step(lambda p, x: (p - x) ** 2)
    with pytest.raises(
        ValueError,
        match=r"jgd.train.make_step: loss_fn must return a scalar loss; got shape \(3,\)",
    ):
        step(T.init(jnp.zeros(3), opt), jnp.ones(3))


def test_step_rejects_aux_without_has_aux():
    opt = jgd.gd(0.1)
    step = T.make_step(lambda p, x: (jnp.sum(p), x))
    with pytest.raises(TypeError, match="pass has_aux=True"):
        step(T.init(jnp.zeros(3), opt), jnp.ones(3))


def test_fit_rejects_a_loss_with_aux_and_says_how_to_drop_it():
    with pytest.raises(
        TypeError, match=r"\(loss, aux\), pass lambda p, b: loss_fn\(p, b\)\[0\]"
    ):
        T.fit(lambda p, b: (jnp.sum(p), b), 0.0, jgd.gd(0.1), jnp.ones(4), epochs=1)


def test_init_rejects_integer_params():
    with pytest.raises(
        TypeError,
        match=r"jgd.train.init: params must be floating-point arrays; got dtype int32 at \['n'\]",
    ):
        T.init({"n": jnp.arange(3)}, jgd.gd(0.1))


# --------------------------------------------------------------------------
# fit: full batch, SGD, mini-batches, shuffling.
# --------------------------------------------------------------------------


def test_full_batch_gd_converges_to_lstsq(x64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=64)
    design = np.hstack([x, np.ones((64, 1))])
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)

    def loss(p, batch):
        xb, yb = batch
        return jnp.mean((xb @ p["w"] + p["b"] - yb) ** 2)

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    trained, history = T.fit(
        loss, params, jgd.gd(0.3), (x, y), epochs=400, progress=False
    )
    np.testing.assert_allclose(trained["w"], solution[:3], rtol=1e-9)
    np.testing.assert_allclose(trained["b"], solution[3], rtol=1e-9)
    assert trained["w"].dtype == jnp.float64
    assert history.steps_per_epoch == 1
    assert history.step_loss.shape == history.loss.shape == (400,)
    np.testing.assert_array_equal(history.step_loss, history.loss)  # full batch
    assert history.loss[-1] < history.loss[0]


def visit_loss(p, idx):
    """With gd(1.0): ``t`` counts the steps, and every sample in the batch gets
    ``t + 1`` (the 1-based step number) added to its ``seen`` slot."""
    step_number = jax.lax.stop_gradient(p["t"]) + 1.0
    return -p["t"] - jnp.sum(p["seen"][idx]) * step_number


def visits(n, epochs, **kwargs):
    """Per epoch, the step number at which each sample was visited (0 if
    not visited); and the history."""
    params = {"t": jnp.zeros(()), "seen": jnp.zeros(n)}
    seen = []
    callback = lambda epoch, p, metrics: seen.append(np.asarray(p["seen"]))
    _, history = T.fit(
        visit_loss, params, jgd.gd(1.0), jnp.arange(n), epochs=epochs,
        progress=False, callbacks=[callback], **kwargs,
    )  # fmt: skip
    per_epoch = np.diff(np.stack([np.zeros(n)] + seen), axis=0)
    return per_epoch, history


def test_sgd_makes_n_updates_per_epoch_and_visits_each_sample_once():
    n = 12
    per_epoch, history = visits(n, 3, batch_size=1, key=jax.random.key(7))
    assert history.steps_per_epoch == n
    assert history.step_loss.shape == (3 * n,)
    for e, got in enumerate(per_epoch):
        # each sample exactly once, at steps e*n+1 .. e*n+n
        np.testing.assert_array_equal(
            np.sort(got), np.arange(e * n + 1, (e + 1) * n + 1)
        )
    orders = [np.argsort(got) for got in per_epoch]
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    assert not np.array_equal(orders[1], orders[2])


def test_shuffling_is_reproducible_from_the_key():
    a, _ = visits(10, 2, batch_size=1, key=jax.random.key(3))
    b, _ = visits(10, 2, batch_size=1, key=jax.random.key(3))
    c, _ = visits(10, 2, batch_size=1, key=jax.random.key(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shuffle_false_keeps_the_data_order():
    per_epoch, _ = visits(6, 2, batch_size=2, shuffle=False)
    np.testing.assert_array_equal(per_epoch[0], [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(per_epoch[1], [4, 4, 5, 5, 6, 6])


def test_minibatches_count_and_shape_with_a_partial_last_batch():
    shapes = []

    def loss(p, batch):
        shapes.append(batch.shape)
        return visit_loss(p, batch)

    params = {"t": jnp.zeros(()), "seen": jnp.zeros(10)}
    _, history = T.fit(
        loss,
        params,
        jgd.gd(1.0),
        jnp.arange(10),
        epochs=2,
        batch_size=3,
        progress=False,
    )
    assert history.steps_per_epoch == 4  # 3 + 3 + 3 + 1
    assert sorted(set(shapes)) == [(1,), (3,)]
    per_epoch, _ = visits(10, 2, batch_size=3, key=jax.random.key(0))
    for e, got in enumerate(per_epoch):
        counts = np.bincount((got - 4 * e).astype(int), minlength=5)
        np.testing.assert_array_equal(counts, [0, 3, 3, 3, 1])  # every sample once


def test_drop_last_skips_the_partial_batch():
    per_epoch, history = visits(
        10, 3, batch_size=3, drop_last=True, key=jax.random.key(0)
    )
    assert history.steps_per_epoch == 3
    for e, got in enumerate(per_epoch):
        assert np.count_nonzero(got) == 9  # one sample left out per epoch
        visited = got[got > 0].astype(int) - 3 * e
        np.testing.assert_array_equal(np.bincount(visited), [0, 3, 3, 3])


def test_epoch_loss_is_the_mean_over_samples_with_a_partial_batch():
    x = jnp.arange(10.0) ** 2
    loss = lambda p, xb: jnp.mean(xb) + 0.0 * p
    _, history = T.fit(
        loss, jnp.zeros(()), jgd.gd(0.1), x, epochs=2, batch_size=4, progress=False
    )
    # Batches of 4, 4, 2: weighting by batch size gives the data's mean.
    np.testing.assert_allclose(history.loss, [np.mean(x)] * 2, rtol=1e-6)
    assert history.step_loss.shape == (6,)


def test_fit_does_not_retrace_across_epochs():
    traces = []

    def loss(p, batch):
        traces.append(batch.shape)
        return jnp.mean((p - batch) ** 2)

    _, history = T.fit(
        loss,
        jnp.zeros(()),
        jgd.adam(0.1),
        jnp.arange(10.0),
        epochs=5,
        batch_size=3,
        progress=False,
    )
    # One trace for the scanned full batches, one for the partial batch: the
    # epoch is compiled once and reused for all five.
    assert sorted(traces) == [(1,), (3,)]
    assert history.loss.shape == (5,)
    assert history.compile_time > 0 and history.train_time > 0


def test_fit_flat_and_leaf_by_leaf_agree():
    x = jnp.linspace(-1.0, 1.0, 20)
    data = (x, 2.0 * x - 1.0)
    loss = lambda p, b: jnp.mean((b[0] * p["w"] + p["b"] - b[1]) ** 2)
    params = {"w": jnp.zeros(()), "b": jnp.zeros(())}
    kw = {"epochs": 3, "batch_size": 6, "key": jax.random.key(5), "progress": False}
    pf, hf = T.fit(loss, params, jgd.adam(0.1), data, flat=True, **kw)
    pl, hl = T.fit(loss, params, jgd.adam(0.1), data, flat=False, **kw)
    assert_close_by_dtype(pf, pl)
    np.testing.assert_allclose(hf.step_loss, hl.step_loss, rtol=1e-6)


def test_callbacks_see_each_epoch_and_can_stop():
    calls = []

    def cb(epoch, params, metrics):
        calls.append(
            (epoch, float(params), metrics["loss"], metrics["step_loss"].shape)
        )
        return epoch == 1

    loss = lambda p, xb: jnp.mean((p - xb) ** 2)
    _, history = T.fit(
        loss,
        jnp.zeros(()),
        jgd.sgd(0.1),
        jnp.arange(4.0),
        epochs=10,
        batch_size=2,
        callbacks=[cb],
        progress=False,
    )
    assert [c[0] for c in calls] == [0, 1]
    assert history.loss.shape == (2,)
    assert [c[2] for c in calls] == list(history.loss)
    assert calls[0][3] == (2,)


def test_progress_bar_shows_the_running_loss_on_a_terminal(monkeypatch):
    err = io.StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr("sys.stderr", err)
    loss = lambda p, xb: jnp.mean((p - xb) ** 2)
    T.fit(loss, jnp.zeros(()), jgd.sgd(0.1), jnp.arange(4.0), epochs=3)
    assert "loss=" in err.getvalue() and "3/3" in err.getvalue()
    quiet = io.StringIO()
    quiet.isatty = lambda: True
    monkeypatch.setattr("sys.stderr", quiet)
    T.fit(loss, jnp.zeros(()), jgd.sgd(0.1), jnp.arange(4.0), epochs=3, progress=False)
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------------
# fit: bad input.
# --------------------------------------------------------------------------


def _loss(p, batch):
    return jnp.mean((p - batch[0]) ** 2)


def test_fit_rejects_data_whose_leading_dimensions_disagree():
    with pytest.raises(
        ValueError, match=r"must share their leading dimension.*\[0\]: 10, \[1\]: 9"
    ):
        T.fit(_loss, 0.0, jgd.gd(0.1), (jnp.zeros(10), jnp.zeros(9)), epochs=1)


def test_fit_rejects_scalar_and_empty_data():
    with pytest.raises(ValueError, match="leading sample dimension; got a scalar"):
        T.fit(_loss, 0.0, jgd.gd(0.1), (jnp.zeros(10), jnp.zeros(())), epochs=1)
    with pytest.raises(ValueError, match="at least one sample; got 0"):
        T.fit(_loss, 0.0, jgd.gd(0.1), (jnp.zeros(0),), epochs=1)


def test_fit_rejects_a_batch_size_larger_than_the_data():
    with pytest.raises(
        ValueError, match=r"batch_size must be <= the number of samples \(10\); got 11"
    ):
        T.fit(_loss, 0.0, jgd.gd(0.1), (jnp.zeros(10),), epochs=1, batch_size=11)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        T.fit(_loss, 0.0, jgd.gd(0.1), (jnp.zeros(10),), epochs=1, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        T.fit(_loss, 0.0, jgd.gd(0.1), (jnp.zeros(10),), epochs=1, batch_size=2.5)


def test_fit_rejects_a_loss_that_is_not_a_scalar():
    with pytest.raises(
        ValueError,
        match=r"jgd.train.fit: loss_fn must return a scalar loss; got shape \(2,\)",
    ):
        T.fit(
            lambda p, b: (p - b[0]) ** 2,
            0.0,
            jgd.gd(0.1),
            (jnp.zeros(10),),
            epochs=1,
            batch_size=2,
        )


def nan_after_five(p, batch):
    """With gd(1.0) p counts the steps; the loss is NaN once p reaches 5."""
    return (
        -jnp.sum(p) + jnp.where(jnp.sum(p) > 4.5, jnp.nan, 0.0) + 0.0 * jnp.sum(batch)
    )


def test_fit_stops_at_a_non_finite_loss_naming_epoch_and_step():
    with pytest.raises(
        T.NonFiniteLossError,
        match=r"non-finite loss \(nan\) in epoch 2, step 1 .*global step 5",
    ) as info:
        T.fit(
            nan_after_five,
            jnp.zeros(()),
            jgd.gd(1.0),
            jnp.zeros(4),
            epochs=10,
            batch_size=2,
            shuffle=False,
        )
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert (err.epoch, err.step) == (2, 1)
    # Steps 0-4 were applied, the failing step 5 was not.
    np.testing.assert_array_equal(err.params, 5.0)
    np.testing.assert_array_equal(err.history.step_loss[:5], [0, -1, -2, -3, -4])
    assert np.isnan(err.history.step_loss[5]) and err.history.step_loss.shape == (6,)
    assert err.history.loss.shape == (2,)  # the two complete epochs


def test_fit_stops_at_a_non_finite_gradient():
    # sqrt(|p - 3|) * 0 has a finite value but an infinite slope at p = 3.
    loss = lambda p, b: -p + 0.0 * jnp.sqrt(jnp.abs(p - 3.0)) + 0.0 * jnp.sum(b)
    with pytest.raises(
        T.NonFiniteLossError,
        match=r"non-finite gradient norm \(nan\) in epoch 3, step 0",
    ) as info:
        T.fit(loss, jnp.zeros(()), jgd.gd(1.0), jnp.zeros(4), epochs=10)
    np.testing.assert_array_equal(info.value.params, 3.0)


# --------------------------------------------------------------------------
# The seeds' models learn.
# --------------------------------------------------------------------------


def accuracy(logits, labels):
    return float(jnp.mean((logits > 0) == (labels == 1)))


def test_sigmoid_neuron_learns_the_blobs():
    x, labels = models.make_classification(jax.random.key(0), 200)
    model = models.sigmoid_neuron(2)

    def loss(p, batch):
        xb, yb = batch
        return jnp.mean(losses.sigmoid_binary_cross_entropy(model.apply(p, xb), yb))

    params = jax.tree.map(jnp.zeros_like, model.init(jax.random.key(1)))
    assert accuracy(model.apply(params, x), labels) == 0.5  # all logits 0
    trained, history = T.fit(
        loss,
        params,
        jgd.sgd(0.5),
        (x, labels),
        epochs=20,
        batch_size=20,
        key=jax.random.key(2),
        progress=False,
    )
    assert accuracy(model.apply(trained, x), labels) >= 0.97
    assert history.loss[-1] < history.loss[0] / 4


def test_relu_mlp_learns_the_blobs():
    x, labels = models.make_classification(jax.random.key(3), 300, n_classes=3)
    model = models.mlp([2, 16, 3])

    def loss(p, batch):
        xb, yb = batch
        logits = model.apply(p, xb)
        return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, yb))

    params = model.init(jax.random.key(4))
    trained, _ = T.fit(
        loss,
        params,
        jgd.adam(0.01),
        (x, labels),
        epochs=30,
        batch_size=32,
        key=jax.random.key(5),
        progress=False,
    )
    predicted = jnp.argmax(model.apply(trained, x), axis=-1)
    assert float(jnp.mean(predicted == labels)) >= 0.97


def test_fit_runs_an_optimizer_that_needs_leaves_by_default():
    """fit's default stores optax's lamb (per-leaf trust ratios) leaf by
    leaf and gives the hand loop's numbers; flat=True refuses it."""
    params = {"w": jnp.ones((2, 2)), "b": jnp.full(2, 0.5)}
    data = jnp.asarray(np.random.default_rng(0).normal(size=(4, 2)), jnp.float32)

    def loss(p, x):
        return jnp.mean((x @ p["w"] + p["b"][None, :]) ** 2)

    opt = optax.lamb(1e-2)

    @jax.jit
    def step(p, s):
        u, s = opt.update(jax.grad(loss)(p, data), s, p)
        return optax.apply_updates(p, u), s

    with standard_promotion():  # optax mixes Python floats and int32 counts
        got, _ = T.fit(loss, params, opt, data, epochs=3, progress=False)
        p, s = params, opt.init(params)
        for _ in range(3):
            p, s = step(p, s)
    for k in params:
        np.testing.assert_allclose(got[k], p[k], rtol=1e-6)
    with pytest.raises(ValueError, match="needs leaf boundaries"):
        T.fit(loss, params, opt, data, epochs=1, progress=False, flat=True)
