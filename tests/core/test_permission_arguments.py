"""Who a run is shared with, as arguments: checked before any request, sent as the API says.

Bad values are families (hypothesis): a run owner that is not a str, a list that is a single str,
a mapping, not iterable, or holds a non-str or a blank name. Each is a TypeError or ValueError
naming the argument and the value's type, raised before the network: the client points at a port
nobody listens on, so a call that got that far would end in an APIConnectionError instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, PermissionDeniedError, RunRequest
from lume_async._validation import check_principal_list

from .._profiles import examples
from ._scripted import RUN_ID, Answer, ScriptedServer

pytestmark = pytest.mark.anyio

FLOW = "customer_cleaner:v1"
PATH = "s3://bucket/batch_001"
LISTS = ("monitoring_by", "monitoring_groups", "managing_by", "managing_groups")

Call = Callable[[AsyncLume, str, Any], Awaitable[Any] | Any]

# Each way to give a run's permissions: (name, the call with ``value`` in argument ``arg``).
CREATES: list[tuple[str, Call]] = [
    ("runs.create", lambda c, arg, v: c.runs.create(FLOW, PATH, **{arg: v})),
    ("run", lambda c, arg, v: c.run(FLOW, PATH, **{arg: v})),
    ("RunRequest", lambda c, arg, v: RunRequest(FLOW, source_path=PATH, **{arg: v})),
]
UPDATES: list[tuple[str, Call]] = [
    ("runs.update", lambda c, arg, v: c.runs.update(RUN_ID, **{arg: v})),
]

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.one_of(st.integers(), st.none(), st.binary(max_size=3)), min_size=1, max_size=3),
    st.lists(st.text(min_size=1, max_size=5).filter(str.strip), max_size=3),
    st.tuples(st.text(min_size=1).filter(str.strip), st.integers()),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    st.sets(st.integers(), min_size=1, max_size=2),
    st.builds(object),
)
BLANK = st.text(alphabet=" \t\n\r\x0b\x0c", max_size=4)


def names_list(value: Any) -> bool:
    """A value a permission list takes: any iterable of str but a str, bytes or a mapping."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        return False
    return all(isinstance(item, str) for item in value)


def type_names(value: Any) -> set[str]:
    names = {type(value).__name__}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | dict):
        names |= {type(item).__name__ for item in value}
    return names


def call(loop: asyncio.Runner, lume: AsyncLume, fn: Call, arg: str, value: Any) -> None:
    async def attempt() -> None:
        result = fn(lume, arg, value)
        if isinstance(result, Awaitable):
            await result

    loop.run(attempt())


SETTINGS = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("arg", LISTS)
@pytest.mark.parametrize(("how", "fn"), CREATES + UPDATES, ids=[n for n, _ in CREATES + UPDATES])
@SETTINGS
@given(value=ANY_VALUE)
def test_a_permission_list_of_a_wrong_type_is_a_type_error_naming_it(
    loop: asyncio.Runner, offline: AsyncLume, how: str, fn: Call, arg: str, value: Any
) -> None:
    if names_list(value) or (value is None and how.endswith("update")):
        return  # a valid list (or, for an update, None: keep the list)
    with pytest.raises(TypeError, match=rf"\b{arg}\b") as caught:
        call(loop, offline, fn, arg, value)
    assert any(name in str(caught.value) for name in type_names(value)), str(caught.value)


@pytest.mark.parametrize("arg", LISTS)
@pytest.mark.parametrize(("how", "fn"), CREATES + UPDATES, ids=[n for n, _ in CREATES + UPDATES])
@SETTINGS
@given(
    names=st.lists(st.text(min_size=1, max_size=6).filter(str.strip), max_size=3),
    blank=BLANK,
    at=st.integers(0, 3),
)
def test_a_blank_name_in_a_permission_list_is_a_value_error_naming_its_index(
    loop: asyncio.Runner,
    offline: AsyncLume,
    how: str,
    fn: Call,
    arg: str,
    names: list[str],
    blank: str,
    at: int,
) -> None:
    at = min(at, len(names))
    names.insert(at, blank)
    with pytest.raises(ValueError, match=rf"\b{arg}\[{at}\]") as caught:
        call(loop, offline, fn, arg, names)
    assert "(str)" in str(caught.value)


@pytest.mark.parametrize(("how", "fn"), CREATES + UPDATES, ids=[n for n, _ in CREATES + UPDATES])
@SETTINGS
@given(value=ANY_VALUE)
def test_a_run_owner_that_is_not_a_str_is_a_type_error(
    loop: asyncio.Runner, offline: AsyncLume, how: str, fn: Call, value: Any
) -> None:
    if value is None or isinstance(value, str):
        return
    with pytest.raises(TypeError, match=r"\brun_owner\b") as caught:
        call(loop, offline, fn, "run_owner", value)
    assert type(value).__name__ in str(caught.value)


@pytest.mark.parametrize(("how", "fn"), CREATES + UPDATES, ids=[n for n, _ in CREATES + UPDATES])
@SETTINGS
@given(blank=BLANK)
def test_a_blank_run_owner_is_a_value_error(
    loop: asyncio.Runner, offline: AsyncLume, how: str, fn: Call, blank: str
) -> None:
    with pytest.raises(ValueError, match=r"\brun_owner\b"):
        call(loop, offline, fn, "run_owner", blank)


def test_an_update_that_changes_nothing_is_a_value_error_naming_the_choices(
    loop: asyncio.Runner,
    offline: AsyncLume,
) -> None:
    with pytest.raises(ValueError, match="monitoring_by") as caught:
        call(loop, offline, lambda c, arg, v: c.runs.update(RUN_ID), "", None)
    assert "run_owner" in str(caught.value)


def test_a_run_request_sends_the_owner_and_every_non_empty_list() -> None:
    request = RunRequest(
        FLOW,
        source_path=PATH,
        run_owner="ana@example.com",
        monitoring_by=("bo@example.com",),
        managing_groups=["data-eng"],
    )
    body = request.to_wire()
    assert body["run_owner"] == "ana@example.com"
    assert body["monitoring_by"] == ["bo@example.com"]
    assert body["managing_groups"] == ["data-eng"]
    assert "monitoring_groups" not in body
    assert "managing_by" not in body


def test_a_run_request_without_permissions_sends_none_of_their_fields() -> None:
    body = RunRequest(FLOW, source_path=PATH).to_wire()
    assert not {"run_owner", *LISTS} & set(body)


@settings(max_examples=examples(30), deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6).filter(str.strip), max_size=4))
def test_a_run_request_keeps_any_iterable_of_names_as_a_tuple_in_order(names: list[str]) -> None:
    request = RunRequest(FLOW, source_path=PATH, monitoring_by=iter(names))
    assert request.monitoring_by == tuple(names)


async def test_an_update_sends_only_what_is_given_and_an_empty_list_empties(
    scripted: ScriptedServer,
) -> None:
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        await lume.runs.update(RUN_ID, monitoring_by=[], managing_groups=("ops",))
    sent = orjson.loads(scripted.seen[-1].body)
    assert sent == {"monitoring_by": [], "managing_groups": ["ops"]}


async def test_a_403_names_the_operation_the_service_refused(scripted: ScriptedServer) -> None:
    body = {"detail": "no", "code": "permission_denied", "error_id": "e", "operation": "cancel"}
    scripted.then(Answer(403, body))
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(PermissionDeniedError) as caught:
            await lume.runs.update(RUN_ID, label="x")
    assert caught.value.operation == "cancel"  # the service's word wins


@pytest.mark.parametrize(
    ("call_it", "operation"),
    [
        (lambda lume: lume.runs.cancel(RUN_ID), "cancel"),
        (lambda lume: lume.runs.update(RUN_ID, label="x"), "update"),
        (lambda lume: lume.runs.update(RUN_ID, tags=["a"]), "update"),
        (lambda lume: lume.runs.update(RUN_ID, run_owner="ana@example.com"), "update_permissions"),
        (lambda lume: lume.runs.update(RUN_ID, label="x", managing_by=[]), "update_permissions"),
        (lambda lume: lume.runs.get(RUN_ID), "read"),
    ],
    ids=["cancel", "label", "tags", "owner", "label-and-list", "get"],
)
async def test_a_403_without_an_operation_names_what_the_sdk_asked_for(
    scripted: ScriptedServer, call_it: Callable[[AsyncLume], Awaitable[Any]], operation: str
) -> None:
    scripted.then(Answer(403, {"detail": "no", "code": "permission_denied", "error_id": "e"}))
    async with AsyncLume(api_key="k", base_url=scripted.url) as lume:
        with pytest.raises(PermissionDeniedError) as caught:
            await call_it(lume)
    assert caught.value.operation == operation
    assert re.search(r"\b403\b", str(caught.value))


def test_a_request_that_names_no_one_checks_no_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lists left at their default are not walked: a fan-out builds one request per run."""
    from lume_async.models import _request

    checked: list[object] = []

    def spy(value: object, name: str) -> tuple[str, ...]:
        checked.append(name)
        return check_principal_list(value, name)

    monkeypatch.setattr(_request, "check_principal_list", spy)
    monkeypatch.setattr(_request, "check_tags", lambda value: checked.append("tags") or [])

    RunRequest("customer_cleaner:v1", source_path="s3://b/1")
    assert checked == []

    RunRequest("customer_cleaner:v1", source_path="s3://b/1", managing_by=[], tags=[])
    assert checked == ["tags", "managing_by"]
