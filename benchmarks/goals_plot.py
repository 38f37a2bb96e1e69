"""Goals plot: every benchmark goal of one run, as the share of its budget the SDK used.

Reads the ``acceptance`` section of the results files the benchmarks wrote (``transport.py``,
``sync_overhead.py``, ``rows.py``, ``scale.py``; each file given as ``LABEL=PATH``, the label
prefixing its goals) and draws one horizontal bar per goal that has a limit: the measured value
over its limit for an upper bound (``<= 40``), the limit over the value for a lower bound
(``>= 0.95x``), so a bar that stops left of 1.0 meets its goal. Each bar is labelled with the
measured value and the goal. Written as SVG (text, diffable) with matplotlib, which the
``bench`` extra brings.

    python benchmarks/goals_plot.py                      # the default results files
    python benchmarks/goals_plot.py asyncio=benchmarks/results/transport.json --image /tmp/g.svg
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from _common import RESULTS_DIR

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGE = HERE / "goals.svg"
DEFAULT_FILES = (
    f"transport={RESULTS_DIR / 'transport.json'}",
    f"transport [uvloop]={RESULTS_DIR / 'transport_uvloop.json'}",
    f"sync={RESULTS_DIR / 'sync_overhead.json'}",
    f"sync, 1 core={RESULTS_DIR / 'sync_overhead_pinned.json'}",
    f"rows={RESULTS_DIR / 'rows.json'}",
    f"scale={RESULTS_DIR / 'scale.json'}",
)
_GOAL = re.compile(r"^\s*(<=|>=)\s*([0-9.]+)\s*x?\s*$")


class Goal(NamedTuple):
    name: str
    value: float
    bound: str  # "<=" or ">="
    limit: float

    @property
    def share(self) -> float:
        """Of the goal's budget, how much the measurement used (<= 1: met)."""
        if self.bound == "<=":
            return self.value / self.limit
        return self.limit / self.value if self.value else float("inf")

    @property
    def met(self) -> bool:
        return self.share <= 1.0


def goals_of(label: str, data: dict[str, Any]) -> list[Goal]:
    """The goals with a limit and a measured value in one results file."""
    found = []
    for name, entry in data.get("acceptance", {}).items():
        value = entry.get("value", entry.get("ratio"))
        match = _GOAL.match(entry.get("goal") or "")
        if value is None or match is None:
            continue
        found.append(Goal(f"{label}: {name}", float(value), match[1], float(match[2])))
    return found


def draw(goals: list[Goal], image: Path, subtitle: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small and searchable
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 0.42 * len(goals) + 1.6), dpi=100)
    ys = range(len(goals))[::-1]
    shares = [min(g.share, 3.0) for g in goals]
    colors = ["#2ca02c" if g.met else "#d62728" for g in goals]
    ax.barh(list(ys), shares, color=colors, height=0.6)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([g.name for g in goals], fontsize=8)
    for y, share, goal in zip(ys, shares, goals, strict=True):
        ax.annotate(
            f"{goal.value:,.3g} (goal {goal.bound} {goal.limit:g})",
            (share, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, max(max(shares) * 1.35, 1.5))
    ax.set_xlabel("share of the goal's budget used (left of 1.0: goal met; bars cut at 3)")
    ax.set_title(f"Issue 16 goals, one run\n{subtitle}", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    image.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(image, format="svg", metadata={"Date": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("files", nargs="*", default=list(DEFAULT_FILES), help="LABEL=PATH ...")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="the SVG to write")
    args = parser.parse_args(argv)
    goals: list[Goal] = []
    machine = ""
    for item in args.files:
        label, _, path = item.partition("=")
        if not path:
            parser.error(f"expected LABEL=PATH, not {item!r}")
        file = Path(path)
        if not file.exists():
            print(f"skipped {label}: {file} does not exist", file=sys.stderr)
            continue
        data = orjson.loads(file.read_bytes())
        goals += goals_of(label, data)
        info = data.get("machine") or {}
        machine = machine or f"{info.get('cpus', '?')} CPUs ({info.get('cpu_model', '?')}), " + (
            f"{info.get('python', '')}"
        )
    if not goals:
        print("no goals found in the results files", file=sys.stderr)
        return 1
    draw(goals, args.image, machine)
    met = sum(g.met for g in goals)
    print(f"wrote {args.image}: {met} of {len(goals)} goals met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
