"""``jgd bench``: one training step of real models, jgd against the
hand-written optax step, timed interleaved in one process.

Holds ``main(argv)`` (the ``jgd bench`` console command), ``run`` (the
measurements, returned as a JSON-ready dict), ``load_goals`` and
``evaluate`` (the targets in ``benchmarks/goals.json`` checked on a run),
``format_table`` and ``format_markdown``, and the tables they use:
``WORKLOADS``, ``OPTIMIZERS``, ``VARIANTS``, ``PRESETS``. By module:

- ``jgd.bench.models``: the models (MLP, GPT, CNN, residual MLP) as plain
  functions over pytrees, with deterministic init and data.
- ``jgd.bench.workloads``: which models, optimizers, variants and presets.
- ``jgd.bench.runners``: one compiled step per variant, and the two
  memory-bandwidth limit kernels.
- ``jgd.bench.measure``: timing a cell, ``run``.
- ``jgd.bench.goals``: reading and evaluating the goals.
- ``jgd.bench.report``: the tables.
- ``jgd.bench.cli``: ``main(argv)``.

The library never imports this package, and this package uses only jgd's
public API. What is measured and how to read it: ``benchmarks/README.md``.

Example (a tiny run, as the tests do)::

    jgd bench --preset tiny --out /tmp/bench
"""

from jgd.bench.cli import main
from jgd.bench.goals import evaluate, load_goals
from jgd.bench.measure import run
from jgd.bench.report import format_markdown, format_table
from jgd.bench.workloads import OPTIMIZERS, PRESETS, VARIANTS, WORKLOADS

__all__ = [
    "OPTIMIZERS",
    "PRESETS",
    "VARIANTS",
    "WORKLOADS",
    "evaluate",
    "format_markdown",
    "format_table",
    "load_goals",
    "main",
    "run",
]
