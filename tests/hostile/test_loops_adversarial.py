"""One client and several event loops, where they meet at the worst moment.

Two threads, each running its own loop, reach for one fresh client at the same instant: one
of them gets it, the other is refused with a LumeError, and neither is handed the other's
connections. ``aclose()`` from a new loop while the loop the client last ran on is open but
idle returns at once, and that loop's own shutdown closes the connections. A ``runs.get``
cancelled at any point of its answer leaves no half-read connection for the next request.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import orjson
import pytest

from lume_async import AsyncLume, LumeError
from lume_async.testing import Emulator

from ._servers import RawServer, head, json_answer

FLOW = "customer_cleaner:v1"
ROW = {"name": "Ada", "email": "ada@example.com", "age": 36}


@pytest.fixture(scope="module")
def service() -> Iterator[Emulator]:
    with Emulator(time_scale=100) as emulator:  # its own thread: every loop here is the test's
        yield emulator


@pytest.fixture
def eager_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter can: a check-then-act race shows at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _both_at_once(lume: AsyncLume, run_id: str) -> list[str]:
    """What each of two threads got, each using ``lume`` on its own loop at the same instant."""
    start = threading.Barrier(2)
    outcomes: list[str] = []

    async def use() -> None:
        start.wait()
        run = await lume.run_status(run_id)
        await run.wait(timeout=10, poll_interval=0.01)
        async for _ in run.results(page_size=1):
            pass

    def thread() -> None:
        try:
            asyncio.run(asyncio.wait_for(use(), 30))
        except LumeError as exc:
            outcomes.append(f"refused: {exc}" if "another event loop" in str(exc) else repr(exc))
        except BaseException as exc:
            outcomes.append(repr(exc))
        else:
            outcomes.append("ok")

    threads = [threading.Thread(target=thread) for _ in range(2)]
    for each in threads:
        each.start()
    for each in threads:
        each.join(60)
    assert not any(each.is_alive() for each in threads)
    return outcomes


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("eager_switching")
def test_two_threads_reaching_for_a_fresh_client_at_once_get_it_or_a_clear_refusal(
    service: Emulator,
) -> None:
    async def finished_run() -> str:
        async with AsyncLume(api_key=service.api_key, base_url=service.url) as lume:
            run = await lume.run(FLOW, source_data=[ROW, ROW])
            await run.wait(timeout=30, poll_interval=0.01)
            return run.id

    run_id = asyncio.run(finished_run())
    for _ in range(20):
        lume = AsyncLume(api_key=service.api_key, base_url=service.url, max_retries=0)
        outcomes = _both_at_once(lume, run_id)
        assert "ok" in outcomes, outcomes
        assert all(o == "ok" or o.startswith("refused: ") for o in outcomes), outcomes

        async def afterwards(lume: AsyncLume = lume) -> None:  # still whole, on a third loop
            assert (await lume.runs.get(run_id)).id == run_id
            await lume.aclose()

        asyncio.run(afterwards())


@pytest.mark.timeout(60)
def test_aclose_from_a_new_loop_while_the_last_one_is_open_but_idle_returns(
    service: Emulator,
) -> None:
    lume = AsyncLume(api_key=service.api_key, base_url=service.url)
    idle = asyncio.new_event_loop()
    try:
        idle.run_until_complete(lume.flows.get("customer_cleaner"))
        session = lume._core.transport.session
        assert session is not None

        async def close() -> None:
            await asyncio.wait_for(lume.aclose(), 10)

        asyncio.run(close())  # returns: nothing is waited for on a loop that does not run
        with pytest.raises(LumeError, match="closed"):
            asyncio.run(lume.flows.get("customer_cleaner"))
        idle.run_until_complete(idle.shutdown_asyncgens())
        assert session.closed  # closed by the idle loop's own shutdown
        assert not [task for task in asyncio.all_tasks(idle) if not task.done()]
    finally:
        idle.close()


async def _run_document() -> bytes:
    async with Emulator() as emu, AsyncLume(api_key=emu.api_key, base_url=emu.url) as lume:
        run = await lume.run(FLOW, source_path="s3://bucket/cut")
        answer = await lume._core.transport.request(
            "GET", f"/v1/runs/{run.id}", route="x", retryable=False
        )
        assert answer is not None
        return bytes(answer.body)


@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_runs_get_cancelled_at_any_byte_of_its_answer_leaves_the_pool_clean() -> None:
    body = await _run_document()
    doc = orjson.loads(body)
    by_length = head(200, content_type="application/json", content_length=len(body)) + body
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    chunked = head(200, content_type="application/json", transfer_encoding="chunked") + chunk
    for answer in (by_length, chunked):
        header_end = answer.index(b"\r\n\r\n")
        for cut in sorted({0, 1, 12, header_end, header_end + 6, len(answer) - 3}):
            sent = asyncio.Event()

            async def stall(
                _: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                answer: bytes = answer,
                cut: int = cut,
                sent: asyncio.Event = sent,
            ) -> bool:
                writer.write(answer[:cut])
                await writer.drain()
                sent.set()
                await asyncio.sleep(0.05)
                writer.write(answer[cut:])  # the rest, after the caller has left
                await writer.drain()
                return True

            async with RawServer(stall) as server:
                lume = AsyncLume(api_key="k" * 24, base_url=server.url, allow_insecure_http=True)
                try:
                    call = asyncio.ensure_future(lume.runs.get(doc["id"]))
                    await sent.wait()
                    call.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await call
                    await asyncio.sleep(0.1)  # the rest of the first answer has arrived
                    server.shape = json_answer({**doc, "label": "second"})
                    again = await asyncio.wait_for(lume.runs.get(doc["id"]), 10)
                    assert again.label == "second", cut
                finally:
                    await lume.aclose()


class _Taken:
    """A stand-in for a lock, that fails whoever takes it."""

    def __enter__(self) -> None:
        raise AssertionError("the binding lock was taken")

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.timeout(60)
def test_requests_on_the_loop_a_client_is_bound_to_never_take_its_binding_lock(
    service: Emulator,
) -> None:
    # Every request looks its session up: a lock there would make each one wait for whichever
    # thread binds, closes or is refused meanwhile.
    async def main() -> None:
        async with AsyncLume(api_key=service.api_key, base_url=service.url) as lume:
            await lume.flows.get("customer_cleaner")  # binds the client to this loop
            pool = lume._core.transport._pool
            lock, pool._lock = pool._lock, _Taken()  # type: ignore[assignment]
            try:
                for _ in range(3):
                    assert (await lume.flows.get("customer_cleaner")).name == "customer_cleaner"
            finally:
                pool._lock = lock

    asyncio.run(main())
