"""Settings for every test and doctest: strict dtype promotion, rank promotion
raises, and JAX's persistent compilation cache.

Every jgd computation must pass with implicit promotion switched off, so a bf16
leaf can never silently become float32 (or a float32 leaf float64).  Lives at
the repository root so that it covers the doctests in ``jgd/`` as well as
``tests/``.
"""

import os
from pathlib import Path

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

CACHE_LIMIT_BYTES = 1 << 30


def _compilation_cache() -> Path | None:
    """Compiling thousands of small XLA programs is most of the suite's time,
    and most are the same from run to run: JAX's persistent cache keeps them,
    keyed by the program, the jax and jaxlib versions, XLA's flags and the
    device (docs/development.md has the figures). In ``$JGD_TEST_CACHE``, else
    the user's cache directory; ``JGD_TEST_CACHE=off`` turns it off. This
    process only: subprocesses the tests start compile afresh."""
    where = os.environ.get("JGD_TEST_CACHE", "")
    if where.lower() in ("off", "0", "no"):
        return None
    # Verified on jax 0.10 (the whole suite, cold and warm). On jax 0.5.3, the
    # floor, make_step's second trace of optax.lbfgs (after a weak-type
    # change) was served the first trace's executable and gave wrong numbers.
    if jax.__version_info__ < (0, 10):
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(where) if where else base / "jgd" / "pytest-xla"
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Every program, however small: eager operations compile too.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


CACHE = _compilation_cache()


def _prune(path: Path, limit: int) -> None:
    """Past ``limit`` bytes, delete the oldest entries down to half of it.
    (JAX's own size bound rescans the directory at every write: quadratic in
    the thousands of entries a run makes.)"""
    entries = []
    for f in path.glob("*"):
        try:
            st = f.stat()
        except OSError:  # the other worker's, just removed
            continue
        entries.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return
    for _, size, f in sorted(entries):
        if total <= limit // 2:
            break
        f.unlink(missing_ok=True)
        total -= size


def pytest_configure(config):
    # Once, in the controlling process (xdist's workers have workerinput),
    # before the workers start.
    worker = hasattr(config, "workerinput")
    if CACHE is not None and not worker and CACHE.is_dir():
        _prune(CACHE, CACHE_LIMIT_BYTES)


def pytest_report_header(config):
    return f"jgd: XLA compilation cache {CACHE or 'off'}"
