"""The optax cross-checks again on a GPU (run on the lent machine with
``python -m pytest -m gpu``; skipped by default, CI has no GPU)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from tests.test_vs_optax import CASES, _cross_check

pytestmark = pytest.mark.gpu


def _gpu():
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        pytest.fail("the gpu marker was selected but JAX sees no GPU")


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_on_gpu_float32(name):
    with jax.default_device(_gpu()):
        _cross_check(name, False, jnp.float32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_on_gpu_float64(name, x64):
    with jax.default_device(_gpu()):
        _cross_check(name, False, jnp.float64)
