"""Type checkers understand jgd: user code written as the README writes it
passes ``mypy``, and a mistake in it is reported (so the check can fail).

The files live in ``tests/typing/``: ``user_code.py`` must be clean,
``wrong_code.py`` marks each line mypy must flag with ``# E:``.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

import jgd

ROOT = Path(__file__).resolve().parent.parent
USER_CODE = ROOT / "tests" / "typing" / "user_code.py"
WRONG_CODE = ROOT / "tests" / "typing" / "wrong_code.py"


def _mypy(*paths: Path) -> tuple[str, int]:
    api = pytest.importorskip(
        "mypy.api", reason="mypy is not installed (pip install -e '.[test]')"
    )
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            *map(str, paths),
        ]
    )
    return stdout + stderr, status


def test_user_code_type_checks():
    out, status = _mypy(USER_CODE)
    assert status == 0, out


def test_wrong_code_is_reported():
    out, status = _mypy(WRONG_CODE)
    assert status == 1, out
    lines = WRONG_CODE.read_text().splitlines()
    expected = {i for i, line in enumerate(lines, 1) if "# E:" in line}
    found = {int(m) for m in re.findall(r"wrong_code\.py:(\d+): error:", out)}
    assert found == expected, out
    assert 'Unexpected keyword argument "b9" for "Adam"' in out


def test_user_code_runs():
    # The checked calls are real calls: the types describe what runs.
    runpy.run_path(str(USER_CODE), run_name="user_code")


def test_py_typed_is_shipped():
    assert (Path(jgd.__file__).parent / "py.typed").is_file()
