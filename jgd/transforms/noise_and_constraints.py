"""Noise, averages, constraints and user functions as transforms, under optax
0.2.8's names: ``add_noise``, ``ema``, ``centralize``,
``keep_params_nonnegative``, ``zero_nans``, ``set_to_zero``, ``stateless`` and
``stateless_with_tree_map``, with their states. ``jgd.transforms.elementwise``
re-exports them (and uses the two helpers here).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    Transform,
    check_dtype,
    check_number,
    empty_state,
    owner_name,
    register,
    static_field,
)
from jgd.transforms.basic import _count0, _ema

__all__ = [
    "AddNoiseState",
    "EmaState",
    "ZeroNansState",
    "add_noise",
    "centralize",
    "ema",
    "keep_params_nonnegative",
    "set_to_zero",
    "stateless",
    "stateless_with_tree_map",
    "zero_nans",
]


def _traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _needs_params(owner: Any, params: Any, why: str) -> None:
    if params is None:
        raise ValueError(
            f"{owner_name(owner)}: update needs params ({why}); call "
            "update(grads, state, params)."
        )


# --------------------------------------------------------------------------
# Noise and averages.
# --------------------------------------------------------------------------


class AddNoiseState(NamedTuple):
    """Step count (for the annealing) and the random key (optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax
    rng_key: jax.Array


def _canonical_key(key: Any) -> jax.Array:
    """A typed key from a seed, a typed key, or a raw uint32 key."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if getattr(key, "shape", ()) != ():  # a raw uint32 key (jax.random.PRNGKey)
        return jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    return jax.random.key(key)


def _check_seed(owner: Any, key: Any, seed: int | None) -> None:
    """optax's deprecated ``seed``: allowed alone, with a DeprecationWarning."""
    if seed is None:
        return
    if key is not None:
        raise ValueError(
            f"{owner_name(owner)}: give key or seed, not both; got key={key!r}, "
            f"seed={seed!r}."
        )
    warnings.warn(
        f"{owner_name(owner)}: seed is deprecated (as in optax); pass key.",
        DeprecationWarning,
        stacklevel=5,  # the user, past check, __post_init__ and __init__
    )


@register
class AddNoise(Transform):
    """Add annealed Gaussian noise to the updates.

    Update:
        t = count + 1
        sigma = sqrt(eta / t**gamma)
        key, sample = split(key)
        u = g + sigma * N(0, 1)     (one key per leaf: split(sample, #leaves))

    Args:
        eta: the initial variance, >= 0.
        gamma: the annealing exponent, >= 0 (0.55 in the paper).
        key: a key (``jax.random.key``, or a raw ``jax.random.PRNGKey``) or an
            integer seed; ``None`` is seed 0 (optax warns there).
        seed: deprecated (as in optax): an integer seed, when ``key`` is None.

    References: Neelakantan et al., "Adding Gradient Noise Improves Learning
    for Very Deep Networks", 2015, Section 2.

    Matches: optax.add_noise(eta, gamma, key, seed=seed): the same key gives
    the same numbers. bf16 updates stay bf16 (optax's become float32).
    """

    eta: Scalar
    gamma: Scalar
    key: Any = None
    seed: int | None = static_field(default=None, kw_only=True)

    _api = "jgd.add_noise"

    def check(self):
        check_number(self, "eta", self.eta, 0)
        check_number(self, "gamma", self.gamma, 0)
        _check_seed(self, self.key, self.seed)
        k = self.key
        if k is None or _traced(k) or isinstance(k, jax.Array):
            return
        if isinstance(k, bool) or not isinstance(k, (int, np.integer, np.ndarray)):
            raise TypeError(
                f"{owner_name(self)}: key must be a jax.random.key, a raw "
                f"jax.random.PRNGKey or an integer seed; got {k!r} "
                f"({type(k).__name__})."
            )

    def init(self, params: Any) -> Any:
        key = self.key
        if key is None:
            key = 0 if self.seed is None else self.seed
        return AddNoiseState(count=_count0(), rng_key=_canonical_key(key))

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        count = tree.safe_increment(state.count)
        fdt = tree.default_float()
        t_gamma = count.astype(fdt) ** tree.coef(self.gamma, fdt)
        sigma = jnp.sqrt(tree.coef(self.eta, fdt) / t_gamma)
        key, sample = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample, len(leaves))
        noisy = [
            g + sigma.astype(g.dtype) * jax.random.normal(k, g.shape, g.dtype)
            for g, k in zip(leaves, keys)
        ]
        return jax.tree.unflatten(treedef, noisy), AddNoiseState(count, key)


add_noise = AddNoise


class EmaState(NamedTuple):
    """Step count and the moving average (matches optax's)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax
    ema: Any


@register
class Ema(Transform):
    """An exponential moving average of the updates, optionally debiased.

    Update:
        ema = decay * ema + (1 - decay) * g
        u = ema / (1 - decay**t)      (debias=True)
        u = ema                       (debias=False)

    Args:
        decay: in [0, 1).
        debias: divide by ``1 - decay**t`` (static), default True.
        accumulator_dtype: dtype of the stored average (static); default the
            params' dtype.

    Matches: optax.ema(decay, debias, accumulator_dtype).
    """

    packable = True  # element-wise

    decay: Scalar
    debias: bool = static_field(default=True)
    accumulator_dtype: DTypeLike | None = static_field(default=None)

    _api = "jgd.ema"

    def check(self):
        check_number(self, "decay", self.decay, 0, 1, hi_open=True)
        object.__setattr__(
            self,
            "accumulator_dtype",
            check_dtype(self, "accumulator_dtype", self.accumulator_dtype),
        )

    def init(self, params: Any) -> Any:
        return EmaState(
            count=_count0(),
            ema=tree.zeros_like(params, dtype=self.accumulator_dtype),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.ema, "state")
        new = jax.tree.map(lambda g, m: _ema(g, m, self.decay), updates, state.ema)
        count = tree.safe_increment(state.count)
        out = tree.bias_correction(new, self.decay, count) if self.debias else new
        kept = jax.tree.map(lambda m, old: m.astype(old.dtype), new, state.ema)
        return out, EmaState(count=count, ema=kept)


ema = Ema


# --------------------------------------------------------------------------
# Constraints and clean-up.
# --------------------------------------------------------------------------


@register
class Centralize(Transform):
    """Subtract from each leaf of rank >= 2 its mean over all axes but the
    first (gradient centralization); vectors and scalars pass unchanged.

    Update:
        u = g - mean(g, axes 1..ndim-1)    (g.ndim > 1)
        u = g                              (otherwise)

    References: Yong et al., "Gradient Centralization: A New Optimization
    Technique for Deep Neural Networks", 2020.

    Matches: optax.centralize().
    """

    _api = "jgd.centralize"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        def f(g):
            if g.ndim <= 1:
                return g
            return g - g.mean(tuple(range(1, g.ndim)), keepdims=True)

        return jax.tree.map(f, updates), state


centralize = Centralize


@register
class KeepParamsNonnegative(Transform):
    """Change the updates so that ``params + updates >= 0``; put it last in a
    chain. Negative params are moved to 0.

    Update:
        u = -p    where p + g < 0
        u = g     elsewhere

    A ``None`` param keeps a ``None`` update, as in optax.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Matches: optax.keep_params_nonnegative().
    """

    packable = True  # element-wise

    _api = "jgd.keep_params_nonnegative"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        _needs_params(self, params, "it keeps params + updates >= 0")
        updates = tree.none_under_none(params, updates)
        tree.check_same_structure(self, updates, params, "params")

        def f(p, g):
            if p is None:
                return None
            p2, g2 = tree.promote(p, g)
            return jnp.where(p2 + g2 < 0, -p2, g2).astype(g.dtype)

        is_none = lambda x: x is None
        return jax.tree.map(f, params, updates, is_leaf=is_none), state


keep_params_nonnegative = KeepParamsNonnegative


class ZeroNansState(NamedTuple):
    """One bool per leaf: whether the last update had a NaN there (optax's)."""

    found_nan: Any


@register
class ZeroNans(Transform):
    """Replace NaNs in the updates by 0 and record, per leaf, whether any was
    found (the state is for the user; the transform does not read it).

    Update:
        found_nan = any(isnan(g))
        u = 0 where isnan(g), g elsewhere

    Matches: optax.zero_nans().
    """

    # Element-wise; through jgd.train's packed buckets found_nan is one bool
    # per stored array instead of per leaf.
    packable = True

    _api = "jgd.zero_nans"

    def init(self, params: Any) -> Any:
        return ZeroNansState(found_nan=jax.tree.map(lambda p: jnp.array(False), params))

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        found = jax.tree.map(lambda g: jnp.any(jnp.isnan(g)), updates)
        clean = jax.tree.map(
            lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates
        )
        return clean, ZeroNansState(found_nan=found)


zero_nans = ZeroNans


@register
class SetToZero(Transform):
    """Map every update to zeros (freezes params, e.g. under a mask).

    Update:
        u = 0

    Matches: optax.set_to_zero().
    """

    packable = True  # element-wise

    _api = "jgd.set_to_zero"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        return jax.tree.map(jnp.zeros_like, updates), state


set_to_zero = SetToZero


# --------------------------------------------------------------------------
# A user's function as a transform.
# --------------------------------------------------------------------------


@register
class Stateless(Transform):
    """A stateless transform from a function of the whole trees.

    ``f`` is static configuration, compared by identity: reusing one function
    object reuses the compiled program, while a new function (for example a
    lambda written inside the training loop) is a new static value, so ``jit``
    retraces and recompiles.

    Update:
        u = f(g, params)     (params may be None)

    Args:
        f: ``f(updates, params) -> updates`` on whole trees (static).

    Matches: optax.stateless(f).
    """

    f: Callable[[Any, Any], Any] = static_field()

    _api = "jgd.stateless"

    def check(self):
        _check_callable(self, self.f)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        return self.f(updates, params), empty_state()


stateless = Stateless


@register
class StatelessWithTreeMap(Transform):
    """A stateless transform from a function of one update leaf (and its
    param), mapped over the tree.

    ``f`` is static configuration, compared by identity: reusing one function
    object reuses the compiled program, while a new function (for example a
    lambda written inside the training loop) is a new static value, so ``jit``
    retraces and recompiles.

    Update:
        u = f(g, p)          (per leaf; f(g, None) when params is None)

    Args:
        f: ``f(update_leaf, param_leaf_or_None) -> update_leaf`` (static).

    Matches: optax.stateless_with_tree_map(f).
    """

    f: Callable[[Any, Any], Any] = static_field()

    _api = "jgd.stateless_with_tree_map"

    def check(self):
        _check_callable(self, self.f)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if params is None:
            return jax.tree.map(lambda g: self.f(g, None), updates), empty_state()
        return jax.tree.map(self.f, updates, params), empty_state()


stateless_with_tree_map = StatelessWithTreeMap


def _check_callable(owner: Any, f: Any) -> None:
    if not callable(f):
        raise TypeError(
            f"{owner_name(owner)}: f must be a function; got {f!r} "
            f"({type(f).__name__})."
        )
