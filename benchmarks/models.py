"""Model decode cost: microseconds to turn one run, and a page of 100 runs, into typed objects.

Compares the SDK's decoder (orjson + a hand-written fast path for runs, falling back to the
generated cattrs hooks) with plain JSON parsing and with other cattrs set-ups, so the cost of
typing the answers is visible next to the cost of parsing them. Results go to
``benchmarks/results/models.json``.

    python benchmarks/models.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import _common
import cattrs
import orjson
from cattrs.preconf.orjson import make_converter

from lume_async import _converter
from lume_async.models import Page, RunData, RunStatus

RESULTS = Path(__file__).parent / "results" / "models.json"


def sample_run(i: int = 0) -> dict[str, Any]:
    """A finished run with every metadata section filled in (the shared benchmark sample)."""
    return _common.sample_run(f"run_01HYB6ZX8R4J5K0000000000{i:02d}")


def _plain_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))
    conv.register_structure_hook(RunStatus, lambda v, _: RunStatus(v))
    return conv


def _per_call_us(fn: Callable[[], object], number: int) -> float:
    fn()
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    n_run, n_page = (2_000, 50) if args.quick else (20_000, 500)

    one = orjson.dumps(sample_run())
    page = orjson.dumps(
        {
            "items": [sample_run(i) for i in range(100)],
            "page": 1,
            "size": 100,
            "total": 1000,
            "pages": 10,
        }
    )
    page_type = Page[RunData]
    generated = _converter.converter.get_structure_hook(RunData)
    generated = getattr(_converter, "_detailed_run", generated)
    fast_off = make_converter(detailed_validation=False)
    fast_off.register_structure_hook(RunStatus, lambda v, _: RunStatus(v))
    plain = _plain_converter()

    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "json.loads only": (lambda: json.loads(one), lambda: json.loads(page)),
        "orjson.loads only": (lambda: orjson.loads(one), lambda: orjson.loads(page)),
        "lume decode_run / decode_page": (
            lambda: _converter.decode_run(one),
            lambda: _converter.decode_page(page, RunData),
        ),
        "orjson + generated cattrs hooks (detailed errors)": (
            lambda: generated(orjson.loads(one), RunData),
            lambda: [generated(r, RunData) for r in orjson.loads(page)["items"]],
        ),
        "orjson + preconf converter, detailed_validation=False": (
            lambda: fast_off.structure(orjson.loads(one), RunData),
            lambda: fast_off.structure(orjson.loads(page), page_type),
        ),
        "json + plain cattrs.Converter": (
            lambda: plain.structure(json.loads(one), RunData),
            lambda: plain.structure(json.loads(page), page_type),
        ),
    }
    results: dict[str, dict[str, float]] = {}
    width = max(map(len, cases))
    print(f"run JSON {len(one)} B, page JSON {len(page)} B")
    print(f"{'decoder':<{width}}  {'µs/run':>8}  {'µs/page of 100':>14}")
    for name, (decode_one, decode_page) in cases.items():
        us_one = _per_call_us(decode_one, n_run)
        us_page = _per_call_us(decode_page, n_page)
        results[name] = {"us_per_run": round(us_one, 2), "us_per_page_100": round(us_page, 1)}
        print(f"{name:<{width}}  {us_one:8.2f}  {us_page:14.1f}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "run_bytes": len(one),
                "page_bytes": len(page),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
