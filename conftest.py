"""Settings for every test and doctest: strict dtype promotion, rank promotion raises.

Every jgd computation must pass with implicit promotion switched off, so a bf16
leaf can never silently become float32 (or a float32 leaf float64).  Lives at
the repository root so that it covers the doctests in ``jgd/`` as well as
``tests/``.
"""

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
