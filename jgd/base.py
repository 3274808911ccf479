"""The transform protocol that everything in jgd stands on.

Holds: ``register`` (turns a class into a frozen dataclass registered as a JAX
pytree: numeric hyperparameters are leaves, configuration is static), the
``Transform`` and ``Schedule`` base classes, ``Static`` (carries a callable or
a foreign transform as static configuration), ``EmptyState`` (optax's own
class once optax is imported, see ``empty_state_type``), ``identity``,
``chain``, ``apply_updates``, the argument checks every factory uses
(defined in ``jgd.checks``, re-exported here), and optax's type names
(``GradientTransformation`` for hand-built transforms, ``Params``,
``Updates``, ``OptState``, the ``Transform*Fn`` protocols).

A transform has optax's signature and sign convention::

    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = apply_updates(params, updates)

This module imports nothing from jgd but ``jgd.checks`` and ``jgd.types``
(optax's type names, re-exported here).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import (
    TYPE_CHECKING,
    Any,
    NamedTuple,
    Self,
    TypeVar,
    dataclass_transform,
    overload,
)

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jgd.checks import (  # noqa: F401 (importable from here, as before the split)
    api_name,
    check_dtype,
    check_int,
    check_number,
    owner_name,
)
from jgd.types import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    Scalar,
    ScalarOrSchedule,
    TransformInitFn,
    TransformUpdateExtraArgsFn,
    TransformUpdateFn,
    Updates,
    _TransformType,
)

__all__ = [
    "Chain",
    "EmptyState",  # noqa: F822 (module __getattr__: optax's class when imported)
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "Identity",
    "OptState",
    "Params",
    "Scalar",
    "ScalarOrSchedule",
    "Schedule",
    "Static",
    "Transform",
    "TransformInitFn",
    "TransformUpdateExtraArgsFn",
    "TransformUpdateFn",
    "Updates",
    "apply_updates",
    "chain",
    "identity",
    "register",
    "static_field",
]


_T = TypeVar("_T")


# --------------------------------------------------------------------------
# Values: frozen dataclasses registered as pytrees.
# --------------------------------------------------------------------------


@overload
def static_field(*, default: _T, kw_only: bool = ..., **kwargs: Any) -> _T: ...
@overload
def static_field(*, kw_only: bool = ..., **kwargs: Any) -> Any: ...
def static_field(
    *,
    default: Any = dataclasses.MISSING,
    kw_only: Any = dataclasses.MISSING,
    **kwargs: Any,
) -> Any:
    """A dataclass field that is static configuration, not a pytree leaf.

    Static fields (booleans, dtypes, step counts of schedules, masks given as
    callables) change the compiled program; a new value means a new trace.
    Arguments are keyword-only, as ``dataclasses.field``'s: type checkers
    read ``default`` and ``kw_only`` by name (a field specifier of
    ``register``'s ``dataclass_transform``).
    """
    return dataclasses.field(
        default=default, kw_only=kw_only, metadata={"static": True}, **kwargs
    )


@dataclass_transform(
    frozen_default=True, field_specifiers=(static_field, dataclasses.field)
)
def register(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a frozen dataclass and register it as a JAX pytree.

    Fields made with ``static_field`` go into the treedef (hashable, compared
    by jit's cache); all others are children, so Python floats, arrays and
    nested jgd values become leaves that ``jit`` traces, ``vmap`` batches and
    ``grad`` differentiates. Unflattening bypasses ``__init__`` so that
    validation runs only when a user builds the value, never on tracers.

    ``dataclass_transform`` tells type checkers (mypy, pyright) what this
    does, so they see the generated ``__init__``: ``jgd.adam(1e-3)`` checks.
    """
    cls = dataclasses.dataclass(frozen=True)(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # a dataclass now
    data = tuple(f.name for f in fields if not f.metadata.get("static"))
    meta = tuple(f.name for f in fields if f.metadata.get("static"))
    keys = tuple(jax.tree_util.GetAttrKey(n) for n in data)

    def flatten_with_keys(x):
        return [(k, getattr(x, n)) for k, n in zip(keys, data)], tuple(
            getattr(x, n) for n in meta
        )

    def flatten(x):
        return [getattr(x, n) for n in data], tuple(getattr(x, n) for n in meta)

    def unflatten(aux, children):
        obj = object.__new__(cls)
        for n, v in zip(data, children):
            object.__setattr__(obj, n, v)
        for n, v in zip(meta, aux):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    return cls


class Static:
    """Carries a callable (a schedule, a mask function) or a foreign transform
    (an optax ``GradientTransformation``) as static configuration.

    A plain function cannot be a pytree leaf, so jgd values wrap it: it then
    lives in the treedef, compared by identity, and ``jit`` recompiles only
    when a different function is given. It calls through and exposes
    ``init``/``update`` of what it wraps.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __call__(self, *args, **kwargs):
        return self.value(*args, **kwargs)

    def init(self, params: Any) -> Any:
        return self.value.init(params)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        fn = self.value.update
        if extra_args and _takes_var_keyword(fn):
            return fn(updates, state, params, **extra_args)
        return fn(updates, state, params)

    def __eq__(self, other):
        return isinstance(other, Static) and (
            self.value is other.value or self.value == other.value
        )

    def __hash__(self):
        try:
            return hash(self.value)
        except TypeError:
            return id(self.value)

    def __repr__(self):
        return repr(self.value)


jax.tree_util.register_pytree_node(
    Static, lambda s: ((), s.value), lambda v, _: Static(v)
)


def _takes_var_keyword(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Value:
    """Base of jgd's values (transforms and schedules).

    ``__post_init__`` wraps callables held in data fields in ``Static`` and
    then runs ``check()``, where subclasses validate concrete hyperparameters.
    """

    _api = "jgd"  # public name used in error messages

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.metadata.get("static"):
                continue
            v = getattr(self, f.name)
            if callable(v) and not isinstance(v, (Value, Static)):
                object.__setattr__(self, f.name, Static(v))
        self.check()

    def check(self) -> None:
        """Validate concrete hyperparameters (tracers are skipped)."""

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


class Transform(Value, _TransformType):
    """A gradient transformation: ``init(params)`` and ``update(updates, state,
    params=None)``, pure, with optax's signature and sign convention."""

    if TYPE_CHECKING:
        # Not GradientTransformation's (init, update): each jgd transform
        # takes its fields (register's generated __init__); this is what type
        # checkers read for one with no fields, jgd.identity().
        def __init__(self) -> None: ...

    # True when the math is element-wise or a global sum, so it gives the same
    # numbers on leaves packed into 1-D buckets (jgd.train's layout). A
    # transform that needs leaf boundaries keeps False.
    packable = False

    def init(self, params: Any) -> Any:
        raise NotImplementedError

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        raise NotImplementedError


class Schedule(Value):
    """A step-size schedule: ``schedule(count) -> value``, a pytree value."""

    def __call__(self, count: ArrayLike) -> jax.Array:
        raise NotImplementedError

    def known_values(self) -> dict[str, Any]:
        """The values that fix this schedule's sign, by argument name (its
        start, peak, end): if all are >= 0, so is every value it takes, so a
        learning rate can check the sign of all its values at construction.
        Empty when they are not known, as for a schedule built from another
        callable."""
        return {}


def is_transform(x: Any) -> bool:
    """True for anything with optax's ``init``/``update`` pair."""
    return callable(getattr(x, "init", None)) and callable(getattr(x, "update", None))


# --------------------------------------------------------------------------
# The smallest transforms: identity and chain, and apply_updates.
# --------------------------------------------------------------------------


class _EmptyState(NamedTuple):
    """State of a stateless transform, when optax is not imported."""


_EmptyState.__name__ = "EmptyState"  # its repr; pickles as jgd.base._EmptyState


def empty_state_type() -> type:
    """``optax.EmptyState`` once optax is imported, else jgd's own twin.

    States are compared by tree structure, and a treedef compares node types:
    jgd's and optax's ``EmptyState`` are equal tuples but different nodes, so
    ``chain(jgd.clip(1.0), optax.adam(...))`` and the all-optax chain had
    different state structures. jgd does not import optax (not a dependency;
    it would add ~0.1 s to ``import jgd``, whose own cost is ~0.1 s over jax's)
    nor import it on first use (an import inside a ``jit`` trace could leave
    tracers in optax's module constants). It looks in ``sys.modules``: free,
    and optax's states can only exist once optax is imported. A state made
    before optax was imported keeps jgd's type.
    """
    optax = sys.modules.get("optax")
    cls = getattr(optax, "EmptyState", None)
    if isinstance(cls, type) and issubclass(cls, tuple):
        return cls
    return _EmptyState


def empty_state() -> Any:
    """The state of a stateless transform: ``empty_state_type()()``."""
    return empty_state_type()()


def __getattr__(name: str) -> Any:
    # ``jgd.base.EmptyState`` follows empty_state_type(), as init does.
    if name == "EmptyState":
        return empty_state_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@register
class Identity(Transform):
    """Leave updates unchanged.

    Update:
        u = g

    Matches: optax.identity().
    """

    packable = True  # element-wise: the same numbers on packed buckets

    _api = "jgd.identity"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        return updates, state


identity = Identity


@register
class Chain(Transform):
    """Apply transforms one after another; the state is the tuple of their
    states.

    jgd and optax transforms mix freely: an optax ``GradientTransformation`` is
    carried as static configuration, a jgd transform as a pytree of its
    hyperparameters.

    Update:
        u = tx_n(...tx_2(tx_1(g)))

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> tx = jgd.chain(jgd.clip(1.0), jgd.scale(-0.1))
        >>> updates, _ = tx.update({"w": jnp.array([5.0])}, tx.init(None))
        >>> updates["w"]
        Array([-0.1], dtype=float32)

    Matches: optax.chain(*transforms).
    """

    transforms: tuple = ()

    _api = "jgd.chain"

    def __post_init__(self):
        items = []
        for t in self.transforms:
            if isinstance(t, (Transform, Static)):
                items.append(t)
            elif is_transform(t):
                items.append(Static(t))
            else:
                raise TypeError(
                    "jgd.chain: every argument must be a transform with init and "
                    f"update (jgd or optax); got {t!r} ({type(t).__name__})."
                )
        object.__setattr__(self, "transforms", tuple(items))

    def init(self, params: Any) -> Any:
        return tuple(t.init(params) for t in self.transforms)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if not isinstance(state, tuple) or len(state) != len(self.transforms):
            raise TypeError(
                f"jgd.chain: state must be the tuple of {len(self.transforms)} "
                "states returned by init; got "
                f"{type(state).__name__} of length {len(state) if isinstance(state, tuple) else '?'}."
            )
        new_state = []
        for t, s in zip(self.transforms, state):
            updates, s = t.update(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)


def chain(*transforms: Any) -> Chain:
    """Compose transforms left to right (see ``Chain``)."""
    return Chain(tuple(transforms))


def apply_updates(params: Any, updates: Any) -> Any:
    """Add ``updates`` to ``params`` leaf by leaf, keeping each param's dtype.

    The sum is formed in the wider of the two dtypes and rounded once to the
    param's dtype, so bf16 params with float32 updates stay bf16.

    A ``None`` param (or ``params=None``) stays ``None`` whatever the update
    there, as in optax; a ``None`` update leaves its param unchanged.

    Update:
        p = p + u

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> jgd.apply_updates({"w": jnp.array(2.0)}, {"w": jnp.array(0.24)})
        {'w': Array(2.24, dtype=float32)}

    Raises:
        TypeError: when the two trees differ (the first differing path is named).

    Matches: optax.apply_updates (which raises on a ``None`` update).
    """
    updates = none_under_none(params, updates)
    _check_same_tree("jgd.apply_updates", "updates", updates, "params", params)

    def add(p, u):
        if p is None:
            return None
        if u is None:
            return p
        p, u = jnp.asarray(p), jnp.asarray(u)
        with jax.numpy_dtype_promotion("standard"):
            dt = jnp.promote_types(p.dtype, u.dtype)
        return (p.astype(dt) + u.astype(dt)).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)


def none_under_none(reference: Any, tree: Any) -> Any:
    """``tree`` with ``None`` wherever ``reference`` has a ``None`` leaf.

    optax treats a ``None`` leaf of the tree it maps over (``None`` params in
    ``apply_updates``, ``None`` updates in ``add_decayed_weights``) as "nothing
    here", whatever the other tree holds at that place; this lines the other
    tree up so the structure check sees the same trees. Trees that do not line
    up are returned unchanged, for the check to report.
    """
    is_none = lambda x: x is None
    if reference is None:
        return None
    if _same_structure(reference, tree):
        return tree
    try:
        return jax.tree.map(
            lambda r, t: None if r is None else t, reference, tree, is_leaf=is_none
        )
    except (TypeError, ValueError):
        return tree


def _same_structure(a: Any, b: Any) -> bool:
    """Whether trees ``a`` and ``b`` have one structure, a ``None`` a leaf."""
    is_none = lambda x: x is None
    # Any: jax's PyTreeDef stub has no __eq__ that mypy can see.
    sa: Any = jax.tree.structure(a, is_leaf=is_none)
    return bool(sa == jax.tree.structure(b, is_leaf=is_none))


def _check_same_tree(
    name: str, a_name: str, a: Any, b_name: str, b: Any, shapes: bool = True
) -> None:
    """TypeError naming the first path where trees ``a`` and ``b`` differ in
    structure (or leaf shape, with ``shapes``). Static, so free under ``jit``."""
    is_none = lambda x: x is None
    pa = jax.tree_util.tree_flatten_with_path(a, is_leaf=is_none)[0]
    pb = jax.tree_util.tree_flatten_with_path(b, is_leaf=is_none)[0]
    if _same_structure(a, b):
        for (path, x), (_, y) in zip(pa, pb):
            if x is None or y is None or not shapes:
                continue
            if np.shape(x) != np.shape(y):
                raise TypeError(
                    f"{name}: {a_name} and {b_name} differ in shape at "
                    f"{jax.tree_util.keystr(path) or '<root>'}: "
                    f"{np.shape(x)} vs {np.shape(y)}."
                )
        return
    keys_a = [jax.tree_util.keystr(p) for p, _ in pa]
    keys_b = [jax.tree_util.keystr(p) for p, _ in pb]
    first = next(
        (i for i, (x, y) in enumerate(zip(keys_a, keys_b)) if x != y),
        min(len(keys_a), len(keys_b)),
    )
    at_a = keys_a[first] if first < len(keys_a) else "<nothing>"
    at_b = keys_b[first] if first < len(keys_b) else "<nothing>"
    raise TypeError(
        f"{name}: the {a_name} tree does not match the {b_name} tree; first "
        f"difference at leaf {first}: {a_name} has {at_a or '<root>'}, "
        f"{b_name} has {at_b or '<root>'}.\n"
        f"  {a_name}: {jax.tree.structure(a, is_leaf=is_none)}\n"
        f"  {b_name}: {jax.tree.structure(b, is_leaf=is_none)}"
    )
