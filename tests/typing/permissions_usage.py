"""Type-checked only (mypy --strict), never run: sharing runs, as users write it in both APIs."""

from __future__ import annotations

from typing import assert_type

import lume_sync
from lume_async import AsyncLume, AsyncRun, PermissionDeniedError, RunRequest
from lume_async.testing import Emulator


async def async_usage() -> None:
    async with AsyncLume(api_key="key") as lume:
        run = await lume.run(
            "customer_cleaner:v1",
            "s3://bucket/batch_001",
            run_owner="ana@example.com",
            monitoring_by=["bo@example.com"],
            monitoring_groups=("analysts",),
            managing_by=[],
            managing_groups={"data-eng"},
        )
        assert_type(run.created_by, str | None)
        assert_type(run.run_owner, str | None)
        assert_type(run.monitoring_by, tuple[str, ...])
        assert_type(run.managing_groups, tuple[str, ...])
        assert_type(await run.update(monitoring_by=[], run_owner="bo@example.com"), AsyncRun)
        assert_type(await lume.runs.update(run.id, managing_groups=["ops"]), AsyncRun)
        try:
            await run.cancel()
        except PermissionDeniedError as exc:
            assert_type(exc.operation, str | None)
        RunRequest("customer_cleaner:v1", source_path="s3://b/x", monitoring_groups=["analysts"])


def sync_usage() -> None:
    with Emulator() as emu, lume_sync.Lume(api_key=emu.add_principal("ana@example.com")) as lume:
        assert_type(emu.add_principal("bo@example.com", groups=["ops"], admin=True), str)
        run = lume.runs.create("customer_cleaner:v1", "s3://b/x", managing_by=["bo@example.com"])
        assert_type(run.managing_by, tuple[str, ...])
        assert_type(lume.runs.update(run.id, monitoring_groups=["analysts"]), lume_sync.Run)
        assert_type(run.update(managing_by=[]), lume_sync.Run)
