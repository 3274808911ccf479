"""Cases for SGD variants, small element-wise blocks and clipping (jgd/optimizers/sgd_variants.py,
jgd/transforms/elementwise.py, jgd/transforms/clipping.py).

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
