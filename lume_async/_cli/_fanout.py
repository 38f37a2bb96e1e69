"""``lume runs create --from-file``: one run per source path, created with bounded concurrency.

``runs.create_many(..., idempotency_namespace=...)`` derives each create's idempotency key from
the namespace and the request, so running the same command again within the service's 24 h
idempotency window finds the runs the first one made instead of starting them twice, even when
the first was interrupted half-way. The namespace is derived from the file's paths, the
options and the API key unless given.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import attrs
import click
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import _converter
from .._batch import ProgressCallback, requests_of
from .._batch_create import Created, create_in_batches
from .._client import AsyncLume
from .._exceptions import DuplicateRunError
from .._run import AsyncRun
from .._validation import check_idempotency_namespace
from ..models import BatchOutcome
from ._escape import plain, visible_json
from ._exit import CommandError, ExitStatus, error_details, runs_outcome
from ._output import ORDER, err, out, status_text
from ._settings import Settings
from ._streams import note
from ._wait import wait_for

__all__ = ["create_from_file", "default_namespace", "read_paths"]

_SHOWN_FAILURES = 10
_LINE_END = re.compile(r"\r\n|\r|\n")


def read_paths(text: str) -> list[str]:
    """Source paths, one a line; blank lines and lines starting with ``#`` are skipped.

    Lines end at a line feed, a carriage return or both, and nowhere else: a path may hold any
    other character ``str.splitlines`` would break it at (U+2028, U+0085, a form feed).
    """
    lines = (line.strip() for line in _LINE_END.split(text))
    return [line for line in lines if line and not line.startswith("#")]


def default_namespace(
    flow_version: str, paths: list[str], options: dict[str, Any], *, api_key: str
) -> str:
    """Stable for the same file, options and API key: running the command again reuses its keys.

    Keys are the tenant's, and another principal's request with the same key is refused (422
    ``idempotency_key_reused``); the API key is in the digest so that a colleague running the
    same command gets runs (or the duplicate answers) of their own, not that refusal.
    """
    key = hashlib.sha256(api_key.encode()).hexdigest()
    digest = hashlib.sha256(
        orjson.dumps([flow_version, paths, options, key], option=orjson.OPT_SORT_KEYS)
    )
    return f"lume-cli-{digest.hexdigest()[:24]}"


@attrs.define
class _Item:
    source_path: str
    key: str | None = None
    run: AsyncRun | None = None
    duplicate: DuplicateRunError | None = None  # the pair was processed (or is in flight)
    error: BaseException | None = None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"source_path": self.source_path, "idempotency_key": self.key}
        if self.run is not None:
            found["run"] = _converter.unstructure(self.run.data)
        elif self.duplicate is not None:
            # None when the run is one this key may not read: the service does not name it.
            found["existing_run_id"] = self.duplicate.existing_run_id
            found["duplicate"] = self.duplicate.message
        if self.error is not None:
            found["error"] = error_details(self.error)
        return found


def create_from_file(
    settings: Settings,
    flow_version: str,
    text: str,
    *,
    concurrency: int,
    namespace: str | None,
    label: str | None,
    tags: tuple[str, ...],
    force_rerun: bool,
    permissions: dict[str, Any],
    wait: bool,
    timeout: float,
    poll_interval: float,
    fail_on_partial: bool,
) -> None:
    """Create (and with ``wait``, wait for) one run per path of ``text``; report; exit."""
    paths = read_paths(text)
    if not paths:
        raise click.UsageError("--from-file holds no source paths")
    options = {"label": label, "tags": list(tags), "force_rerun": force_rerun, **permissions}
    space = namespace or default_namespace(
        flow_version, paths, options, api_key=settings.api_key or ""
    )
    items = [_Item(path) for path in paths]
    requests: list[dict[str, Any]] = [
        {"flow_version": flow_version, "source_path": item.source_path} for item in items
    ]
    for request in requests:
        request.update(options)
    settings.on_interrupt = (
        "runs created so far go on; the same command again finds them and starts the rest"
    )
    live = err.is_terminal and not settings.json
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not live,
    )

    async def call(lume: AsyncLume) -> None:
        task = progress.add_task("creating runs", total=len(items))

        def created(done: int, total: int, failed: int) -> None:
            progress.update(task, completed=done, description=f"creating runs ({failed} failed)")

        with progress if live else contextlib.nullcontext():  # disabled, rich 13 still ends a line
            outcomes = await _create_watched(lume, requests, space, concurrency, created, settings)
        for item, outcome in zip(items, outcomes, strict=True):
            item.key = outcome.idempotency_key
            if outcome.ok:
                item.run = outcome.value
            elif isinstance(outcome.error, DuplicateRunError):
                item.duplicate = outcome.error
            else:
                item.error = outcome.error
        handles = [item.run for item in items if item.run is not None]  # twins: a handle each
        if not settings.json:
            note(_created_line(items))
        if wait and handles:
            await wait_for(lume, handles, settings, timeout=timeout, poll_interval=poll_interval)

    settings.run(call)
    settings.outcome = ended = _outcome(items, waited=wait, fail_on_partial=fail_on_partial)
    if settings.json:
        dumped = orjson.dumps([item.to_json() for item in items], option=orjson.OPT_INDENT_2)
        click.echo(visible_json(dumped.decode()))
    else:
        _summary(items, namespace=space, waited=wait)
    if ended is not None:
        raise ended


async def _create_watched(
    lume: AsyncLume,
    requests: list[dict[str, Any]],
    namespace: str,
    concurrency: int,
    on_progress: ProgressCallback,
    settings: Settings,
) -> list[BatchOutcome[AsyncRun]]:
    """``lume.runs.create_many(requests, idempotency_namespace=namespace, ...)``, each run
    watched as soon as its answer is read: Ctrl-C while other creates are still on their way
    names the runs already made, with the command that cancels them."""
    check_idempotency_namespace(namespace)
    runs = lume.runs

    def wrap(created: Created) -> AsyncRun:
        run = runs._created(created)
        settings.watch([run])
        return run

    prepared = requests_of(requests, namespace)
    batch, alone = runs._core.create_batch, runs._core.create
    return await create_in_batches(prepared, batch, alone, wrap, concurrency, on_progress)


def _runs(items: Iterable[_Item]) -> list[AsyncRun]:
    """The runs of ``items``, each once: a path given twice shares its key, and so its run."""
    return list({item.run.id: item.run for item in items if item.run is not None}.values())


def _once(items: list[_Item]) -> list[_Item]:
    """``items`` without those that repeat a source path given before: a path given twice
    shares its key, and so its outcome, with its first."""
    first: dict[str, _Item] = {}
    for item in items:
        first.setdefault(item.source_path, item)
    return list(first.values())


def _repeated(items: list[_Item]) -> int:
    """How many of ``items`` repeat a source path given before."""
    return len(items) - len(_once(items))


_UNNAMED = "processed or in flight in runs you may not read"


def _duplicates(items: list[_Item]) -> tuple[int, int]:
    """Paths refused as already processed: by a run the key may read (named), and by one it
    may not (the service does not say which run, nor whether it ended)."""
    refused = [item.duplicate for item in _once(items) if item.duplicate is not None]
    named = sum(error.existing_run_id is not None for error in refused)
    return named, len(refused) - named


def _created_line(items: list[_Item]) -> str:
    made = len(_runs(items))
    done_before, unnamed = _duplicates(items)
    failed = sum(item.error is not None for item in _once(items))
    parts = [f"{made:,} runs created or found in flight"]
    if repeated := _repeated(items):
        parts.append(f"{repeated:,} source paths given again (counted once)")
    if done_before:
        parts.append(f"{done_before:,} already succeeded before")
    if unnamed:
        parts.append(f"{unnamed:,} {_UNNAMED}")
    if failed:
        parts.append(f"{failed:,} could not be created")
    return "; ".join(parts)


def _summary(items: list[_Item], *, namespace: str, waited: bool) -> None:
    grid = Table(show_header=False, box=None, title_justify="left")
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(justify="right")
    grid.add_row("source paths", f"{len(items):,}")
    if repeated := _repeated(items):
        grid.add_row("given again (counted once)", f"{repeated:,}")
    if waited:
        statuses = Counter(run.status.value for run in _runs(items))
        for status in sorted(statuses, key=lambda v: ORDER.index(v) if v in ORDER else 99):
            grid.add_row(status_text(status), f"{statuses[status]:,}")
    else:
        grid.add_row("runs started", f"{len(_runs(items)):,}")
    done_before, unnamed = _duplicates(items)
    if done_before:
        grid.add_row("already succeeded before", f"{done_before:,}")
    if unnamed:
        grid.add_row(_UNNAMED, f"{unnamed:,}")
    failed = [item for item in _once(items) if item.error is not None]
    if failed:
        grid.add_row(Text("could not be created", style="red"), f"{len(failed):,}")
    grid.add_row("idempotency namespace", plain(namespace))
    out.print(grid)
    # A line per path, never folded at the terminal's width (nor at 80 columns on a pipe): each
    # stays whole for grep, and a terminal wraps it as it wraps any long line.
    for item in failed[:_SHOWN_FAILURES]:
        err.print(plain(f"{item.source_path}: {item.error}", "red"), soft_wrap=True)
    if len(failed) > _SHOWN_FAILURES:
        more = len(failed) - _SHOWN_FAILURES
        err.print(f"... and {more} more (--json lists them all)", soft_wrap=True)


def _outcome(items: Iterable[_Item], *, waited: bool, fail_on_partial: bool) -> CommandError | None:
    """The error that ends the command: paths whose runs could not be created, else (with
    ``waited``) runs that did not succeed; None when all went well."""
    items = _once(list(items))
    failed = [item for item in items if item.error is not None]
    if failed:
        return CommandError(
            f"{len(failed)} of {len(items)} runs could not be created; running the same "
            "command again retries them (and finds the others)",
            status=ExitStatus.ERROR,
            details={"failed": [item.source_path for item in failed]},
        )
    return runs_outcome(_runs(items), fail_on_partial=fail_on_partial) if waited else None
