"""Plots: PNG pictures of trajectories and learning-rate sweeps (matplotlib).

Holds ``plot_contour`` (a 2-D landscape's contours with the paths of several
optimizers), ``plot_losses`` (loss versus step), ``plot_trajectories`` (both
side by side), ``plot_steps_1d`` (a 1-D landscape such as the tutorials' x**2
bowl with every step drawn, next to loss versus step) and ``plot_sweep``
(final loss versus learning rate with the diverging, too-slow and stable
regions marked, next to the loss curves at the regions' edges).

matplotlib is an optional extra (``pip install 'jgd[plot]'``), imported only
inside these functions. Figures are built with matplotlib's object API on the
non-interactive Agg canvas (no pyplot, no global state, no window). Each
function returns the ``matplotlib.figure.Figure`` and, given ``out``, writes
it there as a PNG. ``runs`` is a mapping ``label -> Trajectory`` (from
``jgd.lab.trajectory``); losses are drawn on log scales when they are
positive, as they span decades.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jgd.lab.functions import Landscape
from jgd.lab.runs import Sweep, Trajectory

__all__ = [
    "plot_contour",
    "plot_losses",
    "plot_steps_1d",
    "plot_sweep",
    "plot_trajectories",
]

_STYLES = ("-", "--", "-.", ":")  # overlapping curves stay visible
_COLORS = {"diverged": "tab:red", "too_slow": "tab:orange", "converged": "tab:green"}


def _matplotlib(api: str):
    """Import matplotlib lazily; a clear ImportError when it is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            f"{api}: matplotlib is needed: pip install 'jgd[plot]'"
        ) from e
    return Figure, FigureCanvasAgg, LogNorm


def _figure(api: str, ncols: int, width: float = 6.0, height: float = 5.0):
    Figure, FigureCanvasAgg, _ = _matplotlib(api)
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)  # the non-interactive Agg canvas
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, out: str | os.PathLike | None):
    if out is not None:
        fig.savefig(os.fspath(out), format="png", dpi=110)
    return fig


def _check_landscape(api: str, fn: Any, ndim: int | None = None) -> None:
    if not isinstance(fn, Landscape):
        raise TypeError(
            f"{api}: fn must be a jgd.lab landscape (e.g. jgd.lab.rosenbrock); got {fn!r}."
        )
    if ndim is not None and fn.ndim != ndim:
        raise ValueError(
            f"{api}: fn must be a {ndim}-D landscape; got {fn.name!r} with {fn.ndim} "
            "coordinate(s)."
        )


def _check_runs(api: str, runs: Any) -> dict[str, Trajectory]:
    if not isinstance(runs, Mapping) or not all(
        isinstance(r, Trajectory) for r in runs.values()
    ):
        raise TypeError(
            f"{api}: runs must be a mapping label -> jgd.lab.Trajectory; got {type(runs).__name__}."
        )
    return {
        str(k): Trajectory(*jax.tree.map(np.asarray, tuple(v))) for k, v in runs.items()
    }


def _gap(losses: np.ndarray, minimum: float | None) -> np.ndarray:
    return losses if minimum is None else losses - minimum


def _grid(fn: Landscape, n: int = 300):
    (x0, x1), (y0, y1) = fn.domain
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    pts = np.stack([X.ravel(), Y.ravel()], axis=1).astype(np.float32)
    Z = np.asarray(jax.jit(jax.vmap(fn.fn))(pts), dtype=np.float64).reshape(X.shape)
    return X, Y, Z


def _draw_contour(ax, fn: Landscape, runs: dict[str, Trajectory], LogNorm) -> None:
    X, Y, Z = _grid(fn)
    if fn.minimum is not None:  # f - f* spans decades: log-spaced levels
        G = np.maximum(Z - fn.minimum, 0.0)
        hi = float(G.max())
        lo = max(float(G[G > 0].min()), hi * 1e-6)
        levels = np.geomspace(lo, hi, 30)
        filled = ax.contourf(
            X, Y, np.clip(G, lo, hi), levels=levels, norm=LogNorm(), cmap="viridis"
        )
        ax.contour(
            X, Y, G, levels=levels[::3], colors="white", linewidths=0.4, alpha=0.6
        )
        label = "f(x, y) - f*  (log scale)" if fn.minimum else "f(x, y)  (log scale)"
    else:
        filled = ax.contourf(X, Y, Z, levels=30, cmap="viridis")
        ax.contour(X, Y, Z, levels=10, colors="white", linewidths=0.4, alpha=0.6)
        label = "f(x, y)"
    bar = ax.figure.colorbar(filled, ax=ax, label=label, shrink=0.9)
    if fn.minimum is not None:  # one tick per decade, not per level
        decades = 10.0 ** np.arange(np.ceil(np.log10(lo)), np.floor(np.log10(hi)) + 1)
        bar.set_ticks(decades, labels=[f"$10^{{{int(np.log10(d))}}}$" for d in decades])
    for k, m in enumerate(fn.minimizers):
        ax.plot(
            m[0],
            m[1],
            marker="*",
            ms=16,
            color="gold",
            mec="black",
            ls="none",
            label="minimum" if k == 0 else None,
            zorder=5,
        )
    for i, (name, run) in enumerate(runs.items()):
        xs = run.params.reshape(run.params.shape[0], -1)
        color, z = f"C{i}", 4 - i / max(len(runs), 1)  # the first listed on top
        ax.plot(
            xs[:, 0],
            xs[:, 1],
            "-",
            color=color,
            lw=1.6,
            zorder=z,
            label=_run_label(name, run),
        )
        ax.plot(xs[:, 0], xs[:, 1], "o", color=color, ms=2, zorder=z)
        ax.plot(xs[-1, 0], xs[-1, 1], "X", color=color, ms=9, mec="black", zorder=6)
    start = next(iter(runs.values())).params[0].reshape(-1) if runs else None
    if start is not None:
        ax.plot(
            start[0],
            start[1],
            "o",
            ms=9,
            color="white",
            mec="black",
            zorder=6,
            label="start",
        )
    (x0, x1), (y0, y1) = fn.domain
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{fn.name}: f = {fn.formula}", fontsize=10)
    ax.legend(  # below the axes, so it never hides a path
        loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8
    )


def _run_label(name: str, run: Trajectory) -> str:
    final = float(run.losses[-1])
    if np.isnan(final):
        return f"{name} (diverged: nan)"
    return f"{name} (final f = {final:.2g})"


def _symlog(ax, values: np.ndarray, scale: float) -> None:
    """Losses of both signs spanning decades (a saddle, unbounded below): a
    linear band of the start's scale around 0, logarithmic beyond, with at
    most ~6 ticks a side so that labels do not collide."""
    lt = 10.0 ** np.floor(np.log10(max(scale, 1e-12)))
    ax.set_yscale("symlog", linthresh=lt)
    ticks = [0.0]
    for sign, extent in ((-1.0, -values.min()), (1.0, values.max())):
        n = int(np.ceil(np.log10(extent / lt))) if extent > lt else 0
        stride = max(1, -(-n // 6))
        ticks += [sign * lt * 10.0**k for k in range(stride, n + 1, stride)]
    ax.set_yticks(sorted(ticks))


def _draw_losses(
    ax, runs: dict[str, Trajectory], minimum: float | None, title: str
) -> None:
    gaps = {k: _gap(r.losses.astype(np.float64), minimum) for k, r in runs.items()}
    finite = np.concatenate([g[np.isfinite(g)] for g in gaps.values()] or [np.zeros(0)])
    log = finite.size > 0 and bool(np.all(finite >= 0)) and bool(np.any(finite > 0))
    floor = float(finite[finite > 0].min()) if log else 0.0
    for i, (name, g) in enumerate(gaps.items()):
        y = np.maximum(g, floor) if log else g  # exact zeros drawn at the floor
        style = _STYLES[i % len(_STYLES)]
        ax.plot(np.arange(len(y)), y, color=f"C{i}", ls=style, lw=1.8, label=name)
    if log:
        ax.set_yscale("log")
    elif finite.size and np.abs(finite).max() > 1e3 * max(np.abs(finite[0]), 1e-12):
        _symlog(ax, finite, float(np.abs(finite[0])))
    ax.set_xlabel("step")
    ax.set_ylabel("loss f(x_k) - f*" if minimum else "loss f(x_k)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=8)


def plot_contour(
    fn: Landscape, runs: Mapping[str, Trajectory], out=None, *, title=None
):
    """Contours of a 2-D landscape with the path of every run drawn on top.

    Contour levels are log-spaced in ``f - f*`` (linear for ``saddle``, which
    has no minimum); the minimisers are gold stars, the start a white dot, each
    run's last iterate a cross. The axes show the landscape's ``domain``, so a
    diverging run leaves the picture.

    Args:
        fn: a 2-D ``jgd.lab`` landscape.
        runs: ``label -> Trajectory``, e.g. ``{"adam": trajectory(jgd.adam(0.1), fn)}``.
        out: a path to write the PNG to (optional).
        title: the figure's title (default: none beyond the axes title).

    Returns:
        the ``matplotlib.figure.Figure``.

    Raises:
        ImportError: matplotlib is not installed.
    """
    api = "jgd.lab.plot_contour"
    _check_landscape(api, fn, 2)
    runs = _check_runs(api, runs)
    fig, (ax,) = _figure(api, 1, 7.0, 6.0)
    _draw_contour(ax, fn, runs, _matplotlib(api)[2])
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_losses(runs: Mapping[str, Trajectory], out=None, *, minimum=None, title=None):
    """Loss (minus ``minimum`` when given) versus step for every run, log scale.

    Args:
        runs: ``label -> Trajectory``.
        out: a path to write the PNG to (optional).
        minimum: subtract this (e.g. the landscape's ``minimum``) before plotting.
        title: the axes title (default ``"loss versus step"``).

    Returns:
        the ``matplotlib.figure.Figure``.
    """
    api = "jgd.lab.plot_losses"
    runs = _check_runs(api, runs)
    fig, (ax,) = _figure(api, 1, 7.0, 5.0)
    _draw_losses(ax, runs, minimum, title or "loss versus step")
    return _save(fig, out)


def plot_trajectories(
    fn: Landscape, runs: Mapping[str, Trajectory], out=None, *, title=None
):
    """Two panels: ``plot_contour`` on the left, ``plot_losses`` on the right
    (for a 1-D landscape, ``plot_steps_1d``).

    Args:
        fn: a ``jgd.lab`` landscape.
        runs: ``label -> Trajectory`` (all from the same start).
        out: a path to write the PNG to (optional).
        title: the figure's title.

    Returns:
        the ``matplotlib.figure.Figure``.
    """
    api = "jgd.lab.plot_trajectories"
    _check_landscape(api, fn)
    if fn.ndim == 1:
        return plot_steps_1d(fn, runs, out, title=title)
    _check_landscape(api, fn, 2)
    runs = _check_runs(api, runs)
    fig, (ax0, ax1) = _figure(api, 2, 6.5, 5.5)
    _draw_contour(ax0, fn, runs, _matplotlib(api)[2])
    _draw_losses(ax1, runs, fn.minimum, "loss versus step")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_steps_1d(
    fn: Landscape, runs: Mapping[str, Trajectory], out=None, *, title=None
):
    """A 1-D landscape (the tutorials' x**2 bowl) with every step drawn.

    Left: the curve ``f(x)`` and, for each run, the points ``(x_k, f(x_k))``
    joined by arrows in step order (the ball rolling down the bowl), the first
    run's first three points labelled. Middle: the weight ``x_k`` versus step (the tutorials'
    printout). Right: ``f(x_k) - f*`` versus step on a log scale.

    Args:
        fn: a 1-D ``jgd.lab`` landscape, e.g. ``jgd.lab.parabola``.
        runs: ``label -> Trajectory``.
        out: a path to write the PNG to (optional).
        title: the figure's title.

    Returns:
        the ``matplotlib.figure.Figure``.
    """
    api = "jgd.lab.plot_steps_1d"
    _check_landscape(api, fn, 1)
    runs = _check_runs(api, runs)
    fig, (ax0, ax1, ax2) = _figure(api, 3, 5.0, 4.6)
    ((lo, hi),) = fn.domain
    xs = np.linspace(lo, hi, 400, dtype=np.float32)
    ax0.plot(
        xs,
        np.asarray(jax.vmap(fn.fn)(xs)),
        color="0.3",
        lw=2,
        label=f"f(x) = {fn.formula}",
    )
    for m in fn.minimizers:
        ax0.plot(
            m,
            fn.minimum,
            "*",
            ms=16,
            color="gold",
            mec="black",
            zorder=5,
            label="minimum",
        )
    for i, (name, run) in enumerate(runs.items()):
        color = f"C{i}"
        px, py = (
            run.params.reshape(-1).astype(np.float64),
            run.losses.astype(np.float64),
        )
        ok = np.isfinite(px) & np.isfinite(py) & (px >= lo) & (px <= hi)
        ax0.plot(px[ok], py[ok], "o", color=color, ms=5, zorder=4, label=name)
        for k in range(len(px) - 1):
            if ok[k] and ok[k + 1]:
                ax0.annotate(
                    "",
                    xy=(px[k + 1], py[k + 1]),
                    xytext=(px[k], py[k]),
                    arrowprops={
                        "arrowstyle": "->",
                        "color": color,
                        "lw": 1.0,
                        "alpha": 0.8,
                    },
                )
        labelled = np.flatnonzero(ok)[:3] if i == 0 else []  # the first run's
        for k in labelled:
            side = -1 if px[k] > (lo + hi) / 2 else 1  # write towards the middle
            ax0.annotate(
                f"x{k} = {px[k]:.3g}",
                (px[k], py[k]),
                xytext=(side * 8, 0),
                textcoords="offset points",
                fontsize=8,
                color=color,
                ha="right" if side < 0 else "left",
                va="center",
            )
        ax1.plot(np.arange(len(px)), px, "-o", color=color, ms=3.5, lw=1.2, label=name)
    ax0.set_xlim(lo, hi)
    ax0.set_xlabel("x (the weight)")
    ax0.set_ylabel("f(x) (the loss)")
    ax0.set_title(f"{fn.name}: the ball rolls down f(x) = {fn.formula}", fontsize=10)
    ax0.legend(loc="upper center", fontsize=8)
    ax1.axhline(0.0, color="0.5", lw=0.8)
    ax1.set_ylim(lo, hi)
    ax1.set_xlabel("step k")
    ax1.set_ylabel("weight x_k")
    ax1.set_title("the weight after each step", fontsize=10)
    ax1.grid(True, alpha=0.3)
    ax1.legend(loc="best", fontsize=8)
    _draw_losses(ax2, runs, fn.minimum, "loss versus step")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_sweep(sweep: Sweep, out=None, *, title=None):
    """Final loss versus learning rate, with the three regions marked.

    Left: ``final - minimum`` per learning rate on log-log axes; the
    background is red where runs diverged, orange where they were too slow
    (neither diverged nor converged) and green where they converged, and the
    stable range is written in the legend. Runs whose final loss is not
    finite, or beyond the top of the axes, are drawn as red triangles at the
    top. Right: the loss curves of the first and last learning rate of each
    region, coloured by region.

    Args:
        sweep: the result of ``jgd.lab.lr_sweep``.
        out: a path to write the PNG to (optional).
        title: the figure's title (e.g. ``"adam on rosenbrock, 200 steps"``).

    Returns:
        the ``matplotlib.figure.Figure``.
    """
    api = "jgd.lab.plot_sweep"
    if not isinstance(sweep, Sweep):
        raise TypeError(
            f"{api}: sweep must be a jgd.lab.Sweep; got {type(sweep).__name__}."
        )
    fig, (ax0, ax1) = _figure(api, 2, 6.5, 5.0)
    lrs = np.asarray(sweep.learning_rates, np.float64)
    gap0 = sweep.initial_loss - sweep.minimum
    final = np.asarray(sweep.final_loss, np.float64) - sweep.minimum
    all_gaps = np.asarray(sweep.losses, np.float64) - sweep.minimum
    positive = all_gaps[np.isfinite(all_gaps) & (all_gaps > 0)]
    floor = float(positive.min()) if positive.size else gap0 * 1e-12
    top = gap0 * 1e3  # beyond 1000x the start: drawn at the top edge

    # 1. The regions: each learning rate owns the span to its neighbours'
    #    geometric midpoints.
    region = np.where(
        sweep.diverged, "diverged", np.where(sweep.converged, "converged", "too_slow")
    )
    edges = np.sqrt(lrs[1:] * lrs[:-1]) if lrs.size > 1 else np.zeros(0)
    ratio = lrs[1] / lrs[0] if lrs.size > 1 else 2.0
    edges = np.concatenate(
        [[lrs[0] / np.sqrt(ratio)], edges, [lrs[-1] * np.sqrt(ratio)]]
    )
    names = {
        "diverged": "diverges (final > start, or inf/nan)",
        "too_slow": f"too slow (final > {sweep.tol:g} x start)",
        "converged": f"converges (final <= {sweep.tol:g} x start)",
    }
    seen = set()
    for i, r in enumerate(region):
        ax0.axvspan(
            edges[i],
            edges[i + 1],
            color=_COLORS[r],
            alpha=0.15,
            lw=0,
            label=names[r] if r not in seen else None,
        )
        seen.add(r)

    # 2. The final losses; non-finite or huge ones at the top edge.
    shown = np.where(np.isfinite(final), np.clip(final, floor, top), top)
    off = ~np.isfinite(final) | (final > top)
    ax0.plot(lrs, shown, "-", color="0.4", lw=1)
    for r, marker in (("converged", "o"), ("too_slow", "s"), ("diverged", "x")):
        sel = (region == r) & ~off
        ax0.plot(lrs[sel], shown[sel], marker, color=_COLORS[r], ms=7, mew=2, ls="none")
    if off.any():
        ax0.plot(
            lrs[off],
            shown[off],
            "^",
            color=_COLORS["diverged"],
            ms=8,
            ls="none",
            label="blew up (inf, nan or > 1000x start)",
        )
    ax0.axhline(gap0, color="black", ls="--", lw=1, label=f"start loss {gap0:.3g}")
    ax0.axhline(
        gap0 * sweep.tol,
        color="tab:green",
        ls=":",
        lw=1.2,
        label=f"{sweep.tol:g} x start",
    )
    if sweep.stable_range is not None:
        lo, hi = sweep.stable_range
        ax0.plot([], [], " ", label=f"stable range: {lo:.3g} to {hi:.3g}")
    ax0.set_xscale("log")
    ax0.set_yscale("log")
    ax0.set_xlim(edges[0], edges[-1])
    ax0.set_ylim(floor / 3, top * 3)
    ax0.set_xlabel("learning rate")
    ax0.set_ylabel("final loss - f*" if sweep.minimum else "final loss")
    steps = sweep.losses.shape[1] - 1
    ax0.set_title(
        f"final loss after {steps} steps, {lrs.size} learning rates", fontsize=10
    )
    ax0.legend(loc="best", fontsize=7.5, framealpha=0.9)

    # 3. A few loss curves, coloured by region: the edges of every region.
    pick = set()
    for r in _COLORS:
        idx = np.flatnonzero(region == r)
        pick |= {int(idx[0]), int(idx[-1])} if idx.size else set()
    for k, i in enumerate(sorted(pick)):
        g = np.where(np.isfinite(all_gaps[i]), np.clip(all_gaps[i], floor, top), np.nan)
        ax1.plot(
            g,
            color=_COLORS[region[i]],
            lw=1.6,
            ls=_STYLES[k % len(_STYLES)],
            label=f"lr {lrs[i]:.3g} ({region[i].replace('_', ' ')})",
        )
    ax1.set_yscale("log")
    ax1.set_ylim(floor / 3, top * 3)
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss - f*" if sweep.minimum else "loss")
    ax1.set_title("loss versus step at the edges of each region", fontsize=10)
    ax1.grid(True, alpha=0.3)
    if pick:
        ax1.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, out)
