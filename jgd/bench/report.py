"""The reports of ``jgd bench``: ``goals`` (the issue's targets checked on
a run's own figures), ``format_table`` (the terminal table),
``format_markdown`` (the summary quoted in benchmarks/README.md) and
``plot`` (the PNGs).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jgd.bench.workloads import BYTES_PER_PARAM

# --------------------------------------------------------------------------
# Goals (issue 4), evaluated on a run's own figures.
# --------------------------------------------------------------------------


def _row(out, workload, opt) -> dict[str, Any] | None:
    """The run's record of one workload and optimizer, or None."""
    for r in out["results"]:
        if r["workload"] == workload and r["optimizer"] == opt:
            return r
    return None


def _get(out, workload, opt, variant, key="x_limit"):
    r = _row(out, workload, opt)
    v = {} if r is None else r["variants"].get(variant, {})
    return v.get(key) if v.get("status") == "ok" else None


JGD_VARIANTS = ("jgd", "jgd-flat", "jgd-step")


def _net_of_batch(out, workload, opt) -> dict[str, float]:
    """``{"net_of_batch_args": x}``: jgd-step's multiple of the limit less
    the time to hand the batch's leaves to a compiled call (``batch_args_s``),
    or nothing when the run did not measure both."""
    step, r = _get(out, workload, opt, "jgd-step", "step_s"), _row(out, workload, opt)
    if step is None or not r.get("batch_args_s"):
        return {}
    return {"net_of_batch_args": (step - r["batch_args_s"]) / r["limit"]["step_s"]}


def goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals, one row per goal and jgd variant, with the figure
    this run measured and whether it is met. Cells the run did not measure
    are left out."""
    rows = []

    def add(goal, target, value, via, unit="x limit", **extra):
        if value is None:
            return
        rows.append({"goal": goal, "target": target, "measured": value, "unit": unit,
                     "via": via, "met": bool(value <= target), **extra})  # fmt: skip

    targets = {"leaf-1M": 1.15, "leaf-10M": 1.15, "leaf-50M": 1.15,
               "transformer": 1.25, "1000x1000": 3.0, "10000x100": 5.0}  # fmt: skip
    for w, target in targets.items():
        for v in JGD_VARIANTS:
            extra = {}
            if v == "jgd-step":
                # The verdict is on the whole step; this says how much of it
                # is the benchmark's batch (the gradient, passed in leaf by
                # leaf), which a real batch of a few arrays does not cost.
                extra = _net_of_batch(out, w, "adam")
            add(f"{w} adam", target, _get(out, w, "adam", v), v, **extra)
    # clip+adamw's time over adam's, each cell's bandwidth taken from its own
    # rotation: (x_limit * bytes) of one over the other. The two cells run
    # minutes apart, and on a shared machine the bandwidth moves between them
    # (a limit of 3.7 ms in one cell and 6.4 ms in the next for nearly the same
    # bytes); the raw time ratio is kept as time_ratio.
    for w in targets:
        for v in JGD_VARIANTS:
            a, al = _get(out, w, "adam", v, "step_s"), _get(out, w, "adam", v)
            c, cl = (
                _get(out, w, "clip+adamw", v, "step_s"),
                _get(out, w, "clip+adamw", v),
            )
            if a and c and al and cl:
                ratio = (
                    cl * BYTES_PER_PARAM["clip+adamw"] / (al * BYTES_PER_PARAM["adam"])
                )
                add(f"{w} clip+adamw / adam at equal bandwidth", 1.3, ratio, v,
                    "x adam", time_ratio=c / a)  # fmt: skip
    for w, target in (("1000x1000", 0.5), ("10000x100", 3.0)):
        for v in JGD_VARIANTS:
            add(f"{w} adam compile", target,
                _get(out, w, "adam", v, "lower_plus_compile_s"), v, "s")  # fmt: skip
    return rows


# --------------------------------------------------------------------------
# Output: the terminal table, the JSON, the plots.
# --------------------------------------------------------------------------


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f}us"
    if s < 1:
        return f"{s * 1e3:.2f}ms"
    return f"{s:.2f}s"


def _row_line(row: dict[str, Any]) -> str:
    parts = [f"  {row['optimizer']:<11} limit {_fmt_s(row['limit']['step_s']):>8}"]
    for n, v in row["variants"].items():
        if v["status"] == "ok":
            parts.append(f"{n} {_fmt_s(v['step_s'])} ({v['x_limit']:.2f}x)")
        else:
            parts.append(f"{n} skipped")
    return "  ".join(parts)


_COMPILED = ("jgd", "jgd-flat", "jgd-step", "optax")
_SHORT = {"jgd": "jgd", "jgd-flat": "flat", "jgd-step": "step", "optax": "optax"}


def format_table(out: dict[str, Any]) -> str:
    """The results as a fixed-width table: one line per workload and
    optimizer; each variant's step time and its multiple of the limit."""
    variants = out["settings"]["variants"]
    head = f"{'workload':<17}{'optimizer':<11}{'B/p':>4}{'limit GB/s':>11}{'limit':>9}"
    head += "".join(f"{v:>20}" for v in variants)
    head += f"  compile {'/'.join(_SHORT[v] for v in _COMPILED)}"
    lines = [head, "-" * len(head)]
    for r in out["results"]:
        line = f"{r['workload']:<17}{r['optimizer']:<11}{r['bytes_per_param']:>4}"
        line += (
            f"{r['limit']['bytes_per_s'] / 1e9:>11.1f}{_fmt_s(r['limit']['step_s']):>9}"
        )
        for v in variants:
            c = r["variants"].get(v, {"status": "skipped"})
            cell = (f"{_fmt_s(c['step_s'])} {c['x_limit']:6.2f}x"
                    if c["status"] == "ok" else "-")  # fmt: skip
            line += f"{cell:>20}"
        comp = []
        for v in _COMPILED:
            c = r["variants"].get(v, {})
            comp.append(_fmt_s(c.get("lower_plus_compile_s")) if c.get("status") == "ok"
                        else "-")  # fmt: skip
        line += "  " + "/".join(comp)
        lines.append(line)
    if out.get("goals"):
        lines += ["", "goals (issue 4), for each jgd variant measured:"]
        for g in out["goals"]:
            line = (
                f"  {'met ' if g['met'] else 'MISS'} {g['goal']:<34} "
                f"{g['measured']:8.3g} {g['unit']:<8} (target <= {g['target']}, {g['via']})"
            )
            if "net_of_batch_args" in g:
                line += f"; {g['net_of_batch_args']:.3g} less passing the batch"
            lines.append(line)
    return "\n".join(lines)


def _plot_rows(out: dict[str, Any], axis: str) -> tuple[list[dict], str]:
    """The cells each plot draws as lines, and what they hold fixed. Against
    leaves: the workloads of the most common parameter count (1M in the full
    run: one leaf, 1000 x 1000, 10000 x 100). Against parameters: the
    single-leaf workloads (other workloads are drawn as unjoined squares)."""
    rows = out["results"]
    if axis == "leaves":
        counts = [r["n_params"] for r in rows]
        n = max(set(counts), key=counts.count) if counts else 0
        same = [r for r in rows if r["n_params"] == n]
        if len({r["n_leaves"] for r in same}) > 1:
            return same, f"{n / 1e6:g}M float32 params"
        return rows, "all workloads"
    single = [r for r in rows if r["n_leaves"] == 1]
    return (single, "one leaf") if single else (rows, "all workloads")


def _md_ratio(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("status") != "ok":
        return "-"
    return f"{cell['x_limit']:.2f}"


def format_markdown(out: dict[str, Any]) -> str:
    """A recorded run as Markdown: every step as a multiple of the limit, the
    compile times, the goals; the numbers are the JSON's, rounded."""
    variants = out["settings"]["variants"]
    d, v = out["device"], out["versions"]
    load = out["threads"]
    loads = [f"{load[k][0]:.2f} at the {k[8:]}" for k in ("loadavg_start", "loadavg_end")
             if k in load]  # fmt: skip
    head = (
        f"`{out.get('command')}`: {d['cpu']}, {d['cpus_usable']} cores, "
        f"jax {v['jax']}, optax {v['optax']}, torch {v['torch']}, "
        f"{out['duration_s'] / 60:.1f} min; load average " + " and ".join(loads) + "."
    )
    lines = [
        head,
        "",
        "Step time as a multiple of the limit (lower is better; 1.00 = memory speed):",
        "",
        "| workload | optimizer | limit | " + " | ".join(variants) + " |",
        "|---|---|--:|" + "--:|" * len(variants),
    ]
    for r in out["results"]:
        cells = [_md_ratio(r["variants"].get(n)) for n in variants]
        lines.append(f"| {r['workload']} | {r['optimizer']} | "
                     f"{_fmt_s(r['limit']['step_s'])} | " + " | ".join(cells) + " |")  # fmt: skip
    compiled = [n for n in _COMPILED if n in variants]
    lines += ["", "Compile time (lower + compile), Adam:", "",
              "| workload | " + " | ".join(compiled) + " |",
              "|---|" + "--:|" * len(compiled)]  # fmt: skip
    for r in out["results"]:
        if r["optimizer"] != "adam":
            continue
        cells = []
        for n in compiled:
            c = r["variants"].get(n, {})
            cells.append(_fmt_s(c.get("lower_plus_compile_s"))
                         if c.get("status") == "ok" else "-")  # fmt: skip
        lines.append(f"| {r['workload']} | " + " | ".join(cells) + " |")
    if out.get("compile_sweep"):
        names = [
            n for n in compiled if any(n in r["variants"] for r in out["compile_sweep"])
        ]
        lines += ["", "Compile sweep (Adam, leaves of 100 params):", "",
                  "| leaves | " + " | ".join(names) + " |",
                  "|--:|" + "--:|" * len(names)]  # fmt: skip
        for r in out["compile_sweep"]:
            cells = [_fmt_s(r["variants"].get(n, {}).get("lower_plus_compile_s"))
                     for n in names]  # fmt: skip
            lines.append(f"| {r['n_leaves']} | " + " | ".join(cells) + " |")
    if out.get("goals"):
        lines += ["", "| goal | target | measured | variant | met |",
                  "|---|--:|--:|---|---|"]  # fmt: skip
        for g in out["goals"]:
            measured = f"{g['measured']:.3g} {g['unit']}"
            if "net_of_batch_args" in g:
                measured += f" ({g['net_of_batch_args']:.3g} less passing the batch)"
            lines.append(f"| {g['goal']} | {g['target']} | {measured} | {g['via']} | "
                         f"{'yes' if g['met'] else 'no'} |")  # fmt: skip
    return "\n".join(lines)


def plot(out: dict[str, Any], stem: Path) -> list[Path]:
    """Write ``<stem>-leaves.png`` (step time against leaf count, parameter
    count fixed), ``<stem>-params.png`` (against parameter count, single
    leaves joined) and, when the run has a compile sweep,
    ``<stem>-compile.png``; log scales, one panel per optimizer, one line per
    variant plus the limit (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [*out["settings"]["variants"], "limit"]
    colors = {v: f"C{i}" for i, v in enumerate(variants)} | {"limit": "k"}
    opts = list(dict.fromkeys(r["optimizer"] for r in out["results"]))
    paths = []

    def step_of(r, v):
        if v == "limit":
            return r["limit"]["step_s"]
        c = r["variants"].get(v, {})
        return c["step_s"] if c.get("status") == "ok" else None

    for axis, key in (("leaves", "n_leaves"), ("params", "n_params")):
        lined, fixed = _plot_rows(out, axis)
        others = (
            [r for r in out["results"] if r not in lined] if axis == "params" else []
        )
        ncol = min(4, max(1, len(opts)))
        nrow = math.ceil(len(opts) / ncol) if opts else 1
        fig, axes = plt.subplots(
            nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False
        )
        for ax, o in zip(axes.flat, opts):
            rows = sorted(
                (r for r in lined if r["optimizer"] == o), key=lambda r: r[key]
            )
            for v in variants:
                pts = [(r[key], step_of(r, v)) for r in rows if step_of(r, v)]
                style = {"ls": "--"} if v == "limit" else {"marker": "o"}
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(
                        xs, [y * 1e3 for y in ys], label=v, color=colors[v], **style
                    )
                pts = [(r[key], step_of(r, v)) for r in others
                       if r["optimizer"] == o and step_of(r, v)]  # fmt: skip
                if pts:
                    xs, ys = zip(*pts)
                    ax.scatter(xs, [y * 1e3 for y in ys], marker="s", s=14,
                               color=colors[v], alpha=0.6)  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(o)
            ax.set_xlabel("leaves" if axis == "leaves" else "float32 parameters")
            ax.set_ylabel("step time (ms)")
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(opts) :]:
            ax.axis("off")
        if opts:
            axes.flat[0].legend(fontsize=7)
        note = f"lines: {fixed}" + ("; squares: multi-leaf workloads" if others else "")
        fig.suptitle(f"jgd bench ({out['preset']}): step time against {axis} ({note}); "
                     f"{out['device']['cpu']}", fontsize=9)  # fmt: skip
        fig.tight_layout()
        path = Path(f"{stem}-{axis}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    if out.get("compile_sweep"):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for v in _COMPILED:
            pts = [(r["n_leaves"], r["variants"][v]["lower_plus_compile_s"])
                   for r in out["compile_sweep"]
                   if r["variants"].get(v, {}).get("status") == "ok"]  # fmt: skip
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o", label=v)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("leaves (100 params each)")
        ax.set_ylabel("lower + compile (s)")
        ax.set_title("adam: compile time against leaf count", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = Path(f"{stem}-compile.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
