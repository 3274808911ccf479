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


@pytest.fixture(autouse=True)
def _x64_left_as_found():
    """Fail a test that leaves float64 on (or off): every later test in its
    worker would run its float32 cross-checks in float64 without saying so."""
    before = bool(jax.config.jax_enable_x64)
    yield
    if bool(jax.config.jax_enable_x64) != before:
        pytest.fail(
            f"this test left jax_enable_x64 {'off' if before else 'on'}: "
            "an enable_x64 context or the x64 fixture was not unwound in order",
            pytrace=False,
        )
