"""(being written)"""

from __future__ import annotations

CASES: dict = {}
SCHEDULED: set[str] = set()
CONFORMANCE: dict = {}
BAD_INPUT: list = []
THROUGH_TRAIN: dict = {}
KNOWN_DIFFERENCES: dict = {}
SCHEDULES: dict = {}
