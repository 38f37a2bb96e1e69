"""Flows and webhook endpoints: answers that name something else, and what is asked of them.

An answer is believed only when it is about what was asked: a flow read by name is that flow, and
its versions are versions of it (a run started from ``flow.version("v1").id`` runs that flow); an
endpoint read by id is that endpoint, with an id it can be deleted by; a created endpoint carries
the secret its deliveries are signed with. A version string that is not one is refused before any
request, rather than read as its flow's name. Deleting several endpoints from the command line
says which were deleted when one of them fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from lume_async import AsyncLume, NotFoundError, ResponseValidationError
from lume_async.testing import Emulator, VirtualClock

from ..cli.conftest import lume as run_cli
from ..cli.conftest import ok_json
from ..core._scripted import Answer, ScriptedServer
from ._frames import holding

pytestmark = pytest.mark.anyio

WHSEC = "whsec_" + "cmVzb3VyY2UtZWRnZS1zZWNyZXQ="  # "resource-edge-secret"
OTHER_WHSEC = "whsec_" + "YW5vdGhlci1zaWduaW5nLWtleQ=="  # "another-signing-key"
ENDPOINT_ID = "wh_01HY0000000000000000000000"
OTHER_ID = "wh_01HY0000000000000000000001"


@pytest.fixture
async def client(scripted: ScriptedServer) -> AsyncIterator[AsyncLume]:
    async with AsyncLume(
        api_key="k", base_url=scripted.url, clock=VirtualClock(), max_retries=0
    ) as lume:
        yield lume


def _flow(name: str, *versions: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": "d",
        "versions": [
            {"version": v, "id": i, "created_at": "2024-01-15T09:00:00Z", "target_schema": {}}
            for v, i in versions
        ],
    }


def _page(*items: Any) -> dict[str, Any]:
    return {"items": list(items), "total": len(items), "page": 1, "size": 100, "pages": 1}


def _endpoint(endpoint_id: str = ENDPOINT_ID, secret: str | None = WHSEC) -> dict[str, Any]:
    body: dict[str, Any] = {"id": endpoint_id, "url": "https://hooks.example/in"}
    body["events"] = ["run.succeeded"]
    if secret is not None:
        body["secret"] = secret
    return body


# -- flows -----------------------------------------------------------------------------------------


async def test_a_flow_read_by_name_that_answers_another_flow_is_refused(
    scripted: ScriptedServer, client: AsyncLume
) -> None:
    scripted.then(Answer(200, _flow("invoice_mapper", ("v1", "invoice_mapper:v1"))))
    with anyio.fail_after(10), pytest.raises(ResponseValidationError) as caught:
        await client.flows.get("customer_cleaner")
    assert "customer_cleaner" in str(caught.value) and "invoice_mapper" in str(caught.value)
    assert caught.value.request_id == "req_test"


@pytest.mark.parametrize(
    "version_id", ["invoice_mapper:v1", "customer_cleaner:v2", "customer_cleaner", "../x:v1"]
)
async def test_a_flow_whose_version_names_another_flow_version_is_refused(
    scripted: ScriptedServer, client: AsyncLume, version_id: str
) -> None:
    flow = _flow("customer_cleaner", ("v1", version_id))
    scripted.then(Answer(200, flow), Answer(200, _page(flow)))
    with anyio.fail_after(10):
        with pytest.raises(ResponseValidationError, match="customer_cleaner"):
            await client.flows.get("customer_cleaner")
        with pytest.raises(ResponseValidationError, match="customer_cleaner") as caught:
            await client.flows.list().collect()
    assert caught.value.request_id == "req_test"


async def test_a_listed_flow_whose_name_cannot_be_asked_for_is_refused(
    scripted: ScriptedServer, client: AsyncLume
) -> None:
    scripted.then(Answer(200, _page(_flow("customer cleaner/../x"))))
    with anyio.fail_after(10), pytest.raises(ResponseValidationError, match="name"):
        await client.flows.list().collect()


async def test_consistent_flows_are_still_read(scripted: ScriptedServer, client: AsyncLume) -> None:
    flow = _flow("customer_cleaner", ("v1", "customer_cleaner:v1"), ("v2", "customer_cleaner:v2"))
    scripted.then(Answer(200, flow), Answer(200, _page(flow)))
    with anyio.fail_after(10):
        got = await client.flows.get("customer_cleaner:v2")
        assert got.version("v2").id == "customer_cleaner:v2"
        assert await client.flows.list().collect() == [got]


@pytest.mark.parametrize(
    "name",
    [
        "customer_cleaner:",
        "customer_cleaner:latest",
        "customer_cleaner:v1:v2",
        "customer_cleaner: v1",
        "customer_cleaner:v1/../../runs",
        ":v1",
    ],
)
async def test_a_malformed_version_string_is_refused_before_any_request(
    scripted: ScriptedServer, client: AsyncLume, name: str
) -> None:
    with pytest.raises(ValueError, match="name"):
        await client.flows.get(name)
    assert scripted.seen == []


# -- webhook endpoints -----------------------------------------------------------------------------


async def test_an_endpoint_read_by_id_that_answers_another_endpoint_is_refused(
    scripted: ScriptedServer, client: AsyncLume
) -> None:
    scripted.then(Answer(200, _endpoint(OTHER_ID)))
    with anyio.fail_after(10), pytest.raises(ResponseValidationError) as caught:
        await client.webhook_endpoints.get(ENDPOINT_ID)
    assert OTHER_ID in str(caught.value) and ENDPOINT_ID in str(caught.value)
    assert WHSEC not in str(caught.value)
    assert caught.value.request_id == "req_test"


@pytest.mark.parametrize("bad_id", ["wh 1", "wh_1/../../runs", "", "wh_\u00e9"])
async def test_an_endpoint_id_that_could_not_be_sent_back_is_refused(
    scripted: ScriptedServer, client: AsyncLume, bad_id: str
) -> None:
    scripted.then(Answer(201, _endpoint(bad_id)), Answer(200, _page(_endpoint(bad_id))))
    with anyio.fail_after(10):
        with pytest.raises(ResponseValidationError) as made:
            await client.webhook_endpoints.create("https://hooks.example/in", secret=WHSEC)
        with pytest.raises(ResponseValidationError) as listed:
            await client.webhook_endpoints.list().collect()
    for caught in (made, listed):
        assert "id" in str(caught.value) and WHSEC not in str(caught.value)


@pytest.mark.parametrize("answered", [None, OTHER_WHSEC], ids=["missing", "another"])
async def test_a_created_endpoint_must_carry_the_secret_it_was_given(
    scripted: ScriptedServer, client: AsyncLume, answered: str | None
) -> None:
    scripted.then(Answer(201, _endpoint(secret=answered)))
    with anyio.fail_after(10), pytest.raises(ResponseValidationError, match="secret") as caught:
        await client.webhook_endpoints.create("https://hooks.example/in", secret=WHSEC)
    message = str(caught.value)
    assert ENDPOINT_ID in message  # the endpoint was made: its id, to delete it by
    assert WHSEC not in message and OTHER_WHSEC not in message
    assert caught.value.request_id == "req_test"


async def test_a_created_endpoint_without_any_secret_is_refused(
    scripted: ScriptedServer, client: AsyncLume
) -> None:
    scripted.then(Answer(201, _endpoint(secret=None)))
    with anyio.fail_after(10), pytest.raises(ResponseValidationError, match="secret"):
        await client.webhook_endpoints.create("https://hooks.example/in")


async def test_a_created_endpoint_with_a_secret_made_for_it_is_returned(
    scripted: ScriptedServer, client: AsyncLume
) -> None:
    scripted.then(Answer(201, _endpoint(secret=OTHER_WHSEC)), Answer(201, _endpoint()))
    with anyio.fail_after(10):
        made = await client.webhook_endpoints.create("https://hooks.example/in")
        assert made.secret == OTHER_WHSEC
        given = await client.webhook_endpoints.create("https://hooks.example/in", secret=WHSEC)
        assert given.secret == WHSEC


async def test_endpoints_of_the_emulator_pass_every_check(vlume: AsyncLume) -> None:
    with anyio.fail_after(30):
        made = await vlume.webhook_endpoints.create("https://hooks.example/a", secret=WHSEC)
        assert made.secret == WHSEC
        assert (await vlume.webhook_endpoints.get(made.id)).id == made.id
        assert [e.id for e in await vlume.webhook_endpoints.list().collect()] == [made.id]
        flows = await vlume.flows.list().collect()
        assert [await vlume.flows.get(f.versions[-1].id) for f in flows] == flows


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_webhooks_delete_says_which_were_deleted_when_one_fails(as_json: bool) -> None:
    with Emulator(time_scale=100) as emu:
        first = ok_json("webhooks", "create", "http://127.0.0.1:9/a", emu=emu)["id"]
        last = ok_json("webhooks", "create", "http://127.0.0.1:9/b", emu=emu)["id"]
        flag = ("--json",) if as_json else ()
        done = run_cli(*flag, "webhooks", "delete", first, OTHER_ID, last, emu=emu)
        assert done.status == 1
        # Each is tried: one unknown id does not keep the others.
        assert ok_json("webhooks", "list", emu=emu) == []
    if as_json:
        assert '"deleted"' in done.stdout and first in done.stdout and last in done.stdout
        error = done.json_error()
        assert OTHER_ID in error["message"] and error["exit_status"] == 1
    else:
        assert f"deleted {first}" in done.stdout and f"deleted {last}" in done.stdout
        line = done.error_line()
        assert OTHER_ID in line and "404" in line


def test_webhooks_delete_of_one_id_twice_deletes_it_once() -> None:
    with Emulator(time_scale=100) as emu:
        made = ok_json("webhooks", "create", "http://127.0.0.1:9/a", emu=emu)["id"]
        assert ok_json("webhooks", "delete", made, made, emu=emu) == {"deleted": [made]}


def test_webhooks_delete_of_an_unknown_id_alone_fails_as_before() -> None:
    with Emulator(time_scale=100) as emu:
        done = run_cli("webhooks", "delete", OTHER_ID, emu=emu)
    assert done.status == 1 and done.stdout == ""
    assert "404" in done.error_line()


async def test_an_unknown_flow_is_still_not_found(vlume: AsyncLume) -> None:
    with anyio.fail_after(10), pytest.raises(NotFoundError):
        await vlume.flows.get("no_such_flow:v1")


# -- secrets in a failed create's frames -----------------------------------------------------------


def _holding(exc: BaseException, *needles: str) -> list[str]:
    return holding(exc, *needles, skip={__file__})


@pytest.mark.parametrize(
    "answer",
    [
        {**_endpoint(secret=OTHER_WHSEC)},
        {**_endpoint(secret=WHSEC), "events": 5},
        {**_endpoint("wh 1", secret=WHSEC)},
        {"secret": WHSEC},
    ],
    ids=["another secret", "malformed", "bad id", "no id"],
)
async def test_a_refused_create_answer_leaves_no_secret_in_frame_locals(
    scripted: ScriptedServer, client: AsyncLume, answer: dict[str, Any]
) -> None:
    scripted.then(Answer(201, answer))
    with anyio.fail_after(10), pytest.raises(ResponseValidationError) as caught:
        await client.webhook_endpoints.create("https://hooks.example/in", secret=WHSEC)
    assert _holding(caught.value, WHSEC, OTHER_WHSEC) == []
    assert WHSEC not in str(caught.value) and OTHER_WHSEC not in str(caught.value)
