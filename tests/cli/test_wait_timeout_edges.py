"""``lume runs wait --timeout``: reading the runs counts against the timeout, as waiting does.

A service that keeps asking to come back later (503 with ``Retry-After``) used to hold the
command in the retries of its first read, past the ``--timeout`` it was given.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from .._threaded_app import ThreadedApp
from .conftest import lume

RUN_ID = "run_01HY0000000000000000000000"


class BusyService(ThreadedApp):
    """Answers every request 503, come back in a second."""

    async def _answer(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"detail": "busy", "code": "unavailable"}, status=503, headers={"Retry-After": "1"}
        )


@pytest.fixture(scope="module")
def busy() -> Iterator[BusyService]:
    with BusyService() as service:
        yield service


def test_a_wait_whose_runs_cannot_be_read_ends_at_its_timeout(busy: BusyService) -> None:
    env = {"LUME_BASE_URL": busy.url, "LUME_API_KEY": "lume_sk_test"}
    started = time.monotonic()
    done = lume("--max-retries", "8", "runs", "wait", RUN_ID, "--timeout", "0.3", env=env)
    took = time.monotonic() - started
    assert done.status == 1
    assert "could not be read within 0.3 s" in done.error_line()
    assert took < 3  # eight retries a second apart would take over eight
