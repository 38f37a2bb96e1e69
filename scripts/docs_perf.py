"""The site's performance page, made from the benchmarks' own results.

``benchmarks/README.md`` holds the latest table of every benchmark (each script writes its
section) and ``benchmarks/*.png`` / ``*.svg`` its plots. The documentation build
(``scripts/docs_hooks.py``) calls ``page()`` and ``images()`` on every build, so the site shows
exactly what the benchmarks last measured and cannot drift from them.

    python scripts/docs_perf.py              # print the page as the site will show it
    python scripts/docs_perf.py --replot     # redraw the plots from benchmarks/results/*.json
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
#: Where the plots are served from, relative to the site's root.
ASSETS = "assets/benchmarks"
#: Plot scripts that redraw their image from the JSON of their last run, without measuring.
REPLOTS = {"throughput.png": ["plot.py", "--from-json"], "goals.svg": ["goals_plot.py"]}


def images() -> list[Path]:
    """The benchmarks' plots."""
    return sorted([*BENCHMARKS.glob("*.png"), *BENCHMARKS.glob("*.svg")])


def page(readme: str | None = None) -> str:
    """The performance page's body: ``benchmarks/README.md`` with links fit for the site."""
    text = readme if readme is not None else (BENCHMARKS / "README.md").read_text("utf-8")
    text = re.sub(r"\A# [^\n]*\n+", "", text)  # the page has its own title
    return re.sub(r"\]\(([\w.-]+\.(?:png|svg))\)", rf"]({ASSETS}/\1)", text)


def replot() -> int:
    """Redraw every plot that has the JSON of an earlier run; how many were redrawn."""
    redrawn = 0
    for image, command in REPLOTS.items():
        done = subprocess.run(
            [sys.executable, str(BENCHMARKS / command[0]), *command[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            redrawn += 1
            print(f"redrew benchmarks/{image}")
        else:
            print(f"kept benchmarks/{image}: {done.stderr.strip().splitlines()[-1:]}")
    return redrawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--replot", action="store_true", help="redraw the plots from benchmarks/results/*.json"
    )
    args = parser.parse_args(argv)
    if args.replot:
        replot()
    else:
        print(page())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
