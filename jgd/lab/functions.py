"""Test functions: small landscapes with known minima for watching optimizers.

Holds ``Landscape`` (a pure JAX function with its formula, plotting domain,
minimiser(s), minimum, a default start and learning rate), the ``quadratic``
factory, the seven landscapes of the lab and ``FUNCTIONS`` (name ->
landscape):

    parabola    f(x) = x**2                        the tutorials' 1-D bowl
    bowl        f(x, y) = x**2 + y**2               round bowl, curvature 2
    elongated   f(x, y) = x**2 / 2 + 50 * y**2      ill-conditioned, curvatures 1 and 100
    rosenbrock  f(x, y) = (1 - x)**2 + 100 * (y - x**2)**2
    beale       f(x, y) = (1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2
                          + (2.625 - x + x*y**3)**2
    himmelblau  f(x, y) = (x**2 + y - 11)**2 + (x + y**2 - 7)**2   (four minima)
    saddle      f(x, y) = x**2 - y**2                no minimum; a saddle at (0, 0)

A landscape is called like the function it holds: ``rosenbrock(x)`` takes a
float array of shape ``(2,)`` (``parabola`` takes any shape and sums) and
returns a scalar of the same dtype, so ``jax.grad(rosenbrock)`` is its
gradient.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jgd.lab import rosenbrock
    >>> rosenbrock(jnp.array([1.0, 1.0]))
    Array(0., dtype=float32)
    >>> rosenbrock.minimizers
    ((1.0, 1.0),)
    >>> jax.grad(rosenbrock)(jnp.array([0.0, 0.0]))
    Array([-2.,  0.], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

__all__ = [
    "FUNCTIONS",
    "Landscape",
    "beale",
    "bowl",
    "elongated",
    "himmelblau",
    "parabola",
    "quadratic",
    "rosenbrock",
    "saddle",
]


@dataclasses.dataclass(frozen=True)
class Landscape:
    """A test function with what is known about it.

    Attributes:
        name: short name (the CLI's ``jgd plot NAME``).
        fn: the pure JAX function ``x -> scalar``.
        formula: the formula in plain text.
        domain: ``((lo, hi), ...)`` per coordinate: the box that plots show.
        minimizers: the global minimisers (empty when there is none).
        minimum: the minimum value, or ``None`` when unbounded below.
        start: a default start point whose path is worth watching.
        learning_rate: a default learning rate for plain gradient descent.
        curvature: the largest Hessian eigenvalue ``L`` for a quadratic (plain
            gradient descent diverges for ``learning_rate > 2 / L``), else
            ``None``.

    Landscapes are hashable, so they can be static arguments of ``jax.jit``.
    """

    name: str
    fn: Callable[[Any], Any] = dataclasses.field(repr=False)
    formula: str
    domain: tuple
    minimizers: tuple
    minimum: float | None
    start: tuple | float
    learning_rate: float
    curvature: float | None = None

    def __call__(self, x):
        return self.fn(x)

    @property
    def ndim(self) -> int:
        """Number of coordinates (1 for ``parabola``)."""
        return len(self.domain)

    def __post_init__(self):  # the instance's docstring is its function's
        object.__setattr__(self, "__doc__", self.fn.__doc__)


def _landscape(**info):
    def wrap(fn):
        return Landscape(name=fn.__name__.lstrip("_"), fn=fn, **info)

    return wrap


def quadratic(curvatures, *, name="quadratic", start=None, learning_rate=None):
    """The quadratic ``f(x) = sum_i curvatures[i] / 2 * x[i]**2``.

    Its Hessian is ``diag(curvatures)``; plain gradient descent converges for
    ``0 < learning_rate < 2 / max(curvatures)`` and diverges above. The
    minimiser is the origin, the minimum 0.

    Args:
        curvatures: positive numbers, one per coordinate.
        name: the landscape's name.
        start: start point (default: 1 in every coordinate).
        learning_rate: default learning rate (default ``1 / max(curvatures)``).

    Example:
        >>> import jax.numpy as jnp
        >>> from jgd.lab import quadratic
        >>> q = quadratic([4.0])
        >>> q(jnp.array([3.0])), q.curvature
        (Array(18., dtype=float32), 4.0)
    """
    c = tuple(float(v) for v in curvatures)
    if not c or not all(0 < v < math.inf for v in c):
        raise ValueError(
            f"jgd.lab.quadratic: curvatures must be positive and finite; got {curvatures!r}."
        )
    half = jnp.asarray([v / 2 for v in c])

    def fn(x):
        return jnp.sum(half.astype(x.dtype) * x * x)

    fn.__doc__ = (
        f"Quadratic f(x) = sum_i c_i / 2 * x_i**2 with curvatures c = {c}; "
        "minimiser 0, minimum 0."
    )
    return Landscape(
        name=name,
        fn=fn,
        formula=" + ".join(f"{v / 2:g}*x{i}**2" for i, v in enumerate(c)),
        domain=tuple((-2.0, 2.0) for _ in c),
        minimizers=(tuple(0.0 for _ in c),),
        minimum=0.0,
        start=tuple(1.0 for _ in c) if start is None else start,
        learning_rate=1 / max(c) if learning_rate is None else learning_rate,
        curvature=max(c),
    )


@_landscape(
    formula="x**2",
    domain=((-6.0, 6.0),),
    minimizers=(0.0,),
    minimum=0.0,
    start=5.0,
    learning_rate=0.1,
    curvature=2.0,
)
def _parabola(x):
    """The tutorials' bowl: f(x) = x**2 (summed over entries for an array).

    Domain: all reals (plotted on [-6, 6]). Minimiser: x = 0, f = 0.
    Curvature 2, so gradient descent gives x_k = (1 - 2 lr)**k * x_0: from
    x_0 = 5 with lr 0.1, x_k = 5 * 0.8**k, and lr > 1 diverges.
    """
    return jnp.sum(x * x)


@_landscape(
    formula="x**2 + y**2",
    domain=((-3.0, 3.0), (-3.0, 3.0)),
    minimizers=((0.0, 0.0),),
    minimum=0.0,
    start=(-2.5, 2.0),
    learning_rate=0.1,
    curvature=2.0,
)
def _bowl(x):
    """The quadratic bowl: f(x, y) = x**2 + y**2.

    Domain: R^2 (plotted on [-3, 3]^2). Minimiser: (0, 0), f = 0.
    Curvature 2 in every direction: gradient descent diverges for lr > 1.
    """
    return x[0] * x[0] + x[1] * x[1]


@_landscape(
    formula="x**2/2 + 50*y**2",
    domain=((-6.0, 6.0), (-1.5, 1.5)),
    minimizers=((0.0, 0.0),),
    minimum=0.0,
    start=(-5.0, 1.0),
    learning_rate=0.015,
    curvature=100.0,
)
def _elongated(x):
    """An ill-conditioned, elongated bowl: f(x, y) = x**2 / 2 + 50 * y**2.

    Domain: R^2 (plotted on [-6, 6] x [-1.5, 1.5]). Minimiser: (0, 0), f = 0.
    Curvatures 1 (along x) and 100 (along y), condition number 100: a
    learning rate small enough for y (lr < 2 / 100) crawls along x, which is
    where momentum helps.
    """
    return 0.5 * x[0] * x[0] + 50.0 * x[1] * x[1]


@_landscape(
    formula="(1 - x)**2 + 100*(y - x**2)**2",
    domain=((-2.0, 2.0), (-1.0, 3.0)),
    minimizers=((1.0, 1.0),),
    minimum=0.0,
    start=(-1.5, 2.0),
    learning_rate=1e-3,
)
def _rosenbrock(x):
    """Rosenbrock's banana valley: f(x, y) = (1 - x)**2 + 100 * (y - x**2)**2.

    Domain: R^2 (plotted on [-2, 2] x [-1, 3]). Minimiser: (1, 1), f = 0, at
    the end of a long curved valley along y = x**2 that is easy to find and
    slow to follow; the Hessian at the minimum has eigenvalues ~0.4 and ~1002.

    References: Rosenbrock, "An automatic method for finding the greatest or
    least value of a function", 1960.
    """
    a = 1.0 - x[0]
    b = x[1] - x[0] * x[0]
    return a * a + 100.0 * b * b


@_landscape(
    formula="(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2",
    domain=((-4.5, 4.5), (-4.5, 4.5)),
    minimizers=((3.0, 0.5),),
    minimum=0.0,
    start=(1.0, 1.5),
    learning_rate=1e-3,
)
def _beale(x):
    """Beale's function: f(x, y) = (1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2
    + (2.625 - x + x*y**3)**2.

    Domain: [-4.5, 4.5]^2. Minimiser: (3, 0.5), f = 0; flat valleys and steep
    walls (values span eight decades on the domain).

    References: Beale, "On an iterative method for finding a local minimum of a
    function of more than one variable", 1958.
    """
    u, v = x[0], x[1]
    a = 1.5 - u + u * v
    b = 2.25 - u + u * v * v
    c = 2.625 - u + u * v * v * v
    return a * a + b * b + c * c


@_landscape(
    formula="(x**2 + y - 11)**2 + (x + y**2 - 7)**2",
    domain=((-5.0, 5.0), (-5.0, 5.0)),
    minimizers=(
        (3.0, 2.0),
        (-2.805118, 3.131312),
        (-3.779310, -3.283186),
        (3.584428, -1.848126),
    ),
    minimum=0.0,
    start=(-0.5, 0.0),
    learning_rate=0.01,
)
def _himmelblau(x):
    """Himmelblau's function: f(x, y) = (x**2 + y - 11)**2 + (x + y**2 - 7)**2.

    Domain: [-5, 5]^2. Four minimisers, all with f = 0: (3, 2),
    (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)
    (the last three to 6 decimals); which one an optimizer reaches depends on
    where it starts. A local maximum sits at (-0.270845, -0.923039).

    References: Himmelblau, "Applied Nonlinear Programming", 1972.
    """
    a = x[0] * x[0] + x[1] - 11.0
    b = x[0] + x[1] * x[1] - 7.0
    return a * a + b * b


@_landscape(
    formula="x**2 - y**2",
    domain=((-2.0, 2.0), (-2.0, 2.0)),
    minimizers=(),
    minimum=None,
    start=(-1.5, 0.01),
    learning_rate=0.02,
)
def _saddle(x):
    """A saddle: f(x, y) = x**2 - y**2.

    Domain: R^2 (plotted on [-2, 2]^2). No minimiser: f is unbounded below
    along y. The gradient vanishes at the saddle point (0, 0); a start just
    off the x axis first rolls towards it, then slowly escapes along y.
    """
    return x[0] * x[0] - x[1] * x[1]


parabola = _parabola
bowl = _bowl
elongated = _elongated
rosenbrock = _rosenbrock
beale = _beale
himmelblau = _himmelblau
saddle = _saddle

FUNCTIONS: dict[str, Landscape] = {
    f.name: f
    for f in (parabola, bowl, elongated, rosenbrock, beale, himmelblau, saddle)
}
