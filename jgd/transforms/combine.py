"""Wrappers that compose transforms: ``named_chain``, ``flatten``,
``conditionally_transform``, ``conditionally_mask`` and
``with_extra_args_support``, with optax 0.2.8's names, arguments and states
(``ConditionallyTransformState``, ``ConditionallyMaskState``).

Each wrapper is a value whose inner transforms are pytree children, so their
hyperparameters stay leaves (a new inner learning rate does not recompile a
jitted step that takes the optimizer as an argument); callables are static.
The inner may be a jgd or an optax transform. ``lookahead`` lives in
``jgd.transforms.lookahead_wrapper``.
"""

from __future__ import annotations

import collections
import inspect
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import Static, Transform, is_transform, owner_name, register, static_field

__all__ = [
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "conditionally_mask",
    "conditionally_transform",
    "flatten",
    "named_chain",
    "with_extra_args_support",
]


def as_inner(owner: Any, arg: str, tx: Any) -> Any:
    """``tx`` as a child of a wrapper: a jgd transform as it is (its
    hyperparameters stay leaves), an optax one as static configuration."""
    if isinstance(tx, (Transform, Static)):
        return tx
    if is_transform(tx):
        return Static(tx)
    raise TypeError(
        f"{owner_name(owner)}: {arg} must be a transform with init and update "
        f"(jgd or optax); got {tx!r} ({type(tx).__name__})."
    )


# --------------------------------------------------------------------------
# named_chain
# --------------------------------------------------------------------------


@register
class NamedChain(Transform):
    """Apply transforms one after another, each state kept under its name.

    Update:
        u = tx_n(...tx_2(tx_1(g)))
        state = {name_1: state_1, ..., name_n: state_n}   (an OrderedDict)

    Args (of ``named_chain(*args)``):
        *args: ``(name, transform)`` pairs; names are strings, all different;
            transforms are jgd or optax ones. Extra keyword arguments of
            ``update`` reach every transform that takes them.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.named_chain(("clip", jgd.clip(1.0)), ("sgd", jgd.sgd(0.1)))
        >>> g = {"w": jnp.array([5.0])}
        >>> state = tx.init(g)
        >>> list(state)
        ['clip', 'sgd']
        >>> tx.update(g, state)[0]["w"]
        Array([-0.1], dtype=float32)

    Matches: optax.named_chain(*args); its state is the same OrderedDict.
    Names must be strings (optax types them so, and checks only that they
    differ).
    """

    transforms: tuple
    names: tuple = static_field()

    packable_inner = ("transforms",)  # packs when what it wraps does (jgd.train)
    _api = "jgd.named_chain"

    def __post_init__(self):
        names, transforms = tuple(self.names), tuple(self.transforms)
        if len(names) != len(transforms):
            raise TypeError(
                f"jgd.named_chain: names and transforms must have one length; got "
                f"{len(names)} names and {len(transforms)} transforms."
            )
        for n in names:
            if not isinstance(n, str):
                raise TypeError(
                    f"jgd.named_chain: names must be strings; got {n!r} "
                    f"({type(n).__name__})."
                )
        if len(set(names)) != len(names):
            raise ValueError(
                f"jgd.named_chain: names must be unique; got {list(names)}."
            )
        transforms = tuple(
            as_inner(self, f"the transform named {n!r}", t)
            for n, t in zip(names, transforms)
        )
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "transforms", transforms)
        super().__post_init__()

    def init(self, params: Any) -> Any:
        # An OrderedDict, as optax: its pytree keeps the order of the chain.
        return collections.OrderedDict(
            (n, t.init(params)) for n, t in zip(self.names, self.transforms)
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if not isinstance(state, Mapping) or set(state) != set(self.names):
            got = list(state) if isinstance(state, Mapping) else type(state).__name__
            raise TypeError(
                "jgd.named_chain: state must be the dict of states init returned, "
                f"keyed {list(self.names)}; got {got}."
            )
        new_state = collections.OrderedDict()
        for n, t in zip(self.names, self.transforms):
            updates, new_state[n] = t.update(updates, state[n], params, **extra_args)
        return updates, new_state


def named_chain(*args: tuple[str, Any]) -> NamedChain:
    """Compose ``(name, transform)`` pairs left to right (see ``NamedChain``)."""
    for a in args:
        if not (isinstance(a, tuple) and len(a) == 2):
            raise TypeError(
                "jgd.named_chain: every argument must be a (name, transform) "
                f"pair; got {a!r} ({type(a).__name__})."
            )
    return NamedChain(tuple(t for _, t in args), tuple(n for n, _ in args))


# --------------------------------------------------------------------------
# flatten
# --------------------------------------------------------------------------


def _flat(x: Any) -> jax.Array:
    """All leaves of ``x`` raveled into one vector of their widest dtype."""
    leaves = [jnp.asarray(v) for v in jax.tree.leaves(x)]
    if not leaves:
        return jnp.zeros((0,), tree.default_float())
    dt = tree.wider_dtype(*[v.dtype for v in leaves])
    return jnp.concatenate([jnp.ravel(v).astype(dt) for v in leaves])


def _unflat(like: Any, flat: jax.Array) -> Any:
    """``flat`` cut back into ``like``'s leaves, shapes and dtypes."""
    leaves, treedef = jax.tree.flatten(like)
    out, start = [], 0
    for v in leaves:
        shape, size = np.shape(v), int(np.size(v))
        piece = flat[start : start + size].reshape(shape)
        out.append(piece.astype(jnp.result_type(v)))
        start += size
    return jax.tree.unflatten(treedef, out)


@register
class Flatten(Transform):
    """Run ``inner`` on one vector: all leaves raveled and concatenated.

    Fewer, longer arrays for an element-wise inner transform (less overhead
    per leaf); an inner that reads leaf shapes sees one vector instead.

    Update:
        v = concatenate([ravel(g_i) for each leaf i])
        w = inner(v)     (inner's state and params are vectors too)
        u_i = reshape(w[offset_i : offset_i + size_i], shape_i)

    Args:
        inner: a jgd or optax transform.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.flatten(jgd.scale_by_adam())
        >>> g = {"w": jnp.ones((2, 2)), "b": jnp.ones(3)}
        >>> tx.init(g).mu.shape
        (7,)

    Matches: optax.flatten(inner). Leaves of mixed dtypes are concatenated in
    the widest and each update is cast back to its leaf's dtype (optax's come
    out in the widest); no leaves give an empty vector (optax raises).
    """

    inner: Any

    _api = "jgd.flatten"

    def __post_init__(self):
        object.__setattr__(self, "inner", as_inner(self, "inner", self.inner))
        super().__post_init__()

    def init(self, params: Any) -> Any:
        return self.inner.init(_flat(params))

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        flat_params = None
        if params is not None:
            tree.check_same_structure(self, updates, params, "params")
            flat_params = _flat(params)
        flat, state = self.inner.update(
            _flat(updates), state, flat_params, **extra_args
        )
        return _unflat(updates, flat), state


flatten = Flatten


# --------------------------------------------------------------------------
# conditionally_transform, conditionally_mask
# --------------------------------------------------------------------------


class ConditionallyTransformState(NamedTuple):
    """The inner state and the number of updates so far (optax's)."""

    inner_state: Any
    step: jax.Array


class ConditionallyMaskState(NamedTuple):
    """The number of updates so far and the inner state (optax's order)."""

    step: jax.Array
    inner_state: Any


def _condition(owner: Any, fn: Any) -> Any:
    if isinstance(fn, Static):
        return fn
    if not callable(fn):
        raise TypeError(
            f"{owner_name(owner)}: should_transform_fn must be a callable "
            f"step -> bool; got {fn!r} ({type(fn).__name__})."
        )
    return Static(fn)


@register
class ConditionallyTransform(Transform):
    """Run ``inner`` only at the steps ``should_transform_fn`` picks; at the
    others pass the updates through and keep the inner state.

    Update (step = updates before this one, from 0):
        u, inner_state = inner(g, inner_state)   if should_transform_fn(step)
        u, inner_state = g, inner_state          otherwise
        step = step + 1

    Args:
        inner: a jgd or optax transform.
        should_transform_fn: ``fn(step) -> bool`` (``step`` an int32 scalar
            counting earlier updates; with ``forward_extra_args``,
            ``fn(step, **extra_args)``); static, compared by identity.
        forward_extra_args: pass ``update``'s extra keyword arguments to
            ``should_transform_fn`` too (default False); static.

    Both branches are traced (``lax.cond``): the inner must return updates of
    the incoming dtypes.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.conditionally_transform(jgd.scale(10.0), lambda t: t % 2 == 1)
        >>> u, state = tx.update(jnp.ones(1), tx.init(jnp.ones(1)))  # at step 0
        >>> u, state.step
        (Array([1.], dtype=float32), Array(1, dtype=int32))

    Matches: optax.conditionally_transform(inner, should_transform_fn,
    forward_extra_args).
    """

    inner: Any
    should_transform_fn: Any = static_field()
    forward_extra_args: bool = static_field(default=False)

    packable_inner = ("inner",)  # packs when what it wraps does (jgd.train)
    _api = "jgd.conditionally_transform"

    def __post_init__(self):
        object.__setattr__(self, "inner", as_inner(self, "inner", self.inner))
        object.__setattr__(
            self, "should_transform_fn", _condition(self, self.should_transform_fn)
        )
        super().__post_init__()

    def init(self, params: Any) -> Any:
        return ConditionallyTransformState(
            inner_state=self.inner.init(params), step=jnp.zeros([], jnp.int32)
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        updates, inner_state = _cond(
            self, updates, state, params, extra_args, lambda: updates
        )
        return updates, ConditionallyTransformState(
            inner_state, tree.safe_increment(state.step)
        )


conditionally_transform = ConditionallyTransform


@register
class ConditionallyMask(Transform):
    """Run ``inner`` only at the steps ``should_transform_fn`` picks; at the
    others give zero updates and keep the inner state.

    Update (step = updates before this one, from 0):
        u, inner_state = inner(g, inner_state)   if should_transform_fn(step)
        u, inner_state = 0, inner_state          otherwise
        step = step + 1

    Args:
        inner: a jgd or optax transform.
        should_transform_fn: ``fn(step) -> bool``, as in
            ``conditionally_transform``; static.
        forward_extra_args: pass extra keyword arguments to
            ``should_transform_fn`` too (default False); static.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.conditionally_mask(jgd.sgd(0.1), lambda t: t >= 1)
        >>> tx.update(jnp.ones(1), tx.init(jnp.ones(1)))[0]  # at step 0
        Array([0.], dtype=float32)

    Matches: optax.conditionally_mask(inner, should_transform_fn,
    forward_extra_args).
    """

    inner: Any
    should_transform_fn: Any = static_field()
    forward_extra_args: bool = static_field(default=False)

    packable_inner = ("inner",)  # packs when what it wraps does (jgd.train)
    _api = "jgd.conditionally_mask"

    def __post_init__(self):
        object.__setattr__(self, "inner", as_inner(self, "inner", self.inner))
        object.__setattr__(
            self, "should_transform_fn", _condition(self, self.should_transform_fn)
        )
        super().__post_init__()

    def init(self, params: Any) -> Any:
        return ConditionallyMaskState(
            step=jnp.zeros([], jnp.int32), inner_state=self.inner.init(params)
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        updates, inner_state = _cond(
            self, updates, state, params, extra_args, lambda: tree.zeros_like(updates)
        )
        return updates, ConditionallyMaskState(
            step=tree.safe_increment(state.step), inner_state=inner_state
        )


conditionally_mask = ConditionallyMask


def _cond(
    tx: Any, updates: Any, state: Any, params: Any, extra_args: dict, rejected: Any
) -> tuple[Any, Any]:
    """``tx.inner``'s update where ``tx.should_transform_fn(step)`` holds,
    ``(rejected(), inner_state)`` elsewhere, as one ``lax.cond``."""
    kwargs = extra_args if tx.forward_extra_args else {}
    return jax.lax.cond(
        tx.should_transform_fn(state.step, **kwargs),
        lambda: tx.inner.update(updates, state.inner_state, params, **extra_args),
        lambda: (rejected(), state.inner_state),
    )


# --------------------------------------------------------------------------
# with_extra_args_support
# --------------------------------------------------------------------------


@register
class WithExtraArgsSupport(Transform):
    """``inner``, with an ``update`` that accepts extra keyword arguments and
    drops them (``with_extra_args_support`` makes it)."""

    inner: Any

    packable_inner = ("inner",)  # packs when what it wraps does (jgd.train)
    _api = "jgd.with_extra_args_support"

    def __post_init__(self):
        object.__setattr__(self, "inner", as_inner(self, "tx", self.inner))
        super().__post_init__()

    def init(self, params: Any) -> Any:
        return self.inner.init(params)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        del extra_args  # what this wrapper is for
        return self.inner.update(updates, state, params)


def _takes_extra_args(tx: Any) -> bool:
    """Whether ``tx.update`` already takes ``**extra_args``: every jgd
    transform, and optax's ``GradientTransformationExtraArgs``."""
    value = tx.value if isinstance(tx, Static) else tx
    optax = sys.modules.get("optax")  # looked up, never imported
    extra_cls = getattr(optax, "GradientTransformationExtraArgs", None)
    if isinstance(extra_cls, type) and isinstance(value, extra_cls):
        return True
    if not isinstance(value, Transform):
        return False  # optax wraps a plain GradientTransformation, whatever it takes
    params = inspect.signature(value.update).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def with_extra_args_support(tx: Any) -> Any:
    """``tx``, made to accept (and ignore) extra keyword arguments in ``update``.

    ``update(updates, state, params, value=..., grad=...)`` is how optax's line
    searches and jgd.train call an optimizer; this lets a transform that takes
    no extra arguments sit there.

    Update:
        u = tx(g)    (extra keyword arguments dropped)

    Args:
        tx: a jgd or optax transform.

    Returns:
        ``tx`` itself when its update takes extra arguments already (every jgd
        transform, and optax's ``GradientTransformationExtraArgs``, which get
        them); otherwise a ``WithExtraArgsSupport`` value that drops them.

    Example:
        >>> import jgd
        >>> tx = jgd.scale(2.0)
        >>> jgd.with_extra_args_support(tx) is tx
        True

    Matches: optax.with_extra_args_support(tx).
    """
    if _takes_extra_args(as_inner("jgd.with_extra_args_support", "tx", tx)):
        return tx
    return WithExtraArgsSupport(tx)
