"""Pytree utilities: optax.tree's, under its names, and the helpers jgd's
transforms share.

optax 0.2.8's ``optax.tree``, same arguments and values, by theme: ``algebra``
(leaf-wise arithmetic, ``zeros_like``..., reductions such as ``sum``, ``vdot``,
``norm``), ``moments`` (``update_moment``..., ``bias_correction``), ``casting``
(``cast``, ``cast_like``, ``dtype``), ``keys`` (``random_like``,
``split_key_like``) and ``state`` (``get``, ``set``, ``get_all_with_path``,
``map_params``). ``core`` holds the helpers: ``check_same_structure``,
``safe_increment``, ``promote``, ``coef``, ``correction``, ``abs_sq``,
``global_norm``...
"""

from __future__ import annotations

from jgd.tree.algebra import (
    add,
    add_scale,
    allclose,
    batch_shape,
    clip,
    conj,
    div,
    full_like,
    max,
    min,
    mul,
    norm,
    ones_like,
    real,
    scale,
    size,
    sub,
    sum,
    vdot,
    where,
    zeros_like,
)
from jgd.tree.casting import cast, cast_like, dtype
from jgd.tree.core import (
    abs_sq,
    check_same_structure,
    coef,
    correction,
    global_norm,
    none_under_none,
    promote,
    safe_increment,
)
from jgd.tree.core import default_float as default_float
from jgd.tree.core import wider_dtype as wider_dtype
from jgd.tree.keys import random_like, split_key_like, unwrap_random_key_data
from jgd.tree.moments import (
    bias_correction,
    update_infinity_moment,
    update_moment,
    update_moment_per_elem_norm,
)
from jgd.tree.state import NamedTupleKey, get, get_all_with_path, map_params, set

__all__ = [
    "NamedTupleKey",
    "abs_sq",
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "check_same_structure",
    "clip",
    "coef",
    "conj",
    "correction",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "global_norm",
    "map_params",
    "max",
    "min",
    "mul",
    "none_under_none",
    "norm",
    "ones_like",
    "promote",
    "random_like",
    "real",
    "safe_increment",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
