"""jgd.kernels: the fused Adam loop in jgd.train's flat step against XLA's loops.

Each case trains the same model with ``make_step`` with the kernel and inside
``jgd.kernels.disabled()`` (XLA's loops), and compares params and optimizer
state after every step. Where the flat state is one float32 bucket, XLA's
arithmetic has one form (a multiply by the reciprocal of each bias
correction, and the FMAs the kernel spells out) and the two agree bit for
bit, but for the ``grad_norm`` metric, which the kernel sums in double (XLA in
float32). With a weight-decay mask there are two buckets, and XLA's own loops
keep some divisions by the bias correction or recompute ``b**t`` inside a
loop; with ``clip_by_global_norm`` the norm it clips by is summed in double
too. There each step, taken from the same state, agrees to float32 rounding
(the tolerance tests/test_train.py uses between the flat and the leaf-by-leaf
step, both XLA's). The kernel is also checked against the update computed in float64.

The kernel is built with the machine's C++ compiler on first use. CI's
machine has one, so ``test_kernel_is_built_here`` fails, not skips, when the
build does.
"""

from __future__ import annotations

import contextlib

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jgd
import jgd.train
from jgd import kernels

TARGET = kernels.TARGET


def _decay_matrices(params):
    return jax.tree.map(lambda x: x.ndim >= 2, params)


def _problem(dtype=jnp.float32):
    rng = np.random.default_rng(0)
    params = {
        "w": jnp.asarray(rng.standard_normal((30, 20)), dtype),
        "b": jnp.zeros(20, dtype),
        "s": jnp.asarray(1.0, dtype),
    }
    x = jnp.asarray(rng.standard_normal((8, 30)), dtype)

    def loss(p, x):
        y = x @ p["w"] + p["b"][None, :]
        return (jnp.sum(y**2) + p["s"] ** 2).astype(jnp.float32)

    return params, loss, x


def _train(opt, *, kernel: bool, steps: int, dtype=jnp.float32):
    params, loss, x = _problem(dtype)
    with contextlib.nullcontext() if kernel else kernels.disabled():
        state = jgd.train.init(params, opt)
        step = jgd.train.make_step(loss, grad_norm=True)
        text = step.lower(state, x).as_text()
        history = []
        for _ in range(steps):
            state, metrics = step(state, x)
            history.append((state.params, state.opt_state, metrics))
    return history, text


def _float_leaves(tree):
    return [
        (jax.tree_util.keystr(path), np.asarray(x))
        for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
    ]


# One float32 bucket: bit-identical to XLA.
BITWISE = {
    "adam": lambda: jgd.adam(1e-2),
    "adam_all_args": lambda: jgd.adam(1e-2, b1=0.8, b2=0.99, eps=1e-5, eps_root=1e-6),
    "adamw": lambda: jgd.adamw(1e-2, weight_decay=0.1),
    "adamw_schedule": lambda: jgd.adamw(
        jgd.schedules.warmup_cosine_decay_schedule(0.0, 0.1, 2, 10), weight_decay=0.05
    ),
    "clip_not_clipping": lambda: jgd.chain(
        jgd.clip_by_global_norm(1e9), jgd.adamw(1e-2)
    ),
}

# A weight-decay mask (two buckets), or a clipping norm summed in double.
PER_STEP = {
    "clip_adam": lambda: jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adam(1e-2)),
    "clip_adamw": lambda: jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adamw(1e-2)),
    "adamw_mask": lambda: jgd.adamw(1e-2, weight_decay=0.1, mask=_decay_matrices),
    "clip_adamw_mask": lambda: jgd.chain(
        jgd.clip_by_global_norm(1.0),
        jgd.adamw(1e-2, weight_decay=0.1, mask=_decay_matrices),
    ),
}


def test_kernel_is_built_here():
    assert kernels.available(), kernels.status()
    assert kernels.status().startswith("on: ")


@pytest.mark.parametrize("name", list(BITWISE))
def test_kernel_matches_xla_bit_for_bit(name):
    ours, text_on = _train(BITWISE[name](), kernel=True, steps=5)
    xla, text_off = _train(BITWISE[name](), kernel=False, steps=5)
    assert TARGET in text_on and TARGET not in text_off
    for t, (a, b) in enumerate(zip(ours, xla)):
        la, lb = _float_leaves(a[:2]), _float_leaves(b[:2])
        assert [p for p, _ in la] == [p for p, _ in lb]
        for (path, x), (_, y) in zip(la, lb):
            np.testing.assert_array_equal(x, y, err_msg=f"{name} step {t} {path}")
        np.testing.assert_array_equal(a[2]["loss"], b[2]["loss"])
        # The kernel sums g**2 in double as it reads g, XLA in float32 lanes.
        np.testing.assert_allclose(a[2]["grad_norm"], b[2]["grad_norm"], rtol=1e-6)
        assert (
            int(a[1][0].count if name.startswith("adam") else a[1][1][0].count) == t + 1
        )


@pytest.mark.parametrize("name", list(PER_STEP))
def test_kernel_matches_xla_step_by_step(name):
    """Each step from the same state (XLA's trajectory), so that what is
    compared is one step's rounding, not how the problem amplifies it."""
    opt = PER_STEP[name]()
    params, loss, x = _problem()
    state = jgd.train.init(params, opt)
    copy = lambda s: jax.tree.map(jnp.copy, s)
    ours = jgd.train.make_step(loss, grad_norm=True).lower(state, x)
    assert ours.as_text().count(TARGET) == len(state.layout.buckets)
    assert (kernels.NORM_TARGET in ours.as_text()) == name.startswith("clip")
    ours = ours.compile()
    with kernels.disabled():
        xla = jgd.train.make_step(loss, grad_norm=True).lower(state, x)
        assert TARGET not in xla.as_text()
        xla = xla.compile()
    for t in range(5):
        a, _ = ours(copy(state), x)
        state, _ = xla(state, x)
        for (path, u), (_, v) in zip(
            _float_leaves((a.params, a.opt_state)),
            _float_leaves((state.params, state.opt_state)),
        ):
            # tests/test_train.py's float32 tolerance between the flat and the
            # leaf-by-leaf step, which are also both XLA's, relative to each
            # array's scale: the clip factor's last bit (the norm is summed in
            # double) shows as a larger relative error where b1 * m and
            # (1 - b1) * g nearly cancel.
            np.testing.assert_allclose(
                u,
                v,
                rtol=2e-6,
                atol=2e-6 * float(np.max(np.abs(v), initial=0.0)),
                err_msg=f"{name} step {t} {path}",
            )


def test_kernel_matches_the_update_in_float64():
    """Two AdamW steps from the kernel, and the grad_norm metric it sums,
    against the same formulas in NumPy float64 (the second step has non-zero
    moments): float32 rounding apart."""
    b1, b2, eps, lr, wd = 0.8, 0.99, 1e-6, 0.05, 0.1
    opt = jgd.chain(
        jgd.clip_by_global_norm(2.0), jgd.adamw(lr, b1, b2, eps, weight_decay=wd)
    )
    history, text = _train(opt, kernel=True, steps=2)
    assert TARGET in text
    p0, loss, x = _problem()
    p, m, v = (np.asarray(jax.flatten_util.ravel_pytree(p0)[0], np.float64), 0.0, 0.0)
    for t in (1, 2):
        params = jax.flatten_util.ravel_pytree(p0)[1](jnp.asarray(p, jnp.float32))
        g = np.asarray(
            jax.flatten_util.ravel_pytree(jax.grad(loss)(params, x))[0], np.float64
        )
        norm = np.linalg.norm(g)
        np.testing.assert_allclose(history[t - 1][2]["grad_norm"], norm, rtol=1e-6)
        g = g * min(1.0, 2.0 / norm)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        u = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        p = p - lr * (u + wd * p)
        got = np.asarray(jax.flatten_util.ravel_pytree(history[t - 1][0])[0])
        # float32 rounding of values of order 1 (the params before the step):
        # ~1e-7 absolute, which dominates for the params that end near 0.
        np.testing.assert_allclose(got, p, rtol=1e-6, atol=1e-7, err_msg=f"step {t}")


@pytest.mark.parametrize(
    "make_opt,dtype",
    [
        (lambda: jgd.adam(1e-2, nesterov=True), jnp.float32),
        (lambda: jgd.adam(1e-2, mu_dtype=jnp.bfloat16), jnp.float32),
        (lambda: jgd.adam(1e-2), jnp.bfloat16),
        (lambda: jgd.sgd(1e-2, momentum=0.9), jnp.float32),
        (lambda: optax.adam(1e-2), jnp.float32),
        (lambda: jgd.chain(jgd.clip(1.0), jgd.adam(1e-2)), jnp.float32),
    ],
    ids=["nesterov", "mu_dtype", "bf16", "sgd", "optax_adam", "clip_then_adam"],
)
def test_other_optimizers_keep_xlas_loops(make_opt, dtype):
    with jax.numpy_dtype_promotion("standard"):  # optax's adam needs it
        history, text = _train(make_opt(), kernel=True, steps=2, dtype=dtype)
    assert TARGET not in text
    assert all(np.all(np.isfinite(x)) for _, x in _float_leaves(history[-1][0]))


def test_jgd_kernels_0_turns_it_off(monkeypatch):
    monkeypatch.setenv("JGD_KERNELS", "0")
    _, text = _train(jgd.adam(1e-2), kernel=True, steps=1)
    assert TARGET not in text
    assert kernels.status().startswith("off: disabled")


def test_fit_uses_the_kernel_and_agrees():
    params, loss, x = _problem()
    data = jnp.tile(x, (4, 1))
    opt = jgd.adamw(1e-2, weight_decay=0.1)

    def run():
        return jgd.train.fit(
            loss,
            params,
            opt,
            data,
            epochs=2,
            batch_size=8,
            shuffle=False,
            progress=False,
        )[0]

    on = run()
    with kernels.disabled():
        off = run()
    assert not jax.tree.all(jax.tree.map(jnp.array_equal, on, params))  # it trained
    for (path, a), (_, b) in zip(_float_leaves(on), _float_leaves(off)):
        np.testing.assert_array_equal(a, b, err_msg=path)


def test_without_a_compiler_it_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setattr(kernels, "_why", "not built yet")
    monkeypatch.setattr(kernels, "_warned", False)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("JGD_CACHE_DIR", str(tmp_path / "cache"))
    assert not kernels.available()
    assert kernels.status().startswith("off: the kernel could not be built")
    assert "no-such-compiler" in kernels.status()
    with pytest.warns(kernels.KernelFallbackWarning, match="no-such-compiler"):
        _, text = _train(jgd.adam(1e-2), kernel=True, steps=1)
    assert TARGET not in text


@pytest.mark.parametrize("clip", [False, True])
def test_kernel_two_threads_and_tails_bit_for_bit(clip):
    """A bucket above the kernel's two-thread threshold (2**17 elements), of
    odd size: two threads, partial blocks and the lanes' tail all run."""
    n = (1 << 20) + 4099
    rng = np.random.default_rng(3)
    params = {
        "big": jnp.asarray(rng.standard_normal(n), jnp.float32),
        "s": jnp.ones([]),
    }
    target = jnp.asarray(rng.standard_normal(n), jnp.float32)

    def loss(p, t):
        return 0.5 * jnp.sum((p["big"] - t) ** 2) + p["s"] ** 2

    opt = jgd.adamw(1e-2, weight_decay=0.1)
    if clip:
        opt = jgd.chain(jgd.clip_by_global_norm(100.0), opt)
    runs = []
    for ctx in (contextlib.nullcontext(), kernels.disabled()):
        with ctx:
            # One bucket, as the kernel's own layout would be (not resident).
            state = jgd.train.init(params, opt, pack_below=1 << 30)
            step = jgd.train.make_step(loss, grad_norm=True).lower(state, target)
            runs.append((TARGET in step.as_text(), step.compile(), state))
    (on, k_step, k_state), (off, x_step, x_state) = runs
    assert on and not off
    for t in range(3):
        if clip:  # from the same state: the norm is summed in double (see above)
            k_state = jax.tree.map(jnp.copy, x_state)
        k_state, km = k_step(k_state, target)
        x_state, xm = x_step(x_state, target)
        for (path, a), (_, b) in zip(
            _float_leaves((k_state.params, k_state.opt_state)),
            _float_leaves((x_state.params, x_state.opt_state)),
        ):
            if clip:
                np.testing.assert_allclose(a, b, rtol=2e-6, err_msg=f"step {t} {path}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"step {t} {path}")
        np.testing.assert_allclose(km["grad_norm"], xm["grad_norm"], rtol=1e-6)


# --------------------------------------------------------------------------
# Packing per-leaf gradients into buckets.
# --------------------------------------------------------------------------


def _mixed_leaves(key, sizes, dtypes):
    keys = jax.random.split(key, len(sizes))
    return [
        jax.random.normal(k, s, jnp.float32).astype(d)
        for k, s, d in zip(keys, sizes, dtypes, strict=True)
    ]


@pytest.mark.parametrize("big", [False, True], ids=["small", "two_threads"])
def test_pack_equals_concatenate(big):
    """Every bucket of a mixed tree (float32 and bf16, a scalar, a zero-size
    leaf, a decayed and an undecayed float32 bucket) packs to exactly what
    ``Layout.pack``'s concatenate gives; ``big`` crosses the kernel's 512 KiB
    two-thread threshold."""
    n = 700_001 if big else 7
    sizes = [(n,), (), (3, 4), (0,), (5,), (n, 2), (2, 3)]
    dtypes = [jnp.float32, jnp.float32, jnp.bfloat16, jnp.float32, jnp.bfloat16,
              jnp.float32, jnp.float32]  # fmt: skip
    leaves = _mixed_leaves(jax.random.key(0), sizes, dtypes)
    params = {f"p{i}": x for i, x in enumerate(leaves)}
    opt = jgd.adamw(0.1, mask=lambda p: {k: x.ndim == 2 for k, x in p.items()})
    state = jgd.train.init(params, opt)
    layout, like = state.layout, state.stored_params
    assert len(layout.buckets) == 4
    ordered = jax.tree.leaves(params)
    ours = jax.jit(lambda xs: kernels.pack(layout.group(xs), like))(ordered)
    text = jax.jit(lambda xs: kernels.pack(layout.group(xs), like))
    text = text.lower(ordered).as_text()
    assert kernels.PACK_TARGET in text
    theirs = jax.jit(layout.pack)(ordered)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


def test_make_step_packs_with_the_kernel():
    params = {f"w{i}": jnp.full((3,), float(i)) for i in range(50)}

    def loss(p, t):
        return sum(jnp.sum((x - t) ** 2) for x in jax.tree.leaves(p))

    opt = jgd.sgd(0.1, momentum=0.9)  # no fused update: only the packing
    texts, results = [], []
    for ctx in (contextlib.nullcontext(), kernels.disabled()):
        with ctx:
            state = jgd.train.init(params, opt)
            step = jgd.train.make_step(loss, grad_norm=True).lower(state, jnp.float32(1.0))
            texts.append(step.as_text())
            step = step.compile()
            for _ in range(3):
                state, m = step(state, jnp.float32(1.0))
            results.append((state.params, m))
    assert kernels.PACK_TARGET in texts[0] and kernels.PACK_TARGET not in texts[1]
    for (path, a), (_, b) in zip(_float_leaves(results[0]), _float_leaves(results[1])):
        np.testing.assert_array_equal(a, b, err_msg=path)


def test_leaf_by_leaf_state_keeps_xlas_loops():
    """flat=False hands make_step the user's own dict of leaves: not buckets."""
    params, loss, x = _problem()
    opt = jgd.adam(1e-2)
    state = jgd.train.init(params, opt, flat=False)
    text = jgd.train.make_step(loss, grad_norm=True).lower(state, x).as_text()
    assert TARGET not in text and kernels.PACK_TARGET not in text


def test_offsets_travel_as_one_array():
    """With the kernels, a flat step takes its leaves' offsets as one int32
    array (``jgd.kernels.unstack`` hands them out inside): one argument where
    XLA's runtime charges for each. Without, one int32 scalar per leaf. The
    params the loss sees, and so the steps (one float32 bucket: the fused
    Adam is XLA's arithmetic), are the same bit for bit."""
    params = {f"w{i}": jnp.full((3,), float(i)) for i in range(50)}
    params["m"] = jnp.arange(6.0).reshape(2, 3)

    def loss(p, t):
        return sum(jnp.sum((x - t) ** 2) for x in jax.tree.leaves(p))

    opt = jgd.adam(0.1)
    n_args, texts, results = [], [], []
    for ctx in (contextlib.nullcontext(), kernels.disabled()):
        with ctx:
            state = jgd.train.init(params, opt)
            offsets = state.layout.offsets()
            n_args.append(len(jax.tree.leaves(offsets)))
            lowered = jgd.train.make_step(loss, grad_norm=True).lower(state, jnp.float32(1.0))
            texts.append(lowered.as_text())
            step = lowered.compile()
            for _ in range(3):
                state, m = step(state, jnp.float32(1.0))
            results.append((state.params, m["loss"]))
    assert n_args == [1, 51]
    assert kernels.UNSTACK_TARGET in texts[0]
    assert kernels.UNSTACK_TARGET not in texts[1]
    for (path, a), (_, b) in zip(_float_leaves(results[0]), _float_leaves(results[1])):
        np.testing.assert_array_equal(a, b, err_msg=path)


def test_unpack_with_any_form_of_offsets():
    """``Layout.unpack`` gives the same tree from constant offsets, scalar
    offsets and one offsets array, over several buckets and dtypes."""
    sizes = [(4,), (), (3, 4), (0,), (5,), (2, 2)]
    dtypes = [jnp.float32, jnp.float32, jnp.bfloat16, jnp.float32, jnp.bfloat16,
              jnp.float32]  # fmt: skip
    leaves = _mixed_leaves(jax.random.key(1), sizes, dtypes)
    params = {f"p{i}": x for i, x in enumerate(leaves)}
    state = jgd.train.init(params, jgd.sgd(0.1))
    layout, buffers = state.layout, state.stored_params
    scalars = tuple(jnp.int32(s.offset) for s in layout.slots)
    array = jnp.asarray([s.offset for s in layout.slots], jnp.int32)
    unpack = jax.jit(layout.unpack)
    for got in (unpack(buffers), unpack(buffers, scalars), unpack(buffers, array)):
        assert jax.tree.structure(got) == jax.tree.structure(params)
        for k, want in params.items():
            assert got[k].dtype == want.dtype and got[k].shape == want.shape
            np.testing.assert_array_equal(got[k], want, err_msg=k)
