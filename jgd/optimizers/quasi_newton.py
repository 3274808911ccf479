"""L-BFGS: ``lbfgs``, a chain of ``scale_by_lbfgs``, a sign flip (or a
learning rate) and a line search (by default the zoom line search). Its
building blocks live in ``jgd.transforms.linesearch``.
"""

# No ``from __future__ import annotations`` here: ``learning_rate``'s annotation
# must stay the ScalarOrSchedule object (not a string) for inspect.signature.

from typing import Any, Optional

from jgd.base import (
    Identity,
    ScalarOrSchedule,
    Static,
    Transform,
    chain,
    is_transform,
    register,
    static_field,
)
from jgd.optimizers.optimizer import Optimizer
from jgd.transforms.basic import scale, scale_by_learning_rate
from jgd.transforms.linesearch import scale_by_lbfgs, scale_by_zoom_linesearch

__all__ = ["lbfgs"]


@register
class Lbfgs(Optimizer):
    """L-BFGS: a quasi-Newton direction from the last ``memory_size`` steps,
    scaled by a line search.

    The direction is the gradient times L-BFGS's approximation of the inverse
    Hessian (``scale_by_lbfgs``); the line search then picks the step size
    along it. With the default zoom line search, ``update`` takes optax's
    extra keyword arguments ``value=``, ``grad=`` and ``value_fn=`` (and any
    keywords of ``value_fn``, e.g. a batch); ``jgd.value_and_grad_from_state``
    reuses the value and gradient the line search computed at the new params.
    With ``linesearch=None`` it is a plain transform (constant step).

    Update (see scale_by_lbfgs and scale_by_zoom_linesearch):
        d = H g                      (the two-loop recursion over the memory)
        d = -learning_rate * d       (learning_rate None: d = -d)
        eta = linesearch(d)          (strong Wolfe; linesearch None: eta = 1)
        w = w + eta * d

    Args:
        learning_rate: None (the line search sets the step, default), or a
            float >= 0 or a schedule scaling the direction.
        memory_size: pairs kept, an integer >= 1, default 10 (static).
        scale_init_precond: start from the scaled identity ``<y, s> / |y|**2``
            (``min(1, 1/|g|)`` at the first step), default True (static).
        linesearch: a transform that takes ``value``, ``grad``, ``value_fn``
            (jgd's or optax's), default
            ``scale_by_zoom_linesearch(max_linesearch_steps=20,
            initial_guess_strategy='one')``; None for no line search.

    Example:
        >>> import jax.numpy as jnp, jgd
        >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
        >>> opt, x = jgd.lbfgs(), jnp.zeros(2)
        >>> state = opt.init(x)
        >>> for _ in range(2):
        ...     v, g = jgd.value_and_grad_from_state(f)(x, state=state)
        ...     u, state = opt.update(g, state, x, value=v, grad=g, value_fn=f)
        ...     x = jgd.apply_updates(x, u)
        >>> x
        Array([1., 1.], dtype=float32)

    References: Nocedal & Wright, "Numerical Optimization", 1999, Algorithms
    7.4, 7.5, 3.5 and 3.6; Liu & Nocedal, "On the limited memory BFGS method
    for large scale optimization", 1989.

    Matches: optax.lbfgs(learning_rate, memory_size, scale_init_precond,
    linesearch); the state is optax's chain state, leaf for leaf.
    """

    learning_rate: Optional[ScalarOrSchedule] = None  # noqa: UP045 (optax's annotation)
    memory_size: int = static_field(default=10)
    scale_init_precond: bool = static_field(default=True)
    linesearch: Any = scale_by_zoom_linesearch(
        max_linesearch_steps=20, initial_guess_strategy="one"
    )

    _api = "jgd.lbfgs"

    def check(self):
        ls = self.linesearch
        inner = ls.value if isinstance(ls, Static) else ls
        if ls is not None and not isinstance(ls, Transform):
            if not is_transform(inner):
                raise TypeError(
                    "jgd.lbfgs: linesearch must be a transform (jgd's or optax's) "
                    f"or None; got {inner!r} ({type(inner).__name__})."
                )
            # An optax transform: static configuration, as in chain.
            object.__setattr__(self, "linesearch", Static(inner))
        Optimizer.check(self)

    def recipe(self):
        if self.learning_rate is None:
            step = scale(-1.0)
        else:
            step = scale_by_learning_rate(self.learning_rate)
        ls = Identity() if self.linesearch is None else self.linesearch
        return chain(
            scale_by_lbfgs(self.memory_size, self.scale_init_precond), step, ls
        )


lbfgs = Lbfgs
