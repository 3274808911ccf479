"""Weight decay and clipping: ``add_decayed_weights`` (with a mask),
``clip`` and ``clip_by_global_norm``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgd import tree
from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    Transform,
    check_number,
    empty_state,
    owner_name,
    register,
    static_field,
)
from jgd.transforms.basic import _count0

# --------------------------------------------------------------------------
# Weight decay and clipping.
# --------------------------------------------------------------------------


class AddDecayedWeightsState(NamedTuple):
    """Step count for a scheduled weight decay (optax: WeightDecaySchedule)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax


@register
class AddDecayedWeights(Transform):
    """Add ``weight_decay * params`` to the updates (decoupled weight decay when
    placed before the learning rate, as in AdamW).

    Update:
        u = g + weight_decay * p        (where mask is True; u = g elsewhere)

    Args:
        weight_decay: float >= 0 or a schedule, default 0.
        mask: a pytree of bools shaped like the params, or a callable
            ``params -> such a tree``; ``None`` decays every leaf.

    A ``None`` update (a leaf, or the whole tree) stays ``None``, as in optax.

    Raises:
        ValueError: when ``update`` gets no ``params``.

    Matches: optax.add_decayed_weights(weight_decay, mask); with a mask optax
    wraps the state in ``MaskedState``, jgd keeps it flat (same leaves).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    weight_decay: ScalarOrSchedule = 0.0
    mask: Any = None

    _api = "jgd.add_decayed_weights"

    def check(self):
        check_number(self, "weight_decay", self.weight_decay, 0, schedule=True)

    def init(self, params: Any) -> Any:
        if callable(self.weight_decay):
            return AddDecayedWeightsState(count=_count0())
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        if params is None:
            raise ValueError(
                f"{owner_name(self)}: update needs params (weight decay adds "
                "weight_decay * params); call update(grads, state, params)."
            )
        params = tree.none_under_none(updates, params)
        tree.check_same_structure(self, updates, params, "params")
        wd = self.weight_decay
        if callable(wd):
            s = wd(state.count)
            state = AddDecayedWeightsState(count=tree.safe_increment(state.count))
        else:
            s = wd
            if isinstance(wd, (int, float)) and wd == 0:
                return updates, state

        def decay(g, p):
            if g is None:
                return None
            g, p = tree.promote(g, p)
            return g + tree.coef(s, p.dtype) * p

        is_none = lambda x: x is None
        if self.mask is None:
            return jax.tree.map(decay, updates, params, is_leaf=is_none), state
        mask = self.mask(params) if callable(self.mask) else self.mask
        mask = tree.none_under_none(updates, mask)
        tree.check_same_structure(self, updates, mask, "mask", shapes=False)

        def masked(g, p, m):
            if g is None:
                return None
            if isinstance(m, bool):
                return decay(g, p) if m else g
            return jnp.where(m, decay(g, p), g)

        return jax.tree.map(masked, updates, params, mask, is_leaf=is_none), state


add_decayed_weights = AddDecayedWeights


@register
class Clip(Transform):
    """Clip every update element to ``[-max_delta, max_delta]``.

    Update:
        u = clip(g, -max_delta, max_delta)

    Args:
        max_delta: >= 0.

    Matches: optax.clip(max_delta).
    """

    packable = True  # element-wise: the same numbers on packed buckets

    max_delta: Scalar

    _api = "jgd.clip"

    def check(self):
        check_number(self, "max_delta", self.max_delta, 0)

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        d = self.max_delta

        def f(g):
            c = tree.coef(d, g.dtype)
            return jnp.clip(g, -c, c)

        return jax.tree.map(f, updates), state


clip = Clip


class ClipByGlobalNormState(NamedTuple):
    """The global norm of the updates before clipping (``record_norm=True``),
    what ``torch.nn.utils.clip_grad_norm_`` returns."""

    global_norm: jax.Array


@register
class ClipByGlobalNorm(Transform):
    """Rescale all updates together so their global l2 norm is at most
    ``max_norm``.

    Update:
        n = sqrt(sum over leaves of sum(g**2))
        c = 1                    if n < max_norm
        c = max_norm / n         otherwise
        u = c * g

    One NaN or Inf spreads: a NaN anywhere makes n and c NaN, so every leaf
    of u is NaN; an Inf makes c = 0, so the finite leaves become 0 and the
    Inf leaf NaN (0 * Inf). An optimizer chained after it then holds NaN in
    its state for good, and nothing says which leaf it came from. Wrap the
    chain: ``apply_if_finite(chain(clip_by_global_norm(1.0), adam(1e-3)), 3)``
    skips such a step before the clip, keeps adam's state clean and names
    the leaf (``jgd.nonfinite_paths(state)``).

    Args:
        max_norm: > 0.
        record_norm: keep n, the norm before clipping, in the state as
            ``ClipByGlobalNormState(global_norm=n)`` (static, keyword-only,
            default False: the state is ``EmptyState()``, as optax's).

    References: Pascanu, Mikolov & Bengio, "On the difficulty of training
    recurrent neural networks", 2013, Algorithm 1.

    Matches: optax.clip_by_global_norm(max_norm), up to rounding when it
    clips: optax computes ``g / n * max_norm`` per element, jgd one scalar
    ``max_norm / n`` and one multiply, as ``torch.nn.utils.clip_grad_norm_``
    does (at most about 1.5 ulp apart; unclipped updates are bit-identical).
    One multiply by a scalar lets XLA fuse the clipping into the optimizer
    that follows instead of writing the clipped gradient out: on CPU,
    ``chain(clip_by_global_norm, adamw)`` went from about 3x plain adamw's
    step time to about 1.2x (``benchmarks/README.md``). ``record_norm`` is
    jgd's (optax issue #326 asks for the norm); opt-in, so that by default
    the state equals optax's.
    """

    packable = True  # one global sum: the same on packed buckets

    max_norm: Scalar
    record_norm: bool = static_field(default=False, kw_only=True)

    _api = "jgd.clip_by_global_norm"

    def check(self):
        check_number(self, "max_norm", self.max_norm, 0, lo_open=True)
        if not isinstance(self.record_norm, bool):
            raise TypeError(
                f"{owner_name(self)}: record_norm must be a bool; got "
                f"{self.record_norm!r}."
            )

    def init(self, params: Any) -> Any:
        if self.record_norm:
            # global_norm's dtype: the widest leaf dtype (default float if none).
            leaves = jax.tree.leaves(params)
            dtypes = [jnp.result_type(x) for x in leaves]
            dt = tree.wider_dtype(*dtypes) if dtypes else tree.default_float()
            return ClipByGlobalNormState(global_norm=jnp.zeros([], dt))
        return empty_state()

    def factor(self, updates, norm: jax.Array | None = None) -> jax.Array:
        """The scalar the updates are multiplied by: 1, or ``max_norm / n``
        (``n`` is ``norm`` when given, else the updates' global norm)."""
        n = tree.global_norm(updates) if norm is None else norm
        max_norm = tree.coef(self.max_norm, n.dtype)
        return jnp.where(n < max_norm, jnp.ones_like(n), max_norm / n)

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        n = tree.global_norm(updates)
        factor = self.factor(updates, n)

        def f(g):
            return g * factor.astype(g.dtype)

        if self.record_norm:
            state = ClipByGlobalNormState(global_norm=n.astype(state.global_norm.dtype))
        return jax.tree.map(f, updates), state


clip_by_global_norm = ClipByGlobalNorm
