"""Checkpoints: a training state saved to disk and restored, safe under crashes.

Holds ``save``, ``restore`` (which returns a ``Restored`` report),
``latest_step`` and ``all_steps``. A checkpoint holds the user's trees
(``state.params`` and ``state.opt_state``, never a layout's packed buckets),
each leaf under a readable key path (``params/layers/0/w``,
``opt_state/0:ScaleByAdamState/mu/layers/0/w``), written by orbax-checkpoint's
array handlers beside a JSON description: no pickles, so loading runs no code.
Each ``directory/<step>`` is written under a temporary name and renamed once
complete, so a process killed mid-save leaves the earlier checkpoints as they
were and is never taken for the latest. Needs the ``checkpoint`` extra.

``paths.py`` names the leaves, ``matching.py`` decides which saved leaf fills
which, ``disk.py`` is the directory, ``saving.py`` and ``restoring.py`` the two
directions; ``README.md`` here and ``docs/checkpoints.md`` explain.

Example:
    >>> import tempfile, jax.numpy as jnp, jgd, jgd.checkpoint, jgd.train
    >>> tmp = tempfile.TemporaryDirectory()
    >>> state = jgd.train.init({"w": jnp.ones(3)}, jgd.adam(1e-3))
    >>> jgd.checkpoint.save(tmp.name, state)
    0
    >>> jgd.checkpoint.restore(tmp.name, like=state).carried[:2]
    ('params/w', 'opt_state/0:ScaleByAdamState/count')
    >>> tmp.cleanup()
"""

from jgd.checkpoint.disk import all_steps, latest_step
from jgd.checkpoint.restoring import Restored, restore
from jgd.checkpoint.saving import save

__all__ = ["Restored", "all_steps", "latest_step", "restore", "save"]
