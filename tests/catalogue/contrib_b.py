"""Cases for jgd.contrib: adopt, ademamix, simplified_ademamix, cocob, mechanize, momo, sophia.

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
