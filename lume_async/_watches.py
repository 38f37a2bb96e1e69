"""``Watches``: who waits on which run, for the poller to sweep and to wake.

A ``Watch`` is one caller's interest in some runs (one ``wait()``, one ``as_completed()``): the
state cell of each run, what to hand back as each one ends, and its poll interval. Registering
and finishing a watch is O(its runs); an answer about a run reaches exactly its watchers.

Memory is per watched run: a run nearly always has one watcher and one target, so those are kept
as themselves, and only a second one makes a set or a list (a fan-out of a million runs would
otherwise hold two million small containers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from ._batch_get import not_a_run
from ._exceptions import ResponseValidationError, RunNotFoundError

if TYPE_CHECKING:
    from ._batch_get import RunsAnswer
    from ._runs_core import RunCell
    from .models import RunData

#: A direct GET of one run: its state, or None when the service says 404.
FetchOne = Callable[[str], Awaitable["RunData | None"]]
#: Direct GETs in flight at once when confirming runs an answer left out.
_CONFIRMING: Final = 8

__all__ = ["CellOf", "Failed", "Watch", "Watches"]

CellOf = Callable[[Any], "RunCell"]
"""How a watch finds the state cell of one of its targets (what it hands back: a handle)."""

# Completion events remembered for runs nobody waits on yet (the event can beat the wait() call).
_RECENT_EVENTS: Final = 10_000


class Failed:
    """A watch's error as it came, to raise with the traceback it had then (as a future raises
    its exception): one error fails every watch of a run, and raised as it is by each of them, it
    would gather every waiter's frames into its traceback, and keep them all alive."""

    __slots__ = ("error", "traceback")

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.traceback = error.__traceback__

    @classmethod
    def queued(cls, queue: asyncio.Queue[Any]) -> Callable[[BaseException], None]:
        """An ``on_error`` that puts the error into ``queue``, as it came."""
        return lambda error: queue.put_nowait(cls(error))


class _Several(list[Any]):
    """The targets of a run the caller named more than once (a target is never one of these)."""

    __slots__ = ()


class Watch:
    """One caller's interest in some runs, and what to do as each one ends.

    ``targets``: by run id, the target (what to hand back as the run ends: its handle), or
    several if the caller named a run twice. ``cell_of(target)`` is the run's state cell: a
    target is kept as itself, not paired with its cell, as a fan-out keeps one per run.
    """

    __slots__ = ("cell_of", "interval", "on_done", "on_error", "remaining", "targets")

    def __init__(
        self,
        targets: dict[str, Any],
        cell_of: CellOf,
        interval: float,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.targets = targets
        self.cell_of = cell_of
        self.interval = interval
        self.on_done = on_done
        self.on_error = on_error
        self.remaining = len(targets)

    def targets_of(self, run_id: str) -> Iterable[Any]:
        found = self.targets.get(run_id, _NONE)
        return found if found.__class__ is _Several else (found,)

    def cells_of(self, run_id: str) -> Iterable[RunCell]:
        return map(self.cell_of, self.targets_of(run_id))


_NONE: Final = _Several()


def _each(watchers: Watch | set[Watch]) -> Iterable[Watch]:
    return (watchers,) if isinstance(watchers, Watch) else watchers


class Watches:
    """The registry of live watches: by run id, by poll interval, and runs to fetch at once.

    ``on_idle`` is called when the last live watch ends, so the poller can stop at once.
    """

    def __init__(self, on_idle: Callable[[], None]) -> None:
        self._on_idle = on_idle
        self._by_run: dict[str, Watch | set[Watch]] = {}  # a set once a run has two watchers
        self._live: set[Watch] = set()
        self._intervals: dict[float, int] = {}  # poll_interval -> how many live watches ask it
        self._hot: set[str] = set()  # runs to fetch now (a completion event named them)
        self._recent: dict[str, None] = {}  # completion events for runs not watched (yet)
        self.confirmed = 0  # direct GETs sent to confirm runs an answer left out

    def __bool__(self) -> bool:
        """True while anybody waits."""
        return bool(self._live)

    def run_ids(self) -> list[str]:
        """Every watched run, once."""
        return list(self._by_run)

    def watched(self, run_id: str) -> bool:
        return run_id in self._by_run

    def fastest(self, default: float) -> float:
        """The smallest poll interval any live watch asks for."""
        return min(self._intervals, default=default)

    # -- registering ---------------------------------------------------------------------------
    def add(
        self,
        targets: Sequence[Any],
        cell_of: CellOf,
        interval: float,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> Watch:
        by_id: dict[str, Any] = {}
        for target in targets:
            run_id = cell_of(target).data.id
            known = by_id.get(run_id, _NONE)
            if known is _NONE:
                by_id[run_id] = target
            elif known.__class__ is _Several:  # named again: once per naming, the same target too
                known.append(target)
            else:
                by_id[run_id] = _Several((known, target))
        watch = Watch(by_id, cell_of, interval, on_done, on_error)
        self._live.add(watch)
        self._intervals[interval] = self._intervals.get(interval, 0) + 1
        by_run = self._by_run
        for run_id in by_id:
            other = by_run.setdefault(run_id, watch)
            if other is not watch:
                if isinstance(other, Watch):
                    by_run[run_id] = {other, watch}
                else:
                    other.add(watch)
            if run_id in self._recent:
                del self._recent[run_id]
                self._hot.add(run_id)
        return watch

    def remove(self, watch: Watch) -> None:
        """Forget a watch (finished, failed, timed out or cancelled); idempotent."""
        self._detach(watch)
        by_run = self._by_run
        for run_id in watch.targets:
            watchers = by_run.get(run_id)
            if watchers is None:
                continue
            if watchers is watch:
                del by_run[run_id]
                self._hot.discard(run_id)
            elif isinstance(watchers, set):
                watchers.discard(watch)
                if len(watchers) == 1:
                    by_run[run_id] = next(iter(watchers))

    def _detach(self, watch: Watch) -> None:
        """Stop counting a watch among the live ones (its runs may still be registered)."""
        if watch not in self._live:
            return
        self._live.discard(watch)
        left = self._intervals[watch.interval] - 1
        if left:
            self._intervals[watch.interval] = left
        else:
            del self._intervals[watch.interval]
        if not self._live:
            self._on_idle()

    def clear(self) -> None:
        """Forget everything (the loop the watches lived on is gone)."""
        self._by_run.clear()
        self._live.clear()
        self._intervals.clear()
        self._hot.clear()

    # -- completion events ---------------------------------------------------------------------
    def push(self, run_id: str) -> bool:
        """A completion event for ``run_id``: True if somebody waits on it (fetch it now)."""
        if run_id in self._by_run:
            self._hot.add(run_id)
            return True
        # Nobody waits on it yet: remember, so a wait() that comes late fetches it at once.
        self._recent[run_id] = None
        if len(self._recent) > _RECENT_EVENTS:
            del self._recent[next(iter(self._recent))]
        return False

    @property
    def has_hot(self) -> bool:
        return bool(self._hot)

    def take_hot(self) -> list[str]:
        """The watched runs that completion events named, to fetch before anything else."""
        hot = [run_id for run_id in self._hot if run_id in self._by_run]
        self._hot.clear()
        return hot

    def make_hot(self, run_ids: Sequence[str]) -> None:
        """Fetch these again first thing (their request failed)."""
        self._hot.update(run_id for run_id in run_ids if run_id in self._by_run)

    # -- answers -------------------------------------------------------------------------------
    def known(self, run_ids: Sequence[str]) -> dict[str, datetime]:
        """The ``updated_at`` held of each of ``run_ids`` that every watched cell of it shares:
        what the service need not send again (``batch-get``'s ``known``)."""
        known: dict[str, datetime] = {}
        by_run = self._by_run
        for run_id in run_ids:
            watchers = by_run.get(run_id)
            if watchers is None:
                continue
            if watchers.__class__ is Watch:  # the usual case: one watcher, one handle
                target = watchers.targets[run_id]
                if target.__class__ is not _Several:
                    known[run_id] = watchers.cell_of(target).data.updated_at
                    continue
            cells = (cell for watch in _each(watchers) for cell in watch.cells_of(run_id))
            held = {cell.data.updated_at for cell in cells}
            if len(held) == 1:
                known[run_id] = held.pop()
        return known

    def take(self, run_ids: Sequence[str], answer: RunsAnswer, missing: list[str]) -> bool:
        """``update`` from one ``batch-get`` answer about ``run_ids``; True if any run moved.

        The ids the answer neither sent nor said were unchanged go to ``missing``.
        """
        changed = False
        (items, unchanged), decode, by_run = answer.read(), answer.decode, self._by_run
        for run_id in run_ids:
            # Taken out as it is applied: the parsed runs not yet applied are all that a cyclic
            # collection in the middle finds alive, and promotes to be walked with every run.
            item = items.pop(run_id, None)
            if item is None:
                if run_id not in unchanged:
                    missing.append(run_id)
                continue
            try:
                # The usual case inline (one watcher, one handle): ``update`` in short.
                watchers = by_run.get(run_id)
                if watchers.__class__ is Watch:
                    target = watchers.targets[run_id]
                    if target.__class__ is not _Several:
                        cell = watchers.cell_of(target)
                        if not cell.holds(item) and self.apply(decode(cell.share_strings(item))):
                            changed = True
                        continue
                if self.update(run_id, item, decode):
                    changed = True
            except ResponseValidationError as exc:  # this run's item only: its waiters hear it
                self.fail_run(run_id, exc)
        return changed

    def update(
        self, run_id: str, item: dict[str, Any], decode: Callable[[dict[str, Any]], RunData]
    ) -> bool:
        """``apply`` a poll's parsed ``item`` about ``run_id``, decoding it only if it is news.

        An item every watched cell of the run already holds (same status and ``updated_at``)
        costs a dict lookup and a comparison: no typed run is built. A run that is decoded
        shares the strings its cell already holds. True if the status moved.
        """
        watchers = self._by_run.get(run_id)
        if watchers is None:
            return False
        if isinstance(watchers, Watch) and watchers.targets[run_id].__class__ is not _Several:
            cell = watchers.cell_of(watchers.targets[run_id])  # the usual case: one handle
            if cell.holds(item):
                return False
        else:
            cells = [cell for watch in _each(watchers) for cell in watch.cells_of(run_id)]
            if all(cell.holds(item) for cell in cells):
                return False
            cell = cells[0]
        return self.apply(decode(cell.share_strings(item)))

    def apply(self, data: RunData) -> bool:
        """Bring the cells watched for this run up to date; True if its status moved.

        A terminal run ends its watchers' interest in it: each is told, and is done once all
        of its runs are.
        """
        watchers = self._by_run.get(data.id)
        if watchers is None:
            return False
        if (
            watchers.__class__ is Watch
            and (one := watchers.targets[data.id]).__class__ is not _Several
        ):
            moved = watchers.cell_of(one).apply(data)  # the usual case: one watcher, one handle
        else:
            moved = False
            for watch in _each(watchers):
                for cell in watch.cells_of(data.id):
                    moved |= cell.apply(data)
        if not data.status.is_terminal:
            return moved
        del self._by_run[data.id]
        self._hot.discard(data.id)
        for watch in list(_each(watchers)):
            watch.remaining -= 1
            if watch.remaining <= 0:
                self._detach(watch)
            for target in watch.targets_of(data.id):
                watch.on_done(target)
        return True

    async def settle_missing(self, run_ids: list[str], confirm: FetchOne | None) -> bool:
        """Runs a ``batch-get`` answer left out: gone only if a direct GET says 404 too.

        One lagging replica behind a batch answer must not fail a wait; a run the direct GET
        finds is applied like any answer. True if any of them moved (``confirmed`` counts the
        GETs).
        """
        if confirm is None:
            for run_id in run_ids:
                self.fail_run(run_id)
            return False
        changed = False
        for start in range(0, len(run_ids), _CONFIRMING):
            group = [r for r in run_ids[start : start + _CONFIRMING] if self.watched(r)]
            self.confirmed += len(group)
            answers = await asyncio.gather(*(confirm(r) for r in group), return_exceptions=True)
            error: BaseException | None = None
            for run_id, answer in zip(group, answers, strict=True):
                if isinstance(answer, ResponseValidationError):  # of this run: its waiters'
                    self.fail_run(run_id, answer)
                elif isinstance(answer, BaseException):
                    error = error or answer
                elif answer is None:
                    self.fail_run(run_id)
                elif self.apply(answer):
                    changed = True
            if error is not None:
                raise error
        return changed

    def fail_run(self, run_id: str, error: BaseException | None = None) -> None:
        """This run's watchers fail with ``error``; by default, RunNotFoundError: the service
        no longer knows the run. The other runs' watchers go on."""
        watchers = self._by_run.pop(run_id, None)
        if watchers is None:
            return
        self._hot.discard(run_id)
        if error is None:
            error = RunNotFoundError(
                f"run {run_id} is no longer visible to this API key",
                status_code=404,
                code="not_found",
            )
        elif isinstance(error, ResponseValidationError):
            not_a_run(error, run_id)
        for watch in list(_each(watchers)):
            self.remove(watch)
            watch.on_error(error)

    def fail_all(self, exc: BaseException) -> None:
        """Every live watch fails with ``exc``."""
        for watch in list(self._live):
            self.remove(watch)
            watch.on_error(exc)
