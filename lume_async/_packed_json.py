"""Packed JSON: a run's metadata as it waits in memory, deflated against what every run repeats.

A run's metadata is mostly keys, nulls and the run's own id, flow version and source path: as
compact JSON about 600 bytes for a run just created and 1 KB for one that ended. A fan-out keeps
one per waiting run until it is read, so it is kept deflated against a preset dictionary of those
keys (raw deflate, a 2 KB window): about 100 bytes for a run in flight, for about 5 us to pack
and 1 us to unpack. Whatever the service adds or renames still round-trips; it only packs less.

Most metadata is exactly of the documented shape (``_shaped``): its run's id, flow version and
source path, and eighteen values of its own, the last nine of them still empty while the run is
in flight. Every poll that sees a run move packs its metadata again, so such metadata is kept as
the JSON of its values alone (``pack_shaped``: about 100 bytes in flight, 300 at the end, for a
sixth of the time of deflating it) and rebuilt from them and its run's three strings when it is
read. Any other shape, and values too long to keep as they are (long lists of errors), are
deflated.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

import orjson

__all__ = ["pack", "pack_shaped", "unpack", "unpack_shaped"]

_WBITS: Final = -11  # raw deflate (no header or checksum), a 2 KB window
_LEVEL: Final = 6
_MEM_LEVEL: Final = 1  # the smallest state: the input is a few hundred bytes


def _shaped(run_id: Any, flow_version: Any, source_path: Any, v: Any) -> dict[str, Any]:
    """Metadata of the documented shape: its run's strings and its own values ``v``.

    Nine values (``_IN_FLIGHT``) for a run in flight, whose results, validation and errors are
    still empty; all eighteen for a run that has them.
    """
    if len(v) == _IN_FLIGHT:
        v = (*v, None, None, None, None, None, None, None, [], [])  # fresh lists, every time
    return {
        "run": {
            "run_id": run_id,
            "flow_version": flow_version,
            "source_path": source_path,
            "status": v[0],
            "started_at": v[1],
            "finished_at": v[2],
        },
        "pipeline": {
            "created_at": v[3],
            "completed_at": v[4],
            "duration_seconds": v[5],
            "stages": {
                "sync_source_seconds": v[6],
                "transform_seconds": v[7],
                "sync_target_seconds": v[8],
            },
        },
        "results": {
            "input_rows": v[9],
            "mapped_rows": v[10],
            "rejected_rows": v[11],
            "target_locations": v[12],
        },
        "validation": {
            "tests_executed": v[13],
            "tests_failed": v[14],
            "error_rate": v[15],
            "top_errors": v[16],
        },
        "errors": v[17],
    }


_IN_FLIGHT: Final = 9
# The last nine values of a run in flight: no results, no validation, no errors yet (compared
# with, never handed out).
_EMPTY_REST: Final[tuple[Any, ...]] = (None, None, None, None, None, None, None, [], [])


def _dictionary() -> bytes:
    """What metadata repeats, the most frequent last (nearest the data, in the cheapest reach)."""
    at = "2026-01-01T00:00:00.000000Z"
    ended = {
        "validation": {
            "tests_executed": 0,
            "tests_failed": 0,
            "error_rate": 0.0,
            "top_errors": [{"error_code": "", "field": "", "count": 1}],
        },
        "results": {
            "input_rows": 0,
            "mapped_rows": 0,
            "rejected_rows": 0,
            "target_locations": {
                "mapped": "lume://runs/run_/mapped",
                "rejects": "lume://runs/run_/rejects",
            },
        },
    }
    # A run just created: its metadata in the in-flight shape, with placeholder strings.
    pristine = _shaped("run_", ":v1", "", ("SUCCEEDED", None, None, at) + (None,) * 5)
    return orjson.dumps(ended) + orjson.dumps(pristine)


_DICTIONARY: Final = _dictionary()


def pack(obj: Any) -> bytes:
    """``obj`` as compact JSON, deflated (``orjson.JSONEncodeError`` if it is not JSON)."""
    packer = zlib.compressobj(
        _LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, _DICTIONARY
    )
    return packer.compress(orjson.dumps(obj)) + packer.flush()


def unpack(packed: bytes | memoryview) -> Any:
    """What ``pack`` was given, parsed again."""
    return orjson.loads(zlib.decompressobj(_WBITS, _DICTIONARY).decompress(packed))


#: Shaped metadata longer than this as JSON (long lists of errors) is deflated instead.
_MAX_SHAPED: Final = 512


def pack_shaped(obj: Any, run_id: Any, flow_version: Any, source_path: Any) -> bytes | None:
    """``obj`` as the JSON of its own values, if it is exactly ``_shaped`` of them and of these
    three strings of its run (and short); None for metadata of any other shape.

    Checked without building anything (every poll that sees a run move packs its metadata):
    each object has exactly the keys read from it.
    """
    try:
        run, pipeline, results, validation = (
            obj["run"],
            obj["pipeline"],
            obj["results"],
            obj["validation"],
        )
        stages = pipeline["stages"]
        head = (
            run["status"],
            run["started_at"],
            run["finished_at"],
            pipeline["created_at"],
            pipeline["completed_at"],
            pipeline["duration_seconds"],
            stages["sync_source_seconds"],
            stages["transform_seconds"],
            stages["sync_target_seconds"],
        )
        rest = (
            results["input_rows"],
            results["mapped_rows"],
            results["rejected_rows"],
            results["target_locations"],
            validation["tests_executed"],
            validation["tests_failed"],
            validation["error_rate"],
            validation["top_errors"],
            obj["errors"],
        )
        if (
            obj.__class__ is not dict
            or run.__class__ is not dict
            or pipeline.__class__ is not dict
            or stages.__class__ is not dict
            or results.__class__ is not dict
            or validation.__class__ is not dict
            or len(obj) != 5
            or len(run) != 6
            or len(pipeline) != 4
            or len(stages) != 3
            or len(results) != 4
            or len(validation) != 4
            or run["run_id"] != run_id
            or run["flow_version"] != flow_version
            or run["source_path"] != source_path
        ):
            return None
    except (KeyError, TypeError):  # a key missing, or a section that is not an object
        return None
    packed = orjson.dumps(head if rest == _EMPTY_REST else head + rest)
    # A copy that fits: orjson's own bytes keep the 4 KB it allocated to write into.
    return bytes(memoryview(packed)) if len(packed) <= _MAX_SHAPED else None


def unpack_shaped(packed: bytes, run_id: str, flow_version: str, source_path: str | None) -> Any:
    """What ``pack_shaped`` was given, from what it returned and the same three strings."""
    return _shaped(run_id, flow_version, source_path, orjson.loads(packed))
