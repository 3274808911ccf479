"""The optimizer lab: watch gradient descent roll down the bowl.

Holds, in three themed modules re-exported here:

- ``jgd.lab.functions``: test functions with known minima (``parabola``, the
  tutorials' x**2; ``bowl``; the ill-conditioned ``elongated`` bowl;
  ``rosenbrock``; ``beale``; ``himmelblau`` with four minima; ``saddle``),
  ``quadratic`` and the ``FUNCTIONS`` registry;
- ``jgd.lab.runs``: ``trajectory`` (every iterate and loss of a run, one
  ``lax.scan``), ``trajectories`` (several optimizers, ``vmap``-ed where their
  structures match), ``lr_sweep`` (all learning rates in one ``jax.vmap``, with
  divergence flags and the stable range) and the ``OPTIMIZERS`` registry;
- ``jgd.lab.plots`` (needs matplotlib: ``pip install 'jgd[plot]'``):
  ``plot_contour``, ``plot_losses``, ``plot_trajectories``, ``plot_steps_1d``
  and ``plot_sweep``, each writing a PNG;

and ``main(argv)``, the ``jgd plot`` command (``jgd.lab.cli``).

Example:
    >>> import jgd
    >>> from jgd.lab import lr_sweep, rosenbrock, trajectory
    >>> run = trajectory(jgd.adam(0.1), rosenbrock, steps=1000)
    >>> bool(run.losses[-1] < 1e-4 * run.losses[0])
    True
    >>> s = lr_sweep(jgd.gd, rosenbrock, [1e-4, 1e-3, 1e-2], steps=100)
    >>> s.diverged.tolist()
    [False, False, True]
"""

from jgd.lab.cli import main
from jgd.lab.functions import (
    FUNCTIONS,
    Landscape,
    beale,
    bowl,
    elongated,
    himmelblau,
    parabola,
    quadratic,
    rosenbrock,
    saddle,
)
from jgd.lab.plots import (
    plot_contour,
    plot_losses,
    plot_steps_1d,
    plot_sweep,
    plot_trajectories,
)
from jgd.lab.runs import (
    OPTIMIZERS,
    Sweep,
    Trajectory,
    lr_sweep,
    trajectories,
    trajectory,
)

__all__ = [
    "FUNCTIONS",
    "OPTIMIZERS",
    "Landscape",
    "Sweep",
    "Trajectory",
    "beale",
    "bowl",
    "elongated",
    "himmelblau",
    "lr_sweep",
    "main",
    "parabola",
    "plot_contour",
    "plot_losses",
    "plot_steps_1d",
    "plot_sweep",
    "plot_trajectories",
    "quadratic",
    "rosenbrock",
    "saddle",
    "trajectories",
    "trajectory",
]
