"""The ``jgd bench`` command line: ``main(argv)``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jgd.bench.measure import run
from jgd.bench.report import format_markdown, format_table, goals, plot
from jgd.bench.workloads import OPTIMIZERS, PRESETS, VARIANTS, WORKLOADS

# --------------------------------------------------------------------------
# The command line.
# --------------------------------------------------------------------------


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="jgd bench",
        description="Time optimizer steps under jit: jgd (bare update and "
        "make_step), optax and torch.optim, as multiples of the memory-bandwidth "
        "limit measured in the same run.",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="preset",
        help="a subset that runs in about 2 minutes on 2 CPU cores",
    )
    g.add_argument(
        "--full",
        action="store_const",
        const="full",
        dest="preset",
        help="every workload and optimizer (the default)",
    )
    g.add_argument("--preset", choices=sorted(PRESETS), help="tiny, quick or full")
    p.add_argument("--workloads", type=_csv, help=f"comma list from {list(WORKLOADS)}")
    p.add_argument(
        "--optimizers", type=_csv, help=f"comma list from {list(OPTIMIZERS)}"
    )
    p.add_argument(
        "--variants",
        type=_csv,
        default=VARIANTS,
        help=f"comma list from {list(VARIANTS)} (torch ones need torch)",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (>= 7)")
    p.add_argument(
        "--min-round-s", type=float, help="seconds each round of a variant lasts"
    )
    p.add_argument(
        "--compile-sweep",
        type=_csv,
        help="leaf counts for the compile-time sweep ('' for none)",
    )
    p.add_argument(
        "--out",
        default="benchmarks/results",
        help="directory for the JSON and PNGs (default benchmarks/results)",
    )
    p.add_argument("--name", help="file stem (default: the preset)")
    p.add_argument("--plot", action="store_true", help="also write PNG plots")
    p.add_argument("--no-torch", action="store_true", help="skip the torch variants")
    p.add_argument(
        "--report",
        metavar="JSON",
        help="run nothing: print a recorded run's table and its Markdown "
        "summary (as quoted in benchmarks/README.md)",
    )
    return p  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.report:
        out = json.loads(Path(args.report).read_text())
        out["goals"] = goals(out)  # the current evaluation of the recorded cells
        print(format_table(out))
        print()
        print(format_markdown(out))
        return 0
    preset = args.preset or "full"
    variants = tuple(args.variants)
    if args.no_torch:
        variants = tuple(v for v in variants if not v.startswith("torch"))
    sweep = (
        None
        if args.compile_sweep is None
        else tuple(int(x) for x in args.compile_sweep)
    )
    command = "jgd bench " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        out = run(
            preset,
            workloads=args.workloads,
            optimizers=args.optimizers,
            variants=variants,
            rounds=args.rounds,
            min_round_s=args.min_round_s,
            compile_sweep=sweep,
            command=command.strip(),
        )
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    print()
    print(format_table(out))
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    stem = outdir / (args.name or preset)
    path = Path(f"{stem}.json")
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {path}")
    if args.plot:
        for p in plot(out, stem):
            print(f"wrote {p}")
    return 0
