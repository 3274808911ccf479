"""The ``jgd bench`` command line: ``main(argv)``."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from jgd.bench.goals import DEFAULT_GOALS, evaluate, load_goals
from jgd.bench.measure import SCHEMA, run
from jgd.bench.report import format_markdown, format_table
from jgd.bench.workloads import OPTIMIZERS, PRESETS, VARIANTS, WORKLOADS
from jgd.cli import HelpFormatter

RESULTS = Path("benchmarks/results")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jgd bench",
        description="Time one training step of real models (MLPs, a GPT, a CNN, a "
        "deep residual MLP): the hand-written optax step, the same step with jgd's "
        "optimizer, and jgd.train.make_step, interleaved in one process; report "
        "speedups and compile-time ratios against the optax step and check the "
        "goals in benchmarks/goals.json.",
        formatter_class=HelpFormatter,
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="preset",
        help="every model family with Adam, a few minutes; written to a "
        "temporary directory unless --out is given",
    )
    g.add_argument(
        "--full",
        action="store_const",
        const="full",
        dest="preset",
        help=f"what the goals are judged on (the default); written to {RESULTS}/",
    )
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="tiny (the harness's tests), quick or full",
    )
    p.add_argument("--workloads", type=_csv, help=f"comma list from {list(WORKLOADS)}")
    p.add_argument(
        "--optimizers",
        type=_csv,
        help=f"comma list from {list(OPTIMIZERS)}, for every workload",
    )
    p.add_argument(
        "--variants",
        type=_csv,
        default=VARIANTS,
        help=f"comma list from {list(VARIANTS)} (default: all)",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (>= 7)")
    p.add_argument(
        "--min-round-s",
        type=float,
        help="seconds each round of a variant lasts (at least one step)",
    )
    p.add_argument(
        "--goals",
        metavar="JSON",
        help=f"the goals file (default: {DEFAULT_GOALS.name} in benchmarks/)",
    )
    p.add_argument(
        "--out",
        help=f"directory for the JSON (default: {RESULTS} for "
        "--full, a temporary directory otherwise)",
    )
    p.add_argument("--name", help="file stem (default: the preset)")
    p.add_argument(
        "--report",
        metavar="JSON",
        help="run nothing: print a recorded run's tables and Markdown, "
        "with the goals evaluated afresh",
    )
    return p


def _report(path: str, goals: dict) -> int:
    out = json.loads(Path(path).read_text())
    if out.get("schema") != SCHEMA:
        print(
            f"jgd bench --report: {path} has schema {out.get('schema')!r}, not "
            f"{SCHEMA!r}: it was written by an earlier harness (synthetic "
            "workloads), which git history keeps.",
            file=sys.stderr,
        )
        return 2
    out["goal_spec"] = goals
    out["goals"] = evaluate(out, goals)
    print(format_table(out))
    print()
    print(format_markdown(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        goals = load_goals(args.goals)
    except (ValueError, TypeError, OSError) as e:
        print(f"jgd bench: cannot read the goals: {e}", file=sys.stderr)
        return 2
    if args.report:
        return _report(args.report, goals)
    preset = args.preset or "full"
    command = "jgd bench " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        out = run(
            preset,
            workloads=args.workloads,
            optimizers=args.optimizers,
            variants=tuple(args.variants),
            rounds=args.rounds,
            min_round_s=args.min_round_s,
            goals=goals,
            command=command.strip(),
        )
    except ValueError as e:  # a bad name or setting, before anything ran
        print(str(e), file=sys.stderr)
        return 2
    print()
    print(format_table(out))
    if args.out:
        outdir = Path(args.out)
    elif preset == "full":
        outdir = RESULTS
    else:  # never over the tracked results
        outdir = Path(tempfile.gettempdir()) / "jgd-bench"
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{args.name or preset}.json"
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {path}")
    return 0
