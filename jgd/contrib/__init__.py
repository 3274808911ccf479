"""Contributed optimizers, as ``optax.contrib``: newer methods under
optax.contrib's names, arguments and states (``jgd.contrib.muon`` is
``optax.contrib.muon``). Each module holds one family; this namespace
re-exports them all. ``import jgd`` loads it on first use (``jgd.contrib``).
"""

from jgd.contrib import (
    adam_variants,
    coin,
    distance,
    model_based,
    orthogonal,
    plateau,
    schedulefree,
    second_order,
)
from jgd.contrib.adam_variants import *
from jgd.contrib.coin import *
from jgd.contrib.distance import *
from jgd.contrib.model_based import *
from jgd.contrib.orthogonal import *
from jgd.contrib.plateau import *
from jgd.contrib.schedulefree import *
from jgd.contrib.second_order import *

__all__: list[str] = []
__all__ += orthogonal.__all__
__all__ += schedulefree.__all__
__all__ += distance.__all__
__all__ += adam_variants.__all__
__all__ += coin.__all__
__all__ += model_based.__all__
__all__ += second_order.__all__
__all__ += plateau.__all__
