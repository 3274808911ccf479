"""docs/composing.md's Python examples run as written, in one namespace (kept
true when the wrappers' API moves)."""

from __future__ import annotations

import pathlib
import re

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_composing_guide_python_blocks_run(capsys):
    text = (ROOT / "docs/composing.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 9
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/composing.md block {i}", "exec"), namespace)  # noqa: S102
        except Exception as e:
            raise AssertionError(
                f"docs/composing.md python block {i} failed: {e!r}"
            ) from e
    assert "['backbone']['w']" in capsys.readouterr().out  # where the NaN came from
    np.testing.assert_allclose(float(namespace["lr"]), 5e-3, rtol=1e-6)
    assert int(namespace["train_state"].step) == 10  # lookahead's steps
    loss = namespace["history"].loss
    assert loss[-1] < loss[0]  # reduce_on_plateau's run trained
