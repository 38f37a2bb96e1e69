from __future__ import annotations

import tracemalloc

import aiohttp
import pytest

from lume_async.testing import Emulator

from .conftest import CUSTOMERS, call

pytestmark = pytest.mark.anyio


async def _create(api: aiohttp.ClientSession, n: int, prefix: str, **extra: object) -> list[str]:
    ids = []
    for i in range(n):
        _, run = await call(
            api,
            "POST",
            "/v1/runs",
            json={"flow_version": CUSTOMERS, "source_path": f"{prefix}{i}", **extra},
        )
        ids.append(run["id"])
    return ids


async def test_keyset_pages_neither_skip_nor_repeat_under_concurrent_inserts(
    api: aiohttp.ClientSession,
) -> None:
    existing = await _create(api, 25, "old-")
    seen: list[str] = []
    params: dict[str, str | int] = {"size": 7}
    while True:
        _, page = await call(api, "GET", "/v1/runs", params=params)
        seen += [r["id"] for r in page["items"]]
        await _create(api, 3, f"new-{len(seen)}-")  # inserts between pages
        if page["next_cursor"] is None:
            break
        params = {"cursor": page["next_cursor"], "size": 7}
    assert seen == list(reversed(existing))


async def test_ascending_order_and_filters(emu: Emulator, api: aiohttp.ClientSession) -> None:
    ids = await _create(api, 5, "f-", label="l1", tags=["x", "y"])
    await _create(api, 3, "g-")
    _, page = await call(
        api, "GET", "/v1/runs", params={"order": "asc", "label": "l1", "tag": ["x", "y"]}
    )
    assert [r["id"] for r in page["items"]] == ids
    emu.advance(1)
    _, page = await call(
        api, "GET", "/v1/runs", params=[("status", "TRANSFORMING"), ("status", "PENDING")]
    )
    assert len(page["items"]) == 8
    _, page = await call(api, "GET", "/v1/runs", params={"status": "SUCCEEDED"})
    assert page["items"] == []


async def test_ordering_by_updated_at_is_refused(api: aiohttp.ClientSession) -> None:
    status, body = await call(api, "GET", "/v1/runs", params={"order_by": "updated_at"})
    assert (status, body["code"]) == (422, "validation_error")
    assert body["detail"][0]["loc"] == ["query", "order_by"]
    assert body["detail"][0]["type"] == "unstable_order"


@pytest.mark.parametrize(
    "params",
    [
        {"size": "0"},
        {"size": "101"},
        {"order": "sideways"},
        {"order_by": "label"},
        {"status": "NOPE"},
        {"status": "running"},
        {"cursor": "zz"},
        {"cursor": "eyJmIjp7fX0.AAAA"},
        {"created_after": "yesterday"},
        {"source_path": "x" * 2049},
    ],
)
async def test_bad_list_parameters_are_422(
    api: aiohttp.ClientSession, params: dict[str, str]
) -> None:
    status, body = await call(api, "GET", "/v1/runs", params=params)
    assert (status, body["code"]) == (422, "validation_error")


@pytest.mark.parametrize("route", ["results", "rejects", "logs", "input"])
async def test_pages_hold_100_items_unless_asked(
    emu: Emulator, api: aiohttp.ClientSession, route: str
) -> None:
    path = "synthetic://p?rows=460&reject_rate=0.5&duration=100"
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    emu.advance(101)
    _, page = await call(api, "GET", f"/v1/runs/{run['id']}/{route}")
    assert page["size"] == 100
    assert len(page["items"]) == min(100, page["total"])


async def test_page_envelope_bounds(emu: Emulator, api: aiohttp.ClientSession) -> None:
    _, run = await call(
        api,
        "POST",
        "/v1/runs",
        json={"flow_version": CUSTOMERS, "source_path": "synthetic://p?rows=120"},
    )
    emu.advance(5)
    _, page = await call(api, "GET", f"/v1/runs/{run['id']}/results")
    assert (page["total"], page["page"], page["size"], page["pages"]) == (120, 1, 100, 2)
    _, page = await call(api, "GET", f"/v1/runs/{run['id']}/results", params={"size": 50})
    assert (page["total"], page["page"], page["size"], page["pages"]) == (120, 1, 50, 3)
    _, past = await call(api, "GET", f"/v1/runs/{run['id']}/results", params={"page": 9})
    assert past["items"] == []
    assert past["total"] == 120
    status, _ = await call(api, "GET", f"/v1/runs/{run['id']}/results", params={"size": 101})
    assert status == 422
    status, _ = await call(api, "GET", f"/v1/runs/{run['id']}/results", params={"page": 0})
    assert status == 422


async def test_million_row_run_pages_without_materialising_rows(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    path = "synthetic://big?rows=1000000&reject_rate=0.01&duration=1"
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    emu.advance(2)
    tracemalloc.start()
    try:
        pages = {}
        for page_no in (1, 5_000, 9_999, 10_000):
            _, page = await call(
                api, "GET", f"/v1/runs/{run['id']}/results", params={"page": page_no, "size": 99}
            )
            pages[page_no] = page
        _, rejects = await call(
            api, "GET", f"/v1/runs/{run['id']}/rejects", params={"page": 100, "size": 100}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pages[1]["total"] == 990_000
    assert len(pages[9_999]["items"]) == 99
    assert len(pages[10_000]["items"]) == 990_000 - 9_999 * 99
    assert rejects["total"] == 10_000
    assert len(rejects["items"]) == 100
    assert peak < 20 * 1024 * 1024  # a materialised run would need hundreds of MB


async def test_synthetic_pages_are_deterministic_and_consistent(
    emu: Emulator, api: aiohttp.ClientSession
) -> None:
    path = "synthetic://d?rows=500&reject_rate=0.3&duration=1"
    _, run = await call(
        api, "POST", "/v1/runs", json={"flow_version": CUSTOMERS, "source_path": path}
    )
    emu.advance(2)
    rows, rejects = [], []
    for page in range(1, 6):
        _, p = await call(
            api, "GET", f"/v1/runs/{run['id']}/results", params={"page": page, "size": 100}
        )
        rows += p["items"]
        _, r = await call(
            api, "GET", f"/v1/runs/{run['id']}/rejects", params={"page": page, "size": 100}
        )
        rejects += r["items"]
    assert len(rows) + len(rejects) == 500
    assert len(rejects) == 150
    rejected = {r["index"] for r in rejects}
    names = {row["full_name"] for row in rows}
    assert all(f"Customer {i}" in names for i in range(500) if i not in rejected)
