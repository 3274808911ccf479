"""The README's Python examples run as written (kept true when the API moves)."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 3
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md block {i}", "exec"), namespace)  # noqa: S102
        except Exception as e:
            raise AssertionError(f"README.md python block {i} failed: {e!r}") from e
    assert float(namespace["slope"]) < 0  # a larger learning rate helps on the bowl
    assert namespace["sweep"].shape == (16,)
    assert namespace["history"].loss[-1] < namespace["history"].loss[0]


def test_training_guide_python_blocks_run():
    guide = README.parent / "docs" / "training.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 2
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/training.md block {i}", "exec"), namespace)  # noqa: S102
        except Exception as e:
            raise AssertionError(f"docs/training.md block {i} failed: {e!r}") from e
    assert float(namespace["state"].opt.learning_rate) == 3e-3
    assert int(namespace["state"].step) == 2
