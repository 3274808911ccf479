"""The runners of ``jgd bench``: one training step per variant, compiled
ahead of time, plus the two memory-bandwidth limit kernels.

Every variant trains the same model from the same params on the same batch:

- ``optax``: the step people write by hand, ``value_and_grad``, optax's
  ``update`` and ``optax.apply_updates``, jitted with params and state
  donated;
- ``jgd``: that same step with jgd's optimizer and ``jgd.apply_updates``;
- ``jgd-step``: ``jgd.train.make_step(loss)`` on ``jgd.train.init(params,
  opt)``.

Only jgd's public API is used. ``build(variant, ...)`` makes a runner;
``runner.run(k)`` takes ``k`` steps and blocks until they are done.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jgd.bench.models import Model
from jgd.bench.workloads import build_optimizer


class Failed(Exception):
    """This variant could not be built for this cell (recorded with why)."""


def _tree_bytes(tree: Any) -> int:
    import jax

    return int(sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(tree)))


def _xla_memory(compiled: Any) -> dict[str, int] | None:
    """XLA's static memory analysis of a compiled step (None where the
    backend has none): what the step needs resident, donation included."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend has it
        return None
    if m is None:
        return None
    out = {
        "argument_bytes": int(m.argument_size_in_bytes),
        "output_bytes": int(m.output_size_in_bytes),
        "alias_bytes": int(m.alias_size_in_bytes),
        "temp_bytes": int(m.temp_size_in_bytes),
    }
    out["peak_bytes"] = (
        out["argument_bytes"]
        + out["output_bytes"]
        - out["alias_bytes"]
        + out["temp_bytes"]
    )
    return out


class Runner:
    """A compiled step and the state it carries from call to call."""

    lower_s: float | None = None
    compile_s: float | None = None
    xla_memory: dict | None = None
    state_bytes: int | None = None
    first_loss: float | None = None

    def run(self, k: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.__dict__.clear()

    def _prepare(self, make: Callable[[], Any], *args: Any, context=None) -> None:
        """What ``compile_once`` builds: ``make()`` (a fresh jitted function
        each call, so jit traces it anew) lowered at ``args``."""
        self._make, self._args = make, args
        self._context = context or contextlib.nullcontext
        self.compile_samples_s: list[tuple[float, float]] = []

    def compile_once(self) -> None:
        """Lower and compile the step once more, the two phases timed apart;
        ``lower_s`` and ``compile_s`` are the medians over the calls."""
        with self._context():
            lowerable = self._make()
            t0 = time.perf_counter()
            lowered = lowerable.lower(*self._args)
            t1 = time.perf_counter()
            compiled = lowered.compile()
        self.compile_samples_s.append((t1 - t0, time.perf_counter() - t1))
        self.lower_s = statistics.median(lo for lo, _ in self.compile_samples_s)
        self.compile_s = statistics.median(c for _, c in self.compile_samples_s)
        self.xla_memory = _xla_memory(compiled)
        self.fn = compiled

    def _note_loss(self, loss: Any) -> None:
        if self.first_loss is None:
            self.first_loss = float(loss)


class HandWritten(Runner):
    """``loss, g = value_and_grad(loss)(params, batch)``; ``u, s =
    tx.update(g, s, params)``; ``params = apply_updates(params, u)``, jitted
    with params and state donated, for ``lib`` = jgd or optax."""

    def __init__(self, lib_name: str, model: Model, opt_name: str, params_np, batch):
        import jax
        import jax.numpy as jnp

        if lib_name == "jgd":
            import jgd as lib

            promotion: Callable[[], Any] = contextlib.nullcontext
        else:
            import optax as lib

            # optax does not pass jax_numpy_dtype_promotion="strict".
            promotion = functools.partial(jax.numpy_dtype_promotion, "standard")
        tx = build_optimizer(lib, opt_name)

        def make():  # a new function each time: jit traces it afresh
            def step(params, state, batch):
                loss, g = jax.value_and_grad(model.loss)(params, batch)
                u, state = tx.update(g, state, params)
                return lib.apply_updates(params, u), state, loss

            return jax.jit(step, donate_argnums=(0, 1))

        with promotion():
            params = jax.tree.map(jnp.asarray, params_np)
            state = tx.init(params)
        self.state_bytes = _tree_bytes(params) + _tree_bytes(state)
        self._prepare(make, params, state, batch, context=promotion)
        self.carry, self.batch = (params, state), batch

    def run(self, k: int) -> None:
        import jax

        p, s = self.carry
        for _ in range(k):
            p, s, loss = self.fn(p, s, self.batch)
        jax.block_until_ready((p, s, loss))
        self.carry = (p, s)
        self._note_loss(loss)


class MakeStep(Runner):
    """``jgd.train.make_step(loss)`` on ``jgd.train.init(params, opt)``."""

    def __init__(self, model: Model, opt_name: str, params_np, batch):
        import jax
        import jax.numpy as jnp

        import jgd
        import jgd.train

        params = jax.tree.map(jnp.asarray, params_np)
        state = jgd.train.init(params, build_optimizer(jgd, opt_name))
        del params
        self.state_bytes = _tree_bytes(state)

        def make():
            try:
                return jgd.train.make_step(model.loss)
            except TypeError as e:
                raise Failed(f"jgd.train.make_step(loss_fn) raised: {e}") from None

        self._prepare(make, state, batch)
        self.state, self.batch = state, batch

    def run(self, k: int) -> None:
        import jax

        s = self.state
        for _ in range(k):
            s, metrics = self.fn(s, self.batch)
        jax.block_until_ready((s, metrics))
        self.state = s
        self._note_loss(metrics["loss"])


def build(variant: str, model: Model, opt_name: str, params_np: Any, batch: Any):
    """The runner of ``variant`` for one model and optimizer, not yet
    compiled (``compile_once``)."""
    if variant in ("optax", "optax-again", "jgd"):
        lib = "jgd" if variant == "jgd" else "optax"
        return HandWritten(lib, model, opt_name, params_np, batch)
    if variant == "jgd-step":
        return MakeStep(model, opt_name, params_np, batch)
    raise ValueError(f"jgd bench: unknown variant {variant!r}")


# --------------------------------------------------------------------------
# The memory-bandwidth limit: two one-pass kernels over the optimizer's
# working set, timed in the same rotation as the steps.
# --------------------------------------------------------------------------


class LimitJit(Runner):
    """In-place ``x = 0.5 * x + 0.25`` over a flat float32 buffer, donated."""

    def __init__(self, floats: int):
        import jax
        import jax.numpy as jnp

        self.bytes_per_call = 8 * floats
        self.buf = jnp.zeros((floats,), jnp.float32)
        kernel = jax.jit(
            lambda x: x * jnp.float32(0.5) + jnp.float32(0.25), donate_argnums=0
        )
        self._prepare(lambda: kernel, self.buf)
        self.compile_once()

    def run(self, k: int) -> None:
        x = self.buf
        for _ in range(k):
            x = self.fn(x)
        x.block_until_ready()
        self.buf = x


class LimitNumpy(Runner):
    """``np.copyto`` between two halves of the working set."""

    def __init__(self, floats: int):
        half = max(1, floats // 2)
        self.src = np.full(half, 0.5, np.float32)
        self.dst = np.zeros(half, np.float32)
        self.bytes_per_call = 8 * half

    def run(self, k: int) -> None:
        for _ in range(k):
            np.copyto(self.dst, self.src)
