"""The runners of ``jgd bench``: one per variant (jgd's bare ``update``,
its flat buffers, ``jgd.train.make_step``, optax, torch.optim) plus the two
limit kernels; ``_build`` makes a variant's runner.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jgd.bench.workloads import _jgd_opt, _optax_opt, _torch_opt, _Unsupported

# --------------------------------------------------------------------------
# Runners: one per variant. Each owns its buffers; run(k) does k steps and
# blocks until they are done.
# --------------------------------------------------------------------------


def _tree_bytes(tree: Any) -> int:
    import jax

    return int(sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(tree)))


def _xla_memory(compiled: Any) -> dict[str, int] | None:
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


class _Runner:
    kind = "jax"
    lower_s: float | None = None
    compile_s: float | None = None
    xla_memory: dict | None = None
    state_bytes: int | None = None
    note: str = ""

    def run(self, k: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.__dict__.clear()


def _compile(
    fn: Callable, args: tuple, donate: tuple[int, ...], runner: _Runner, **jit: Any
):
    import jax

    jitted = jax.jit(fn, donate_argnums=donate, **jit)
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    runner.lower_s, runner.compile_s = t1 - t0, t2 - t1
    runner.xla_memory = _xla_memory(compiled)
    return compiled


class _UpdateRunner(_Runner):
    """``updates, state = opt.update(g, state, p); p = apply_updates(p, updates)``
    as one jitted function with params and state donated (jgd or optax)."""

    def __init__(self, lib: str, opt_name: str, params_np: Any, grads: Any):
        import jax
        import jax.numpy as jnp

        if lib == "jgd":
            import jgd

            opt, apply = _jgd_opt(opt_name), jgd.apply_updates
            promo = contextlib.nullcontext()
        else:
            import optax

            opt, apply = _optax_opt(opt_name), optax.apply_updates
            # optax does not pass jax_numpy_dtype_promotion="strict".
            promo = jax.numpy_dtype_promotion("standard")

        def step(params, state, g):
            updates, state = opt.update(g, state, params)
            return apply(params, updates), state

        with promo:
            params = jax.tree.map(jnp.asarray, params_np)
            state = opt.init(params)
            self.state_bytes = _tree_bytes(params) + _tree_bytes(state)
            self.fn = _compile(step, (params, state, grads), (0, 1), self)
        self.carry, self.grads = (params, state), grads

    def run(self, k: int) -> None:
        import jax

        p, s = self.carry
        for _ in range(k):
            p, s = self.fn(p, s, self.grads)
        jax.block_until_ready((p, s))
        self.carry = (p, s)


class _Grad:
    """``loss(params, batch)`` whose gradient with respect to ``params`` is
    ``batch`` and whose value is 0: a custom VJP, so the forward pass reads
    nothing and the backward pass hands the batch's leaves over as the
    gradient's (``value_and_grad`` seeds the cotangent with 1, so the batch is
    returned as it is rather than multiplied by it). Through ``make_step`` the
    optimizer then sees the batch as its gradient, arriving leaf by leaf as a
    backward pass delivers it; the step's work over the optimizer update is
    what make_step itself adds (packing the gradient into its bucket, the
    ``grad_norm`` metric) plus passing the batch's leaves as arguments."""

    @staticmethod
    def make():
        import jax
        import jax.numpy as jnp

        @jax.custom_vjp
        def linear(p, b):
            return jnp.zeros([], jnp.float32)

        def fwd(p, b):
            return linear(p, b), b

        def bwd(b, ct):
            return (b, None)

        linear.defvjp(fwd, bwd)
        return linear


class _MakeStepRunner(_Runner):
    """``jgd.train.make_step(loss, opt)``: flat-resident params and state,
    the gradient coming from a loss whose gradient is the batch (``_Grad``)."""

    def __init__(self, opt_name: str, params_np: Any, grads: Any):
        import jax
        import jax.numpy as jnp

        try:
            train = importlib.import_module("jgd.train")
            make_step, init = train.make_step, train.init
        except (ImportError, AttributeError) as e:
            raise _Unsupported(f"jgd.train.make_step is not available ({e})") from None
        opt = _jgd_opt(opt_name)
        loss = _Grad.make()
        params = jax.tree.map(jnp.asarray, params_np)
        state = init(params, opt)
        del params
        self.state_bytes = _tree_bytes(state)
        step = make_step(loss, opt)
        if not hasattr(step, "lower"):
            raise _Unsupported("jgd.train.make_step's step has no .lower to time")
        t0 = time.perf_counter()
        lowered = step.lower(state, grads)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        t2 = time.perf_counter()
        self.lower_s, self.compile_s = t1 - t0, t2 - t1
        self.xla_memory = _xla_memory(compiled)
        self.fn, self.state, self.grads = compiled, state, grads

    def run(self, k: int) -> None:
        import jax

        s, m = self.state, None
        for _ in range(k):
            s, m = self.fn(s, self.grads)
        jax.block_until_ready((s, m))
        self.state = s


class _FlatRunner(_Runner):
    """The optimizer step inside ``make_step`` (``update_and_apply``: jgd's
    ``update`` + ``apply_updates``, or ``jgd.kernels``' fused loop where it
    applies) on the flat-resident buffers that ``jgd.train.init`` stores
    (``stored_params``, ``stored_opt_state``), the gradient given packed the
    same way (one buffer per bucket), jitted with params and state donated:
    without the gradient packing, the metrics and the batch's arguments."""

    def __init__(self, opt_name: str, params_np: Any, grads_np: Any):
        import jax
        import jax.numpy as jnp

        try:
            train = importlib.import_module("jgd.train")
            init = train.init
        except (ImportError, AttributeError) as e:
            raise _Unsupported(f"jgd.train.init is not available ({e})") from None
        opt = _jgd_opt(opt_name)  # no weight-decay masks: the same on buckets
        state = init(jax.tree.map(jnp.asarray, params_np), opt)
        layout = state.layout
        leaves = jax.tree.leaves(grads_np)
        flat = {b.name: np.empty(b.size, b.dtype) for b in layout.buckets}
        for slot, g in zip(layout.slots, leaves, strict=True):
            flat[slot.bucket][slot.offset : slot.offset + slot.size] = np.ravel(g)
        grads = {k: jnp.asarray(v) for k, v in flat.items()}
        params, opt_state = state.stored_params, state.stored_opt_state
        self.state_bytes = _tree_bytes(params) + _tree_bytes(opt_state)

        from jgd.train.layout import flat_optimizer
        from jgd.train.step import update_and_apply

        tx = flat_optimizer(opt, layout)  # make_step's own update

        def step(params, opt_state, g):
            groups = {name: [x] for name, x in g.items()}  # already packed
            new_params, opt_state, _ = update_and_apply(
                tx, groups, opt_state, params, flat=True
            )
            return new_params, opt_state

        self.fn = _compile(step, (params, opt_state, grads), (0, 1), self)
        self.carry, self.grads = (params, opt_state), grads

    run = _UpdateRunner.run


class _BatchArgs(_Runner):
    """A compiled function that takes the batch tree and returns one scalar:
    the cost of passing the batch's leaves to a jitted call, which the
    ``jgd-step`` variant pays on top of its step (a real batch has a few
    leaves; this one has the params' structure). Every leaf stays an argument
    of the executable (``keep_unused``), as in the step, where each is read:
    the runtime's cost per argument is paid only for the arguments it keeps,
    and grows faster than their number (at 10000 leaves of 100 floats, 3.5 ms
    for the call alone, 11.7 ms with every leaf kept)."""

    def __init__(self, grads: Any):
        import jax

        first = lambda b: jax.tree.leaves(b)[0].ravel()[0]
        self.fn = _compile(first, (grads,), (), self, keep_unused=True)
        self.grads = grads

    def run(self, k: int) -> None:
        out = None
        for _ in range(k):
            out = self.fn(self.grads)
        out.block_until_ready()


class _TorchRunner(_Runner):
    kind = "torch"

    def __init__(self, opt_name: str, params_np: Any, grads_np: Any, mode: str):
        import jax
        import torch

        # On a GPU run torch uses the GPU too, so that both sides share a device.
        gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
        self.device = "cuda" if gpu else "cpu"
        self.params = [torch.nn.Parameter(torch.from_numpy(np.array(p)).to(self.device))
                       for p in jax.tree.leaves(params_np)]  # fmt: skip
        for p, g in zip(self.params, jax.tree.leaves(grads_np), strict=True):
            p.grad = torch.from_numpy(np.array(g)).to(self.device)
        self.opt, self.clip = _torch_opt(opt_name, self.params, mode)
        self.threads = torch.get_num_threads()
        t0 = time.perf_counter()
        self.run(1)  # creates the optimizer state
        self.first_step_s = time.perf_counter() - t0
        self.state_bytes = sum(p.nbytes for p in self.params) + sum(
            t.nbytes for s in self.opt.state.values() for t in s.values()
            if torch.is_tensor(t)
        )  # fmt: skip

    def run(self, k: int) -> None:
        for _ in range(k):
            if self.clip is not None:
                self.clip()
            self.opt.step()
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


class _LimitJit(_Runner):
    """In-place ``x = 0.5 * x + 0.25`` over a flat float32 buffer, donated."""

    def __init__(self, floats: int):
        import jax.numpy as jnp

        self.bytes_per_call = 8 * floats
        buf = jnp.zeros((floats,), jnp.float32)
        self.fn = _compile(
            lambda x: x * jnp.float32(0.5) + jnp.float32(0.25), (buf,), (0,), self
        )
        self.buf = buf

    def run(self, k: int) -> None:
        x = self.buf
        for _ in range(k):
            x = self.fn(x)
        x.block_until_ready()
        self.buf = x


class _LimitNumpy(_Runner):
    """``np.copyto`` between two halves of the working set."""

    kind = "numpy"

    def __init__(self, floats: int):
        half = max(1, floats // 2)
        self.src = np.full(half, 0.5, np.float32)
        self.dst = np.zeros(half, np.float32)
        self.bytes_per_call = 8 * half

    def run(self, k: int) -> None:
        for _ in range(k):
            np.copyto(self.dst, self.src)


def _torch_available() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def _build(variant: str, opt_name: str, params_np: Any, grads: Any, grads_np: Any):
    if variant == "jgd":
        return _UpdateRunner("jgd", opt_name, params_np, grads)
    if variant == "optax":
        return _UpdateRunner("optax", opt_name, params_np, grads)
    if variant == "jgd-step":
        return _MakeStepRunner(opt_name, params_np, grads)
    if variant == "jgd-flat":
        return _FlatRunner(opt_name, params_np, grads_np)
    if variant.startswith("torch-"):
        if _torch_available() is None:
            raise _Unsupported("torch is not installed")
        return _TorchRunner(opt_name, params_np, grads_np, variant.split("-", 1)[1])
    raise ValueError(f"jgd bench: unknown variant {variant!r}")
