"""Training: the loop of the tutorials as one compiled program.

Holds ``TrainState`` (params, optimizer state and step count, a pytree),
``init``, ``make_step`` (a compiled, donating ``(state, batch) -> (state,
metrics)``), ``fit`` (epochs of full-batch, stochastic or mini-batch gradient
descent, each epoch one compiled ``lax.scan``), ``History``,
``NonFiniteLossError`` and ``Layout`` (how params are packed). The code is in
``layout.py`` (packing), ``step.py`` (state and step) and ``fit.py``.

**Flat-resident storage.** By default (``flat=True``) a ``TrainState`` keeps
the params and the optimizer state as a few contiguous 1-D buffers, one per
*bucket*, instead of one buffer per leaf. A bucket holds every leaf of one
dtype that carries the same labels, where the labels are what the optimizer
needs to tell leaves apart: for each weight-decay ``mask`` in the optimizer
(``jgd.adamw(mask=...)``, ``jgd.add_decayed_weights(mask=...)``), whether the
leaf is decayed. Inside the compiled step the loss function still receives
the user's pytree (rebuilt by slicing the buckets), its gradients are packed
into buckets the same way, and the optimizer runs over a handful of large
leaves. The arithmetic is the same element by element, so the results equal
the leaf-by-leaf path (``flat=False``) up to the order of the sums in global
norms; what changes is that JAX handles a few buffers at the ``jit`` boundary
instead of thousands. ``state.params`` and ``state.opt_state`` give the
user's trees back.

Transforms work flat when their math is element-wise or global (all of jgd's:
momentum, RMSprop, AdaGrad, Adam, clipping, global-norm clipping, masked
weight decay). An optax transform inside a jgd chain works flat when it is
element-wise too; optax transforms that need leaf boundaries (per-layer norms
or trust ratios, optax masks and ``multi_transform`` labels over the user's
tree) need ``flat=False``.

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
from jgd.train.layout import Layout
from jgd.train.step import TrainState, init, make_step

__all__ = [
    "History",
    "Layout",
    "NonFiniteLossError",
    "TrainState",
    "fit",
    "init",
    "make_step",
]
