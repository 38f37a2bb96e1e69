"""Uses lume_sync, forks, uses it in the child, and uses it again in the parent."""

from __future__ import annotations

import gc
import os
import sys
import threading
import traceback
import warnings

from lume_async._exceptions import SyncFacadeError
from lume_sync import _loop
from tests.sync._support import Client, Server

# Python 3.12+ warns when a process with threads forks; forking is what is being tested.
warnings.filterwarnings("ignore", r".*multi-threaded.*fork", DeprecationWarning)


def _loop_thread_ident() -> int | None:
    async def ident() -> int:
        return threading.get_native_id()

    return _loop.run(ident())


def child(parent_client: Client, parent_loop_thread: int | None) -> None:
    try:
        parent_client.get()
    except SyncFacadeError:
        pass
    else:
        raise AssertionError("a client from before fork() worked in the child")
    assert _loop_thread_ident() != parent_loop_thread
    own = Client(parent_client.url)  # a new session on the child's own loop
    own.get()
    own.close()
    del parent_client  # dropping the parent's client here must not close its connection
    gc.collect()
    print("child ok", flush=True)


def main(mode: str) -> None:
    server = Server()
    client = Client(server.url)
    port = client.get()
    parent_loop_thread = _loop_thread_ident()
    holder = None
    if mode == "lock_held":  # another thread holds the loop-start lock while we fork
        locked, release = threading.Event(), threading.Event()

        def hold() -> None:
            with _loop._start_lock:
                locked.set()
                release.wait(5)

        holder = threading.Thread(target=hold)
        holder.start()
        locked.wait(5)
    pid = os.fork()
    if pid == 0:
        try:
            child(client, parent_loop_thread)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        sys.exit(0)  # a normal exit: atexit and finalization run in the child
    if holder is not None:
        release.set()
        holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert _loop_thread_ident() == parent_loop_thread
    assert client.get() == port, "the parent's pooled connection did not survive the child"
    client.close()
    server.close()
    print("parent ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
