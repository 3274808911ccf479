"""The catalogue's test tables, one module per family, merged here.

Each module fills the same tables, which the shared tests read:

- ``CASES``: name -> (jgd factory, optax factory), each taking ``sched``
  (bool); ``SCHEDULED`` names the cases also run with a schedule as learning
  rate. Read by tests/test_vs_optax.py (50 steps, f32 and f64).
- ``CONFORMANCE``: name -> (factory of the learning rate, lr on the bowl, lr
  on Rosenbrock, steps on Rosenbrock). Read by tests/test_conformance.py.
- ``BAD_INPUT``: (call, exception type, exact message). Read by
  tests/test_errors.py.
- ``THROUGH_TRAIN``: name -> zero-argument factory of a jgd optimizer, run
  through ``jgd.train.make_step`` against a hand-written loop
  (tests/test_catalogue_train.py).
- ``KNOWN_DIFFERENCES``: deliberate differences from optax, merged into
  tests/test_vs_optax.py's ``KNOWN_DIFFERENCES``.
- ``SCHEDULES``: name -> (jgd schedule, optax schedule, last step), merged
  into tests/test_vs_optax.py's ``SCHEDULES``.
"""

from __future__ import annotations

from tests.catalogue import (
    accumulate,
    adam_family,
    combine,
    contrib_a,
    contrib_b,
    elementwise,
    injection,
    losses,
    partitioning,
    per_leaf,
    quasi_newton,
    safety,
    schedules,
    wrappers_conformance,
)

_MODULES = [
    losses,
    adam_family,
    per_leaf,
    elementwise,
    quasi_newton,
    contrib_a,
    contrib_b,
    schedules,
    partitioning,
    combine,
    accumulate,
    injection,
    safety,
    wrappers_conformance,
]


def _merged(table: str):
    out: dict = {}
    for module in _MODULES:
        part = getattr(module, table)
        clash = set(out) & set(part)
        if clash:
            raise ValueError(f"tests.catalogue: {table} names twice: {sorted(clash)}")
        out.update(part)
    return out


CASES = _merged("CASES")
CONFORMANCE = _merged("CONFORMANCE")
THROUGH_TRAIN = _merged("THROUGH_TRAIN")
KNOWN_DIFFERENCES = _merged("KNOWN_DIFFERENCES")
SCHEDULES = _merged("SCHEDULES")
SCHEDULED: set[str] = set().union(*(m.SCHEDULED for m in _MODULES))
BAD_INPUT: list = [case for m in _MODULES for case in m.BAD_INPUT]
