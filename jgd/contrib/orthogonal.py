"""Muon: momentum orthogonalised by Newton-Schulz iterations.

Holds ``scale_by_muon`` (the building block: Nesterov momentum, then each
matrix replaced by an approximation of its orthogonal polar factor),
``muon`` (the optimizer: that block on the matrices, AdamW on every other
leaf, as optax.contrib.muon partitions them), ``MuonState`` and
``MuonDimensionNumbers`` (which axes of a tensor form the matrix). Neither is
packable: Newton-Schulz needs each leaf's own shape.
"""

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from jgd import tree
from jgd.base import (
    Scalar,
    ScalarOrSchedule,
    Static,
    Transform,
    chain,
    check_dtype,
    check_int,
    check_number,
    empty_state,
    owner_name,
    register,
    static_field,
)
from jgd.optimizers.classic import adamw
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms import add_decayed_weights, scale_by_learning_rate
from jgd.transforms.partitioning import partition

__all__ = ["MuonDimensionNumbers", "MuonState", "muon", "scale_by_muon"]

_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
_DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
_NS_COEFFS_PRESETS: dict[str, Any] = {
    "standard": _DEFAULT_NS_COEFFS,
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a weight form the matrix Newton-Schulz works on
    (matches ``optax.contrib.MuonDimensionNumbers``).

    The matrix is (prod of ``reduction_axis`` sizes) x (prod of
    ``output_axis`` sizes); every other axis is a batch axis, each slice
    orthogonalised on its own. The default is a 2-D ``x @ W`` weight.
    """

    reduction_axis: Any = 0  # int or sequence of ints
    output_axis: Any = 1  # int or sequence of ints


class MuonState(NamedTuple):
    """Step count, momentum and the Newton-Schulz coefficients (optax's
    fields)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as in optax
    mu: Any
    ns_coeffs: jax.Array


# --------------------------------------------------------------------------
# Static configuration: dimension numbers, coefficients.
# --------------------------------------------------------------------------


def _hashable(value: Any) -> Any:
    """``value``, or ``Static(value)`` when it cannot be hashed (a dict tree),
    so a static field stays usable as part of a jit cache key."""
    try:
        hash(value)
    except TypeError:
        return Static(value)
    return value


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, Static) else value


def _is_dims(x: Any) -> bool:
    return isinstance(x, MuonDimensionNumbers)


def _dims_tree(spec: Any, updates: Any) -> Any:
    """A tree shaped like ``updates`` (its ``MaskedNode``s and ``None``s kept)
    holding, at each array, its ``MuonDimensionNumbers`` or ``None`` (a plain
    matrix).

    ``spec`` is ``None``, a tree of dimension numbers (a prefix of the
    updates' tree; ``None`` entries allowed), or a callable of the updates
    returning one.
    """
    spec = _unwrap(spec)
    if spec is None:
        return jax.tree.map(lambda x: None, updates)
    dims = spec(updates) if callable(spec) else spec
    is_none = lambda x: x is None
    return jax.tree.map(
        lambda d, sub: jax.tree.map(lambda _: d, sub, is_leaf=is_none),
        dims,
        updates,
        is_leaf=lambda x: x is None or _is_dims(x),
    )


def _axes(x: jax.Array, dims: MuonDimensionNumbers) -> tuple[tuple, tuple]:
    """The reduction and output axes as tuples of non-negative ints."""

    def norm(axes):
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        return tuple(ax % x.ndim for ax in axes)

    return norm(dims.reduction_axis), norm(dims.output_axis)


def _matrix_view(x: jax.Array, dims: MuonDimensionNumbers | None):
    """Functions from ``x`` to a (batch, reduction, output) stack of matrices
    and back, and the matrix's (fan_in, fan_out)."""
    if dims is None:
        if x.ndim != 2:
            raise ValueError(
                f"{owner_name(scale_by_muon)}: a leaf of shape {x.shape} needs "
                "MuonDimensionNumbers (Newton-Schulz works on matrices); got None."
            )
        dims = MuonDimensionNumbers()
    reduction, output = _axes(x, dims)
    if set(reduction) & set(output):
        raise ValueError(
            f"{owner_name(scale_by_muon)}: reduction and output axes must be "
            f"disjoint; got {reduction} and {output} for shape {x.shape}."
        )
    batch = tuple(sorted(set(range(x.ndim)) - set(reduction) - set(output)))
    order = batch + reduction + output
    inverse = tuple(sorted(range(x.ndim), key=lambda i: order[i]))
    sizes = lambda axes: tuple(x.shape[a] for a in axes)
    flat = tuple(math.prod(sizes(a)) for a in (batch, reduction, output))
    unflat = sizes(batch) + sizes(reduction) + sizes(output)
    to_stack = lambda y: y.transpose(order).reshape(flat)
    from_stack = lambda y: y.reshape(unflat).transpose(inverse)
    return to_stack, from_stack, (flat[1], flat[2])


def _coeffs(ns_coeffs: Any) -> Any:
    """The coefficients as given, a preset name resolved: 3 numbers, or rows
    of 3 (checked by ``_check_coeffs``)."""
    if isinstance(ns_coeffs, str):
        return _NS_COEFFS_PRESETS[ns_coeffs]
    return ns_coeffs


def _check_coeffs(owner: Any, ns_coeffs: Any, ns_steps: int) -> Any:
    """Validate ``ns_coeffs`` and return it hashable (nested tuples)."""
    name = owner_name(owner)
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in _NS_COEFFS_PRESETS:
            raise ValueError(
                f"{name}: ns_coeffs must be a preset in "
                f"{sorted(_NS_COEFFS_PRESETS)} or numbers; got {ns_coeffs!r}."
            )
        value = _NS_COEFFS_PRESETS[ns_coeffs]
    else:
        value = ns_coeffs
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim not in (1, 2) or arr.shape[-1] != 3:
        shape = None if arr is None else arr.shape
        raise ValueError(
            f"{name}: ns_coeffs must be 3 numbers or rows of 3 numbers; got "
            f"{ns_coeffs!r} (shape {shape})."
        )
    if arr.ndim == 2 and arr.shape[0] > ns_steps:
        raise ValueError(
            f"{name}: ns_steps must be >= the {arr.shape[0]} rows of ns_coeffs; "
            f"got {ns_steps}."
        )
    if isinstance(ns_coeffs, str):
        return ns_coeffs
    # Nested tuples: hashable, so the static field works as a jit cache key.
    return (
        tuple(tuple(r) for r in arr.tolist()) if arr.ndim == 2 else tuple(arr.tolist())
    )


# --------------------------------------------------------------------------
# Newton-Schulz.
# --------------------------------------------------------------------------


def _ns_step(x: jax.Array, c: jax.Array) -> jax.Array:
    # f(X) = c0 X + (c1 A + c2 A A) X with A = X X^H (optax's order).
    a = x @ x.T.conj()
    b = c[1] * a + c[2] * a @ a
    return c[0] * x + b @ x


def _aol_first_step(x: jax.Array, c: jax.Array, eps: Any) -> jax.Array:
    # Almost-orthogonal-layer rescaling: row i of X scaled by 1/sqrt(sum_j |A_ij|).
    a = x @ x.T.conj()
    rescaling = jnp.clip(jnp.abs(a).sum(axis=-1), min=tree.coef(eps, a.real.dtype))
    s = jnp.expand_dims(jax.lax.rsqrt(rescaling), -1).astype(x.dtype)
    x, a = x * s, a * s * s.transpose(-1, -2)
    b = c[1] * a + c[2] * a @ a
    return c[0] * x + b @ x


def _schatten_first_step(x: jax.Array, c: jax.Array, eps: Any) -> jax.Array:
    # X scaled by 1/||X X^H||_F^(1/2) (the Schatten-4 norm of X). optax writes
    # X X^T, the same for real X; the conjugate is what the norm needs.
    a = x @ x.T.conj()
    norm = jnp.linalg.norm(a, ord="fro", axis=(-2, -1))
    rescaling = jnp.clip(norm, min=tree.coef(eps, norm.dtype))
    s = jnp.expand_dims(jax.lax.rsqrt(rescaling), (0, -1)).astype(x.dtype)
    x, a = x * s, a * s**2
    b = c[1] * a + c[2] * a @ a
    return c[0] * x + b @ x


def _orthogonalize(
    x: jax.Array, coeffs: jax.Array, ns_steps: int, preconditioning: str, eps: Any
) -> jax.Array:
    """Newton-Schulz on one matrix (optax's orthogonalize_via_newton_schulz
    for a 2-D input): wide orientation, rescaled, then the iterations."""
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T  # f(X) = f(X^T)^T: iterate on the smaller Gram matrix
    if preconditioning in ("frobenius", "spectral"):
        n = jnp.linalg.norm(x, ord="fro" if preconditioning == "frobenius" else 2)
        x = x / (n + tree.coef(eps, n.dtype)).astype(x.dtype)
    first = {"aol": _aol_first_step, "schatten": _schatten_first_step}.get(
        preconditioning
    )

    def step(i, x, c):
        if first is None:
            return _ns_step(x, c)
        return jax.lax.cond(
            i == 0, lambda x: first(x, c, eps), lambda x: _ns_step(x, c), x
        )

    c = coeffs.astype(x.dtype)
    if c.ndim == 1:
        # Unrolled, as optax, so it composes with vmap the same way.
        x = jax.lax.fori_loop(0, ns_steps, lambda i, x: step(i, x, c), x, unroll=True)
    else:

        def body(carry, row):
            i, x = carry
            return (i + 1, step(i, x, row)), None

        (_, x), _ = jax.lax.scan(body, (jnp.asarray(0, jnp.int32), x), c)
    return x.T if transposed else x


def _orthogonalize_leaf(x, dims, coeffs, ns_steps, preconditioning, eps):
    to_stack, from_stack, _ = _matrix_view(x, dims)
    fn = lambda m: _orthogonalize(m, coeffs, ns_steps, preconditioning, eps)
    return from_stack(jax.vmap(fn)(to_stack(x)))


# --------------------------------------------------------------------------
# scale_by_muon.
# --------------------------------------------------------------------------


@register
class ScaleByMuon(Transform):
    """Nesterov momentum, then each matrix replaced by Newton-Schulz's
    approximation of its orthogonal polar factor.

    Update (per leaf, t = count + 1; NS = ns_steps iterations of the quintic
    f(X) = a X + (b A + c A A) X with A = X X^H, on the wide orientation):
        mu = beta * mu + (1 - beta) * g
        m = mu / (1 - beta**t)                                        (nesterov=False)
        m = beta * mu / (1 - beta**(t+1)) + (1 - beta) * g / (1 - beta**t)   (nesterov)
        X = m / (||m||_F + eps)                                       (frobenius)
        X = m / (||m||_2 + eps)                                       (spectral)
        X = m, first NS step with AOL or Schatten-4 rescaling          (aol, schatten)
        u = NS(X)
        u = <m, u> * u                                                (adaptive)

    Matrices are the leaves themselves (2-D) or, with
    ``weight_dimension_numbers``, each batch slice of a tensor reshaped to
    (reduction axes) x (output axes).

    Args:
        ns_coeffs: the quintic's (a, b, c), default (3.4445, -4.7750, 2.0315);
            or rows of them, one per iteration (at most ``ns_steps`` rows,
            the last ``ns_steps`` used); or a preset name, ``"standard"`` or
            ``"dion"``. Static (it sets the loop).
        ns_steps: number of iterations, an integer >= 0, default 5. Static.
        beta: momentum decay in [0, 1), default 0.95.
        eps: >= 0, default 1e-8, added to the rescaling norm.
        mu_dtype: dtype of ``mu`` (default: the updates'), static.
        nesterov: Nesterov momentum (default True), static, keyword-only.
        adaptive: scale by the dual norm ``<m, u>`` (default False), static,
            keyword-only.
        preconditioning: ``"frobenius"`` (default), ``"spectral"``, ``"aol"``
            or ``"schatten"``; static, keyword-only.
        weight_dimension_numbers: ``None`` (every leaf is a matrix), a tree
            (or a prefix of one) of ``MuonDimensionNumbers`` (``None`` entries
            mean a plain matrix), or a callable of the updates returning one.
            Static, keyword-only.

    State: ``MuonState(count, mu, ns_coeffs)``; ``ns_coeffs`` is kept in the
    widest float dtype of the params (optax: the default float dtype), so a
    bf16 model's state is all bf16; the iterations cast it to each leaf's
    dtype either way.

    References: Jordan, "Muon: An optimizer for hidden layers in neural
    networks", 2024 (modded-nanogpt); Bernstein & Newhouse, "Old Optimizer,
    New Norm: An Anthology", 2024 (adaptive: the dual norm); Boissin et al.,
    "Turbo-Muon", 2025 (AOL); Grishina et al., "Accelerating Newton-Schulz
    Iteration for Orthogonalization via Chebyshev-type Polynomials", 2025
    (Schatten-4); Ahn et al., "Dion", 2025 (the dion coefficients).

    Matches: optax.contrib.scale_by_muon(ns_coeffs, ns_steps, beta, eps,
    mu_dtype, nesterov=, adaptive=, preconditioning=,
    weight_dimension_numbers=). Differences: with
    ``weight_dimension_numbers=None`` optax works only on a single array (a
    tree of matrices raises), jgd on any tree of matrices; a preset name is
    accepted here too; the Schatten step uses X X^H (optax X X^T, the same for
    real X); the AOL and Schatten steps floor their rescaling at ``eps``
    (optax at 1e-8 whatever ``eps``); ``ns_coeffs``' state dtype as above.
    """

    ns_coeffs: Any = static_field(default=_DEFAULT_NS_COEFFS)
    ns_steps: int = static_field(default=5)
    beta: Scalar = 0.95
    eps: Scalar = 1e-8
    mu_dtype: DTypeLike | None = static_field(default=None)
    nesterov: bool = static_field(default=True, kw_only=True)
    adaptive: bool = static_field(default=False, kw_only=True)
    preconditioning: str = static_field(default="frobenius", kw_only=True)
    weight_dimension_numbers: Any = static_field(default=None, kw_only=True)

    _api = "jgd.contrib.scale_by_muon"

    def check(self):
        _check_muon_args(self)
        object.__setattr__(
            self, "mu_dtype", check_dtype(self, "mu_dtype", self.mu_dtype)
        )
        object.__setattr__(
            self,
            "weight_dimension_numbers",
            _hashable(self.weight_dimension_numbers),
        )

    def init(self, params: Any) -> Any:
        leaves = [x for x in jax.tree.leaves(params) if x is not None]
        floats = [x.dtype for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)]
        dtype = tree.wider_dtype(*floats) if floats else tree.default_float()
        coeffs = jnp.asarray(_coeffs(self.ns_coeffs))
        if coeffs.ndim == 2:
            coeffs = coeffs[-self.ns_steps :]
        return MuonState(
            count=jnp.zeros([], jnp.int32),
            mu=tree.zeros_like(params, dtype=self.mu_dtype),
            ns_coeffs=coeffs.astype(jnp.finfo(dtype).dtype),  # real part's dtype
        )

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        tree.check_same_structure(self, updates, state.mu, "state")
        beta = self.beta

        def ema(g, m):
            # optax's order: (1 - beta) * g in g's dtype, beta * m in m's.
            a = tree.coef(1 - beta, g.dtype) * g
            b = tree.coef(beta, m.dtype) * m
            a, b = tree.promote(a, b)
            return a + b

        mu = jax.tree.map(ema, updates, state.mu)
        t = tree.safe_increment(state.count)
        if self.nesterov:

            def nesterov(m, g):
                m, g = tree.coef(beta, m.dtype) * m, tree.coef(1 - beta, g.dtype) * g
                m, g = tree.promote(m, g)
                return m + g

            mu_hat = jax.tree.map(
                nesterov,
                tree.bias_correction(mu, beta, tree.safe_increment(t)),
                tree.bias_correction(updates, beta, t),
            )
        else:
            mu_hat = tree.bias_correction(mu, beta, t)

        dims = _dims_tree(self.weight_dimension_numbers, mu_hat)

        def orthogonalize(m, d):
            if m is None:
                return None
            u = _orthogonalize_leaf(
                m, d, state.ns_coeffs, self.ns_steps, self.preconditioning, self.eps
            )
            if self.adaptive:
                u = jnp.sum(m.conj() * u) * u  # scaled by the dual norm <m, u>
            return u

        out = jax.tree.map(orthogonalize, mu_hat, dims, is_leaf=lambda x: x is None)
        mu = tree.cast(mu, self.mu_dtype)
        return out, MuonState(count=t, mu=mu, ns_coeffs=state.ns_coeffs)


scale_by_muon = ScaleByMuon


def _check_muon_args(opt: Any) -> None:
    """The checks ``scale_by_muon`` and ``muon`` share."""
    check_int(opt, "ns_steps", opt.ns_steps, 0)
    object.__setattr__(
        opt, "ns_coeffs", _check_coeffs(opt, opt.ns_coeffs, opt.ns_steps)
    )
    check_number(opt, "beta", opt.beta, 0, 1, hi_open=True)
    check_number(opt, "eps", opt.eps, 0)
    if opt.preconditioning not in _PRECONDITIONINGS:
        raise ValueError(
            f"{owner_name(opt)}: preconditioning must be one of "
            f"{', '.join(map(repr, _PRECONDITIONINGS))}; got {opt.preconditioning!r}."
        )


# --------------------------------------------------------------------------
# muon: scale_by_muon on the matrices, AdamW on the rest.
# --------------------------------------------------------------------------


@register
class _ScaleByShape(Transform):
    """Multiply each matrix update by a factor of its shape (optax's
    ``scale_by_shape``, used by ``muon``).

    Update (fan_in, fan_out: the matrix's reduction and output sizes):
        u = sqrt(max(1, fan_out / fan_in)) * g                 (consistent_rms=None)
        u = sqrt(max(fan_in, fan_out)) * consistent_rms * g
    """

    consistent_rms: Scalar | None = None
    weight_dimension_numbers: Any = static_field(default=None)

    _api = "jgd.contrib.muon"

    def init(self, params: Any) -> Any:
        return empty_state()

    def update(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]:
        dims = _dims_tree(self.weight_dimension_numbers, updates)
        rms = self.consistent_rms

        def scale(g, d):
            if g is None:
                return None
            fan_in, fan_out = _matrix_view(g, d)[2]
            # Computed as optax does (a weak-typed jnp scalar), then cast.
            if rms is None:
                s = jnp.sqrt(jnp.maximum(1, fan_out / fan_in))
            else:
                s = jnp.sqrt(jnp.maximum(fan_in, fan_out)) * rms
            return tree.coef(s, g.dtype) * g

        return jax.tree.map(scale, updates, dims, is_leaf=lambda x: x is None), state


@register
class Muon(Optimizer):
    """Muon: momentum orthogonalised by Newton-Schulz on the weight matrices,
    AdamW on every other leaf.

    Update (matrices: by default the 2-D leaves; see
    ``muon_weight_dimension_numbers``):
        d = scale_by_muon(g)                         (see scale_by_muon)
        d = sqrt(max(1, fan_out / fan_in)) * d       (consistent_rms=None)
        d = sqrt(max(fan_in, fan_out)) * consistent_rms * d
        w = w - learning_rate * (d + weight_decay * w)   (where weight_decay_mask)
    other leaves:
        w = adamw(adam_learning_rate, adam_b1, adam_b2, eps, adam_eps_root,
                  adam_weight_decay, mu_dtype, nesterov=nesterov)

    Args:
        learning_rate: float >= 0 or a schedule.
        ns_coeffs, ns_steps, beta, eps, mu_dtype, nesterov, adaptive,
            preconditioning: as ``scale_by_muon`` (``eps`` also AdamW's).
        weight_decay: float >= 0 or a schedule, default 0, on the matrices
            (multiplied by the learning rate).
        weight_decay_mask: pytree of bools or callable ``params -> pytree``;
            None decays every matrix.
        adam_b1, adam_b2: AdamW's decays in [0, 1), defaults 0.9 and 0.999.
        adam_eps_root: >= 0, default 0.
        adam_weight_decay: float >= 0 or a schedule, default 0.
        adam_learning_rate: float >= 0, a schedule, or None (default: the
            learning rate).
        muon_weight_dimension_numbers: None (the 2-D leaves go to Muon), or a
            tree (or prefix) of ``MuonDimensionNumbers``, ``None`` marking a
            leaf for AdamW, or a callable of the params returning one. Static.
        consistent_rms: None (width scaling, default) or a number >= 0 (0.2
            matches AdamW's update RMS).
        (everything from ``nesterov`` on is keyword-only)

    Example:
        >>> import jgd, jax.numpy as jnp
        >>> opt = jgd.contrib.muon(0.1)
        >>> params = {"w": jnp.eye(2), "b": jnp.zeros(2)}
        >>> u, _ = opt.update({"w": jnp.ones((2, 2)), "b": jnp.ones(2)}, opt.init(params), params)
        >>> u["w"].round(3), u["b"].round(3)
        (Array([[-0.035, -0.035],
               [-0.035, -0.035]], dtype=float32), Array([-0.147, -0.147], dtype=float32))

    References: Jordan, "Muon: An optimizer for hidden layers in neural
    networks", 2024; Liu et al., "Muon is Scalable for LLM Training", 2025
    (consistent RMS); see ``scale_by_muon`` for the rest.

    Matches: optax.contrib.muon(...) with the same arguments; its state is
    ``(PartitionState,)`` (jgd.partition's, optax's class and fields). See ``scale_by_muon`` for the
    differences there.
    """

    learning_rate: ScalarOrSchedule
    ns_coeffs: Any = static_field(default=_DEFAULT_NS_COEFFS)
    ns_steps: int = static_field(default=5)
    beta: Scalar = 0.95
    eps: Scalar = 1e-8
    weight_decay: ScalarOrSchedule = 0.0
    weight_decay_mask: Any = None
    mu_dtype: DTypeLike | None = static_field(default=None)
    nesterov: bool = static_field(default=True, kw_only=True)
    adaptive: bool = static_field(default=False, kw_only=True)
    preconditioning: str = static_field(default="frobenius", kw_only=True)
    adam_b1: Scalar = dataclasses.field(default=0.9, kw_only=True)
    adam_b2: Scalar = dataclasses.field(default=0.999, kw_only=True)
    adam_eps_root: Scalar = dataclasses.field(default=0.0, kw_only=True)
    adam_weight_decay: ScalarOrSchedule = dataclasses.field(default=0.0, kw_only=True)
    adam_learning_rate: ScalarOrSchedule | None = dataclasses.field(
        default=None, kw_only=True
    )
    muon_weight_dimension_numbers: Any = static_field(default=None, kw_only=True)
    consistent_rms: Scalar | None = dataclasses.field(default=None, kw_only=True)

    _api = "jgd.contrib.muon"

    def check(self):
        _check_muon_args(self)
        check_number(self, "adam_b1", self.adam_b1, 0, 1, hi_open=True)
        check_number(self, "adam_b2", self.adam_b2, 0, 1, hi_open=True)
        check_number(self, "adam_eps_root", self.adam_eps_root, 0)
        check_number(
            self, "adam_weight_decay", self.adam_weight_decay, 0, schedule=True
        )
        check_number(
            self,
            "adam_learning_rate",
            self.adam_learning_rate,
            0,
            schedule=True,
            none=True,
        )
        check_number(self, "consistent_rms", self.consistent_rms, 0, none=True)
        object.__setattr__(
            self,
            "muon_weight_dimension_numbers",
            _hashable(self.muon_weight_dimension_numbers),
        )
        Optimizer.check(self)

    def _labels(self, params: Any) -> Any:
        """ "muon" or "adam" for every leaf (optax's param_labels)."""
        spec = _unwrap(self.muon_weight_dimension_numbers)
        if spec is None:
            return jax.tree.map(lambda x: "muon" if x.ndim == 2 else "adam", params)
        dims = spec(params) if callable(spec) else spec
        return jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: "adam" if d is None else "muon", sub),
            dims,
            params,
            is_leaf=lambda x: x is None or _is_dims(x),
        )

    def _decay_mask(self) -> Any:
        """The weight-decay mask as a callable of the matrices' tree: the
        decay sees ``MaskedNode()`` for the AdamW leaves, so a tree of bools
        (or a prefix of one) is laid over it, as optax.masked does."""
        mask = self.weight_decay_mask
        if mask is None or callable(mask):
            return mask
        return lambda params: jax.tree.map(
            lambda m, sub: jax.tree.map(lambda _: m, sub), mask, params
        )

    def recipe(self):
        adam_lr = self.adam_learning_rate
        if adam_lr is None:
            adam_lr = self.learning_rate
        dims = self.muon_weight_dimension_numbers
        matrices = chain(
            scale_by_muon(
                self.ns_coeffs,
                self.ns_steps,
                self.beta,
                self.eps,
                self.mu_dtype,
                nesterov=self.nesterov,
                adaptive=self.adaptive,
                preconditioning=self.preconditioning,
                weight_dimension_numbers=dims,
            ),
            _ScaleByShape(self.consistent_rms, dims),
            add_decayed_weights(self.weight_decay, self._decay_mask()),
            scale_by_learning_rate(self.learning_rate),
        )
        others = adamw(
            adam_lr,
            self.adam_b1,
            self.adam_b2,
            self.eps,
            self.adam_eps_root,
            self.mu_dtype,
            self.adam_weight_decay,
            nesterov=self.nesterov,
        )
        return chain(partition({"muon": matrices, "adam": others}, self._labels))


muon = Muon
