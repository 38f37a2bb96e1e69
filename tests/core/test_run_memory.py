"""What a waiting run keeps in memory: a fan-out of a million runs must fit in one process.

The bounds are bytes measured with ``tracemalloc`` over a thousand runs shaped as the
emulator serves them, so they hold on any machine; they fail when a run starts keeping a copy of
something (its metadata as JSON, a string per run that every run repeats, a container per run).
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from lume_async._converter import run_from_obj
from lume_async._packed_json import pack, unpack
from lume_async._runs_core import RunCell
from lume_async._watches import Watches

# Enough runs to spread the fixed costs: the bytes per run read the same from 500 runs to 3,000.
N = 1000
ID = "run_01M8GVX7N8R84P57VFQV{:06d}"
CREATED_AT = "2026-11-28T10:41:10.312469Z"


def emulator_run(n: int, status: str = "CREATED", updated_at: str = CREATED_AT) -> dict[str, Any]:
    """A run just created, as the emulator answers it (metadata included)."""
    run_id, path = ID.format(n), f"synthetic://fan-out/{n}?rows=1&duration=45"
    return {
        "id": run_id,
        "status": status,
        "flow_version": "customer_cleaner:v1",
        "source_path": path,
        "label": None,
        "tags": [],
        "run_metadata": None,
        "created_at": CREATED_AT,
        "updated_at": updated_at,
        "metadata": {
            "run": {
                "run_id": run_id,
                "flow_version": "customer_cleaner:v1",
                "source_path": path,
                "status": status,
                "started_at": None,
                "finished_at": None,
            },
            "pipeline": {
                "created_at": CREATED_AT,
                "completed_at": None,
                "duration_seconds": None,
                "stages": dict.fromkeys(
                    ["sync_source_seconds", "transform_seconds", "sync_target_seconds"]
                ),
            },
            "results": dict.fromkeys(
                ["input_rows", "mapped_rows", "rejected_rows", "target_locations"]
            ),
            "validation": {
                "tests_executed": None,
                "tests_failed": None,
                "error_rate": None,
                "top_errors": [],
            },
            "errors": [],
        },
        "error": None,
        "created_by": "admin@tenant-1.example",
        "run_owner": "admin@tenant-1.example",
        "monitoring_by": [],
        "monitoring_groups": [],
        "managing_by": [],
        "managing_groups": [],
    }


def parsed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs as a fresh parse of an answer gives them: no string shared with the input."""
    return list(orjson.loads(orjson.dumps(runs)))


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """The bytes allocated inside the block and still alive at the call."""
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    try:
        yield lambda: (gc.collect(), tracemalloc.get_traced_memory()[0] - start)[1]
    finally:
        tracemalloc.stop()


def test_a_created_run_keeps_under_700_bytes() -> None:
    answers = [orjson.dumps(emulator_run(n)) for n in range(N)]
    with traced() as allocated:
        runs = [run_from_obj(orjson.loads(a), request_id="4f2a" * 8) for a in answers]
        per_run = allocated() / N

    assert len(runs) == N
    assert per_run < 700  # compact JSON metadata alone was 580 bytes; parsed, several KB


def test_a_run_decoded_again_as_it_moves_shares_its_cells_strings() -> None:
    cell = RunCell(run_from_obj(parsed([emulator_run(1)])[0]))
    old = cell.data
    watches = Watches(on_idle=lambda: None)
    watches.add([cell], _itself, 1.0, lambda _: None, lambda _: None)

    answer = parsed([emulator_run(1, "PENDING", "2026-11-28T10:41:11Z")])[0]
    watches.update(old.id, answer, run_from_obj)

    assert cell.data is not old
    assert cell.data.id is old.id  # the registry's keys are this very string
    assert cell.data.source_path is old.source_path


def test_a_waiting_run_keeps_under_900_bytes_with_its_handle_watch_and_latest_answer() -> None:
    created = orjson.dumps([emulator_run(n) for n in range(N)])
    moved = orjson.dumps([emulator_run(n, "PENDING", "2026-11-28T10:41:11Z") for n in range(N)])
    with traced() as allocated:
        cells = [RunCell(run_from_obj(run, request_id="4f2a" * 8)) for run in orjson.loads(created)]
        watches = Watches(on_idle=lambda: None)
        watches.add(cells, _itself, 1.0, lambda _: None, lambda _: None)
        for run in orjson.loads(moved):
            watches.update(run["id"], run, run_from_obj)
        del run
        per_run = allocated() / N

    assert all(cell.data.status.value == "PENDING" for cell in cells)
    assert per_run < 900  # 1,400 bytes when metadata was kept as JSON and principals copied


def test_every_run_shares_the_strings_all_runs_repeat() -> None:
    a, b = (run_from_obj(run) for run in parsed([emulator_run(1), emulator_run(2)]))

    assert a.created_by is b.created_by
    assert a.run_owner is b.run_owner
    assert a.flow_version is b.flow_version


def test_watching_a_run_costs_under_100_bytes() -> None:
    cells = [RunCell(run_from_obj(run)) for run in parsed([emulator_run(n) for n in range(N)])]
    with traced() as allocated:
        watches = Watches(on_idle=lambda: None)
        watch = watches.add(cells, _itself, 1.0, lambda _: None, lambda _: None)
        per_run = allocated() / N

    assert watch.remaining == N
    assert per_run < 100  # an entry in the watch and one in the registry


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_packed_metadata_reads_back_as_it_was_given(obj: dict[str, Any]) -> None:
    assert unpack(pack(obj)) == obj


def test_the_metadata_of_a_run_in_flight_packs_to_under_a_quarter_of_its_json() -> None:
    metadata = emulator_run(7)["metadata"]

    assert len(pack(metadata)) < len(orjson.dumps(metadata)) / 4
    assert sys.getsizeof(run_from_obj(emulator_run(7))._metadata) < 200


def _itself(cell: RunCell) -> RunCell:
    return cell
