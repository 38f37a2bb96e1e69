"""What a create, an update and a listing send for inputs at the edges of what JSON and
ISO-8601 can carry: each is refused before any request (naming the argument) or sent exactly
as given, and a listing's time bounds select exactly the runs WIRE.md says."""

from __future__ import annotations

import dataclasses
import enum
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lume_async import AsyncLume, RunRequest
from lume_async.testing import Emulator, VirtualClock

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
SURROGATE = "\ud800"  # a str Python holds and UTF-8 cannot


@dataclasses.dataclass
class Point:
    x: float


class Reading(enum.Enum):
    MISSING = math.nan


# --- time bounds of a listing ---------------------------------------------------------------------


async def test_created_bounds_select_by_the_microsecond_given(
    vemu: Emulator, vlume: AsyncLume, clock: VirtualClock
) -> None:
    """WIRE.md: created_after is inclusive, created_before exclusive, on microsecond stamps."""
    now_us = int(clock.time() * 1_000_000)
    clock.advance(((500 - now_us % 1000) % 1000) / 1_000_000)  # mid-millisecond
    run = await vlume.run(FLOW, "s3://bucket/edges-bounds")
    stamp = run.created_at
    just_after = stamp + timedelta(microseconds=1)
    later = [r.id async for r in vlume.runs.list(created_after=just_after)]
    earlier = [r.id async for r in vlume.runs.list(created_before=just_after)]
    assert (run.id in later, run.id in earlier) == (False, True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("created_after", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))),
        ("created_before", datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))),
    ],
)
async def test_a_bound_past_the_utc_calendar_is_a_value_error_naming_it(
    lume: AsyncLume, name: str, value: datetime
) -> None:
    with pytest.raises(ValueError, match=name):
        lume.runs.list(**{name: value})  # type: ignore[arg-type]


async def test_equal_bounds_in_other_offsets_are_refused(lume: AsyncLume) -> None:
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    same = at.astimezone(timezone(timedelta(hours=-7)))
    with pytest.raises(ValueError, match="created_after"):
        lume.runs.list(created_after=same, created_before=at)


# --- NaN where the walk does not look -------------------------------------------------------------


@pytest.mark.parametrize("value", [Point(math.nan), Reading.MISSING], ids=["dataclass", "enum"])
@pytest.mark.parametrize("where", ["source_data", "run_metadata"])
async def test_nan_wherever_json_encodes_it_is_refused_before_sending(
    emu: Emulator, lume: AsyncLume, where: str, value: object
) -> None:
    if where == "source_data":
        call = lume.run(FLOW, source_data=[{"email": "a@b.co", "p": value}])
    else:
        call = lume.run(FLOW, "s3://bucket/edges-nan", run_metadata={"p": value})
    with pytest.raises(ValueError, match=where):
        await call
    assert emu.stats()["runs_created"] == 0


# --- text UTF-8 cannot carry ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("label", {"source_path": "s3://bucket/edges-s", "label": SURROGATE}),
        ("tags", {"source_path": "s3://bucket/edges-s", "tags": [SURROGATE]}),
        ("source_path", {"source_path": "s3://bucket/" + SURROGATE}),
        ("label", {"source_data": [{"email": "a@b.co"}], "label": SURROGATE}),
    ],
)
def test_a_lone_surrogate_is_refused_when_the_request_is_built(
    name: str, fields: dict[str, object]
) -> None:
    with pytest.raises((ValueError, TypeError), match=name):
        RunRequest(FLOW, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("call", ["update", "list"])
async def test_a_lone_surrogate_label_is_refused_naming_label(
    emu: Emulator, lume: AsyncLume, call: str
) -> None:
    run = await lume.run(FLOW, "s3://bucket/edges-u")
    before = emu.stats()["requests"]
    if call == "update":
        with pytest.raises((ValueError, TypeError), match="label"):
            await lume.runs.update(run.id, label=SURROGATE)
    else:
        with pytest.raises((ValueError, TypeError), match="label"):
            [r async for r in lume.runs.list(label=SURROGATE)]
    assert emu.stats()["requests"] == before


# --- what holds -----------------------------------------------------------------------------------

ODD_TEXT = ["a+b", "a&b=c", "100%", "x#y?z", " ü ñ ", "t\tab", "n\nl", "\x00", "🙂" * 64]


@pytest.mark.parametrize("text", ODD_TEXT)
async def test_an_odd_label_or_tag_filter_selects_exactly_its_run(
    lume: AsyncLume, text: str
) -> None:
    run = await lume.run(FLOW, f"s3://bucket/edges-{ODD_TEXT.index(text)}", label=text, tags=[text])
    await lume.run(FLOW, "s3://bucket/edges-other", label="other", tags=["other"])
    assert (run.label, run.tags) == (text, (text,))
    assert [r.id async for r in lume.runs.list(label=text)] == [run.id]
    assert [r.id async for r in lume.runs.list(tags=[text])] == [run.id]
    assert [r.id async for r in lume.runs.list(source_path=run.source_path)] == [run.id]


async def test_json_edge_values_reach_the_service_as_given(lume: AsyncLume) -> None:
    meta = {"neg_zero": -0.0, "big": 2**63 - 1, "small": -(2**63), "deep": [[[[{"k": None}]]]]}
    run = await lume.run(FLOW, "s3://bucket/edges-json", run_metadata=meta)
    again = await lume.runs.get(run.id)
    assert again.run_metadata == meta
    assert math.copysign(1.0, again.run_metadata["neg_zero"]) == -1.0
