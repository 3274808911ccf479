"""CPU kernels for ``jgd.train``'s flat step (``kernels.cc``, through ``jax.ffi``).

**Adam in one pass.** XLA:CPU has no multi-output loop fusion, so Adam's new
m, new v and new params come out of three loops over memory: 40 bytes per
float32 parameter where 28 are needed (``benchmarks/README.md``).
``fused_update`` runs the update as one loop on the step's donated buffers,
reading each bucket's gradient from its per-leaf buffers where they are:

    [clip_by_global_norm] -> scale_by_adam -> [add_decayed_weights]
        -> scale_by_learning_rate -> apply_updates

which is ``jgd.adam`` and ``jgd.adamw`` (any learning rate or schedule, any
weight-decay mask), alone or after ``jgd.clip_by_global_norm``, on float32
buckets. Its arithmetic is XLA's, operation for operation, so with one bucket
the results are bit-identical to XLA's loops (``tests/test_kernels.py``).
Two places round differently, by design: the squares of the gradient are
summed in double as the kernel reads them (make_step's ``grad_norm`` metric,
and with ``clip_by_global_norm`` the norm it clips by, which a second kernel
sums in one pass over the gradient first), where XLA sums in float32; and
with a weight-decay mask (two buckets) XLA's own loops vary their
arithmetic, so there the two agree to float32 rounding per step. Everything
else (other optimizers, bf16 or float64 buckets, ``nesterov``, ``mu_dtype``,
optax transforms, a GPU) runs as before.

**Packing the gradient.** Any other flat step packs the per-leaf gradient
into its buckets first. XLA:CPU's concatenate compiles in time growing with
the number of leaves (20 s for 10000); ``pack`` is one call per bucket that
copies the leaves in, for any dtype.

The kernels are built on first use with the system C++ compiler (``$CXX``,
else ``c++``) against jaxlib's FFI headers, into ``$JGD_CACHE_DIR`` (default
``~/.cache/jgd``) under a name that hashes the source, the flags, jax's
version and the CPU, and loaded from there afterwards once the library's size
and sha256 match those recorded beside it (a damaged copy is rebuilt). Off CPU
or with ``JGD_KERNELS=0`` in the environment, the step uses XLA's concatenate
and loops: the same numbers, slower; so it does when the kernels cannot be
built or loaded, with one ``KernelFallbackWarning``. ``status()`` says which,
and why.

**Handing out leaf offsets.** A flat step cuts each leaf out of its bucket
at an offset that is an argument of the compiled program (``Layout.unpack``).
One int32 scalar argument per leaf costs the runtime more than a
microsecond per leaf per call, growing faster than their number (8.6 ms a
step at 1000 leaves against 1.0 ms, ``benchmarks/README.md``); ``unstack``
takes them as one array and hands out one scalar per leaf in one call.

Only ``jgd.train`` uses it: a bare ``opt.update`` stays pure JAX, so it can
still be vmapped and differentiated with respect to its hyperparameters.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgd import tree
from jgd.base import Chain
from jgd.transforms import (
    AddDecayedWeights,
    ClipByGlobalNorm,
    ScaleByAdam,
    ScaleByAdamState,
    ScaleByLearningRate,
)

try:
    import fcntl
except ImportError:  # not POSIX: builds are still renamed into place, unlocked
    fcntl = None

__all__ = [
    "KernelFallbackWarning",
    "available",
    "disabled",
    "fused_update",
    "pack",
    "ready",
    "status",
    "unstack",
]

SOURCE = Path(__file__).with_name("kernels.cc")
TARGET = "jgd_fused_adam"
NORM_TARGET = "jgd_sum_squares"
PACK_TARGET = "jgd_pack"
UNSTACK_TARGET = "jgd_unstack"
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno")

_loaded: bool | None = None  # None: not tried yet
_why = "not built yet"
_off = 0  # depth of disabled() contexts
_warned = False  # KernelFallbackWarning is given once per process


class KernelFallbackWarning(RuntimeWarning):
    """A jgd.train step would use the kernels but they could not be built or
    loaded, so it runs XLA's loops: the same numbers, slower. ``status()``
    says why; ``JGD_KERNELS=0`` turns the kernels (and this warning) off."""


def _switched_off() -> bool:
    return bool(_off) or os.environ.get("JGD_KERNELS") == "0"


def _usable() -> bool:
    """Whether a step traced now may use the kernels (before building them)."""
    return not _switched_off() and jax.default_backend() == "cpu"


def status() -> str:
    """Whether the kernel is in use, and why not when it is not."""
    if _switched_off():
        return "off: disabled (JGD_KERNELS=0 or jgd.kernels.disabled())"
    return _why


@contextlib.contextmanager
def disabled():
    """Trace jgd.train steps without the kernel inside this block (a step
    compiled inside keeps XLA's loops)."""
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1


def ready() -> bool:
    """Whether a step traced now can call the kernels: on CPU, not switched
    off, and built (building them on first use). Warns once per process
    (``KernelFallbackWarning``) when they should be used but cannot be."""
    global _warned
    if not _usable():
        return False
    if available():
        return True
    if not _warned:
        _warned = True  # first: under -W error the warning raises
        warnings.warn(
            f"jgd.kernels: {_why.removeprefix('off: ')}. jgd.train uses XLA's "
            "loops instead (the same numbers, slower); JGD_KERNELS=0 silences this.",
            KernelFallbackWarning,
            stacklevel=2,
        )
    return False


def available() -> bool:
    """Build (once per machine) and load (once per process) the kernel; True
    when it is registered with jax."""
    global _loaded, _why
    if _loaded is None:
        try:
            lib = _build()
            handle = ctypes.cdll.LoadLibrary(str(lib))
            jax.ffi.register_ffi_target(
                TARGET, jax.ffi.pycapsule(handle.JgdFusedAdam), platform="cpu"
            )
            jax.ffi.register_ffi_target(
                NORM_TARGET, jax.ffi.pycapsule(handle.JgdSumSquares), platform="cpu"
            )
            jax.ffi.register_ffi_target(
                PACK_TARGET, jax.ffi.pycapsule(handle.JgdPack), platform="cpu"
            )
            jax.ffi.register_ffi_target(
                UNSTACK_TARGET, jax.ffi.pycapsule(handle.JgdUnstack), platform="cpu"
            )
            _loaded, _why = True, f"on: {lib}"
        except (OSError, subprocess.SubprocessError, AttributeError) as e:
            _loaded, _why = False, f"off: the kernel could not be built or loaded: {e}"
    return _loaded


# --------------------------------------------------------------------------
# The cache: kernels-<key>.so beside kernels-<key>.so.sha256 ("<size> <sha256>").
# Both are written to a temp name (kernels-<key>.<pid>.<random>.tmp) and
# renamed into place, .so first, under a per-key lock, so a reader sees a
# whole file or none; a .so that does not match its sidecar (truncated,
# flipped bytes, or from before sidecars) is rebuilt before it is loaded:
# mapping a truncated one ends in SIGBUS.
# --------------------------------------------------------------------------


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _build() -> Path:
    """The cached library, checked against its sidecar; built first when it
    is missing or does not match."""
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None or shutil.which(compiler) is None:
        found = f"{compiler} not found; " if compiler else ""
        raise OSError(f"no C++ compiler ({found}set CXX, or install c++)")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [
                source,
                " ".join(FLAGS).encode(),
                jax.__version__.encode(),
                compiler.encode(),
                _cpu_flags().encode(),
            ]
        )
    ).hexdigest()[:16]
    cache = Path(os.environ.get("JGD_CACHE_DIR") or Path.home() / ".cache" / "jgd")
    lib = cache / f"kernels-{key}.so"
    if _intact(lib):
        return lib
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / f"kernels-{key}.lock"):
        if _intact(lib):  # another process built it while we waited
            return lib
        _remove_stale(cache, key)
        tmp, side = _temp(cache, key), _temp(cache, key)
        try:
            _compile(compiler, tmp)
            data = tmp.read_bytes()
            if not data:
                raise OSError(f"{compiler} wrote an empty {tmp}")
            side.write_text(f"{len(data)} {hashlib.sha256(data).hexdigest()}\n")
            os.replace(tmp, lib)
            os.replace(side, _sidecar(lib))
        finally:
            tmp.unlink(missing_ok=True)
            side.unlink(missing_ok=True)
    if not _intact(lib):
        raise OSError(f"{lib} does not match {_sidecar(lib)} right after its build")
    return lib


def _sidecar(lib: Path) -> Path:
    return lib.with_name(lib.name + ".sha256")


def _intact(lib: Path) -> bool:
    """Whether ``lib`` has the size and sha256 its sidecar records."""
    try:
        size, digest = _sidecar(lib).read_text().split()
        data = lib.read_bytes()
        return len(data) == int(size) and hashlib.sha256(data).hexdigest() == digest
    except (OSError, ValueError):
        return False


def _temp(cache: Path, key: str) -> Path:
    fd, name = tempfile.mkstemp(
        prefix=f"kernels-{key}.{os.getpid()}.", suffix=".tmp", dir=cache
    )
    os.close(fd)
    return Path(name)


def _remove_stale(cache: Path, key: str) -> None:
    """Remove temp files of builders that died mid-build (kill -9): this key's
    are stale since we hold its lock, others once their pid is gone."""
    for tmp in cache.glob("kernels-*.*.*.tmp"):
        name, pid = tmp.name.split(".")[:2]
        if pid.isdigit() and (name == f"kernels-{key}" or not _alive(int(pid))):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    return True


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path`` (the OS releases it if we die)."""
    with open(path, "a") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


# The compiler runs in its own process group beside a watcher that kills the
# group when our end of a pipe closes: when we exit or are killed (kill -9
# included), the compiler and its children (cc1plus, as, ld) go with us.
# (sh gives a background job /dev/null as stdin, hence the pipe on fd 3.)
_WATCHED = (
    "exec 3<&0; "
    '"$@" </dev/null 3<&- & c=$!; '
    "(read _ <&3; kill -9 0) >/dev/null 2>&1 & w=$!; "
    "wait $c; s=$?; kill $w; exit $s"
)


def _compile(compiler: str, out: Path) -> None:
    cmd = [
        compiler,
        *FLAGS,
        "-shared",
        "-fPIC",
        "-std=c++17",
        "-w",
        f"-I{jax.ffi.include_dir()}",
        str(SOURCE),
        "-o",
        str(out),
        "-lpthread",
    ]
    alive_r, alive_w = os.pipe()  # the watcher reads EOF when alive_w closes
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHED, "sh", *cmd],
            stdin=alive_r,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except BaseException:
        os.close(alive_w)
        raise
    finally:
        os.close(alive_r)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # timed out or interrupted
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(alive_w)
    if proc.returncode != 0:
        raise OSError(f"{' '.join(cmd)} failed: {err.strip()[-2000:]}")


# --------------------------------------------------------------------------
# Matching the optimizer and calling the kernel.
# --------------------------------------------------------------------------


def _flatten(tx: Any, path: tuple = ()) -> list[tuple[Any, tuple]]:
    """Each transform of (nested) chains with the path to its state."""
    if isinstance(tx, Chain):
        out = []
        for i, t in enumerate(tx.transforms):
            out += _flatten(t, (*path, i))
        return out
    return [(tx, path)]


def _get(state: Any, path: tuple) -> Any:
    for i in path:
        state = state[i]
    return state


def _set(state: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    items = list(state)
    items[path[0]] = _set(state[path[0]], path[1:], value)
    return tuple(items)


def _match(tx: Any) -> tuple | None:
    """(clip, adam, decay, lr) items of ``[clip] adam [decay] lr``, or None."""
    items = _flatten(tx)
    found: dict[str, tuple] = {}
    for name, kind, optional in (
        ("clip", ClipByGlobalNorm, True),
        ("adam", ScaleByAdam, False),
        ("decay", AddDecayedWeights, True),
        ("lr", ScaleByLearningRate, False),
    ):
        if items and type(items[0][0]) is kind:
            found[name] = items.pop(0)
        elif not optional:
            return None
    if items:
        return None
    adam, lr = found["adam"][0], found["lr"][0]
    if adam.nesterov or adam.mu_dtype is not None or lr.learning_rate is None:
        return None
    decay = found.get("decay")
    if decay is not None and decay[0].mask is not None:
        mask = decay[0].mask
        if callable(mask) or not all(isinstance(m, bool) for m in mask.values()):
            return None
    return found.get("clip"), found["adam"], decay, found["lr"]


def fused_update(tx: Any, grads: Any, state: Any, params: Any) -> tuple | None:
    """``(new_params, new_state, grad_norm)`` through the kernel, or None when
    it does not apply (then run ``tx.update`` and ``apply_updates``).
    ``grad_norm`` is the global l2 norm of ``grads``, summed in double by the
    kernel as it reads them.

    ``grads`` maps each bucket to its gradient's leaves (``Layout.group``),
    which the kernel reads where they are; ``params`` is a flat step's bucket
    dict and ``tx`` the optimizer on buckets
    (``jgd.train.layout.flat_optimizer``)."""
    if not _usable():
        return None
    matched = _match(tx)
    if matched is None or not isinstance(params, dict):
        return None
    if not all(isinstance(x, jax.Array) and x.ndim == 1 for x in params.values()):
        return None  # not a flat state's buckets
    clip, (adam, adam_path), decay, (lr, lr_path) = matched
    adam_state = _get(state, adam_path)
    f32 = jnp.dtype(jnp.float32)
    arrays = [
        *params.values(),
        *(x for xs in grads.values() for x in xs),
        *jax.tree.leaves(adam_state.mu),
        *jax.tree.leaves(adam_state.nu),
    ]
    if any(jnp.dtype(x.dtype) != f32 for x in arrays) or not ready():
        return None

    # The scalars, computed as the transforms compute them.
    count = tree.safe_increment(adam_state.count)

    def inverse_correction(decay_rate):
        # tree.bias_correction divides by this; XLA multiplies by its inverse.
        return 1 / tree.correction(decay_rate, count).astype(f32)

    ones = {b: jnp.ones([], f32) for b in params}
    zeros = {b: jnp.zeros([], f32) for b in params}
    steps, lr_state = lr.update(ones, _get(state, lr_path))  # -lr * 1, exactly
    new_state = _set(state, lr_path, lr_state)
    wds = zeros
    decayed = {b: False for b in params}
    if decay is not None:
        node, path = decay
        wds, d_state = node.update(zeros, _get(state, path), ones)  # 0 + wd * 1
        new_state = _set(new_state, path, d_state)
        wd = node.weight_decay
        if callable(wd) or not (isinstance(wd, (int, float)) and wd == 0):
            decayed = {b: True if node.mask is None else node.mask[b] for b in params}
    gscale, grad_norm = jnp.ones([], f32), None
    if clip is not None:
        # The global norm over all buckets comes first: one read of each.
        square = jax.ffi.ffi_call(
            NORM_TARGET, jax.ShapeDtypeStruct((), f32), vmap_method="sequential"
        )
        grad_norm = jnp.sqrt(
            sum((square(*xs) for xs in grads.values()), jnp.zeros([], f32))
        )
        gscale = clip[0].factor(None, grad_norm).astype(f32)

    c = lambda x: tree.coef(x, f32)
    head = [
        c(1 - adam.b1),
        c(adam.b1),
        c(1 - adam.b2),
        c(adam.b2),
        inverse_correction(adam.b1),
        inverse_correction(adam.b2),
        c(adam.eps),
        c(adam.eps_root),
    ]
    new_params, mu, nu, sumsq = {}, {}, {}, {}
    for b, p in params.items():
        s = jnp.stack([*head, steps[b], wds[b], gscale])
        mode = (1 if decayed[b] else 0) | (2 if clip is not None else 0)
        like = jax.ShapeDtypeStruct(p.shape, f32)
        call = jax.ffi.ffi_call(
            TARGET,
            (like, like, like, jax.ShapeDtypeStruct((), f32)),
            input_output_aliases={1: 0, 2: 1, 3: 2},
            vmap_method="sequential",
        )
        new_params[b], mu[b], nu[b], sumsq[b] = call(
            s, p, adam_state.mu[b], adam_state.nu[b], *grads[b], mode=np.int32(mode)
        )
    adam_new = ScaleByAdamState(count=count, mu=mu, nu=nu)
    if grad_norm is None:
        grad_norm = jnp.sqrt(sum(sumsq.values(), start=jnp.zeros([], f32)))
    return new_params, _set(new_state, adam_path, adam_new), grad_norm


def pack(groups: dict[str, list], like: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Each bucket's leaves (``Layout.group``) packed into one buffer shaped
    and typed like ``like``'s: one copy call per bucket of several leaves when
    the kernels are usable, else a concatenate."""
    out = {}
    for name, xs in groups.items():
        ref = like[name]
        if len(xs) == 1:
            out[name] = xs[0].astype(ref.dtype)
        elif all(x.dtype == ref.dtype for x in xs) and ready():
            call = jax.ffi.ffi_call(
                PACK_TARGET,
                jax.ShapeDtypeStruct(ref.shape, ref.dtype),
                vmap_method="sequential",
            )
            out[name] = call(*xs)
        else:
            out[name] = jnp.concatenate(xs).astype(ref.dtype)
    return out


def unstack(offsets: jax.Array) -> tuple[jax.Array, ...]:
    """The int32 array ``offsets`` as one int32 scalar per element, through
    one kernel call: each is a separate buffer, so XLA compiles a leaf's
    slice the same for every leaf of a shape (see ``Layout.unpack``)."""
    n = offsets.shape[0]
    scalar = jax.ShapeDtypeStruct((), jnp.int32)
    call = jax.ffi.ffi_call(
        UNSTACK_TARGET, tuple(scalar for _ in range(n)), vmap_method="sequential"
    )
    return tuple(call(offsets))
