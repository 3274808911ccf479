"""The reports of ``jgd bench``: ``row_line`` (one cell, printed as it is
measured), ``format_table`` (the terminal tables) and ``format_markdown``
(the same as Markdown, for benchmarks/README.md). Every figure is read from
the run's JSON; nothing is measured here.
"""

from __future__ import annotations

from typing import Any


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.0f}us"
    if s < 1:
        return f"{s * 1e3:.2f}ms"
    return f"{s:.2f}s"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _ok(row: dict[str, Any], variant: str) -> dict[str, Any] | None:
    cell = row["variants"].get(variant)
    return cell if cell and cell.get("status") == "ok" else None


def row_line(row: dict[str, Any]) -> str:
    """One cell as one line: each variant's step time and speedup."""
    parts = [f"  {row['optimizer']:<11} limit {fmt_s(row['limit']['step_s']):>8}"]
    for n in row["variants"]:
        c = _ok(row, n)
        if c is None:
            parts.append(f"{n} {row['variants'][n].get('status', '-')}")
        else:
            parts.append(
                f"{n} {fmt_s(c['step_s'])} ({_x(c.get('speedup_vs_optax'))}, "
                f"compile {fmt_s(c['lower_plus_compile_s'])})"
            )
    return "  ".join(parts)


def _interval(iv: list[float] | None) -> str:
    return "" if not iv else f" [{iv[0]:.2f}, {iv[1]:.2f}]"


def _goal_text(g: dict[str, Any]) -> tuple[str, str, str, str]:
    """(verdict, where, measured, bound) of one goal row; the measured figure
    with its interval where the run recorded one."""
    verdict = {True: "met", False: "MISS", None: "n/a"}[g["met"]]
    where = f"{g['workload']} {g['optimizer'] or ''}".strip()
    measured = "-"
    if g["measured"] is not None:
        measured = f"{g['measured']:.3g}" + _interval(g.get("interval"))
    bound = f"{g['op']} {g['target']}"
    if g.get("tolerance"):
        bound += f" (tolerance {g['tolerance']})"
    return verdict, where, measured, bound


def format_table(out: dict[str, Any]) -> str:
    """Two fixed-width tables (step time and speedup over the optax step;
    compile time and its ratio to optax's) and the goals."""
    variants = out["settings"]["variants"]
    head = f"{'workload':<13}{'optimizer':<11}{'leaves':>7}"
    cols = "".join(f"{v:>26}" for v in variants)
    step = [head + f"{'limit':>9}" + cols]
    comp = [head + " " * 9 + cols]
    for r in out["results"]:
        lead = f"{r['workload']:<13}{r['optimizer']:<11}{r['n_leaves']:>7}"
        s_line = lead + f"{fmt_s(r['limit']['step_s']):>9}"
        c_line = lead + " " * 9
        for v in variants:
            c = _ok(r, v)
            if c is None:
                s_line += f"{'-':>26}"
                c_line += f"{'-':>26}"
                continue
            s_cell = f"{fmt_s(c['step_s'])} {_x(c.get('speedup_vs_optax'))}"
            c_cell = (
                f"{fmt_s(c['lower_plus_compile_s'])} "
                f"{_x(c.get('compile_ratio_vs_optax'))}"
            )
            s_line += f"{s_cell:>26}"
            c_line += f"{c_cell:>26}"
        step.append(s_line)
        comp.append(c_line)
    lines = [
        "step time, and speedup over the hand-written optax step (> 1: faster):",
        *step,
        "",
        "compile time (lower + compile), and its ratio to optax's (< 1: faster):",
        *comp,
    ]
    failed = [
        (r["workload"], r["optimizer"], n, c.get("reason"))
        for r in out["results"]
        for n, c in r["variants"].items()
        if c.get("status") != "ok"
    ]
    if failed:
        lines += ["", "not measured:"]
        lines += [f"  {w} {o} {n}: {why}" for w, o, n, why in failed]
    if out.get("goals"):
        lines += ["", f"goals ({out.get('goal_spec', {}).get('source')}):"]
        for g in out["goals"]:
            verdict, where, measured, bound = _goal_text(g)
            lines.append(
                f"  {verdict:<4} {g['goal']:<24} {where:<24} {g['variant']:<20}"
                f" {g['metric']} {measured} {bound}"
            )
    return "\n".join(lines)


def _md_cells(r: dict, variants, seconds: str, ratio: str, ref: str) -> list[str]:
    """One Markdown cell per variant of row ``r``: ``seconds (ratio)``, with
    the ratio's interval where the run recorded one (not the reference's)."""
    cells = []
    for n in variants:
        c = _ok(r, n)
        if c is None:
            cells.append("-")
            continue
        iv = _interval(c.get(ratio + "_interval")) if n != ref else ""
        cells.append(f"{fmt_s(c[seconds])} ({_x(c.get(ratio))}{iv})")
    return cells


def format_markdown(out: dict[str, Any]) -> str:
    """A recorded run as Markdown: the run's header, the step and compile
    tables with ratios to the optax step, the goals."""
    variants = out["settings"]["variants"]
    ref = out["settings"].get("reference")
    d, v, env = out["device"], out["versions"], out.get("environment", {})
    loads = [
        f"{env[k][0]:.2f} at the {k[8:]}"
        for k in ("loadavg_start", "loadavg_end")
        if k in env
    ]
    lines = [
        f"`{out.get('command')}`: {d['cpu']}, {d['cpus_usable']} cores, "
        f"jax {v['jax']}, optax {v['optax']}, "
        f"{out['duration_s'] / 60:.1f} min; load average " + " and ".join(loads) + ".",
        "",
        (
            "Step time, and speedup over the hand-written optax step (> 1: faster) "
            "with its ~90% interval over rounds; `limit`: the least time the "
            "optimizer's memory traffic alone takes:"
        ),
        "",
        "| workload | optimizer | leaves | limit | " + " | ".join(variants) + " |",
        "|---|---|--:|--:|" + "--:|" * len(variants),
    ]
    for r in out["results"]:
        cells = _md_cells(r, variants, "step_s", "speedup_vs_optax", ref)
        lines.append(
            f"| {r['workload']} | {r['optimizer']} | {r['n_leaves']} | "
            f"{fmt_s(r['limit']['step_s'])} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Compile time (lower + compile), and its ratio to optax's (< 1: faster):",
        "",
        "| workload | optimizer | " + " | ".join(variants) + " |",
        "|---|---|" + "--:|" * len(variants),
    ]
    for r in out["results"]:
        cells = _md_cells(
            r, variants, "lower_plus_compile_s", "compile_ratio_vs_optax", ref
        )
        lines.append(
            f"| {r['workload']} | {r['optimizer']} | " + " | ".join(cells) + " |"
        )
    if out.get("goals"):
        lines += [
            "",
            "| goal | cell | variant | metric | measured [interval] | bound | met |",
            "|---|---|---|---|--:|---|---|",
        ]
        for g in out["goals"]:
            verdict, where, measured, bound = _goal_text(g)
            lines.append(
                f"| {g['goal']} | {where} | {g['variant']} | {g['metric']} | "
                f"{measured} | {bound} | {verdict} |"
            )
    return "\n".join(lines)
