"""The other process of tests/test_checkpoint.py: ``python -m tests.checkpoint_worker
MODE DIRECTORY ...``.

Modes:
    continue DIR K   restore DIR's latest TrainState (``MODEL``), take K steps,
                     save: the run continued in a fresh process.
    mesh DIR         on 8 simulated CPU devices (the caller sets XLA_FLAGS):
                     restore DIR's latest (saved on one device) sharded, packed
                     and leaf by leaf, and as a pair of ShapeDtypeStructs; check
                     shardings and values; save it sharded as the next step.
                     Prints the problems found as one JSON line.
    saver DIR        save ``saver_tree(step)`` for step = latest + 1, + 2, ...
                     until killed, printing ``saving STEP T`` and ``saved STEP
                     T`` (T: time.monotonic()) around each save.

The model, data and optimizer live here so both processes build the same.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jgd
import jgd.checkpoint
import jgd.train

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

KEEP = 2  # checkpoints the saver keeps


def make_params() -> dict:
    rng = np.random.default_rng(0)
    normal = lambda *shape: jnp.asarray(0.5 * rng.normal(size=shape), jnp.float32)
    return {"layers": [{"w": normal(4, 8), "b": normal(8)}, {"w": normal(8, 1)}]}


def make_opt():
    return jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adam(3e-2))


def batch(i: int):
    """The i-th batch (the same in every process)."""
    rng = np.random.default_rng(100 + i)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(np.sin(x.sum(axis=1, keepdims=True)))


def loss_fn(p, b):
    x, y = b
    h = jnp.tanh(x @ p["layers"][0]["w"] + p["layers"][0]["b"][None])
    return jnp.mean((h @ p["layers"][1]["w"] - y) ** 2)


_STEP = []  # the compiled step, made once per process


def train(state, steps: int):
    """``steps`` steps from ``state.step`` on, each on its own batch."""
    if not _STEP:
        _STEP.append(jgd.train.make_step(loss_fn))
    for _ in range(steps):
        state, _ = _STEP[0](state, batch(int(state.step)))
    return state


def saver_tree(step: int) -> tuple:
    """A (params, opt_state) pair whose every element is ``step``: about 1 MB
    in 12 leaves, so a save takes a while and a restore shows which step."""
    params = {f"w{i}": jnp.full((128, 128), float(step)) for i in range(6)}
    return params, {"m": jax.tree.map(jnp.copy, params)}


def _continue(directory: str, k: int) -> None:
    like = jgd.train.init(make_params(), make_opt(), flat=True)
    state = train(jgd.checkpoint.restore(directory, like).state, k)
    jgd.checkpoint.save(directory, state)


def _mesh(directory: str) -> None:
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    problems: list[str] = []
    mesh = Mesh(np.array(jax.devices()), ("data",))
    specs = {"w": P(None, "data"), "b": P("data")}  # layer 0 split, layer 1 not
    params = make_params()
    shardings = jax.tree_util.tree_map_with_path(
        lambda path, x: NamedSharding(
            mesh, specs.get(path[-1].key, P()) if path[1].idx == 0 else P()
        ),
        params,
    )
    params = jax.device_put(params, shardings)
    saved = jgd.checkpoint.restore(
        directory, (jax.tree.map(np.asarray, params), make_opt().init(params))
    )  # as NumPy: the expected values
    want = jax.tree.leaves(saved.state)

    def check(label, state, like):
        got = jax.tree.leaves((state.params, state.opt_state))
        for a, b in zip(got, want, strict=True):
            if not np.array_equal(np.asarray(a), np.asarray(b)):
                problems.append(f"{label}: values differ")
                break
        stored = jax.tree.leaves((state.stored_params, state.stored_opt_state))
        model = jax.tree.leaves((like.stored_params, like.stored_opt_state))
        for a, b in zip(stored, model, strict=True):
            if not a.sharding.is_equivalent_to(b.sharding, a.ndim):
                problems.append(f"{label}: {a.sharding} where like has {b.sharding}")
        if len(state.stored_params["leaf['layers'][0]['w']"].sharding.device_set) != 8:
            problems.append(f"{label}: layers/0/w is not on 8 devices")

    for flat in (True, False):
        like = jgd.train.init(params, make_opt(), flat=flat, pack_below=64)
        if flat and not isinstance(like.layout, jgd.train.Layout):
            problems.append("flat=True did not pack")
        r = jgd.checkpoint.restore(directory, like)
        label = f"flat={flat}"
        if flat is False:  # leaf by leaf: keys are the user's
            state = r.state
            if len(state.stored_params["layers"][0]["w"].sharding.device_set) != 8:
                problems.append(f"{label}: layers/0/w is not on 8 devices")
            for a, b in zip(
                jax.tree.leaves((state.params, state.opt_state)), want, strict=True
            ):
                if not np.array_equal(np.asarray(a), np.asarray(b)):
                    problems.append(f"{label}: values differ")
                    break
        else:
            check(label, r.state, like)
    # A pair of ShapeDtypeStructs on the mesh.
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        (params, jax.device_put(make_opt().init(params), NamedSharding(mesh, P()))),
    )
    pair = jgd.checkpoint.restore(directory, abstract).state
    w = pair[0]["layers"][0]["w"]
    if w.sharding != shardings["layers"][0]["w"]:
        problems.append(f"pair: layers/0/w on {w.sharding}")
    # Saved sharded, for the one-device parent: the next step's checkpoint.
    like = jgd.train.init(params, make_opt(), flat=True, pack_below=64)
    state = jgd.checkpoint.restore(directory, like).state
    jgd.checkpoint.save(directory, state, step=int(state.step) + 1)
    print(json.dumps({"problems": problems, "devices": len(jax.devices())}))


def _saver(directory: str) -> None:
    latest = jgd.checkpoint.latest_step(directory)
    step = 0 if latest is None else latest + 1
    while True:
        tree = saver_tree(step)
        print(f"saving {step} {time.monotonic()}", flush=True)
        jgd.checkpoint.save(directory, tree, step=step, keep=KEEP)
        print(f"saved {step} {time.monotonic()}", flush=True)
        step += 1


if __name__ == "__main__":
    mode, directory, *rest = sys.argv[1:]
    if mode == "continue":
        _continue(directory, int(rest[0]))
    elif mode == "mesh":
        _mesh(directory)
    elif mode == "saver":
        _saver(directory)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
