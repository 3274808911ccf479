"""The goals of ``jgd bench``: read from a data file, checked on a run.

Holds ``DEFAULT_GOALS`` (``benchmarks/goals.json`` in a checkout),
``load_goals`` and ``evaluate``. A goal names a variant, a per-variant
figure of each cell (``speedup_vs_optax``, ``compile_ratio_vs_optax`` or any
other number a variant records), a bound (``at_least`` or ``at_most``, with
an optional ``tolerance`` added to it), and the workloads and optimizers it
covers (``"all"`` or a list). ``evaluate`` gives one row per goal and cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_GOALS = Path(__file__).resolve().parents[2] / "benchmarks" / "goals.json"


def _check(goal: Any, i: int) -> dict[str, Any]:
    where = f"jgd bench: goal {i}"
    if not isinstance(goal, dict):
        raise TypeError(f"{where} must be an object; got {goal!r}.")
    for key in ("id", "variant", "metric"):
        if not isinstance(goal.get(key), str):
            raise TypeError(f"{where} needs a string {key!r}; got {goal!r}.")
    bounds = [k for k in ("at_least", "at_most") if k in goal]
    if len(bounds) != 1 or not isinstance(goal[bounds[0]], int | float):
        raise ValueError(
            f"{where} ({goal['id']}) needs exactly one number 'at_least' or "
            f"'at_most'; got {goal!r}."
        )
    for key in ("workloads", "optimizers"):
        v = goal.get(key, "all")
        if v != "all" and not (
            isinstance(v, list) and all(isinstance(x, str) for x in v)
        ):
            raise ValueError(
                f'{where} ({goal["id"]}): {key} must be "all" or a list of names; '
                f"got {v!r}."
            )
    return goal


def load_goals(path: str | Path | None = None) -> dict[str, Any]:
    """The goals file as ``{"source": path, "about": ..., "goals": [...]}``.

    ``path`` None reads ``DEFAULT_GOALS`` when it exists (a checkout), else
    returns no goals and says why in ``"note"``.

    Raises:
        ValueError: a goal without exactly one bound, or with a malformed
            ``workloads``/``optimizers``; a file that is not JSON.
        TypeError: a goal that is not an object, or without a string ``id``,
            ``variant`` or ``metric``.
        FileNotFoundError: an explicit ``path`` that does not exist.
    """
    if path is None:
        if not DEFAULT_GOALS.exists():
            return {
                "source": None,
                "goals": [],
                "note": f"{DEFAULT_GOALS} not found: run from a checkout or "
                "pass --goals FILE",
            }
        path = DEFAULT_GOALS
    data = json.loads(Path(path).read_text())
    goals = [_check(g, i) for i, g in enumerate(data.get("goals", []))]
    return {"source": str(path), "about": data.get("about"), "goals": goals}


def _covers(selection: Any, name: str) -> bool:
    return selection in (None, "all") or name in selection


def evaluate(out: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per goal and covered cell of the run ``out``: the figure
    measured, its interval where the variant records ``<metric>_interval``,
    and whether the figure meets the bound (``met`` None where the cell or
    the variant was not measured). A workload a goal names that the run did
    not include gets one row, not measured."""
    rows = []
    for g in spec.get("goals", []):
        op, target = (">=", g["at_least"]) if "at_least" in g else ("<=", g["at_most"])
        tol = g.get("tolerance", 0.0)
        base = {
            "goal": g["id"],
            "variant": g["variant"],
            "metric": g["metric"],
            "op": op,
            "target": target,
            "tolerance": tol,
        }
        seen = set()
        for r in out.get("results", []):
            w, o = r["workload"], r["optimizer"]
            if not (_covers(g.get("workloads"), w) and _covers(g.get("optimizers"), o)):
                continue
            seen.add(w)
            cell = r["variants"].get(g["variant"], {})
            ok = cell.get("status") == "ok"
            value = cell.get(g["metric"]) if ok else None
            met = None
            if value is not None:
                met = value >= target - tol if op == ">=" else value <= target + tol
            interval = cell.get(g["metric"] + "_interval") if ok else None
            rows.append(
                base
                | {
                    "workload": w,
                    "optimizer": o,
                    "measured": value,
                    "interval": interval,
                    "met": met,
                }
            )
        if isinstance(g.get("workloads"), list):
            for w in g["workloads"]:
                if w not in seen:
                    rows.append(
                        base
                        | {
                            "workload": w,
                            "optimizer": None,
                            "measured": None,
                            "interval": None,
                            "met": None,
                        }
                    )
    return rows
