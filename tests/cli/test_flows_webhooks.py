"""``lume flows list|get`` and ``lume webhooks create|list|delete``."""

from __future__ import annotations

from lume_async.testing import Emulator

from .conftest import lume, ok, ok_json


def test_flows_list_names_every_flow_and_its_versions(emu: Emulator) -> None:
    out = ok("flows", "list", emu=emu)
    assert "customer_cleaner" in out
    assert "customer_cleaner:v2" in out
    assert "invoice_mapper:v1" in out


def test_flows_list_json(emu: Emulator) -> None:
    flows = ok_json("flows", "list", emu=emu)
    assert [flow["name"] for flow in flows] == ["customer_cleaner", "invoice_mapper"]
    assert [v["id"] for v in flows[0]["versions"]] == ["customer_cleaner:v1", "customer_cleaner:v2"]


def test_flows_get_by_name_or_version(emu: Emulator) -> None:
    assert ok_json("flows", "get", "invoice_mapper", emu=emu)["name"] == "invoice_mapper"
    assert ok_json("flows", "get", "invoice_mapper:v1", emu=emu)["name"] == "invoice_mapper"
    assert "invoice_mapper:v1" in ok("flows", "get", "invoice_mapper", emu=emu)


def test_flows_get_of_an_unknown_flow_is_one_error_line(emu: Emulator) -> None:
    done = lume("flows", "get", "nope", emu=emu)
    assert done.status == 1
    assert "404" in done.error_line()


def test_webhooks_create_list_delete(emu: Emulator) -> None:
    made = ok_json(
        "webhooks", "create", "http://127.0.0.1:9/hook", "--event", "run.failed", emu=emu
    )
    assert made["events"] == ["run.failed"]
    assert made["secret"].startswith("whsec_")
    listed = ok_json("webhooks", "list", emu=emu)
    assert [(e["id"], e["url"]) for e in listed] == [(made["id"], "http://127.0.0.1:9/hook")]
    assert "secret" not in listed[0]
    assert ok_json("webhooks", "delete", made["id"], emu=emu) == {"deleted": [made["id"]]}
    assert ok_json("webhooks", "list", emu=emu) == []


def test_webhooks_create_shows_the_secret_to_verify_with(emu: Emulator) -> None:
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
    out = ok("webhooks", "create", "http://127.0.0.1:9/h", "--secret", secret, emu=emu)
    assert secret in out
    assert "run.succeeded" in out


def test_webhooks_create_with_an_unknown_event_is_a_usage_error(emu: Emulator) -> None:
    done = lume("webhooks", "create", "http://127.0.0.1:9/h", "--event", "run.nope", emu=emu)
    assert done.status == 2


def test_webhooks_create_with_a_bad_url_names_the_argument(emu: Emulator) -> None:
    done = lume("webhooks", "create", "not a url", emu=emu)
    assert done.status == 2
    assert done.error_line().startswith("error: URL must be")


def test_webhooks_delete_of_a_malformed_id_deletes_none(emu: Emulator) -> None:
    made = ok_json("webhooks", "create", "http://127.0.0.1:9/hook", emu=emu)
    done = lume("webhooks", "delete", made["id"], "not an id", emu=emu)
    assert done.status == 2
    assert "ENDPOINT_ID" in done.error_line()
    assert len(ok_json("webhooks", "list", emu=emu)) == 1
