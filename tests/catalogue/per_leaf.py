"""Cases for Per-leaf optimizers and blocks (jgd/optimizers/per_leaf.py, jgd/transforms/per_leaf.py).

See tests/catalogue/__init__.py for what each table feeds.
"""

from __future__ import annotations

CASES: dict = {}
SCHEDULED: set[str] = set()
CONFORMANCE: dict = {}
BAD_INPUT: list = []
THROUGH_TRAIN: dict = {}
KNOWN_DIFFERENCES: dict[str, str] = {}
SCHEDULES: dict = {}
