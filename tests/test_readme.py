"""The README's and the training guide's Python examples run as written (kept
true when the API moves)."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_blocks(name: str, at_least: int) -> dict:
    """Run every ```python block of ``name`` in one namespace; return it."""
    text = (ROOT / name).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= at_least
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{name} block {i}", "exec"), namespace)  # noqa: S102
        except Exception as e:
            raise AssertionError(f"{name} python block {i} failed: {e!r}") from e
    return namespace


def test_readme_python_blocks_run():
    namespace = _run_blocks("README.md", 3)
    assert float(namespace["slope"]) < 0  # a larger learning rate helps on the bowl
    assert namespace["sweep"].shape == (16,)
    assert namespace["history"].loss[-1] < namespace["history"].loss[0]
    assert float(namespace["state"].opt.learning_rate) == 1e-3  # changed in place


def test_training_guide_python_blocks_run():
    namespace = _run_blocks("docs/training.md", 2)
    assert float(namespace["state"].opt.learning_rate) == 3e-3
    assert int(namespace["state"].step) == 2
