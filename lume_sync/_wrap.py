"""What the generated sync classes share: a ``Bridge`` per client, base classes, wrapping helpers.

Every object of one ``Lume`` client (the client, its ``with_options()`` views, ``runs``, ``flows``,
each ``Run`` and ``Paginator``) holds the same ``Bridge``. The bridge owns the client's place on
the private loop: its ``AsyncLume`` is closed when ``close()`` is called, or once the last object
holding the bridge is garbage-collected. Calls after ``close()`` raise ``SyncFacadeError``; in a
forked child the bridge moves the client onto the child's own loop on its first call. A daemon
thread calling as the program ends waits for the process to end (``_loop.park_if_exiting``).

Every twin derives from ``Twin`` (``Container`` for a generic one, which also wraps its items):
it holds the async object and the bridge. The helpers turn values that hold ``lume_async`` handles
into values that hold their sync twins; each takes the twin's constructor (``Run``, called as
``Run(bridge, async_run)``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import (
    Any,
    Generic,
    NoReturn,
    ParamSpec,
    Self,
    SupportsIndex,
    TypeVar,
    cast,
    final,
    overload,
)

import attrs

from lume_async import BatchOutcome, Page, ProcessResult, RunError, SyncFacadeError
from lume_async._run import AsyncRun

from . import _loop
from ._call import discard

__all__ = [
    "Bridge",
    "Container",
    "Twin",
    "each",
    "items",
    "outcomes",
    "pages",
    "process_result",
    "same",
    "twin_repr",
    "unwrap_each",
]

A = TypeVar("A")
S = TypeVar("S")
T = TypeVar("T")
P = ParamSpec("P")

Wrap = Callable[["Bridge", A], S]


@final
class Bridge:
    """One client's link to the private loop, shared by every sync object made from it."""

    __slots__ = ("__weakref__", "_aclose", "_closed", "_handle", "_pid")

    def __init__(self, aclose: Callable[[], Awaitable[object]]) -> None:
        # ``aclose`` must not refer to the bridge's holders, or they would never be collected.
        self._aclose = aclose
        self._closed = False
        self._pid = os.getpid()
        try:
            self._handle = _loop.register_resource(self, aclose)
        except SyncFacadeError:
            _loop.park_if_exiting()
            raise

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def run(self, coro: Coroutine[Any, Any, T] | Callable[[], Awaitable[T]]) -> T:
        """Run ``coro`` on the private loop and return its result. The facade gives a function
        that makes it: a Ctrl-C anywhere then leaves no coroutine never awaited behind."""
        try:
            handle = self._live()
        except BaseException:
            discard(coro)
            raise
        try:
            return handle.run(coro)
        except RunError as exc:
            _rewrap_run(self, exc)
            raise
        except SyncFacadeError:
            _loop.park_if_exiting()
            raise

    def local(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call a plain (non-async) method of the async object, with the same error rewrap."""
        try:
            return fn(*args, **kwargs)
        except RunError as exc:
            _rewrap_run(self, exc)
            raise

    @overload
    def iterate(self, aiterator: AsyncIterator[A]) -> Generator[A, None, None]: ...
    @overload
    def iterate(
        self, aiterator: AsyncIterator[A], wrap: Wrap[A, S]
    ) -> Generator[S, None, None]: ...
    def iterate(
        self, aiterator: AsyncIterator[Any], wrap: Wrap[Any, Any] | None = None
    ) -> Generator[Any, None, None]:
        """Iterate ``aiterator`` on the private loop; closing the iterator closes it there."""
        items = _loop.iterate(aiterator)
        try:
            while True:
                self._live()  # at every step: a client closed (or forked) since is refused
                try:
                    item = next(items)
                except StopIteration:
                    return
                except SyncFacadeError:
                    _loop.park_if_exiting()
                    raise
                yield item if wrap is None else wrap(self, item)
        except RunError as exc:
            _rewrap_run(self, exc)
            raise
        finally:
            items.close()

    def close(self) -> None:
        """Close the client's ``AsyncLume`` on the loop; later calls do nothing."""
        self._handle.refuse_here()  # refused on the loop thread: nothing changes
        self._closed = True
        try:
            self._handle.close()
        except SyncFacadeError:
            _loop.park_if_exiting()
            raise

    def _live(self) -> _loop.ResourceHandle:
        try:
            if self._closed:
                raise SyncFacadeError("this lume_sync client is closed")
            if self._pid != os.getpid():
                self._adopt()
            if self._handle.closed:  # the loop was shut down under the client
                raise SyncFacadeError("lume_sync's event loop was shut down; create a new client")
        except SyncFacadeError:
            _loop.park_if_exiting()  # outside _adopt's lock
            raise
        return self._handle

    def _adopt(self) -> None:
        # In a forked child: the parent's loop is not ours. The AsyncLume leaves the parent's
        # connections alone and opens its own on the child's loop, where it is registered now.
        with _adopt_lock:
            if self._pid != os.getpid():
                self._handle = _loop.register_resource(self, self._aclose)
                self._pid = os.getpid()


#: Serialises adoption by a forked child's threads; replaced in the child, where the parent's
#: copy may have been inherited locked.
_adopt_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _adopt_lock
    _adopt_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def same(bridge: Bridge, value: A) -> A:
    """The wrapper for values that need none."""
    return value


class Twin(Generic[A]):
    """The base of the generated twins: the async object wrapped and the bridge its calls take."""

    __slots__ = ("_async", "_bridge")

    def __init__(self, bridge: Bridge, wrapped: A) -> None:
        self._bind(bridge, wrapped)

    def _bind(self, bridge: Bridge, wrapped: A) -> None:
        self._bridge = bridge
        self._async = wrapped

    @classmethod
    def _view(cls, bridge: Bridge, wrapped: A) -> Self:
        """A twin of ``wrapped``, made without the constructor (the client's is for users)."""
        view = cls.__new__(cls)
        view._bind(bridge, wrapped)
        return view

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        refuse_pickling(self, protocol)

    def _same(self, wrapped: A) -> Self:
        """This twin if ``wrapped`` is its own async object (a method returned self), else a new."""
        return self if wrapped is self._async else self._view(self._bridge, wrapped)


class Container(Twin[A], Generic[A, T]):
    """A twin of a generic async container (a paginator), which wraps the items it hands out."""

    __slots__ = ("_item",)

    def __init__(self, bridge: Bridge, wrapped: A, item: Wrap[Any, T] = same) -> None:
        super().__init__(bridge, wrapped)
        self._item = item


def each(bridge: Bridge, wrap: Wrap[A, S], items: Iterable[A]) -> list[S]:
    """``[wrap(bridge, item) for item in items]``."""
    return [wrap(bridge, item) for item in items]


def unwrap_each(items: Any) -> Any:
    """The async objects of the twins in ``items``, for a call that takes several handles.

    Anything else is passed on as it is, so that lume_async's own checks name the argument and
    the wrong type (a single string, a run id instead of a handle).
    """
    if isinstance(items, str | bytes | bytearray | Mapping) or not isinstance(items, Iterable):
        return items
    return [item._async if isinstance(item, Twin) else item for item in items]


def outcomes(
    bridge: Bridge, wrap: Wrap[A, S], items: Iterable[BatchOutcome[A]]
) -> list[BatchOutcome[S]]:
    """Batch outcomes with each successful value wrapped."""
    return [
        BatchOutcome.success(o.index, wrap(bridge, o.unwrap()), idempotency_key=o.idempotency_key)
        if o.ok
        else BatchOutcome.failure(
            o.index, cast(BaseException, o.error), idempotency_key=o.idempotency_key
        )
        for o in items
    ]


def process_result(bridge: Bridge, wrap: Wrap[A, S], result: ProcessResult[A]) -> ProcessResult[S]:
    """A ``ProcessResult`` whose run is wrapped."""
    return ProcessResult(run=wrap(bridge, result.run), rows=result.rows, rejects=result.rejects)


def pages(bridge: Bridge, wrap: Wrap[A, S], aiterator: AsyncIterator[Page[A]]) -> Iterator[Page[S]]:
    """Iterate pages on the private loop, wrapping the items of each."""
    inner = bridge.iterate(aiterator)
    try:
        for page in inner:
            if wrap is same:
                yield cast("Page[S]", page)
            else:
                items = tuple(wrap(bridge, item) for item in page.items)
                yield cast("Page[S]", attrs.evolve(cast("Page[Any]", page), items=items))
    finally:
        inner.close()


def items(bridge: Bridge, wrap: Wrap[A, S], aiterator: AsyncIterator[Page[A]]) -> Iterator[S]:
    """Every item of every page, wrapped: one trip to the private loop per page, none per item.

    A trip costs two thread wake-ups, which for a row is many times the cost of the row itself.
    Closing the iterator (``break`` included) closes the pages on the loop, as ``pages()`` does.
    """
    inner = bridge.iterate(aiterator)
    try:
        for page in inner:
            if wrap is same:
                yield from cast("tuple[S, ...]", page.items)
            else:
                for item in page.items:
                    yield wrap(bridge, item)
    finally:
        inner.close()


def twin_repr(wrapped: object) -> str:
    """The wrapped object's repr, named as its twin: ``<AsyncRun ...>`` reads ``<Run ...>``."""
    text = repr(wrapped)
    return "<" + text[len("<Async") :] if text.startswith("<Async") else text


def refuse_pickling(twin: Twin[Any], protocol: SupportsIndex) -> NoReturn:
    """Refuse to pickle ``twin`` as its async object does, in the twin's name."""
    try:
        twin._async.__reduce_ex__(protocol)
    except TypeError as exc:
        raise TypeError(str(exc).removeprefix("Async")) from None
    raise TypeError(f"{type(twin).__name__} objects cannot be pickled")


def _rewrap_run(bridge: Bridge, exc: RunError) -> None:
    # RunFailedError / RunTimeoutError carry the run they are about: hand the sync caller a Run.
    run = getattr(exc, "run", None)
    if isinstance(run, AsyncRun):
        from ._run import Run  # the generated module imports this one

        exc.run = Run(bridge, run)  # type: ignore[attr-defined]
