"""``jgd bench``: optimizer steps under ``jit`` against optax, torch.optim and
the machine's memory-bandwidth limit, measured as ratios in one run.

Holds ``main(argv)`` (the ``jgd bench`` console command), the workloads
(``WORKLOADS``: single big leaves, a transformer-like tree, many small
leaves), the optimizers (``OPTIMIZERS``: each as jgd, optax and torch.optim
builds of the same hyperparameters), the variants that run them
(``VARIANTS``), the presets (``PRESETS``: ``tiny`` for tests, ``quick``,
``full``), ``run`` (the measurements, returned as a JSON-ready dict),
``goals``, ``format_table``, ``format_markdown`` and ``plot``. By module:

- ``jgd.bench.workloads``: ``WORKLOADS``, ``BYTES_PER_PARAM``,
  ``OPTIMIZERS``, ``VARIANTS``, ``PRESETS`` and their builders.
- ``jgd.bench.runners``: one runner per variant and the two limit kernels.
- ``jgd.bench.measure``: timing a cell, the compile sweep, ``run``.
- ``jgd.bench.report``: ``goals``, ``format_table``, ``format_markdown``,
  ``plot``.
- ``jgd.bench.cli``: ``main(argv)``.

How a cell is measured. For one workload and one optimizer every variant is
built first: jgd through its bare ``update`` (``jit``, params and state
donated), jgd through ``jgd.train.make_step`` (flat-resident params and
state), optax's equivalent, and, where torch is installed, ``torch.optim``
with ``foreach=True`` and with ``fused=True``. For the ``jax`` variants
``jit(...).lower`` and ``.compile`` are timed separately and XLA's memory
analysis of the compiled step is kept. Then the variants and two limit
kernels are timed interleaved (A B C ... A B C ..., ``--rounds`` rounds, at
least 7): in a round each runs ``k`` back-to-back steps (``k`` chosen at
warm-up so that a round lasts ``--min-round-s``) and ends with
``block_until_ready``; a variant's step time is the median over rounds of
elapsed/``k``.

The limit. An optimizer step must read and write every parameter and state
element at least once: Adam reads p, g, m, v and writes p, m, v, 28 bytes per
float32 parameter (``BYTES_PER_PARAM``). In the same rotation two one-pass
kernels run over a flat float32 buffer of the optimizer's working-set size
(Adam: 4 floats per parameter): an in-place ``x = 0.5 * x + 0.25`` under a
donating ``jax.jit`` (reads and writes each byte once) and a NumPy copy
between two halves. The faster one's bytes per second is the limit;
``limit_step_s = bytes_per_step / limit_bytes_per_s`` and every step is
reported as ``x_limit = step_s / limit_step_s`` (1.0 means the step runs at
the speed of memory).

Peak memory. On CPU ``jax.Device.memory_stats()`` is ``None``, so two
figures are recorded: XLA's static memory analysis of the compiled step
(arguments + outputs - aliased + temporaries: what the step needs resident,
donation included) for the jax variants, and, for every variant, the growth
of the process's resident set during two steps, read from ``VmHWM`` in
``/proc/self/status`` after resetting it through ``/proc/self/clear_refs``
(Linux; elsewhere the ``resource.getrusage`` maximum, which cannot be reset).

Example (a tiny run, as the tests do)::

    jgd bench --preset tiny --out /tmp/bench --plot
"""

from jgd.bench.cli import main
from jgd.bench.measure import LIMITS as LIMITS
from jgd.bench.measure import run
from jgd.bench.report import JGD_VARIANTS as JGD_VARIANTS
from jgd.bench.report import format_markdown, format_table, plot
from jgd.bench.report import goals as goals
from jgd.bench.workloads import (
    BYTES_PER_PARAM,
    OPTIMIZERS,
    PRESETS,
    VARIANTS,
    WORKLOADS,
)
from jgd.bench.workloads import LR as LR
from jgd.bench.workloads import WORKING_SET as WORKING_SET

# Also public, outside ``__all__`` as before the split: LIMITS, JGD_VARIANTS,
# goals, LR, WORKING_SET (imported above as ``X as X``).

__all__ = [
    "BYTES_PER_PARAM",
    "OPTIMIZERS",
    "PRESETS",
    "VARIANTS",
    "WORKLOADS",
    "format_markdown",
    "format_table",
    "main",
    "plot",
    "run",
]
