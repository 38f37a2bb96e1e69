"""Exactly once across an upgrade of the SDK, and the key of a create whose answer was not read.

A job restarted after an upgrade derives its keys anew: a request whose body holds no datetime
must derive the key the releases before derived for it, or the restart is answered as another
create (a second run of inline rows, a DuplicateRunError for a source path already processed).
Only a datetime the wire writes otherwise than Python (naive, or UTC written ``Z``) derives a
new key. A create whose run was made but whose answer could not be read says which key finds it;
one that was never sent (its client closed) does not say it was sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, LumeError, ResponseTooLargeError, RunRequest, RunTimeoutError
from lume_async.testing import Emulator, FaultProfile, VirtualClock

from .._profiles import examples

FLOW = "customer_cleaner:v1"
NS = "restart-review-2026-06-01"
KEY_NOTE = re.compile(r"idempotency_key='([!-~]+?)'")
DERIVATION = b"lume-run-request-v1\x1e"  # what the releases before hashed ahead of the body


@dataclasses.dataclass
class Settings:
    """Metadata a job keeps as a dataclass: orjson writes its fields in their declared order."""

    zone: str
    attempt: int


def key_before_the_upgrade(request: RunRequest, namespace: str) -> str:
    """The key the releases before this one derived: the body as ``to_wire()`` gives it, written
    by orjson with sorted keys."""
    body = orjson.dumps(request.to_wire(), option=orjson.OPT_SORT_KEYS)
    return f"{namespace}:{hashlib.sha256(DERIVATION + body).hexdigest()}"


def key_named_in(exc: BaseException) -> str:
    text = "\n".join([str(exc), *getattr(exc, "__notes__", ())])
    found = KEY_NOTE.search(text)
    assert found is not None, text
    return found.group(1)


# --- keys of requests without datetimes are those of the releases before ------------------------

_text = st.text(max_size=8).filter(lambda s: "\x00" not in s)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e16, -0.0, 5e-324, 1e22, 0.1, 1.7976931348623157e308]),
    _text,
    st.dates(),
    st.times(),
    st.uuids(),
    st.builds(Settings, _text, st.integers(min_value=0, max_value=9)),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=12,
)
_names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=8)
_tags = st.lists(_names, max_size=4, unique=True)


@st.composite
def _requests(draw: st.DrawFn) -> RunRequest:
    fields: dict[str, Any] = {
        "run_metadata": draw(st.none() | st.dictionaries(_text, _json, max_size=4)),
        "force_rerun": draw(st.booleans()),
        "label": draw(st.none() | _names),
        "tags": draw(_tags | _tags.map(frozenset)),
        "monitoring_by": draw(_tags),
        "managing_groups": draw(_tags | _tags.map(set)),
    }
    if draw(st.booleans()):
        fields["source_path"] = f"s3://bucket/{draw(_names)}"
    else:
        rows = st.dictionaries(_text, _json, max_size=3)
        fields["source_data"] = draw(st.lists(rows, min_size=1, max_size=3))
    return RunRequest(FLOW, **fields)


@settings(max_examples=examples(100))
@given(_requests())
@example(RunRequest(FLOW, source_path="s3://bucket/cfg", run_metadata={"cfg": Settings("eu", 1)}))
@example(
    RunRequest(
        FLOW,
        source_path="s3://bucket/big",
        run_metadata={"n": [2**64 - 1, -(2**63), 1e16, -0.0, 5e-324], "é": "ü\u2028"},
        tags=["b", "a"],
        monitoring_groups=["ops"],
    )
)
def test_a_request_without_datetimes_derives_the_key_it_derived_before(
    request: RunRequest,
) -> None:
    assert request.with_namespace(NS).idempotency_key == key_before_the_upgrade(request, NS)


def test_a_datetime_not_written_otherwise_keeps_its_key_and_one_written_z_gets_a_new_one() -> None:
    path = "s3://bucket/when"
    plus_two = datetime(2026, 6, 1, tzinfo=timezone(timedelta(hours=2)))
    kept = RunRequest(FLOW, source_path=path, run_metadata={"at": plus_two, "d": date(2026, 6, 1)})
    assert kept.with_namespace(NS).idempotency_key == key_before_the_upgrade(kept, NS)
    naive = RunRequest(FLOW, source_path=path, run_metadata={"at": datetime(2026, 6, 1)})
    utc = datetime(2026, 6, 1, tzinfo=UTC)
    aware = RunRequest(FLOW, source_path=path, run_metadata={"at": utc})
    text = RunRequest(FLOW, source_path=path, run_metadata={"at": "2026-06-01T00:00:00"})
    assert naive.with_namespace(NS).idempotency_key == aware.with_namespace(NS).idempotency_key
    assert naive.with_namespace(NS).idempotency_key != text.with_namespace(NS).idempotency_key
    assert text.with_namespace(NS).idempotency_key == key_before_the_upgrade(text, NS)
    clock = RunRequest(FLOW, source_path=path, run_metadata={"at": time(1, 2, 3)})
    assert clock.with_namespace(NS).idempotency_key == key_before_the_upgrade(clock, NS)


@pytest.mark.anyio
async def test_a_restart_across_the_upgrade_finds_the_run_of_its_dataclass_metadata(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    request = RunRequest(
        FLOW,
        source_path="synthetic://upgrade?duration=60",
        run_metadata={"settings": Settings(zone="eu-west", attempt=1)},
    )
    # The first attempt ran on the release before: its key was derived as that release did.
    before = request.with_idempotency_key(key_before_the_upgrade(request, NS))
    [first] = await vlume.runs.create_many([before])
    run = first.unwrap()
    await run.wait(poll_interval=1)
    # The restart, on this release, with the same inputs and namespace: the same run, replayed.
    [again] = await vlume.runs.create_many([request], idempotency_namespace=NS)
    assert again.ok, again.error
    assert again.unwrap().id == run.id and not again.unwrap().reused
    assert vemu.stats()["runs_created"] == 1


# --- the key of a create whose run was made but whose answer was not read -------------------


@pytest.mark.anyio
async def test_a_create_answered_past_max_response_bytes_names_the_key_of_its_run(
    vemu: Emulator, clock: VirtualClock
) -> None:
    data = [{"name": "big-answer", "email": "big@example.com", "age": 30}]
    async with AsyncLume(
        api_key=vemu.api_key, base_url=vemu.url, clock=clock, max_response_bytes=64
    ) as small:
        with pytest.raises(ResponseTooLargeError) as caught:
            await small.run(FLOW, source_data=data)
    assert vemu.stats()["runs_created"] == 1  # made: only its answer was too large
    key = key_named_in(caught.value)
    async with AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock) as lume:
        run = await lume.run(FLOW, source_data=data, idempotency_key=key)
        assert not run.reused
        assert [r.id async for r in lume.runs.list()] == [run.id]
    assert vemu.stats()["runs_created"] == 1


@pytest.mark.anyio
async def test_a_create_on_a_closed_client_does_not_say_it_was_sent(
    vemu: Emulator, clock: VirtualClock
) -> None:
    lume = AsyncLume(api_key=vemu.api_key, base_url=vemu.url, clock=clock)
    await lume.aclose()
    with pytest.raises(LumeError, match="closed") as caught:
        await lume.run(FLOW, source_path="s3://bucket/never-sent")
    notes = "\n".join(getattr(caught.value, "__notes__", ()))
    assert "was sent with" not in notes and "may have made a run" not in notes
    assert vemu.stats()["runs_created"] == 0


# --- what the commit must not have changed ------------------------------------------------------


@pytest.mark.anyio
async def test_process_with_a_namespace_sends_the_derived_key_and_names_the_namespace(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    data = [{"name": "ns", "email": "ns@example.com", "age": 30}]
    result = await vlume.process(FLOW, source_data=data, idempotency_namespace=NS, poll_interval=1)
    derived = RunRequest(FLOW, source_data=data).with_namespace(NS).idempotency_key
    replayed = await vlume.run(FLOW, source_data=data, idempotency_key=derived)
    assert replayed.id == result.run.id and not replayed.reused
    given = await vlume.process(
        FLOW, source_data=data, idempotency_key="review-given-key", poll_interval=1
    )
    assert given.run.id != result.run.id
    again = await vlume.run(FLOW, source_data=data, idempotency_key="review-given-key")
    assert again.id == given.run.id
    assert vemu.stats()["runs_created"] == 2


@pytest.mark.anyio
async def test_process_out_of_time_with_a_namespace_names_the_namespace(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    vemu.set_faults(FaultProfile(rate=1.0, kinds=("delay",), phase="after", delay=30))
    with pytest.raises(RunTimeoutError) as caught:
        await vlume.process(
            FLOW, source_path="s3://bucket/slow", idempotency_namespace=NS, timeout=5
        )
    assert f"idempotency_namespace={NS!r}" in str(caught.value)
    assert "idempotency_key=" not in str(caught.value)


def test_hash_and_equality_hold_for_any_json_metadata() -> None:
    def make(**fields: Any) -> RunRequest:
        return RunRequest(FLOW, source_path="s3://bucket/h", **fields)

    nested = {"a": [1, {"b": [True, None]}], "c": {"d": 1.5}}
    backwards = dict(reversed(nested.items()))
    assert hash(make(run_metadata=nested)) == hash(make(run_metadata=backwards))
    assert make(run_metadata=nested) == make(run_metadata=backwards)
    assert make(run_metadata={"v": True}) != make(run_metadata={"v": 1})
    assert make(run_metadata={"s": Settings("eu", 1)}) == make(
        run_metadata={"s": {"attempt": 1, "zone": "eu"}}
    )
    inline = RunRequest(FLOW, source_data=[{"a": 1}])
    assert inline != make() and make() != inline
    assert inline != "a request" and make() != None  # noqa: E711 - the comparison is the test
    assert len({make(), make(), inline}) == 2
