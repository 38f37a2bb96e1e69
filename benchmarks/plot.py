"""Throughput plot: requests/s against concurrency for the SDK, aiohttp, httpx and requests.

Runs ``benchmarks/transport.py`` against nginx (in a subprocess) at each concurrency, for the
four clients, keeps its results as ``benchmarks/results/transport_sweep.json``, and draws
``benchmarks/throughput.png``: median req/s per client, one line each, log-scaled concurrency.
``--from-json`` redraws the image from a sweep already on disk without measuring again.

    python benchmarks/plot.py                            # N=3000, 2 rounds, c=1,4,16,64,128
    python benchmarks/plot.py --from-json                # redraw from the last sweep
    python benchmarks/plot.py --n 1000 --rounds 1 --concurrency 1,16 --image /tmp/t.png
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from _common import RESULTS_DIR

HERE = Path(__file__).resolve().parent
TRANSPORT = HERE / "transport.py"
DEFAULT_JSON = RESULTS_DIR / "transport_sweep.json"
DEFAULT_IMAGE = HERE / "throughput.png"
DEFAULT_CONCURRENCY = (1, 4, 16, 64, 128)
CLIENTS = ("lume-sdk", "aiohttp", "httpx", "requests")
STYLE: dict[str, dict[str, Any]] = {
    "lume-sdk": {"color": "#d62728", "marker": "o", "linewidth": 2.6},
    "aiohttp": {"color": "#1f77b4", "marker": "s", "linewidth": 1.6},
    "httpx": {"color": "#2ca02c", "marker": "^", "linewidth": 1.6},
    "requests": {"color": "#7f7f7f", "marker": "D", "linewidth": 1.6},
}


def run_sweep(args: argparse.Namespace) -> dict[str, Any]:
    """``transport.py --servers nginx`` over the concurrencies; its JSON, as written."""
    cmd = [sys.executable, str(TRANSPORT), "--servers", "nginx"]
    cmd += ["--n", str(args.n), "--rounds", str(args.rounds)]
    cmd += ["--concurrency", ",".join(map(str, args.concurrency))]
    cmd += ["--clients", ",".join(CLIENTS), "--output", str(args.json)]
    print("$", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise SystemExit(f"transport.py failed (exit {done.returncode})")
    data: dict[str, Any] = orjson.loads(args.json.read_bytes())
    if "nginx" not in data.get("servers", {}):
        reason = data.get("skipped", {}).get("nginx", "no nginx results")
        raise SystemExit(f"transport.py measured nothing against nginx: {reason}")
    return data


def series(data: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """Per client, (concurrency, median req/s) sorted by concurrency."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in data["servers"]["nginx"]["rows"]:
        out.setdefault(row["client"], []).append((int(row["concurrency"]), float(row["rps"])))
    return {client: sorted(points) for client, points in out.items()}


def title(data: dict[str, Any]) -> str:
    date = datetime.fromisoformat(data["date"]).strftime("%Y-%m-%d")
    cores = data.get("cpus") or os.cpu_count()
    python = data.get("versions", {}).get("python", platform.python_version())
    nginx = data.get("nginx_version", "nginx")
    return (
        f"GET /v1/runs/{{id}}: requests/s by concurrency ({date})\n"
        f"{cores} cores, loopback {nginx} (1 worker, canned 1.5 kB run), CPython {python},\n"
        f"{data['n']:,} GETs per point, median of {data['rounds']} rounds"
    )


def draw(data: dict[str, Any], image: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lines = series(data)
    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=120)
    for client in [c for c in CLIENTS if c in lines] + [c for c in lines if c not in CLIENTS]:
        xs, ys = zip(*lines[client], strict=True)
        label = "requests (min(c, 16) threads)" if client == "requests" else client
        style: dict[str, Any] = STYLE.get(client, {})
        ax.plot(xs, ys, label=label, markersize=6, **style)
        ax.annotate(
            f"{ys[-1]:,.0f}",
            (xs[-1], ys[-1]),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=style.get("color", "black"),
        )
    concurrencies = sorted({x for points in lines.values() for x, _ in points})
    ax.set_xscale("log")
    ax.set_xticks(concurrencies)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(concurrencies[0] / 1.3, concurrencies[-1] * 1.6)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("concurrency (requests in flight)")
    ax.set_ylabel("requests/s (higher is better)")
    ax.set_title(title(data), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="center left", frameon=False)
    fig.tight_layout()
    image.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(image)
    plt.close(fig)


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,4,16")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="GETs per measurement (3000)")
    parser.add_argument("--rounds", type=int, default=2, help="repetitions; medians (2)")
    parser.add_argument(
        "--concurrency",
        type=_int_list,
        default=list(DEFAULT_CONCURRENCY),
        help=",".join(map(str, DEFAULT_CONCURRENCY)),
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="the sweep's JSON")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="the PNG to write")
    parser.add_argument(
        "--from-json", action="store_true", help="draw from --json without measuring"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        data = orjson.loads(args.json.read_bytes())
    else:
        data = run_sweep(args)
        data["cpus"] = os.cpu_count()
        args.json.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    draw(data, args.image)
    print(f"wrote {args.image} (from {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
