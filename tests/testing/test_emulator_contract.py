"""The emulator against its own OpenAPI document, with every schemathesis check."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

import lume_async.testing
from lume_async.testing import Emulator

SPEC = Path(lume_async.testing.__file__).with_name("openapi.json")
schema = schemathesis.openapi.from_path(str(SPEC))


@pytest.fixture(scope="module")
def running() -> Iterator[Emulator]:
    with Emulator(time_scale=1.0, webhook_max_attempts=1) as emu:
        yield emu


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_emulator_conforms_to_its_openapi_document(case: Any, running: Emulator) -> None:
    # Each generated case is its own logical request: a well-formed Idempotency-Key is made unique
    # so that unrelated cases do not collide (reusing a key for another body is a 422 by design).
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and re.fullmatch(r"[!-~]{1,255}", key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(base_url=running.url, headers={"lume-api-key": running.api_key})
