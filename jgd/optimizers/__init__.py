"""Optimizers: each a short ``chain`` of building blocks under its equations.

One module per family: ``classic`` (the tutorials' gd, sgd, rmsprop, adagrad,
adam, adamw), ``adam_family``, ``per_leaf`` (per-matrix norms and factored
moments), ``sgd_variants`` and ``quasi_newton`` (L-BFGS). All derive from
``Optimizer`` (``optimizer.py``): a printable value whose state is its chain's.
"""

from jgd.optimizers import (
    adam_family,
    classic,
    per_leaf,
    quasi_newton,
    sgd_variants,
)
from jgd.optimizers.adam_family import *
from jgd.optimizers.classic import *
from jgd.optimizers.classic import Adagrad, Adam, Adamw, Gd, Rmsprop, Sgd  # noqa: F401
from jgd.optimizers.optimizer import Optimizer
from jgd.optimizers.per_leaf import *
from jgd.optimizers.quasi_newton import *
from jgd.optimizers.sgd_variants import *

__all__: list[str] = ["Optimizer"]
__all__ += classic.__all__
__all__ += adam_family.__all__
__all__ += per_leaf.__all__
__all__ += sgd_variants.__all__
__all__ += quasi_newton.__all__
