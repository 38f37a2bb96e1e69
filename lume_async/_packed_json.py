"""Packed JSON: a run's metadata as it waits in memory, deflated against what every run repeats.

A run's metadata is mostly keys, nulls and the run's own id, flow version and source path: as
compact JSON about 600 bytes for a run just created and 1 KB for one that ended. A fan-out keeps
one per waiting run until it is read, so it is kept deflated against a preset dictionary of those
keys (raw deflate, a 2 KB window): about 100 bytes for a run in flight, for about 5 us to pack
and 1 us to unpack. Whatever the service adds or renames still round-trips; it only packs less.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

import orjson

__all__ = ["pack", "unpack"]

_WBITS: Final = -11  # raw deflate (no header or checksum), a 2 KB window
_LEVEL: Final = 6
_MEM_LEVEL: Final = 1  # the smallest state: the input is a few hundred bytes


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
    pristine = {
        "run": {
            "run_id": "run_",
            "flow_version": ":v1",
            "source_path": "",
            "status": "SUCCEEDED",
            "started_at": None,
            "finished_at": None,
        },
        "pipeline": {
            "created_at": at,
            "completed_at": None,
            "duration_seconds": None,
            "stages": {
                "sync_source_seconds": None,
                "transform_seconds": None,
                "sync_target_seconds": None,
            },
        },
        "results": {
            "input_rows": None,
            "mapped_rows": None,
            "rejected_rows": None,
            "target_locations": None,
        },
        "validation": {
            "tests_executed": None,
            "tests_failed": None,
            "error_rate": None,
            "top_errors": [],
        },
        "errors": [],
    }
    return orjson.dumps(ended) + orjson.dumps(pristine)


_DICTIONARY: Final = _dictionary()


def pack(obj: Any) -> bytes:
    """``obj`` as compact JSON, deflated (``orjson.JSONEncodeError`` if it is not JSON)."""
    packer = zlib.compressobj(
        _LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, _DICTIONARY
    )
    return packer.compress(orjson.dumps(obj)) + packer.flush()


def unpack(packed: bytes) -> Any:
    """What ``pack`` was given, parsed again."""
    return orjson.loads(zlib.decompressobj(_WBITS, _DICTIONARY).decompress(packed))
