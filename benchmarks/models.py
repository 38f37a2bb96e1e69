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

import cattrs
import orjson
from cattrs.preconf.orjson import make_converter

from lume_async import _converter
from lume_async.models import Page, RunData, RunStatus

RESULTS = Path(__file__).parent / "results" / "models.json"


def sample_run(i: int = 0) -> dict[str, Any]:
    """A finished run with every metadata section filled in, as the service returns it."""
    ts = "2024-05-01T10:00:00Z"
    return {
        "id": f"run_01HYB6ZX8R4J5K0000000000{i:02d}",
        "status": "PARTIAL_FAILED",
        "flow_version": "customer_cleaner:v1",
        "source_path": f"s3://acme-ingest/customers/batch_{i:04d}.csv",
        "label": "nightly",
        "tags": ["nightly", "customers", "eu"],
        "run_metadata": {"triggered_by": "airflow", "dag": "customers_nightly", "attempt": 1},
        "created_at": ts,
        "updated_at": "2024-05-01T10:05:12.345678Z",
        "metadata": {
            "run": {
                "run_id": f"run_01HYB6ZX8R4J5K0000000000{i:02d}",
                "flow_version": "customer_cleaner:v1",
                "source_path": f"s3://acme-ingest/customers/batch_{i:04d}.csv",
                "started_at": "2024-05-01T10:00:01.5Z",
                "finished_at": "2024-05-01T10:05:12Z",
            },
            "pipeline": {
                "created_at": ts,
                "completed_at": "2024-05-01T10:05:12Z",
                "duration_seconds": 311.2,
                "stages": {
                    "sync_source_seconds": 20.4,
                    "transform_seconds": 250.0,
                    "sync_target_seconds": 40.8,
                },
            },
            "results": {
                "input_rows": 10000,
                "mapped_rows": 9875,
                "rejected_rows": 125,
                "target_locations": {
                    "mapped": "s3://acme-out/customers/mapped/",
                    "rejects": "s3://acme-out/customers/rejects/",
                },
            },
            "validation": {
                "tests_executed": 48,
                "tests_failed": 3,
                "error_rate": 0.0125,
                "top_errors": [
                    {"error_code": "invalid_email", "field": "email", "count": 80},
                    {"error_code": "missing_required", "field": "customer_id", "count": 30},
                    {"error_code": "invalid_date", "field": "signup_date", "count": 15},
                ],
            },
            "errors": [
                {"stage": "transform", "error_code": "row_rejected", "message": "125 rows rejected"}
            ],
        },
        "error": None,
    }


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
