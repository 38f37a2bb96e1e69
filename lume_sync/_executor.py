"""The private loop's default executor, which the interpreter's exit does not stop."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["DaemonExecutor"]

T = TypeVar("T")
P = ParamSpec("P")


class DaemonExecutor(ThreadPoolExecutor):
    """The private loop's default executor: daemon threads that only the loop's teardown stops.

    ``concurrent.futures`` stops every ``ThreadPoolExecutor`` as the main thread ends, before the
    threads still running are joined; a thread calling lume_sync after that could not resolve a
    host name any more (asyncio's loop does that on its default executor). A subclass only
    because asyncio takes no other kind; it shares nothing with ``ThreadPoolExecutor``'s own
    machinery.
    """

    def __init__(self, name: str, max_workers: int | None = None) -> None:
        # No super().__init__(): none of that machinery.
        self._name = name
        self._max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._workers: list[threading.Thread] = []
        self._idle = 0
        self._guard = threading.Lock()
        self._stopped = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._guard:
            if self._stopped:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._jobs.put((future, functools.partial(fn, *args, **kwargs)))
            if self._idle:
                self._idle -= 1
            elif len(self._workers) < self._max_workers:
                worker = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._workers)}", daemon=True
                )
                worker.start()
                self._workers.append(worker)
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn = job
            del job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
                else:
                    future.set_result(result)
                    del result
            del future, fn
            with self._guard:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._guard:
            self._stopped = True
            workers = list(self._workers)
            if cancel_futures:
                with contextlib.suppress(queue.Empty):
                    while True:
                        job = self._jobs.get_nowait()
                        if job is not None:
                            job[0].cancel()
            for _ in workers:
                self._jobs.put(None)
        if wait:
            for worker in workers:
                if worker is not threading.current_thread():
                    worker.join()
