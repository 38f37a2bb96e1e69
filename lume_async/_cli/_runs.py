"""``lume runs ...``: create, inspect, change, wait for and cancel runs on a Lume service."""

from __future__ import annotations

import json
from typing import Any

import click
from click.core import ParameterSource

from .._client import AsyncLume
from .._run import AsyncRun
from .._validation import check_run_id
from ..models import RunStatus
from ._command import LumeGroup, cli_names
from ._exit import runs_outcome
from ._fanout import create_from_file
from ._output import show_run, show_runs
from ._rows import logs, results
from ._settings import Settings, fail, json_flag
from ._sharing import SDK_NAMES, permission_options, permissions_of, update
from ._wait import wait, wait_for, wait_options

__all__ = ["runs"]


@click.group(cls=LumeGroup)
def runs() -> None:
    """Create, inspect, change, wait for and cancel runs."""


@runs.command(sdk_names={"source_data": "data", "timeout": "wait_timeout", **SDK_NAMES})
@click.argument("flow_version")
@click.argument("source_path", required=False)
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="JSON file of source rows ('-' for stdin).",
)
@click.option(
    "--from-file",
    "paths_file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="One run per source path in this file (one a line; '-' for stdin).",
)
@click.option(
    "--concurrency",
    default=32,
    type=click.IntRange(min=1),
    help="Requests in flight at once, with --from-file (up to 100 creates each when there are "
    "more paths).",
)
@click.option(
    "--idempotency-namespace",
    help="With --from-file: names this batch, so running the same command again creates "
    "nothing twice [default: derived from the file, the options and the API key].",
)
@click.option("--label")
@click.option("--tag", "tags", multiple=True, help="Repeat for several tags.")
@click.option("--force-rerun", is_flag=True, help="Run again even if this source succeeded.")
@click.option("--wait", "wait_", is_flag=True, help="Wait until the run is finished.")
@wait_options
@permission_options
@json_flag
@click.pass_obj
def create(
    settings: Settings,
    flow_version: str,
    source_path: str | None,
    data: str | None,
    paths_file: str | None,
    concurrency: int,
    idempotency_namespace: str | None,
    label: str | None,
    tags: tuple[str, ...],
    force_rerun: bool,
    wait_: bool,
    wait_timeout: float,
    poll_interval: float,
    fail_on_partial: bool,
    owner: str | None,
    monitors: tuple[str, ...],
    monitor_groups: tuple[str, ...],
    managers: tuple[str, ...],
    manager_groups: tuple[str, ...],
) -> None:
    """Start a run of FLOW_VERSION on SOURCE_PATH (or on --data rows, or one per line of
    --from-file).

    With --wait, exits 0 when the runs succeeded, 3 when one ended FAILED, CRASHED or CANCELED,
    and 4 when one ended PARTIAL_FAILED and --fail-on-partial is given.
    """
    ctx = click.get_current_context()
    if not wait_:  # the runs are not waited on: how to wait would go unread
        _only_with(ctx, ("wait_timeout", "poll_interval", "fail_on_partial"), "--wait")
    if paths_file is None:
        _only_with(ctx, ("concurrency", "idempotency_namespace"), "--from-file")
    permissions = permissions_of(
        owner, monitors, monitor_groups, managers, manager_groups, keep_unset=False
    )
    if paths_file is not None:
        if source_path is not None or data is not None:
            raise click.UsageError("give SOURCE_PATH, --data or --from-file, only one of them")
        create_from_file(
            settings,
            flow_version,
            _paths_text(paths_file),
            concurrency=concurrency,
            namespace=idempotency_namespace,
            label=label,
            tags=tags,
            force_rerun=force_rerun,
            permissions=permissions,
            wait=wait_,
            timeout=wait_timeout,
            poll_interval=poll_interval,
            fail_on_partial=fail_on_partial,
        )
        return
    if source_path is not None and data is not None:  # refused before stdin is waited on
        raise click.UsageError("give SOURCE_PATH or --data, not both")
    rows = _load_rows(data) if data is not None else None

    async def call(lume: AsyncLume) -> AsyncRun:
        run = await lume.runs.create(
            flow_version,
            source_path,
            source_data=rows,
            label=label,
            tags=tags,
            force_rerun=force_rerun,
            **permissions,
        )
        settings.watch([run])
        if wait_:
            await wait_for(lume, [run], settings, timeout=wait_timeout, poll_interval=poll_interval)
        return run

    run = settings.run(call)
    ended = runs_outcome([run], fail_on_partial=fail_on_partial) if wait_ else None
    settings.outcome = ended
    show_run(settings, run)
    if ended is not None:
        raise ended


def _only_with(ctx: click.Context, names: tuple[str, ...], needed: str) -> None:
    """A usage error for the first of the options ``names`` given: without ``needed`` it would
    do nothing, and say nothing of it (``--fail-on-partial`` would still exit 0)."""
    spelled = cli_names(ctx.command, {})
    for name in names:
        if ctx.get_parameter_source(name) not in _NOT_GIVEN:
            raise click.UsageError(f"{spelled[name]} goes with {needed}")


_NOT_GIVEN = (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def _read(path: str) -> bytes:
    """A file's bytes, or stdin's for ``-``."""
    with click.open_file(path, "rb") as stream:
        data: bytes = stream.read()
    return data


def _paths_text(path: str) -> str:
    """The text of ``--from-file``; the byte order mark some editors start UTF-8 files with is
    not part of its first line."""
    try:
        return _read(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"--from-file is not UTF-8 text: {exc}") from None


def _load_rows(path: str) -> list[Any]:
    """The rows of ``--data``, read exactly: orjson reads an integer past 64 bits as a float,
    which would send a rounded number in its place (the SDK refuses such an integer)."""
    try:
        rows = json.loads(_read(path), parse_constant=_not_json)
    except UnicodeDecodeError as exc:
        raise ValueError(f"--data is not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(rows, list):
        raise ValueError("--data must hold a JSON array of objects")
    return rows


def _not_json(name: str) -> Any:
    raise ValueError(f"--data is not valid JSON: {name} is not a JSON number")


@runs.command()
@click.argument("run_id")
@json_flag
@click.pass_obj
def get(settings: Settings, run_id: str) -> None:
    """Show one run."""
    show_run(settings, settings.run(lambda lume: lume.runs.get(run_id)))


@runs.command("list", sdk_names={"status": "statuses", "tags": "tags"})
@click.option("--flow-version")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in RunStatus], case_sensitive=False),
    help="Repeat for several statuses.",
)
@click.option("--label")
@click.option("--tag", "tags", multiple=True, help="Runs carrying every tag given.")
@click.option("--limit", default=20, type=click.IntRange(1))
@json_flag
@click.pass_obj
def list_(
    settings: Settings,
    flow_version: str | None,
    statuses: tuple[str, ...],
    label: str | None,
    tags: tuple[str, ...],
    limit: int,
) -> None:
    """List runs, newest first."""

    async def call(lume: AsyncLume) -> list[AsyncRun]:
        found: list[AsyncRun] = []
        listing = lume.runs.list(
            flow_version=flow_version,
            status=statuses or None,
            label=label,
            tags=tags or None,
            page_size=min(limit, 100),
        )
        async for run in listing:
            found.append(run)
            if len(found) == limit:
                break
        return found

    show_runs(settings, settings.run(call))


@runs.command()
@click.argument("run_ids", nargs=-1, required=True)
@json_flag
@click.pass_obj
def cancel(settings: Settings, run_ids: tuple[str, ...]) -> None:
    """Cancel runs (finished ones are left as they are)."""
    for run_id in run_ids:  # all or nothing: a typo cancels none of them
        check_run_id(run_id)
    outcomes = settings.run(lambda lume: lume.runs.cancel_many(run_ids))
    show_runs(settings, [o.value for o in outcomes if o.ok and o.value is not None])
    failures = [(run_ids[o.index], o.error) for o in outcomes if not o.ok]
    if failures:
        fail("; ".join(f"{run_id}: {error}" for run_id, error in failures))


runs.add_command(update)
runs.add_command(wait)
runs.add_command(logs)
runs.add_command(results)
