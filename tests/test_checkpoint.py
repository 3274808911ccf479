"""jgd.checkpoint: round trips, changed chains, errors, and proof by fault injection.

What is proven here: a TrainState saved and restored is bit-identical, across
layouts (packed to leaf by leaf and back), into a changed chain (Adam's
moments and count kept), as a pair of NumPy, Python, empty and typed-key
leaves, and in a fresh process, where training continues bit-identically to
the run that was never interrupted; a checkpoint saved on one device restores
sharded on 8 simulated devices (and back); restore names the first misfit and
leaves the caller's objects as they were; restoring unpickles nothing. Saves
killed with SIGKILL at random moments never leave a partial checkpoint that
counts as the latest, and the previous one always restores: 2 kills here, 24
with ``-m slow`` (docs/checkpoints.md records the figures).

The other process is ``tests/checkpoint_worker.py``.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
import jgd.checkpoint
import jgd.train
from tests import checkpoint_worker as worker

# Its tests share module fixtures that run for seconds: one xdist worker
# runs them all (--dist loadgroup), so the fixtures run once.
pytestmark = pytest.mark.xdist_group("checkpoint")


ROOT = Path(__file__).resolve().parents[1]
K = 3  # steps before the interruption, and after it


def assert_leaves_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        if jnp.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert type(x) is type(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def user_view(state):
    return state.params, state.opt_state, state.step


def worker_init(flat=True):
    return jgd.train.init(worker.make_params(), worker.make_opt(), flat=flat)


@pytest.fixture(scope="module")
def trained():
    """The worker's model after ``K`` steps (packed) and after ``2 K`` (the
    run never interrupted)."""
    k = worker.train(worker_init(), K)
    return {None: k, "2K": worker.train(jax.tree.map(jnp.copy, k), K)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, trained):
    """A directory holding the packed state at step ``K`` (read only)."""
    directory = tmp_path_factory.mktemp("saved")
    jgd.checkpoint.save(directory, trained[None])
    return directory


def run_worker(*args, env=None):
    done = subprocess.run(
        [sys.executable, "-m", "tests.checkpoint_worker", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def quadratic(p, b):
    return sum(jnp.sum((x - b) ** 2) for x in jax.tree.leaves(p))


# --------------------------------------------------------------------------
# Round trips.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("flat", [True, False])
def test_round_trip_across_layouts(tmp_path, saved, trained, flat):
    # Saved packed, restored packed or leaf by leaf; that saved again and
    # restored packed.
    like = worker_init(flat)
    r = jgd.checkpoint.restore(saved, like)
    assert type(r.state.layout) is type(like.layout)
    assert (r.step, r.fresh, r.dropped) == (K, (), ())
    assert r.state.opt is like.opt
    assert_leaves_equal(user_view(r.state), user_view(trained[None]))
    jgd.checkpoint.save(tmp_path, r.state)
    back = jgd.checkpoint.restore(tmp_path, worker_init(True)).state
    assert isinstance(back.layout, jgd.train.Layout)
    assert_leaves_equal(user_view(back), user_view(trained[None]))
    # ... and it trains on exactly as the run never interrupted.
    assert_leaves_equal(user_view(worker.train(back, K)), user_view(trained["2K"]))


def test_fresh_process_continues_bit_identically(tmp_path, trained):
    jgd.checkpoint.save(tmp_path, trained[None])
    run_worker("continue", tmp_path, K)  # restore, K steps, save: 2 K
    r = jgd.checkpoint.restore(tmp_path, worker_init())
    assert r.step == 2 * K
    assert_leaves_equal(user_view(r.state), user_view(trained["2K"]))


def test_paths_are_readable_and_nothing_is_unpickled(saved, trained, monkeypatch):
    meta = json.loads((saved / str(K) / "meta" / "metadata").read_text())
    paths = [leaf["path"] for leaf in meta["leaves"]]
    assert paths[:3] == ["params/layers/0/b", "params/layers/0/w", "params/layers/1/w"]
    assert "opt_state/1/0:ScaleByAdamState/count" in paths
    assert "opt_state/1/0:ScaleByAdamState/mu/layers/0/w" in paths
    assert paths[-1] == "step"
    assert (
        meta["leaves"][1]["shape"] == [4, 8] and meta["leaves"][1]["dtype"] == "float32"
    )

    def refuse(*args, **kwargs):
        raise AssertionError("restore unpickled something")

    for fn in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, fn, refuse)
    r = jgd.checkpoint.restore(saved, worker_init())
    assert_leaves_equal(user_view(r.state), user_view(trained[None]))


def test_pair_of_numpy_python_empty_and_key_leaves(tmp_path):
    def pair(v):
        params = {
            "f": 1.5 + v,
            "n": np.arange(3.0) + v,  # float64 stays float64
            "bf": jnp.full(2, 1 + v, jnp.bfloat16),
            "empty": jnp.zeros((0, 3)),
            "none": None,
            "odd/key.name:x": jnp.full(1, v),
        }
        opt_state = {
            "count": jnp.int32(3 + v),
            "key": jax.random.key(int(v)),
            "raw": jax.random.PRNGKey(int(v)),
        }
        return params, opt_state

    jgd.checkpoint.save(tmp_path, pair(1.0))
    r = jgd.checkpoint.restore(tmp_path, pair(0.0))
    assert_leaves_equal(r.state, pair(1.0))
    assert r.state[0]["none"] is None and type(r.state[0]["f"]) is float
    assert "params/odd%2Fkey%2Ename%3Ax" in r.carried


def test_noise_key_in_a_train_state(tmp_path):
    def state(key):
        opt = jgd.chain(jgd.add_noise(0.01, 0.55, key=key), jgd.sgd(0.1, momentum=0.9))
        return jgd.train.init({"w": jnp.full(3, float(key))}, opt)

    jgd.checkpoint.save(tmp_path, state(3))
    r = jgd.checkpoint.restore(tmp_path, state(4))
    assert_leaves_equal(user_view(r.state), user_view(state(3)))


def test_abstract_pair_is_read_onto_the_default_device(saved, trained):
    state = trained[None]
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
        (state.params, state.opt_state),
    )
    r = jgd.checkpoint.restore(saved, abstract)
    assert_leaves_equal(r.state, (state.params, state.opt_state))
    assert r.dropped == ("step",)


# --------------------------------------------------------------------------
# A changed chain.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adam_checkpoint(tmp_path_factory):
    """A TrainState trained 2 steps with jgd.adam, saved (read only)."""
    directory = tmp_path_factory.mktemp("adam")
    params = {"layers": [{"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}]}
    step = jgd.train.make_step(quadratic)
    state = jgd.train.init(params, jgd.adam(0.1))
    for _ in range(2):
        state, _ = step(state, 0.5)
    jgd.checkpoint.save(directory, state)
    donated = jax.tree.map(jnp.copy, state)
    step(donated, 0.5)
    return directory, params, state, donated


def test_adam_into_a_chain_keeps_moments_and_count(adam_checkpoint):
    directory, params, saved, _ = adam_checkpoint
    chain = jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adam(0.1))
    r = jgd.checkpoint.restore(directory, jgd.train.init(params, chain), strict=True)
    assert (r.fresh, r.dropped) == ((), ())
    adam = r.state.opt_state[1][0]
    assert int(adam.count) == 2
    assert_leaves_equal(adam, saved.opt_state[0])
    assert_leaves_equal(r.state.params, saved.params)
    assert "opt_state/1/0:ScaleByAdamState/mu/layers/0/w" in r.carried


def test_chain_back_into_adam(tmp_path, adam_checkpoint):
    directory, params, saved, _ = adam_checkpoint
    chain = jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adam(0.1))
    moved = jgd.checkpoint.restore(directory, jgd.train.init(params, chain)).state
    jgd.checkpoint.save(tmp_path / "chain", moved)
    r = jgd.checkpoint.restore(
        tmp_path / "chain", jgd.train.init(params, jgd.adam(1.0))
    )
    assert_leaves_equal(user_view(r.state), user_view(saved))


def test_a_new_transform_starts_fresh(adam_checkpoint):
    directory, params, saved, _ = adam_checkpoint
    chain = jgd.chain(jgd.trace(0.5), jgd.adam(0.1))
    like = jgd.train.init(params, chain)
    r = jgd.checkpoint.restore(directory, like)
    assert r.fresh == (
        "opt_state/0:TraceState/trace/layers/0/b",
        "opt_state/0:TraceState/trace/layers/0/w",
    )
    assert r.dropped == ()
    assert_leaves_equal(r.state.opt_state[0], like.opt_state[0])  # zeros
    assert_leaves_equal(r.state.opt_state[1][0], saved.opt_state[0])
    with pytest.raises(TypeError) as e:
        jgd.checkpoint.restore(directory, like, strict=True)
    assert str(e.value).startswith(
        "jgd.checkpoint.restore: opt_state/0:TraceState/trace/layers/0/b: no saved "
        "state fits it, and strict=True wants the whole optimizer state"
    )


def test_another_optimizer_drops_and_starts_fresh(adam_checkpoint):
    directory, params, saved, _ = adam_checkpoint
    r = jgd.checkpoint.restore(
        directory, jgd.train.init(params, jgd.sgd(0.1, momentum=0.9))
    )
    assert len(r.fresh) == 2 and len(r.dropped) == 5  # trace; count, mu, nu
    assert_leaves_equal(r.state.params, saved.params)


def test_a_donated_state(tmp_path, adam_checkpoint):
    directory, _, saved, donated = adam_checkpoint
    with pytest.raises(ValueError) as e:
        jgd.checkpoint.save(tmp_path, donated)
    assert str(e.value) == (
        "jgd.checkpoint.save: this TrainState was donated to a step, which consumed "
        "its buffers; use the state that step returned."
    )
    # As like it gives shapes and shardings: enough when nothing starts fresh.
    r = jgd.checkpoint.restore(directory, donated)
    assert_leaves_equal(user_view(r.state), user_view(saved))


def test_optax_state_restores_into_jgd(tmp_path):
    optax = pytest.importorskip("optax")
    params = {"w": jnp.arange(3.0)}
    adam, empty = optax.adam(0.1).init(params)
    opt_state = (adam._replace(count=jnp.int32(5)), empty)
    jgd.checkpoint.save(tmp_path, (params, opt_state))
    r = jgd.checkpoint.restore(tmp_path, jgd.train.init(params, jgd.adam(0.1)))
    assert int(r.state.opt_state[0].count) == 5 and r.fresh == ()


# --------------------------------------------------------------------------
# Misfits and bad arguments.
# --------------------------------------------------------------------------


def pair_like(w_shape=(3, 4), dtype=jnp.float32, extra=False):
    params = {"layers": [{"w": jnp.zeros(w_shape, dtype)}]}
    if extra:
        params["layers"].append({"w": jnp.zeros(2)})
    return params, jgd.adam(0.1).init(params)


@pytest.mark.parametrize(
    "like,message",
    [
        (
            pair_like((4, 3)),
            "params/layers/0/w: saved shape (3, 4) but like has (4, 3).",
        ),
        (
            pair_like(dtype=jnp.bfloat16),
            "params/layers/0/w: saved dtype float32 but like has bfloat16.",
        ),
        (
            pair_like(extra=True),
            (
                "params/layers/1/w: like has this leaf but the checkpoint (step 0) does "
                "not."
            ),
        ),
        (
            ({"layers": [{}]}, ()),
            "params/layers/0/w: saved (step 0) but like has no such leaf.",
        ),
        (
            (pair_like()[0], jgd.adam(0.1, mu_dtype=jnp.bfloat16).init(pair_like()[0])),
            (
                "opt_state/0:ScaleByAdamState/mu/layers/0/w: saved dtype float32 but like "
                "has bfloat16."
            ),
        ),
    ],
)
def test_misfit_names_the_first_path(tmp_path, like, message):
    jgd.checkpoint.save(tmp_path, pair_like())
    with pytest.raises(TypeError) as e:
        jgd.checkpoint.restore(tmp_path, like)
    assert str(e.value) == "jgd.checkpoint.restore: " + message


def test_failed_restore_leaves_like_untouched(saved):
    params = worker.make_params()
    params["layers"][1]["w"] = jnp.zeros((8, 2))
    like = jgd.train.init(params, worker.make_opt())
    before = jax.tree.map(np.array, user_view(like))
    with pytest.raises(TypeError, match=r"layers/1/w: saved shape \(8, 1\)"):
        jgd.checkpoint.restore(saved, like)
    assert_leaves_equal(jax.tree.map(np.array, user_view(like)), before)
    worker.train(like, 0)  # still usable (not donated)


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda d, saved, s: jgd.checkpoint.save(d, s, keep=0),
            ValueError,
            (
                "jgd.checkpoint.save: keep must be an int >= 1; got 0. Pass keep=None "
                "to keep every checkpoint."
            ),
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(d, s, keep=2.0),
            TypeError,
            "jgd.checkpoint.save: keep must be an int >= 1; got 2.0.",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(3, s),
            TypeError,
            (
                "jgd.checkpoint.save: directory must be a path (str or os.PathLike); "
                "got 3 (int)."
            ),
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(d / "file", s),
            ValueError,
            "jgd.checkpoint.save: directory must be a directory path; got",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(d, s, step=-1),
            ValueError,
            "jgd.checkpoint.save: step must be an int >= 0 or None; got -1.",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(d, s, step="1"),
            TypeError,
            "jgd.checkpoint.save: step must be an int >= 0 or None; got '1' (str).",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(d, s.params),
            TypeError,
            (
                "jgd.checkpoint.save: state must be a jgd.train.TrainState or a "
                "(params, opt_state) pair; got dict."
            ),
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(d, ({"w": "text"}, ())),
            TypeError,
            "jgd.checkpoint.save: params/w: leaves must be arrays or numbers; got str.",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.restore(d, s.params),
            TypeError,
            (
                "jgd.checkpoint.restore: like must be a jgd.train.TrainState or a "
                "(params, opt_state) pair; got dict."
            ),
        ),
        (
            lambda d, saved, s: jgd.checkpoint.restore(d / "empty", s),
            FileNotFoundError,
            "jgd.checkpoint.restore: no checkpoint in",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.restore(saved, s, step=5),
            FileNotFoundError,
            "jgd.checkpoint.restore: no checkpoint of step 5 in",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.save(saved, s, step=1),
            ValueError,
            "jgd.checkpoint.save: step must be after the latest checkpoint (3) in",
        ),
        (
            lambda d, saved, s: jgd.checkpoint.all_steps(None),
            TypeError,
            "jgd.checkpoint.all_steps: directory must be a path",
        ),
    ],
)
def test_bad_arguments(tmp_path, saved, trained, call, error, message):
    (tmp_path / "file").write_text("")
    with pytest.raises(error) as e:
        call(tmp_path, saved, trained[None])
    assert str(e.value).startswith(message)


# --------------------------------------------------------------------------
# The directory: keep, latest, leftovers of crashes.
# --------------------------------------------------------------------------


def test_keep_the_newest(tmp_path):
    for step in range(5):
        jgd.checkpoint.save(tmp_path, worker.saver_tree(step), keep=2)
    assert jgd.checkpoint.all_steps(tmp_path) == [3, 4]
    assert sorted(os.listdir(tmp_path)) == ["3", "4"]
    assert jgd.checkpoint.save(tmp_path, worker.saver_tree(5), keep=None) == 5
    assert jgd.checkpoint.latest_step(tmp_path) == 5
    assert jgd.checkpoint.latest_step(tmp_path / "none") is None


def test_partial_checkpoints_never_count(tmp_path):
    jgd.checkpoint.save(tmp_path, worker.saver_tree(1), step=1)
    jgd.checkpoint.save(tmp_path, worker.saver_tree(2), step=2)
    # What crashes leave: orbax's temporary directory (even a complete-looking
    # one), a step renamed for deletion, a step directory without its JSON.
    shutil.copytree(tmp_path / "2", tmp_path / "9.orbax-checkpoint-tmp")
    (tmp_path / "1").rename(tmp_path / "1.jgd-deleting")
    shutil.copytree(tmp_path / "2", tmp_path / "8")
    (tmp_path / "8" / "meta" / "metadata").unlink()
    assert jgd.checkpoint.all_steps(tmp_path) == [2]
    like = worker.saver_tree(0)
    assert_leaves_equal(
        jgd.checkpoint.restore(tmp_path, like).state, worker.saver_tree(2)
    )
    jgd.checkpoint.save(
        tmp_path, worker.saver_tree(10), step=10
    )  # clears the leftovers
    assert sorted(os.listdir(tmp_path)) == ["10", "2", "8"]


# --------------------------------------------------------------------------
# Across meshes, in a process with 8 simulated CPU devices.
# --------------------------------------------------------------------------


def test_one_device_to_eight_and_back(tmp_path, trained):
    jgd.checkpoint.save(tmp_path, trained[None])
    flags = (
        "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    out = json.loads(run_worker("mesh", tmp_path, env=env).splitlines()[-1])
    assert out["devices"] == 8 and out["problems"] == []
    # The worker saved the state restored on its mesh: back on one device.
    r = jgd.checkpoint.restore(tmp_path, worker_init())
    assert r.step == K + 1
    device = jax.devices()[0]
    for x in jax.tree.leaves((r.state.stored_params, r.state.stored_opt_state)):
        assert x.sharding.device_set == {device}
    assert_leaves_equal(user_view(r.state)[:2], user_view(trained[None])[:2])


# --------------------------------------------------------------------------
# Proof by fault injection: kill -9 while saving.
# --------------------------------------------------------------------------


def _pump(stream, lines):
    for line in stream:
        lines.put((time.monotonic(), line))


def kill_while_saving(directory: Path, kills: int, seed: int) -> list[dict]:
    """Start the saver ``kills`` times and SIGKILL it at a random moment: a
    uniform delay over about 2 saves after its first save began. After each
    kill: the latest checkpoint is the last one saved or the one being saved
    (never a partial one), it and the previous one restore with their own
    values, and every listed one restores. Returns one record per kill."""
    rng = random.Random(seed)
    like = worker.saver_tree(-1)
    latest = jgd.checkpoint.latest_step(directory)
    durations = [0.3]  # seconds per save, refined from the worker's reports
    records = []
    for i in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.checkpoint_worker", "saver", directory],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue = queue.Queue()
        pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        pump.start()
        try:
            _, first = lines.get(timeout=300)  # imports done, first save begun
            assert first.startswith("saving"), first
            delay = rng.uniform(0, 2 * statistics.median(durations))
            time.sleep(delay)
            t_kill = time.monotonic()
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
            pump.join(timeout=60)  # what the pipe still holds, up to EOF
            proc.stdout.close()
        events = [first] + [line for _, line in iter_queue(lines)]
        marks = [(w, int(s), float(t)) for w, s, t in (e.split() for e in events)]
        begun = [(s, t) for w, s, t in marks if w == "saving"]
        saved = [s for w, s, t in marks if w == "saved"]
        starts = dict(begun)
        durations += [t - starts[s] for w, s, t in marks if w == "saved"]
        in_progress, t_begin = begun[-1]
        leftovers = sorted(
            re.sub(r"^[0-9]+", "", n) for n in os.listdir(directory) if not n.isdigit()
        )
        previous = saved[-1] if saved else latest
        latest = jgd.checkpoint.latest_step(directory)
        steps = jgd.checkpoint.all_steps(directory)
        # The latest is the last save that finished, or the one cut short if
        # its rename had happened; never a partial one.
        assert latest in (previous, in_progress), (latest, previous, in_progress)
        assert previous is None or previous in steps
        for s in steps:  # every listed checkpoint restores, with its own values
            r = jgd.checkpoint.restore(directory, like, step=s)
            assert_leaves_equal(r.state, worker.saver_tree(s))
        records.append(
            {
                "kill": i + 1,
                "delay_s": round(delay, 3),
                "into_save_s": round(t_kill - t_begin, 3),
                "saves_done": len(saved),
                "left": leftovers,
                "latest": latest,
                "outcome": "new" if latest == in_progress else "previous",
            }
        )
    return records


def iter_queue(q):
    while True:
        try:
            yield q.get_nowait()
        except queue.Empty:
            return


def test_kill_while_saving_short(tmp_path):
    jgd.checkpoint.save(tmp_path, worker.saver_tree(0))
    records = kill_while_saving(tmp_path, kills=2, seed=0)
    assert len(records) == 2


@pytest.mark.slow
def test_kill_while_saving_many(tmp_path):
    jgd.checkpoint.save(tmp_path, worker.saver_tree(0))
    records = kill_while_saving(tmp_path, kills=24, seed=1)
    report = os.environ.get("JGD_KILL_REPORT")
    if report:
        Path(report).write_text(json.dumps(records, indent=1))
    assert len(records) == 24
