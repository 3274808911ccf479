"""jgd keeps the user's sharding, on 8 simulated CPU devices.

What is proven here: for data-parallel, tensor-parallel and FSDP shardings of a
small MLP (plus layer-norm and scalar leaves, which the flat step packs), and for
adam, sgd with momentum and a clip-then-adamw chain, the params and every
params-shaped optimizer-state tree (mu, nu, trace) carry the user's sharding
after ``jgd.train.init``, after three ``make_step`` steps, after ``fit`` and
after a bare jitted ``opt.update`` + ``jgd.apply_updates`` (``opt.init`` as
given; the steps constrained to the user's sharding, see ``run_bare``); each
device holds exactly the shards that sharding gives it (and, for a
``TrainState``, no more bytes in all); the params equal an unsharded one-device
run to rtol 1e-5 (see ``check_values``).

XLA_FLAGS must be set before jax starts, so one subprocess
(``python -m tests.test_sharding``) runs every case and prints the problems it
found as JSON; each test below reads one entry. CI runs the clip-then-adamw
chain; adam and sgd run under ``-m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jgd
import jgd.train

# Its tests share module fixtures that run for seconds: one xdist worker
# runs them all (--dist loadgroup), so the fixtures run once.
pytestmark = pytest.mark.xdist_group("sharding")


ALL = ("data", "model")  # FSDP: one axis over all 8 devices of the (2, 4) mesh
# name: (mesh shape, mesh axes, specs by leaf name; a leaf not named is
# replicated). The batch is sharded over "data" on its first axis.
SCENARIOS = {
    "dp": ((8,), ("data",), {}),
    "tp": (
        (2, 4),
        ALL,
        {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None)},
    ),
    "fsdp": (
        (2, 4),
        ALL,
        {"w1": P(ALL), "b1": P(ALL), "w2": P(ALL), "b2": P(ALL), "scale": P(ALL)},
    ),
}
# name: (optimizer, number of params-shaped trees in its state)
OPTIMIZERS = {
    "adam": (lambda: jgd.adam(1e-2), 2),
    "sgd": (lambda: jgd.sgd(0.1, momentum=0.9), 1),
    "clip_adamw": (
        lambda: jgd.chain(
            jgd.clip_by_global_norm(1.0), jgd.adamw(1e-2, weight_decay=1e-4)
        ),
        2,
    ),
}
CHECKS = {  # phase: its checks
    "init": ("sharding", "shards", "device_bytes", "values"),
    "make_step": ("sharding", "shards", "device_bytes", "values"),
    "grad_buffer": ("sharding", "shards", "values"),  # make_step keeping its gradient
    "fit": ("sharding", "shards", "values"),
    "update": ("sharding", "shards", "values"),  # bare opt.update under jax.jit
}
STEPS, RTOL = 3, 1e-5

# --------------------------------------------------------------------------
# The worker, run in the subprocess on 8 CPU devices.
# --------------------------------------------------------------------------


def make_params():
    rng = np.random.default_rng(0)
    normal = lambda *shape, s: jnp.asarray(s * rng.normal(size=shape), jnp.float32)
    return {
        "w1": normal(16, 64, s=0.25),
        "b1": normal(64, s=0.1),
        "w2": normal(64, 16, s=0.125),
        "b2": normal(16, s=0.1),
        "ln": {"scale": 1 + normal(16, s=0.1), "bias": normal(16, s=0.1)},
        "temp": jnp.ones([], jnp.float32),
    }


def make_batch():
    x = np.random.default_rng(1).normal(size=(32, 16)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(np.tanh(x[:, ::-1]))


def loss_fn(p, batch):
    """A 2-layer MLP, a layer norm with scale and bias, times a scalar; MSE.
    tanh, not relu: a pre-activation 1e-7 from relu's kink would turn float
    rounding into a different gradient."""
    x, y = batch
    h = jnp.tanh(x @ p["w1"] + p["b1"][None])
    z = h @ p["w2"] + p["b2"][None]
    z = (z - z.mean(-1, keepdims=True)) * jax.lax.rsqrt(z.var(-1, keepdims=True) + 1e-5)
    out = p["temp"] * (z * p["ln"]["scale"][None] + p["ln"]["bias"][None])
    return jnp.mean((out - y) ** 2)


def user_shardings(scenario, params):
    """The NamedSharding of each params leaf, and the batch's."""
    shape, axes, specs = SCENARIOS[scenario]
    mesh = Mesh(np.array(jax.devices()).reshape(shape), axes)
    shardings = jax.tree_util.tree_map_with_path(
        lambda path, _: NamedSharding(mesh, specs.get(path[-1].key, P())), params
    )
    return shardings, NamedSharding(mesh, P("data"))


def run_bare(opt, params, batch, shardings=None):
    """``opt.init``, then ``STEPS`` of ``opt.update`` + ``jgd.apply_updates`` in
    one jitted program; returns the initial state, the params and the state.

    With ``shardings``, the program constrains the params and each params-shaped
    state tree to them, as a user has to: left to itself XLA re-shards leaves
    (FSDP's replicated ln.bias and its moments come out sharded, with optax and
    with plain SGD alike)."""
    like = lambda t: jax.tree.structure(t) == jax.tree.structure(params)
    pin = lambda tree: jax.tree.map(
        lambda t: jax.lax.with_sharding_constraint(t, shardings) if like(t) else t,
        tree,
        is_leaf=like,
    )

    @jax.jit
    def steps(p, s):
        for _ in range(STEPS):
            u, s = opt.update(jax.grad(loss_fn)(p, batch), s, p)
            p = jgd.apply_updates(p, u)
        return (p, s) if shardings is None else pin((p, s))

    state = opt.init(params)
    return state, *steps(params, state)


def _describe(s):
    if isinstance(s, NamedSharding):
        return f"{s.spec} on mesh {dict(s.mesh.shape)}"
    return repr(s)


def check_tree(where, tree, shardings):
    """Problems with each leaf of ``tree``: its sharding, and its shards."""
    sharding, shards = [], []
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    for (path, x), want in zip(flat, jax.tree.leaves(shardings), strict=True):
        name = where + jax.tree_util.keystr(path)
        if not x.sharding.is_equivalent_to(want, x.ndim):
            sharding.append(
                f"{name}: has {_describe(x.sharding)}; the user gave {_describe(want)}"
            )
        expect = want.shard_shape(x.shape)
        held = {s.device.id: s.data.shape for s in x.addressable_shards}
        if len(held) != want.num_devices or set(held.values()) != {expect}:
            shards.append(
                f"{name}: shapes by device {held}; the user's sharding gives "
                f"{want.num_devices} devices {expect} each"
            )
    return sharding, shards


def check_state(where, params, opt_state, shardings, n_moments):
    """``check_tree`` over params and every params-shaped tree in ``opt_state``."""
    like = lambda t: jax.tree.structure(t) == jax.tree.structure(params)
    flat = jax.tree_util.tree_flatten_with_path(opt_state, is_leaf=like)[0]
    found = [(jax.tree_util.keystr(path), t) for path, t in flat if like(t)]
    sharding, shards = check_tree(f"{where}.params", params, shardings)
    for path, t in found:
        more = check_tree(f"{where}.opt_state{path}", t, shardings)
        sharding, shards = sharding + more[0], shards + more[1]
    if len(found) != n_moments:
        sharding.append(
            f"{where}.opt_state: params-shaped trees at {[p for p, _ in found]}; "
            f"expected {n_moments}"
        )
    return sharding, shards


def check_bytes(state, params, shardings, n_moments):
    """The bytes each device holds for a whole TrainState, whatever its storage,
    against its shards of the params and moments (slack: 10% and 512 bytes)."""
    held, due = {}, {}
    for x in jax.tree.leaves(state):
        for s in getattr(x, "addressable_shards", ()):
            held[s.device.id] = held.get(s.device.id, 0) + s.data.nbytes
    for x, s in zip(jax.tree.leaves(params), jax.tree.leaves(shardings)):
        nbytes = (1 + n_moments) * x.dtype.itemsize * np.prod(s.shard_shape(x.shape))
        for d in s.device_set:
            due[d.id] = due.get(d.id, 0) + int(nbytes)
    return [
        f"device {d}: the TrainState holds {n} bytes; its shards of the params and "
        f"{n_moments} moments are {due.get(d, 0)}"
        for d, n in sorted(held.items())
        if n > 1.1 * due.get(d, 0) + 512
    ]


def check_values(where, params, expected):
    """Each leaf against the one-device run, to RTOL of each element plus RTOL
    of the leaf's largest: a reordered sum moves Adam's step by a fraction of
    the leaf's scale (an element near 0 does not shrink the rounding)."""
    out = []
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    for (path, a), e in zip(flat, jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        ratio = np.max(np.abs(a - e) / (RTOL * (np.abs(e) + np.abs(e).max())))
        if ratio > 1:
            out.append(
                f"{where}{jax.tree_util.keystr(path)}: differs from one device by "
                f"{ratio:.1f} times the tolerance (max |difference| "
                f"{np.abs(a - e).max():.1e}, rtol {RTOL})"
            )
    return out


def run_case(scenario, opt_name, params, batch, expected):
    """Every phase of one scenario and optimizer: {phase: {check: problems}}."""
    make_opt, n_moments = OPTIMIZERS[opt_name]
    shardings, batch_sharding = user_shardings(scenario, params)
    p = jax.device_put(params, shardings)
    b = jax.device_put(batch, batch_sharding)
    after_steps, after_fit = expected[opt_name]

    def train_state(steps, **step_kw):
        state = jgd.train.init(p, make_opt(), flat=True)  # packed, as a big model
        if steps:
            step = jgd.train.make_step(loss_fn, **step_kw)
            for _ in range(steps):
                state, _ = step(state, b)
        s = check_state("state", state.params, state.opt_state, shardings, n_moments)
        if step_kw:  # the kept gradient sits where the stored params do
            kept = jax.tree.leaves(step._buffer[1])
            stored = jax.tree.leaves(state.stored_params)
            s[0].extend(
                f"kept gradient {i}: {k.sharding} against the stored {x.sharding}"
                for i, (k, x) in enumerate(zip(kept, stored, strict=True))
                if not k.sharding.is_equivalent_to(x.sharding, x.ndim)
            )
        return {
            "sharding": s[0],
            "shards": s[1],
            "device_bytes": check_bytes(state, params, shardings, n_moments),
            "values": check_values(
                "state.params", state.params, after_steps if steps else params
            ),
        }

    def fit():
        out, _ = jgd.train.fit(
            loss_fn,
            p,
            make_opt(),
            b,
            epochs=2,
            batch_size=16,
            progress=False,
            flat=True,
        )
        s = check_tree("fit", out, shardings)
        return {
            "sharding": s[0],
            "shards": s[1],
            "values": check_values("fit", out, after_fit),
        }

    def update():
        state0, out, state = run_bare(make_opt(), p, b, shardings)
        s0 = check_state("opt.init", p, state0, shardings, n_moments)
        s = check_state("bare", out, state, shardings, n_moments)
        return {
            "sharding": s0[0] + s[0],
            "shards": s0[1] + s[1],
            "values": check_values("bare.params", out, after_steps),
        }

    phases = {
        "init": lambda: train_state(0),
        "make_step": lambda: train_state(STEPS),
        "grad_buffer": lambda: train_state(STEPS, grad_buffer=True),
        "fit": fit,
        "update": update,
    }
    results = {}
    for phase, run in phases.items():
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results[phase] = run()
            results[phase]["warnings"] = [
                f"{w.category.__name__}: {w.message}" for w in caught
            ]
        except Exception as e:  # noqa: BLE001 - each of the phase's tests reports it
            results[phase] = {"error": f"{type(e).__name__}: {e}"}
    return results


def main(names):
    jax.config.update("jax_numpy_dtype_promotion", "strict")  # as in conftest.py
    jax.config.update("jax_numpy_rank_promotion", "raise")
    assert jax.device_count() == 8, jax.devices()
    params, batch = make_params(), make_batch()
    expected = {}  # one device, unsharded: the bare steps, and fit
    for name in names:
        make_opt = OPTIMIZERS[name][0]
        fitted, _ = jgd.train.fit(
            loss_fn, params, make_opt(), batch, epochs=2, batch_size=16, progress=False
        )
        expected[name] = run_bare(make_opt(), params, batch)[1], fitted
    results = {
        f"{s}/{o}": run_case(s, o, params, batch, expected)
        for s in SCENARIOS
        for o in names
    }
    print(json.dumps(results))


# --------------------------------------------------------------------------
# The tests, reading the worker's results.
# --------------------------------------------------------------------------


# CI runs the clip-then-adamw chain (two moments, a global norm, weight
# decay) on every sharding; adam and sgd with momentum under -m slow.
IN_CI = ("clip_adamw",)
SLOW = tuple(o for o in OPTIMIZERS if o not in IN_CI)


def _worker(names):
    # LLVM's optimisations double the compile times; sharding is decided before.
    flags = (
        "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_sharding", *names],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode:
        pytest.fail(f"the 8-device worker failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def results():
    return _worker(IN_CI)


@pytest.fixture(scope="module")
def results_slow():
    return _worker(SLOW)


def _grid(names):
    return [
        (f"{s}/{o}", phase, check)
        for s in SCENARIOS
        for o in names
        for phase, checks in CHECKS.items()
        for check in checks
    ]


def _check(results, case, phase, check):
    r = results[case][phase]
    assert "error" not in r, f"{case} {phase}: {r.get('error')}"
    assert not r[check], f"{case} {phase} {check}:\n" + "\n".join(r[check])


def _no_warnings(results):
    found = [
        f"{case} {phase}: {w}"
        for case, phases in results.items()
        for phase, r in phases.items()
        for w in r.get("warnings", ())
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("case,phase,check", _grid(IN_CI))
def test_sharding(results, case, phase, check):
    _check(results, case, phase, check)


def test_no_warnings(results):
    _no_warnings(results)


@pytest.mark.slow
@pytest.mark.parametrize("case,phase,check", _grid(SLOW))
def test_sharding_other_optimizers(results_slow, case, phase, check):
    _check(results_slow, case, phase, check)


@pytest.mark.slow
def test_no_warnings_other_optimizers(results_slow):
    _no_warnings(results_slow)


if __name__ == "__main__":
    main(sys.argv[1:])
