"""Argument checks of the provider: bad arguments fail here, with the argument's name."""

from __future__ import annotations

import math
import re

__all__ = ["check_bool", "check_conn_id", "check_poll_interval", "check_run_id", "check_timeout"]

_RUN_ID = re.compile(r"run_[A-Za-z0-9]{1,60}")  # as lume_async reads them


def check_conn_id(conn_id: object) -> str:
    if not isinstance(conn_id, str):
        raise TypeError(f"lume_conn_id must be a str, not {type(conn_id).__name__}")
    if not conn_id:
        raise ValueError("lume_conn_id must not be empty")
    return conn_id


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a str, not {type(run_id).__name__}")
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run_id {run_id!r} is not a run id (expected e.g. 'run_01HY...')")
    return run_id


def check_poll_interval(value: object, name: str = "poll_interval") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def check_timeout(value: object, name: str = "timeout") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be >= 0 seconds or None, got {value!r}")
    return float(value)


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value
