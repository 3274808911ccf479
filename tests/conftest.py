"""Shared fixtures (the strict promotion settings live in the root conftest.py)."""

import jax
import pytest

# jax.enable_x64 arrived in jax 0.6; the floor (pyproject) has it in experimental.
_enable_x64 = getattr(jax, "enable_x64", None)
if _enable_x64 is None:
    from jax.experimental import enable_x64 as _enable_x64


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (restored afterwards)."""
    with _enable_x64(True):
        yield
