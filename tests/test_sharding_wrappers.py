"""The composing wrappers (issue 12) keep the user's sharding through
``jgd.train.make_step``, on 8 simulated CPU devices.

What is proven here: for the FSDP sharding of tests/test_sharding.py's MLP
(its params, batch and loss), ``partition``, ``groups`` (a frozen group),
``MultiSteps``, ``apply_if_finite``, ``inject_hyperparams`` and
``lookahead`` (its slow params in the state), nested three deep in two
optimizers to keep compiles few, keep every param's sharding and every
optimizer-state leaf's: a leaf shaped like a param, under that param's path
(moments, accumulators, slow params), carries the param's sharding; any
other (counts, hyperparameters, flags) is replicated over the mesh. After
``STEPS`` steps the params and every state leaf equal the one-device run
(floats to test_sharding's tolerance, the rest exactly). A wrapper jgd.train
refused would have to be listed in ``REFUSED`` with its message; none is.

As in tests/test_sharding.py, XLA_FLAGS must be set before jax starts: one
subprocess (``python -m tests.test_sharding_wrappers``) runs every case and
prints the problems it found as JSON; each test reads one entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jgd
import jgd.train
from tests.test_sharding import (
    RTOL,
    _describe,
    loss_fn,
    make_batch,
    make_params,
    user_shardings,
)

# Its tests share module fixtures that run for seconds: one xdist worker
# runs them all (--dist loadgroup), so the fixtures run once.
pytestmark = pytest.mark.xdist_group("sharding_wrappers")


SCENARIO = "fsdp"
# 4 steps: MultiSteps (k = 2) runs its inner twice, so lookahead syncs once.
STEPS = 4
# Two optimizers, each nesting three wrappers: two compiles each (sharded and
# one-device) instead of two per wrapper.
OPTIMIZERS = {
    "apply_if_finite(partition(inject_hyperparams(adam), sgd))": (
        lambda: jgd.apply_if_finite(
            jgd.partition(
                {
                    "adam": jgd.inject_hyperparams(jgd.adam)(1e-2, b1=0.8),
                    "sgd": jgd.sgd(0.1, momentum=0.9),
                },
                {
                    "w1": "adam",
                    "b1": "adam",
                    "w2": "adam",
                    "b2": "sgd",
                    "ln": "sgd",
                    "temp": "sgd",
                },
            ),
            3,
        )
    ),
    "MultiSteps(groups(lookahead(adam), sgd, freeze))": (
        lambda: jgd.MultiSteps(
            jgd.groups(
                {
                    "w*": jgd.lookahead(jgd.adam(1e-2), 2, 0.5),
                    "b*": jgd.sgd(0.1, momentum=0.9),
                    "ln/*": jgd.freeze(),
                    "temp": jgd.sgd(0.1),
                }
            ),
            every_k_schedule=2,
        )
    ),
}
REFUSED: dict[str, str] = {}  # name -> the start of jgd.train's clear error
CHECKS = ("sharding", "values")

# --------------------------------------------------------------------------
# The worker, run in the subprocess on 8 CPU devices.
# --------------------------------------------------------------------------


def _leaves(tree):
    return [
        (jax.tree_util.keystr(p), x)
        for p, x in jax.tree_util.tree_leaves_with_path(tree)
    ]


def expected_shardings(tree, params, shardings):
    """Each leaf's expected sharding: a param's where the leaf has its shape
    and ends with its path, else replicated over the mesh."""
    mesh = jax.tree.leaves(shardings)[0].mesh
    by_path = [
        (path, x.shape, s)
        for (path, x), s in zip(_leaves(params), jax.tree.leaves(shardings))
    ]
    out = []
    for path, x in _leaves(tree):
        match = [s for p, shape, s in by_path if path.endswith(p) and x.shape == shape]
        out.append(match[0] if match else NamedSharding(mesh, P()))
    return out


def check_sharding(where, tree, params, shardings):
    """Problems with each leaf's sharding, and the paths of the leaves
    expected to be split across devices (so a test sees the check bite)."""
    problems, split = [], []
    for (path, x), want in zip(
        _leaves(tree), expected_shardings(tree, params, shardings), strict=True
    ):
        if not want.is_fully_replicated:
            split.append(where + path)
        if not x.sharding.is_equivalent_to(want, x.ndim):
            problems.append(
                f"{where}{path}: has {_describe(x.sharding)}; expected {_describe(want)}"
            )
    return problems, split


def check_equal(where, tree, expected):
    """Floats as tests/test_sharding.py's check_values; ints and bools exactly."""
    out = []
    for (path, a), e in zip(_leaves(tree), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        if not np.issubdtype(a.dtype, np.floating):
            if not np.array_equal(a, e):
                out.append(f"{where}{path}: {a} on 8 devices, {e} on one")
            continue
        if np.array_equal(a, e):  # zeros, empty leaves, exact agreement
            continue
        a, e = a.astype(np.float64), e.astype(np.float64)
        diff, scale = np.abs(a - e), RTOL * (np.abs(e) + np.abs(e).max())
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.max(np.where(diff == 0, 0.0, diff / scale))
        if ratio > 1:
            out.append(
                f"{where}{path}: differs from one device by {ratio:.1f} times the "
                f"tolerance (max |difference| {np.abs(a - e).max():.1e}, rtol {RTOL})"
            )
    return out


def run(make_opt, params, batch):
    step = jgd.train.make_step(loss_fn)
    state = jgd.train.init(params, make_opt())
    for _ in range(STEPS):
        state, _ = step(state, batch)
    return state.params, state.opt_state


def run_case(name, params, batch):
    shardings, batch_sharding = user_shardings(SCENARIO, params)
    p = jax.device_put(params, shardings)
    b = jax.device_put(batch, batch_sharding)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            expected = run(OPTIMIZERS[name], params, batch)
            got = run(OPTIMIZERS[name], p, b)
    except Exception as e:  # noqa: BLE001 - the test reports it
        return {"error": f"{type(e).__name__}: {e}"}
    on_params = check_sharding("params", got[0], params, shardings)
    on_state = check_sharding("opt_state", got[1], params, shardings)
    return {
        "sharding": on_params[0] + on_state[0],
        "split_state": on_state[1],
        "values": check_equal("params", got[0], expected[0])
        + check_equal("opt_state", got[1], expected[1]),
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }


def main():
    jax.config.update("jax_numpy_dtype_promotion", "strict")  # as in conftest.py
    jax.config.update("jax_numpy_rank_promotion", "raise")
    assert jax.device_count() == 8, jax.devices()
    params, batch = make_params(), make_batch()
    print(json.dumps({name: run_case(name, params, batch) for name in OPTIMIZERS}))


# --------------------------------------------------------------------------
# The tests, reading the worker's results.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results():
    flags = (
        "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_sharding_wrappers"],
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


def test_wrappers_keep_sharding_and_values(results):
    problems = []
    for name, r in results.items():
        if name in REFUSED:
            if not r.get("error", "").startswith(REFUSED[name]):
                problems.append(f"{name}: expected the refusal {REFUSED[name]!r}")
            continue
        if "error" in r:
            problems.append(f"{name}: {r['error']}")
            continue
        problems += [f"{name} {c}: {p}" for c in CHECKS for p in r[c]]
        if not any("mu['w1']" in p for p in r["split_state"]):
            problems.append(f"{name}: no state leaf was expected split: {r}")
        problems += [f"{name} warning: {w}" for w in r["warnings"]]
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    main()
