"""``jgd.train.make_step(..., skip_nonfinite=True)``: a step whose loss or
gradient holds a NaN or an Inf leaves the state as it was, bit for bit, and
the metrics say so and name the gradient leaves that held one.

One compiled step (adam over packed leaves) serves every check; the default
step is only lowered, to show it carries no finiteness check.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgd
import jgd.train

# Its tests share module fixtures that run for seconds: one xdist worker
# runs them all (--dist loadgroup), so the fixtures run once.
pytestmark = pytest.mark.xdist_group("train_skip")


def loss(p, batch):
    """Each param pulled to its own target: a NaN in one target makes the loss
    and that param's gradient NaN, and no other's."""
    return jnp.sum((p["w"] - batch["w"]) ** 2) + (p["b"] - batch["b"]) ** 2


PARAMS = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.25)}
GOOD = [
    {"w": jnp.array([1.0, 2.0, 3.0]), "b": jnp.array(1.0)},
    {"w": jnp.array([-1.0, 0.0, 1.0]), "b": jnp.array(-2.0)},
]
BAD = {"w": jnp.array([1.0, jnp.nan, 3.0]), "b": jnp.array(1.0)}


def _bits(state):
    """Every leaf of the state (stored params, optimizer state, step) as bytes."""
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(state.replace(opt=None))]


@pytest.fixture(scope="module")
def step():
    return jgd.train.make_step(loss, skip_nonfinite=True, donate=False)


def test_a_nonfinite_step_is_skipped_and_named(step):
    state = jgd.train.init(
        PARAMS, jgd.chain(jgd.clip_by_global_norm(1.0), jgd.adam(0.1)), flat=True
    )
    assert isinstance(state.layout, jgd.train.Layout)  # packed buckets
    state, metrics = step(state, GOOD[0])
    assert not metrics["skipped"] and jgd.nonfinite_paths(metrics) == []
    skipped, metrics = step(state, BAD)
    assert bool(metrics["skipped"]) and np.isnan(metrics["loss"])
    assert jgd.nonfinite_paths(metrics) == ["['w']"]
    assert _bits(skipped) == _bits(state)
    assert int(skipped.step) == 1


def test_a_good_step_after_matches_a_run_without_the_bad_batch(step):
    opt = jgd.adam(0.1)
    seen = jgd.train.init(PARAMS, opt)
    never = jgd.train.init(PARAMS, opt)
    for batch in (GOOD[0], BAD, BAD, GOOD[1]):
        seen, _ = step(seen, batch)
    for batch in GOOD:
        never, _ = step(never, batch)
    assert _bits(seen) == _bits(never)


def test_off_by_default():
    state = jgd.train.init(PARAMS, jgd.adam(0.1))
    default = jgd.train.make_step(loss).lower(state, GOOD[0]).as_text()
    skipping = jgd.train.make_step(loss, skip_nonfinite=True)
    assert "is_finite" not in default
    assert "is_finite" in skipping.lower(state, GOOD[0]).as_text()
