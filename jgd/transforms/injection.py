"""Reading and changing hyperparameters, for users of jgd's optimizers and
for code written against optax.

Holds ``hyperparams`` (every numeric hyperparameter of an optimizer by path,
``{"0/learning_rate": 0.001, "0/b1": 0.9, ...}``), ``current_hyperparams``
(the same with each schedule evaluated at its step count in the state: the
values the next update uses), and ``inject_hyperparams`` /
``inject_stateful_hyperparams`` with optax 0.2.8's states, whose
``state.hyperparams`` dict can be read and set between steps.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import sys
import typing
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import (
    Chain,
    ScalarOrSchedule,
    Schedule,
    Static,
    Transform,
    Value,
    check_dtype,
    is_transform,
    register,
    static_field,
)

__all__ = [
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "WrappedSchedule",
    "WrappedScheduleState",
    "current_hyperparams",
    "hyperparams",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
]


# --------------------------------------------------------------------------
# States and the stateless-schedule wrapper (optax's classes and fields).
# --------------------------------------------------------------------------


class InjectHyperparamsState(NamedTuple):
    """optax's older state of ``inject_hyperparams`` (kept for code that names
    it; ``inject_hyperparams`` returns ``InjectStatefulHyperparamsState``)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax
    hyperparams: dict
    inner_state: Any


class InjectStatefulHyperparamsState(NamedTuple):
    """Step count, hyperparameters (a dict the user may set between steps),
    the schedules' states, and the inner transform's state (optax's)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax
    hyperparams: dict
    hyperparams_states: dict
    inner_state: Any


class WrappedScheduleState(NamedTuple):
    """The step count of a schedule of the step count (optax's)."""

    count: jax.Array  # type: ignore[assignment]  # int32 scalar; shadows tuple.count, as optax


class WrappedSchedule:
    """A schedule of the step count as a stateful schedule: ``init()``,
    ``update(state)`` and ``schedule(state)``. Matches: optax.WrappedSchedule."""

    def __init__(self, schedule_fn: Callable[[Any], Any]):
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=jnp.zeros([], jnp.int32))

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
        return WrappedScheduleState(count=tree.safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> Any:
        return self.schedule_fn(state.count)


def _is_stateful(v: Any) -> bool:
    """optax's stateful schedules: ``init()``, ``update(state)``, ``(state)``."""
    return (
        callable(v)
        and callable(getattr(v, "init", None))
        and callable(getattr(v, "update", None))
    )


def _is_number(x: Any) -> bool:
    """A numeric hyperparameter: a real number or a numeric array (not a bool)."""
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, numbers.Real):
        return True
    dtype = getattr(x, "dtype", None)
    if dtype is None or not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return False
    return bool(
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )


def _weak(x: Any) -> Any:
    """A float array as a weakly typed one of its dtype: in arithmetic with a
    bfloat16 array it gives bfloat16, as a Python float does."""
    if not isinstance(x, jax.Array) or not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    try:  # no public API makes an array weakly typed
        from jax._src.lax.lax import _convert_element_type

        return _convert_element_type(x, np.dtype(x.dtype), weak_type=True)
    except (ImportError, TypeError, AssertionError):  # pragma: no cover
        return x


def _convert_floats(x: Any, dtype: Any) -> Any:
    """optax's rule: a float that is not already a strongly typed array
    becomes ``dtype``; anything else passes unchanged."""
    if isinstance(x, jax.Array) and not getattr(x, "weak_type", False):
        return x
    current = x.dtype if hasattr(x, "dtype") else type(x)
    if jax.dtypes.issubdtype(current, jnp.floating):
        return jnp.asarray(x, dtype=dtype)
    return x


# --------------------------------------------------------------------------
# inject_hyperparams.
# --------------------------------------------------------------------------


@register
class InjectHyperparams(Transform):
    """``inner_factory(**hyperparams)`` rebuilt at every update from the
    hyperparameters in the state, so they can be read and set between steps.

    Update (count from 0; s_k the state of schedule k):
        h[k] = state.hyperparams[k]              (numeric: as the user left it)
        h[k] = schedule_k(s_k), s_k = s_k + 1    (scheduled)
        u, inner_state = inner_factory(**h, **static).update(g, inner_state)

    Numeric hyperparameters live in the state after ``init`` (this value's
    ``hyperparams`` are their initial values); scheduled ones are recomputed at
    every update, so setting them in the state has no effect, as in optax.

    Dtypes (optax issue #1414): floats are stored as float32, or as the
    params' dtype where that is wider (float64), never narrower; optax stores
    them in the params' dtype, so under bfloat16 params its b2 = 0.999 is 1.0.
    ``hyperparam_dtype`` overrides both. An optax inner factory is handed them
    weakly typed, as Python floats are, so its bfloat16 state stays bfloat16
    (optax.adam's numbers without injection).

    Built by ``inject_hyperparams(inner_factory, static_args,
    hyperparam_dtype)(*args, **kwargs)``; see there.
    """

    inner_factory: Any = static_field()
    hyperparams: dict = dataclasses.field(default_factory=dict)
    static_hyperparams: tuple = static_field(default=())
    hyperparam_dtype: Any = static_field(default=None)
    foreign: bool = static_field(default=False)

    _api = "jgd.inject_hyperparams"

    def _schedules(self) -> dict:
        return {k: v for k, v in self.hyperparams.items() if callable(v)}

    def _numbers(self) -> dict:
        return {k: v for k, v in self.hyperparams.items() if not callable(v)}

    def _dtype(self, params: Any) -> Any:
        """The dtype floats are stored in: float32 or wider (issue #1414)."""
        if self.hyperparam_dtype is not None:
            return self.hyperparam_dtype
        highest = tree.dtype(params, "highest")
        if not jnp.issubdtype(highest, jnp.floating):
            return tree.default_float()
        return tree.wider_dtype(jnp.float32, highest)

    def _inner(self, values: dict) -> Any:
        static = {k: s.value for k, s in self.static_hyperparams}
        if self.foreign and self.hyperparam_dtype is None:
            # optax's arithmetic keeps bf16 params bf16 only with hyperparameters
            # that act as Python floats do: weakly typed (jgd casts per leaf).
            values = {k: _weak(v) for k, v in values.items()}
        inner = self.inner_factory.value(**static, **values)
        return inner if isinstance(inner, Transform) else Static(inner)

    def init(self, params: Any) -> InjectStatefulHyperparamsState:
        dtype = self._dtype(params)
        values = {
            k: jnp.asarray(_convert_floats(v, dtype))
            for k, v in self._numbers().items()
        }
        states = {k: _stateful(f).init() for k, f in self._schedules().items()}
        values.update(
            {
                k: _convert_floats(_stateful(f)(states[k]), dtype)
                for k, f in self._schedules().items()
            }
        )
        return InjectStatefulHyperparamsState(
            count=jnp.zeros([], jnp.int32),
            hyperparams=values,
            hyperparams_states=states,
            inner_state=self._inner(values).init(params),
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, InjectStatefulHyperparamsState]:
        dtype = self._dtype(params)
        scheduled = self._schedules()
        values = {k: _convert_floats(v, dtype) for k, v in state.hyperparams.items()}
        values.update(
            {
                k: _convert_floats(
                    _stateful(f)(state.hyperparams_states[k], **extra_args), dtype
                )
                for k, f in scheduled.items()
            }
        )
        states = {
            k: _stateful(f).update(state.hyperparams_states[k], **extra_args)
            for k, f in scheduled.items()
        }
        updates, inner_state = self._inner(values).update(
            updates, state.inner_state, params, **extra_args
        )
        return updates, InjectStatefulHyperparamsState(
            count=tree.safe_increment(state.count),
            hyperparams=values,
            hyperparams_states=states,
            inner_state=inner_state,
        )

    def state_hyperparams(self, state: Any) -> dict:
        """The hyperparameters the next update uses: the state's numbers, the
        schedules at their states (``current_hyperparams`` reads this)."""
        out = {k: state.hyperparams[k] for k in self._numbers()}
        for k, f in self._schedules().items():
            out[k] = _stateful(f)(state.hyperparams_states[k])
        return out


@register
class _PackableInjectHyperparams(InjectHyperparams):
    """``InjectHyperparams`` over an inner transform that jgd.train may run on
    packed buckets (element-wise, no weight-decay mask to lay over them)."""

    packable = True


_PackableInjectHyperparams.__name__ = "InjectHyperparams"  # its repr
_PackableInjectHyperparams.__qualname__ = "InjectHyperparams"


def _packs(t: Any) -> bool:
    """Whether ``t`` gives the same numbers on jgd.train's packed buckets and
    holds nothing the layout must rewrite (a mask over the user's tree)."""
    if _is_optimizer(t):
        return _packs(t.recipe())
    if isinstance(t, Chain):
        return all(_packs(x) for x in t.transforms)
    if not isinstance(t, Transform):
        return False
    return type(t).packable and getattr(t, "mask", None) is None


def _unwrapped(f: Any) -> Any:
    return f.value if isinstance(f, Static) else f


def _stateful(f: Any) -> Any:
    """``f`` as a stateful schedule (optax's protocol), as optax wraps it."""
    f = _unwrapped(f)
    return f if _is_stateful(f) else WrappedSchedule(f)


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """Make the hyperparameters of ``inner_factory``'s transform settable
    between steps, and schedulable.

    ``inject_hyperparams(jgd.adam)`` takes ``jgd.adam``'s arguments and
    returns a transform whose state is ``InjectStatefulHyperparamsState(count,
    hyperparams, hyperparams_states, inner_state)``: set
    ``state.hyperparams["learning_rate"] = jnp.float32(1e-4)`` between steps
    (an array of the same dtype: a Python float has another type, which
    compiles the step once more). Any numeric argument may instead be a
    schedule of the step count (or an optax stateful schedule). In a
    ``jgd.train.TrainState``: ``state.replace(stored_opt_state=jgd.tree.set(
    state.stored_opt_state, learning_rate=jnp.float32(1e-4)))``.

    Update (count from 0):
        h = state.hyperparams, each schedule k replaced by schedule_k(count)
        u, inner_state = inner_factory(**h, **static).update(g, inner_state)

    Args:
        inner_factory: a function returning a transform: jgd's (``jgd.adam``,
            ``jgd.scale_by_adam``...) or optax's (``optax.adam``).
        static_args: names of callable arguments that are not schedules (a
            mask function), as a string or an iterable of strings.
        hyperparam_dtype: the dtype of the float hyperparameters. Default
            None: float32, or the params' dtype where it is wider (float64).

    Returns:
        A factory with ``inner_factory``'s signature that returns a jgd value
        (a pytree: its numeric hyperparameters are leaves, ``inner_factory``
        static configuration).

    Raises:
        TypeError: ``inner_factory`` is not callable, or what it returns is
            not a transform.
        ValueError: ``static_args`` names an argument ``inner_factory`` lacks.

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.inject_hyperparams(jgd.sgd)(learning_rate=0.1)
        >>> state = opt.init(jnp.zeros(2))
        >>> state.hyperparams["learning_rate"] = jnp.float32(0.5)
        >>> opt.update(jnp.ones(2), state)[0]
        Array([-0.5, -0.5], dtype=float32)

    Matches: optax.inject_hyperparams(inner_factory, static_args,
    hyperparam_dtype), except the default dtype: optax stores floats in the
    params' dtype (bfloat16 rounds b2 = 0.999 to 1.0, optax issue #1414)
    (tests/catalogue/injection.py KNOWN_DIFFERENCES['hyperparam dtype']).
    """
    name = "jgd.inject_hyperparams"
    if not callable(inner_factory):
        raise TypeError(
            f"{name}: inner_factory must be a function returning a transform "
            f"(jgd.adam, optax.adam, ...); got {inner_factory!r} "
            f"({type(inner_factory).__name__})."
        )
    statics = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = statics - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"{name}: static_args must name arguments of inner_factory "
            f"({', '.join(signature.parameters)}); got {sorted(unknown)}."
        )
    dtype = check_dtype(name, "hyperparam_dtype", hyperparam_dtype)

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> InjectHyperparams:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values: dict[str, Any] = {}
        static: list[tuple[str, Static]] = []
        for k, v in bound.arguments.items():
            if k in statics or isinstance(v, bool):
                static.append((k, Static(v)))
            elif isinstance(v, Schedule):
                values[k] = v
            elif callable(v):
                values[k] = Static(v)
            elif _is_number(v) or isinstance(v, jax.core.Tracer):
                values[k] = v
            else:
                static.append((k, Static(v)))
        # Build once now, so bad arguments fail here with the inner's message.
        probe = {
            k: _stateful(f)(_stateful(f).init()) if callable(f) else f
            for k, f in values.items()
        }
        built = inner_factory(**{k: s.value for k, s in static}, **probe)
        if not is_transform(built):
            raise TypeError(
                f"{name}: inner_factory must return a transform with init and "
                f"update; got {type(built).__name__}."
            )
        cls = _PackableInjectHyperparams if _packs(built) else InjectHyperparams
        return cls(
            Static(inner_factory),
            values,
            tuple(static),
            dtype,
            not isinstance(built, Transform),
        )

    return wrapped


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """``inject_hyperparams`` under its older optax name (which takes
    stateful schedules too); warns as optax does.

    Matches: optax.inject_stateful_hyperparams (deprecated there since 0.1.9).
    """
    warnings.warn(
        "jgd.inject_stateful_hyperparams is deprecated, use jgd.inject_hyperparams "
        "instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)


# --------------------------------------------------------------------------
# Reading hyperparameters: hyperparams and current_hyperparams.
# --------------------------------------------------------------------------

# The Callable member of ScalarOrSchedule: a data field whose annotation holds
# it takes schedules (a callable elsewhere is a mask or a foreign transform).
_SCHEDULE_MEMBER = typing.get_args(ScalarOrSchedule)[-1]
# Fields whose name would add nothing to a path: a chain's elements read
# "0/learning_rate", a partition's "label/learning_rate".
_TRANSPARENT = frozenset({"transforms"})
# Step counts a schedule may read, in the order tried; ScaleByAdemamix's b3
# and alpha read their own count.
_COUNT_FIELDS = ("count", "step_count", "t")
_COUNT_OVERRIDES = {
    ("ScaleByAdemamix", "b3"): "count_m2",
    ("ScaleByAdemamix", "alpha"): "count_m2",
}


def _is_schedule(v: Any) -> bool:
    """A callable that is not a transform (a ``Static`` has ``init``/``update``
    of what it wraps, so look inside)."""
    return callable(v) and not is_transform(_unwrapped(v))


def _takes_schedule(field: dataclasses.Field) -> bool:
    t = field.type
    if isinstance(t, str):
        return "Schedule" in t
    return t == ScalarOrSchedule or _SCHEDULE_MEMBER in typing.get_args(t)


def _train_state(x: Any) -> bool:
    module = sys.modules.get("jgd.train.state")  # loaded if a TrainState exists
    return module is not None and isinstance(x, module.TrainState)


def _is_optimizer(x: Any) -> bool:
    return isinstance(x, Transform) and callable(getattr(x, "recipe", None))


def _data_fields(x: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(x) if not f.metadata.get("static")]


def _items(x: Any, path: tuple, out: list) -> None:
    """Append ``(path, value, is_schedule)`` for every numeric hyperparameter
    and schedule of ``x``, in field order."""
    if isinstance(x, Schedule):
        out.append((path, x, True))
    elif isinstance(x, InjectHyperparams):
        for k, v in x.hyperparams.items():
            if callable(v):
                out.append((path + (k,), _unwrapped(v), True))
            else:
                _items(v, path + (k,), out)
    elif isinstance(x, Value) and dataclasses.is_dataclass(x):
        for f in _data_fields(x):
            v = getattr(x, f.name)
            sub = path if f.name in _TRANSPARENT else path + (f.name,)
            if _is_schedule(v) and _takes_schedule(f):
                out.append((sub, _unwrapped(v), True))
            elif not isinstance(v, Static):  # masks, optax transforms: opaque
                _items(v, sub, out)
    elif isinstance(x, dict):
        for k, v in x.items():
            _items(v, path + (str(k),), out)
    elif isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        for i, v in enumerate(x):
            _items(v, path + (str(i),), out)
    elif _is_number(x) or isinstance(x, jax.core.Tracer):
        out.append((path, x, False))


def _key(path: tuple) -> str:
    return "/".join(path)


def _opt_of(name: str, opt: Any) -> Any:
    if _train_state(opt):
        return opt.opt
    if isinstance(opt, (Transform, Static)) or is_transform(opt):
        return opt
    raise TypeError(
        f"{name}: opt must be a jgd optimizer or transform (or a "
        f"jgd.train.TrainState); got {type(opt).__name__}."
    )


def hyperparams(opt: Any) -> dict[str, Any]:
    """Every numeric hyperparameter of an optimizer, by path.

    Keys are the fields' names joined by ``/`` from the top: ``learning_rate``
    for ``jgd.adam``, ``0/learning_rate`` for the first element of a chain,
    ``inner/b1`` in a wrapper's inner transform (a wrapper's ``transforms``
    add no name: a partition's read ``label/learning_rate``). Values are as
    given: Python floats stay floats, a schedule appears as the schedule
    (``current_hyperparams`` evaluates it). Flags, dtypes and masks are not
    listed; an optax transform keeps its hyperparameters in closures, so
    nothing of it is.

    Args:
        opt: a jgd optimizer or transform (wrappers and chains included), or
            a ``jgd.train.TrainState`` (its optimizer).

    Returns:
        A dict from path to value, in field order.

    Example:
        >>> import jgd
        >>> jgd.hyperparams(jgd.chain(jgd.clip(1.0), jgd.sgd(0.1, momentum=0.9)))
        {'0/max_delta': 1.0, '1/learning_rate': 0.1, '1/momentum': 0.9}

    Matches: no optax function (optax's hyperparameters are closure
    captures, issue #206); ``jgd.tree.get`` reads one field by name.
    """
    out: list = []
    _items(_opt_of("jgd.hyperparams", opt), (), out)
    return {_key(p): v for p, v, _ in out}


def _callables_in(f: Any, depth: int = 3) -> Iterable[Any]:
    """``f`` and the callables it holds (a jgd schedule's fields, a wrapper
    object's attributes): a recipe may wrap the schedule it was given."""
    f = _unwrapped(f)
    yield f
    if depth == 0:
        return
    if isinstance(f, Value) and dataclasses.is_dataclass(f):
        children = [getattr(f, x.name) for x in dataclasses.fields(f)]
    elif isinstance(f, functools.partial):
        children = [f.func, *f.args, *f.keywords.values()]
    else:
        children = list(getattr(f, "__dict__", {}).values())
    for c in children:
        if _is_schedule(c):
            yield from _callables_in(c, depth - 1)


def _child_states(x: Any, state: Any) -> Iterable[tuple[str, Any, Any]]:
    """``(field, child transform(s), child state(s))`` of a wrapper: the state
    field named ``<field>_state(s)``, else, for a wrapper with one child, the
    one state field named ``inner_state(s)``/``inner_opt_state`` or ending in
    ``state(s)``."""
    kids = []
    for f in _data_fields(x):
        v = getattr(x, f.name)
        leaves = list(v.values()) if isinstance(v, dict) else v
        leaves = leaves if isinstance(leaves, (list, tuple)) else [leaves]
        if leaves and all(is_transform(t) for t in leaves):
            kids.append((f.name, v))
    fields = getattr(state, "_fields", None)
    if not kids or fields is None:
        return
    for name, v in kids:
        candidates = [f"{name}_state", f"{name}_states"]
        if len(kids) == 1:
            candidates += ["inner_state", "inner_states", "inner_opt_state"]
        hit = next((n for n in candidates if n in fields), None)
        if hit is None and len(kids) == 1:
            ending = [n for n in fields if n.endswith(("state", "states"))]
            hit = ending[0] if len(ending) == 1 else None
        if hit is not None:
            yield name, v, getattr(state, hit)


def _collect(x: Any, state: Any, path: tuple, counts: dict, live: dict) -> None:
    """Walk ``x`` with its state: each schedule's step count into ``counts``
    (by identity), values a transform keeps in its state into ``live``."""
    if _is_optimizer(x):
        # Its state is its recipe's; paths inside the recipe are not the
        # optimizer's, so only counts are taken from there.
        _collect(x.recipe(), state, path, counts, {})
        return
    if isinstance(x, Chain):
        if not isinstance(state, tuple) or len(state) != len(x.transforms):
            raise TypeError(
                f"jgd.current_hyperparams: the state does not match the optimizer at "
                f"'{_key(path) or '<root>'}': a chain of {len(x.transforms)} needs "
                f"a tuple of {len(x.transforms)} states; got {type(state).__name__}."
            )
        for i, (t, s) in enumerate(zip(x.transforms, state)):
            _collect(t, s, path + (str(i),), counts, live)
        return
    if isinstance(x, Static) or not isinstance(x, Value):
        # An optax transform: only an optax inject_hyperparams state says more.
        hp = getattr(state, "hyperparams", None)
        if isinstance(hp, dict) and hasattr(state, "inner_state"):
            live.update({_key(path + (str(k),)): v for k, v in hp.items()})
        return
    reader = getattr(x, "state_hyperparams", None)
    if callable(reader):
        live.update({_key(path + (k,)): v for k, v in reader(state).items()})
    fields = getattr(state, "_fields", ())
    for f in _data_fields(x):
        v = getattr(x, f.name)
        if not (_is_schedule(v) and _takes_schedule(f)):
            continue
        wanted = _COUNT_OVERRIDES.get((type(x).__name__, f.name))
        names = [wanted] if wanted else [n for n in _COUNT_FIELDS if n in fields]
        if names:
            for c in _callables_in(v):
                counts.setdefault(id(c), getattr(state, names[0]))
    for name, kid, kid_state in _child_states(x, state):
        sub = path if name in _TRANSPARENT else path + (name,)
        if isinstance(kid, (dict, list, tuple)):
            keys = kid.keys() if isinstance(kid, dict) else range(len(kid))
            for k in keys:
                try:
                    s = kid_state[k]
                except (KeyError, IndexError, TypeError):
                    continue
                _collect(kid[k], s, sub + (str(k),), counts, live)
        else:
            _collect(kid, kid_state, sub, counts, live)


def current_hyperparams(opt: Any, state: Any = None) -> dict[str, Any]:
    """The hyperparameters the next update uses: ``hyperparams(opt)`` with
    each schedule evaluated at its step count in ``state``.

    Each schedule is read at the count that the transform using it keeps in
    its state (``scale_by_learning_rate``'s ``ScaleByScheduleState.count``),
    so after k updates a learning-rate schedule gives ``schedule(k)``.
    Values a transform keeps in its state are read there:
    ``inject_hyperparams``' ``state.hyperparams`` (as set by the user),
    ``reduce_on_plateau``'s ``scale`` (a key of its own), an optax
    ``inject_hyperparams``' ``hyperparams`` (as optax last stored them).
    Pure and jit-friendly: under ``jit`` the values are traced.

    Args:
        opt: a jgd optimizer or transform, or a ``jgd.train.TrainState``
            (then ``state`` is omitted: its optimizer state is read, packed
            or not).
        state: ``opt.init(params)`` or a later state.

    Returns:
        A dict with ``hyperparams(opt)``'s keys (and the state-held extras).

    Raises:
        TypeError: the state does not match ``opt``, or a schedule's step
            count is nowhere jgd can see (inside a transform it cannot read).

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.sgd(jgd.schedules.linear_schedule(1.0, 0.0, 10))
        >>> state = opt.init(jnp.zeros(2))
        >>> _, state = opt.update(jnp.ones(2), state)
        >>> jgd.current_hyperparams(opt, state)["learning_rate"]
        Array(0.9, dtype=float32)

    Matches: no optax function; for an optax ``inject_hyperparams`` state,
    ``state.hyperparams``.
    """
    name = "jgd.current_hyperparams"
    if _train_state(opt):
        opt, state = opt.opt, opt.stored_opt_state
    opt = _opt_of(name, opt)
    items: list = []
    _items(opt, (), items)
    counts: dict = {}
    live: dict = {}
    _collect(opt, state, (), counts, live)
    out = {}
    for path, v, is_schedule in items:
        key = _key(path)
        if key in live:
            out[key] = live.pop(key)
        elif not is_schedule:
            out[key] = v
        elif id(v) in counts:
            out[key] = v(counts[id(v)])
        else:
            raise TypeError(
                f"{name}: cannot find the step count of the schedule at '{key}' in "
                "the state: the state is not this optimizer's, or the schedule is "
                "used inside a transform jgd cannot read (evaluate it from that "
                "transform's state)."
            )
    out.update(live)
    return out
