"""Shared fixtures (the strict promotion settings live in the root conftest.py)."""

import jax
import pytest


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (restored afterwards)."""
    with jax.enable_x64(True):
        yield
