"""What a one-pass Adam kernel would give on CPU: the evidence behind the
README's "what would close it" for the single-big-leaf goal of issue 4.

XLA:CPU (jaxlib 0.10.2) has no multi-output loop fusion, so jgd's Adam, like
optax's, compiles to three loops (new m, new v, new p reading them back): 40
bytes per float32 parameter where 28 are needed. ``adam.cc`` is the same
update as one loop, called through ``jax.ffi`` on the donated buffers. It is
a prototype kept here, not part of jgd: shipping it means building C++ at
install time, and a kernel per optimizer and dtype.

The script builds ``adam.cc`` with the system C++ compiler against jaxlib's
FFI headers, checks the kernel against ``jgd.adam`` on the same buffers (3
steps; m and v should be bit-identical, p within an ulp or two: XLA
recomputes ``b**t`` inside its p loop with a vectorised pow), then times,
interleaved in one process (A B C A B C ..., median of ``--rounds``):

    jgd     jit(jgd.adam(1e-3).update + jgd.apply_updates), params, m and v
            donated: what jgd.train's flat step runs on one bucket
    kernel  the same step through the FFI kernel (the bias corrections and
            the count computed in JAX, as jgd does)
    limit   the yardstick of ``jgd bench``: an in-place x = 0.5 * x + 0.25
            under a donating jit over 4 floats per parameter

and reports each as a multiple of the limit (Adam moves 28 bytes per param).

Run: python benchmarks/fused_adam/run.py [--sizes 10e6,50e6] [--rounds 9]
Writes benchmarks/results/fused_adam_cpu.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jgd

HERE = Path(__file__).resolve().parent
B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3
FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno"]


def build(out_dir: str) -> str:
    include = jax.ffi.include_dir()
    lib = os.path.join(out_dir, "libjgd_adam.so")
    cmd = ["c++", *FLAGS, "-shared", "-fPIC", "-std=c++17", "-w", f"-I{include}"]
    subprocess.run([*cmd, str(HERE / "adam.cc"), "-o", lib, "-lpthread"], check=True)
    return lib


def register(lib_path: str) -> None:
    lib = ctypes.cdll.LoadLibrary(lib_path)
    jax.ffi.register_ffi_target(
        "jgd_adam", jax.ffi.pycapsule(lib.JgdAdam), platform="cpu"
    )


def jgd_step(opt):
    def step(p, g, state):
        updates, state = opt.update(g, state, p)
        return jgd.apply_updates(p, updates), state

    return jax.jit(step, donate_argnums=(0, 2))


def kernel_step(p, g, state):
    """The kernel on jgd.adam's state: ((ScaleByAdamState, lr state), ...)."""
    adam_state = state[0]
    count = adam_state.count + 1
    fdt = jnp.float32
    f = lambda x: jnp.asarray(x, fdt)
    bc1 = 1 - jax.lax.pow(f(B1), count.astype(fdt))
    bc2 = 1 - jax.lax.pow(f(B2), count.astype(fdt))
    s = jnp.stack(
        [f(1 - B1), f(B1), f(1 - B2), f(B2), 1 / bc1, 1 / bc2, f(EPS), f(0.0), f(-LR)]
    )
    like = jax.ShapeDtypeStruct(p.shape, p.dtype)
    call = jax.ffi.ffi_call(
        "jgd_adam", (like, like, like), input_output_aliases={2: 0, 3: 1, 4: 2}
    )
    p, mu, nu = call(g, s, p, adam_state.mu, adam_state.nu)
    new = adam_state._replace(count=count, mu=mu, nu=nu)
    return p, (new, *state[1:])


def max_ulp(a, b) -> int:
    a, b = np.asarray(a).view(np.int32), np.asarray(b).view(np.int32)
    return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64))))


def run_size(n: int, rounds: int) -> dict:
    opt = jgd.adam(LR, b1=B1, b2=B2, eps=EPS)
    rng = np.random.default_rng(0)
    g = jnp.asarray(rng.standard_normal(n, dtype=np.float32))
    p0 = rng.standard_normal(n, dtype=np.float32)
    ours = jgd_step(opt)
    theirs = jax.jit(kernel_step, donate_argnums=(0, 2))

    # Agreement over 3 steps from the same start.
    a = (jnp.asarray(p0), opt.init(jnp.asarray(p0)))
    b = (jnp.asarray(p0), opt.init(jnp.asarray(p0)))
    for _ in range(3):
        a = ours(a[0], g, a[1])
        b = theirs(b[0], g, b[1])
    ulps = {
        "p": max_ulp(a[0], b[0]),
        "mu": max_ulp(a[1][0].mu, b[1][0].mu),
        "nu": max_ulp(a[1][0].nu, b[1][0].nu),
    }
    assert int(a[1][0].count) == int(b[1][0].count) == 3

    x = jnp.zeros(4 * n, jnp.float32)
    limit = jax.jit(lambda x: 0.5 * x + 0.25, donate_argnums=0)
    runs = {"jgd": [ours, a], "kernel": [theirs, b]}

    def once(name, k):
        nonlocal x
        if name == "limit":
            for _ in range(k):
                x = limit(x)
            return x
        fn, st = runs[name]
        for _ in range(k):
            st = fn(st[0], g, st[1])
        runs[name][1] = st
        return st[0]

    names = ["jgd", "kernel", "limit"]
    for name in names:
        once(name, 2).block_until_ready()
    k = max(1, int(0.2 / max(1e-4, n * 28 / 40e9)))
    times: dict[str, list] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            t0 = time.perf_counter()
            once(name, k).block_until_ready()
            times[name].append((time.perf_counter() - t0) / k)
    med = {name: float(np.median(t)) for name, t in times.items()}
    limit_bps = 4 * n * 4 * 2 / med["limit"]
    ideal = 28 * n / limit_bps
    return {
        "params": n,
        "steps_per_round": k,
        "limit_bytes_per_s": limit_bps,
        "step_s": med,
        "x_limit": {name: med[name] / ideal for name in ("jgd", "kernel")},
        "max_ulp_after_3_steps": ulps,
        "rounds_s": times,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10e6,50e6")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument(
        "--out", default=str(HERE.parent / "results" / "fused_adam_cpu.json")
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        register(build(tmp))
        results = [run_size(int(float(s)), args.rounds) for s in args.sizes.split(",")]
    for r in results:
        print(
            f"{r['params'] / 1e6:g}M params: limit {r['step_s']['limit'] * 1e3:.2f} ms, "
            f"jgd {r['step_s']['jgd'] * 1e3:.2f} ms ({r['x_limit']['jgd']:.2f}x), "
            f"kernel {r['step_s']['kernel'] * 1e3:.2f} ms ({r['x_limit']['kernel']:.2f}x); "
            f"max ulp vs jgd after 3 steps {r['max_ulp_after_3_steps']}"
        )
    record = {
        "what": "Adam step on one float32 leaf: jgd (XLA) against a one-pass FFI kernel",
        "command": "python benchmarks/fused_adam/run.py "
        + " ".join(argv or sys.argv[1:]),
        "compiler_flags": FLAGS,
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jgd": jgd.__version__,
        },
        "machine": {"processor": platform.processor(), "cpu_count": os.cpu_count()},
        "load_average": os.getloadavg(),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
