"""The generated blocking client, end to end against the emulator."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import lume_async
import lume_sync
from lume_async._connections import Connections
from lume_async.testing import Emulator
from lume_sync import Lume, Paginator, Run, _loop

from ._support import without_slow_callbacks

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
FLOW = "customer_cleaner:v1"
UNKNOWN_RUN = "run_01HY0000000000000000000000"


def synthetic(name: str, rows: int = 20, duration: float = 1.0, **extra: object) -> str:
    query = "&".join(
        [f"rows={rows}", f"duration={duration}", *(f"{k}={v}" for k, v in extra.items())]
    )
    return f"synthetic://{name}?{query}"


def acquired_connections(lume: Lume) -> int:
    session = lume._async._core.transport.session
    assert isinstance(session, Connections)
    return session.in_use


def run_script(code: str, emu: Emulator, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EMU_URL": emu.url, "EMU_KEY": emu.api_key}
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    done.stderr = without_slow_callbacks(done.stderr)
    return done


def test_creates_a_run_waits_and_pages_its_results_with_a_for_loop(lume: Lume) -> None:
    run = lume.run(FLOW, synthetic("basic", rows=45))

    assert isinstance(run, Run)
    assert run.wait(timeout=30, poll_interval=0.05) is run
    assert run.status == lume_async.RunStatus.SUCCEEDED
    rows = list(run.results(page_size=10))
    assert len(rows) == 45
    assert rows == run.results(page_size=20).collect()
    assert [len(page) for page in run.results(page_size=20).pages()] == [20, 20, 5]


def test_run_methods_return_the_same_handle_updated_in_place(lume: Lume) -> None:
    run = lume.runs.create(FLOW, synthetic("same"))

    assert run.refresh() is run
    assert run.update(label="x") is run
    assert run.label == "x"
    assert run.wait(timeout=30, poll_interval=0.05) is run
    assert run.raise_for_status() is run
    assert lume.run_status(run.id) == run


def test_break_in_a_results_loop_releases_the_connection_before_the_next_statement(
    lume: Lume,
) -> None:
    run = lume.run(FLOW, synthetic("break", rows=300)).wait(timeout=30, poll_interval=0.05)

    for seen, _ in enumerate(run.results(page_size=10), 1):  # 30 pages, fetched ahead
        if seen == 15:
            break
    acquired = acquired_connections(lume)

    assert acquired == 0
    assert not [t for t in asyncio.all_tasks(_loop.get_loop()) if not t.done()]


def test_listings_and_batches_hand_back_sync_runs(lume: Lume) -> None:
    outcomes = lume.runs.create_many(
        [{"flow_version": FLOW, "source_path": synthetic(f"batch{i}")} for i in range(3)]
    )
    runs = [outcome.unwrap() for outcome in outcomes]
    finished = list(lume.runs.as_completed(runs, timeout=30, poll_interval=0.05))
    listed = lume.runs.list(page_size=2)

    assert all(isinstance(run, Run) for run in runs)
    assert set(runs) == set(finished)
    assert all(isinstance(run, Run) for run in lume.runs.wait_all(runs, poll_interval=0.05))
    assert isinstance(listed, Paginator)
    assert all(isinstance(run, Run) for run in listed.collect())
    assert all(isinstance(o.unwrap(), Run) for o in lume.runs.get_many([r.id for r in runs]))


def test_batch_outcomes_keep_their_keys_and_handles_say_reused(lume: Lume) -> None:
    requests = [
        lume_sync.RunRequest(FLOW, source_path=synthetic("keyed", duration=600)),
        lume_sync.RunRequest(FLOW, source_path=synthetic("keyed", duration=600)),
    ]
    [first] = lume.runs.create_many(requests[:1], idempotency_namespace="sync-ns")
    [again] = lume.runs.create_many(requests[1:])

    assert first.idempotency_key == requests[0].with_namespace("sync-ns").idempotency_key
    assert again.idempotency_key == requests[1].idempotency_key
    assert isinstance(again.unwrap(), Run)
    assert (first.unwrap().reused, again.unwrap().reused) == (False, True)
    assert again.unwrap().id == first.unwrap().id


def test_errors_are_lume_async_classes(lume: Lume) -> None:
    with pytest.raises(lume_async.RunNotFoundError) as caught:
        lume.run_status(UNKNOWN_RUN)

    assert lume_sync.RunNotFoundError is lume_async.RunNotFoundError
    assert isinstance(caught.value, lume_sync.NotFoundError)


def test_a_failed_run_error_carries_the_sync_run(lume: Lume) -> None:
    with pytest.raises(lume_async.RunFailedError) as caught:
        lume.process(FLOW, synthetic("fails", outcome="FAILED"), poll_interval=0.05)

    assert isinstance(caught.value.run, Run)


def test_raise_for_status_hands_back_the_sync_run(lume: Lume) -> None:
    run = lume.run(FLOW, synthetic("crashes", outcome="CRASHED")).wait(poll_interval=0.05)
    with pytest.raises(lume_async.RunFailedError) as caught:
        run.raise_for_status()

    assert isinstance(caught.value.run, Run)
    assert caught.value.run == run


def test_use_after_close_raises_sync_facade_error(emu: Emulator) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    run = lume.run(FLOW, synthetic("closed"))
    results = run.results()
    lume.close()

    with pytest.raises(lume_async.SyncFacadeError):
        lume.run_status(run.id)
    with pytest.raises(lume_async.SyncFacadeError):
        run.refresh()
    with pytest.raises(lume_async.SyncFacadeError):
        next(iter(results))
    lume.close()  # closing twice is fine


def test_a_client_whose_loop_was_shut_down_raises_sync_facade_error(emu: Emulator) -> None:
    lume = Lume(api_key=emu.api_key, base_url=emu.url)
    lume.flows.get("customer_cleaner")
    _loop.shutdown()

    with pytest.raises(lume_async.SyncFacadeError, match="shut down"):
        lume.flows.get("customer_cleaner")
    lume.close()


def test_a_view_shares_the_client_and_its_closing(lume: Lume) -> None:
    view = lume.with_options(timeout=5)

    assert isinstance(view, Lume)
    assert view.timeout.total == 5
    assert view.flows.list().collect() != []
    view.close()
    with pytest.raises(lume_async.SyncFacadeError):
        lume.flows.get("customer_cleaner")


def test_a_call_inside_asyncio_run_works(lume: Lume) -> None:
    async def main() -> str:
        return lume.flows.get("customer_cleaner").name

    assert asyncio.run(main()) == "customer_cleaner"


def test_a_forked_child_uses_its_own_loop_and_connection(emu: Emulator) -> None:
    done = run_script(
        """
        import os, warnings
        from lume_sync import Lume, _loop

        warnings.filterwarnings("ignore", r".*multi-threaded.*fork", DeprecationWarning)
        lume = Lume(api_key=os.environ["EMU_KEY"], base_url=os.environ["EMU_URL"])
        lume.flows.get("customer_cleaner")
        parent_loop, parent_session = _loop.get_loop(), lume._async._core.transport.session
        pid = os.fork()
        if pid == 0:
            try:
                assert lume.flows.get("customer_cleaner").name == "customer_cleaner"
                assert _loop.get_loop() is not parent_loop
                assert lume._async._core.transport.session is not parent_session
                lume.close()
            except BaseException:
                import traceback; traceback.print_exc()
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert lume.flows.get("customer_cleaner").name == "customer_cleaner"
        assert lume._async._core.transport.session is parent_session
        lume.close()
        print("ok")
        """,
        emu,
    )

    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


def test_a_client_never_closed_is_closed_at_exit_without_warnings(emu: Emulator) -> None:
    done = run_script(
        """
        import os
        from lume_sync import Lume

        lume = Lume(api_key=os.environ["EMU_KEY"], base_url=os.environ["EMU_URL"])
        run = lume.run("customer_cleaner:v1", "synthetic://exit?rows=30&duration=1")
        results = iter(run.wait(poll_interval=0.05).results(page_size=10))
        next(results)  # an iteration left open, too
        """,
        emu,
    )

    assert (done.returncode, done.stderr) == (0, "")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_two_hundred_dropped_clients_leak_no_threads_or_sockets(emu: Emulator) -> None:
    warm = Lume(api_key=emu.api_key, base_url=emu.url)  # start the loop and its executor
    warm.flows.get("customer_cleaner")
    del warm
    gc.collect()
    time.sleep(0.2)
    threads, fds = threading.active_count(), _open_fds()

    # A thread or socket kept per dropped client adds one per client: 200 clients show it as
    # plainly as a thousand (any growth fails).
    for _ in range(200):
        lume = Lume(api_key=emu.api_key, base_url=emu.url)
        lume.flows.get("customer_cleaner")
        del lume
    gc.collect()
    deadline = time.monotonic() + 10
    while _open_fds() > fds and time.monotonic() < deadline:
        time.sleep(0.05)

    assert threads == threading.active_count()
    assert fds >= _open_fds()
