"""Training: the loop of the tutorials as one compiled program.

Holds ``TrainState`` (stored params, optimizer state, step count and the
optimizer itself, a pytree), ``init``, ``make_step`` (a compiled, donating
``(state, batch) -> (state, metrics)`` that takes the optimizer from the
state), ``fit`` (epochs of full-batch, stochastic or mini-batch gradient
descent, each epoch one compiled ``lax.scan``), ``History``,
``NonFiniteLossError``, and the layouts ``Layout`` and ``PerLeaf`` with the
packing threshold ``PACK_BELOW``. ``layout.py`` is how params are stored,
``step.py`` the state and step, ``fit.py`` the loop; ``README.md`` explains.

**Layout.** Leaves of at least ``PACK_BELOW`` elements, and leaves split
across devices, stay resident as themselves: the same array, shape and
sharding, nothing copied per step. Smaller leaves are packed into one 1-D
bucket per dtype, sharding and weight-decay label, so a model of many small
leaves costs a few buffers per step instead of thousands. Packing is exact
for element-wise and global transforms (all of jgd's today); an optimizer
that needs leaf boundaries (per-leaf norms, optax masks and labels, optax
transforms jgd cannot see into) is stored leaf by leaf (``PerLeaf``), or
refused with ``flat=True``. ``state.params`` and ``state.opt_state`` give
the user's trees back.

Example:
    >>> import jax.numpy as jnp, jgd, jgd.train
    >>> loss = lambda p, batch: jnp.mean((batch[0] * p["w"] + p["b"] - batch[1]) ** 2)
    >>> x = jnp.linspace(-1.0, 1.0, 32)
    >>> params, history = jgd.train.fit(loss, {"w": 0.0, "b": 0.0}, jgd.gd(0.5),
    ...                                 (x, 3.0 * x + 1.0), epochs=100)
    >>> print(f"{float(params['w']):.3f} {float(params['b']):.3f}")
    3.000 1.000
"""

from jgd.train.fit import History, NonFiniteLossError, fit
from jgd.train.layout import PACK_BELOW, PACK_MIN_LEAVES, PACK_MIN_SIZE, Layout, PerLeaf
from jgd.train.state import TrainState, init
from jgd.train.step import COMPILER_OPTIONS, GRAD_BUFFER_MIN_BYTES, make_step

__all__ = [
    "COMPILER_OPTIONS",
    "GRAD_BUFFER_MIN_BYTES",
    "PACK_BELOW",
    "PACK_MIN_LEAVES",
    "PACK_MIN_SIZE",
    "History",
    "Layout",
    "NonFiniteLossError",
    "PerLeaf",
    "TrainState",
    "fit",
    "init",
    "make_step",
]
