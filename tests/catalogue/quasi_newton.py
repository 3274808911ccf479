"""Cases for L-BFGS and its line searches (jgd/optimizers/quasi_newton.py, jgd/transforms/linesearch.py).

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
