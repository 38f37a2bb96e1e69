"""A RunRequest's idempotency key: its own from construction, given, or derived from a namespace."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lume_async import RunRequest

KEY = re.compile(r"[!-~]{1,255}")  # what the service accepts: printable ASCII, no spaces
FLOW = "customer_cleaner:v1"
NS = "nightly-2026-11-28"

json_leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
rows = st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=4)
# Every field that changes what the service is asked to do.
request_fields = st.fixed_dictionaries(
    {
        "flow_version": st.sampled_from([FLOW, "customer_cleaner:v2", "invoice_mapper:v1"]),
        "source": st.one_of(
            st.builds(lambda p: {"source_path": p}, st.sampled_from(["s3://b/1", "s3://b/2"])),
            st.builds(lambda r: {"source_data": r}, rows),
        ),
        "run_metadata": st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        "force_rerun": st.booleans(),
        "label": st.none() | st.sampled_from(["", "nightly", "rerun"]),
        "tags": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
        "run_owner": st.none() | st.sampled_from(["ana@example.com", "bo@example.com"]),
        "monitoring_by": st.lists(
            st.sampled_from(["ana@example.com", "cy@example.com"]), max_size=2
        ),
        "managing_groups": st.lists(st.sampled_from(["analysts", "ops"]), max_size=2),
    }
)
namespaces = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=190
)


def build(fields: dict[str, Any], **extra: Any) -> RunRequest:
    rest = {k: v for k, v in fields.items() if k != "source"}
    return RunRequest(**rest, **fields["source"], **extra)


# --- a key of its own -----------------------------------------------------------------------------


def test_a_request_built_without_a_key_has_one_the_service_accepts() -> None:
    request = RunRequest(FLOW, source_path="s3://b/1")
    assert KEY.fullmatch(request.idempotency_key)


def test_the_key_stays_with_the_object() -> None:
    request = RunRequest(FLOW, source_path="s3://b/1")
    assert {request.idempotency_key for _ in range(3)} == {request.idempotency_key}


def test_two_requests_built_alike_have_different_keys_but_compare_equal() -> None:
    one, two = (RunRequest(FLOW, source_path="s3://b/1") for _ in range(2))
    assert one.idempotency_key != two.idempotency_key
    assert one == two


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_keys_of_its_own() -> None:
    """Keys come from the OS's random source, which a fork does not copy: no state to share."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its keys, to the parent
        keys = " ".join(RunRequest(FLOW, source_path="s3://b/1").idempotency_key for _ in range(50))
        os.write(write, keys.encode())
        os._exit(0)
    os.close(write)
    parent = {RunRequest(FLOW, source_path="s3://b/1").idempotency_key for _ in range(50)}
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)

    assert len(child) == 50 and len(parent) == 50
    assert not child & parent
    assert all(KEY.fullmatch(key) for key in child | parent)


def test_the_key_survives_pickling_for_worker_processes() -> None:
    request = RunRequest(FLOW, source_data=[{"name": "Ada"}], label="x")
    copy = pickle.loads(pickle.dumps(request))
    assert copy.idempotency_key == request.idempotency_key
    assert copy == request


def test_a_given_key_is_used_as_it_is() -> None:
    request = RunRequest(FLOW, source_path="s3://b/1", idempotency_key="batch-7/item-3")
    assert request.idempotency_key == "batch-7/item-3"
    assert request != RunRequest(FLOW, source_path="s3://b/1", idempotency_key="other")


def test_with_idempotency_key_and_evolve_set_the_key() -> None:
    request = RunRequest(FLOW, source_path="s3://b/1")
    assert request.with_idempotency_key("k-1").idempotency_key == "k-1"
    assert attrs.evolve(request, idempotency_key="k-2").idempotency_key == "k-2"
    assert request.with_idempotency_key("k-1").source_path == "s3://b/1"


def test_evolving_another_field_makes_another_request_with_a_fresh_key() -> None:
    request = RunRequest(FLOW, source_path="s3://b/1")
    other = attrs.evolve(request, source_path="s3://b/2")
    assert other.idempotency_key != request.idempotency_key


def test_evolving_another_field_keeps_a_given_key() -> None:
    request = RunRequest(FLOW, source_path="s3://b/1", idempotency_key="mine")
    assert attrs.evolve(request, label="x").idempotency_key == "mine"


@pytest.mark.parametrize("key", ["has space", "tab\there", "new\nline", "", "k" * 256, "clé"])
def test_a_key_the_service_would_refuse_is_a_value_error(key: str) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        RunRequest(FLOW, source_path="s3://b/1", idempotency_key=key)
    with pytest.raises(ValueError, match="idempotency_key"):
        RunRequest(FLOW, source_path="s3://b/1").with_idempotency_key(key)


def test_the_repr_shows_the_key_and_not_the_rows() -> None:
    request = RunRequest(FLOW, source_data=[{"n": i} for i in range(500)], label="x")
    text = repr(request)
    assert request.idempotency_key in text
    assert "<500 rows>" in text and "'n'" not in text


# --- keys derived from a namespace ----------------------------------------------------------------


@given(fields=request_fields, namespace=namespaces)
def test_a_namespace_derives_the_same_valid_key_for_the_same_request(
    fields: dict[str, Any], namespace: str
) -> None:
    one = build(fields).with_namespace(namespace)
    two = build(fields).with_namespace(namespace)
    assert one.idempotency_key == two.idempotency_key
    assert KEY.fullmatch(one.idempotency_key)
    assert one.idempotency_key.startswith(namespace + ":")


@given(a=request_fields, b=request_fields)
def test_requests_that_ask_for_different_things_never_share_a_derived_key(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    first, second = build(a).with_namespace(NS), build(b).with_namespace(NS)
    same_body = first.to_wire() == second.to_wire()
    assert (first.idempotency_key == second.idempotency_key) is same_body


@given(fields=request_fields)
def test_another_namespace_derives_another_key(fields: dict[str, Any]) -> None:
    request = build(fields)
    assert (
        request.with_namespace("nightly-1").idempotency_key
        != request.with_namespace("nightly-2").idempotency_key
    )


def test_rows_with_keys_in_another_order_are_the_same_request() -> None:
    one = RunRequest(FLOW, source_data=[{"a": 1, "b": 2}]).with_namespace(NS)
    two = RunRequest(FLOW, source_data=[{"b": 2, "a": 1}]).with_namespace(NS)
    assert one.idempotency_key == two.idempotency_key


def test_rows_in_another_order_are_another_request() -> None:
    one = RunRequest(FLOW, source_data=[{"a": 1}, {"a": 2}]).with_namespace(NS)
    two = RunRequest(FLOW, source_data=[{"a": 2}, {"a": 1}]).with_namespace(NS)
    assert one.idempotency_key != two.idempotency_key


def test_a_derived_key_is_the_same_in_another_interpreter() -> None:
    code = (
        "from lume_async import RunRequest;"
        "print(RunRequest('customer_cleaner:v1', source_data=[{'b': 2, 'a': [1, 'x']}],"
        " label='l', tags=['t']).with_namespace('ns-1').idempotency_key)"
    )
    here = RunRequest(FLOW, source_data=[{"a": [1, "x"], "b": 2}], label="l", tags=["t"])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == here.with_namespace("ns-1").idempotency_key


def test_a_given_key_wins_over_a_namespace() -> None:
    request = RunRequest(FLOW, source_path="s3://b/1", idempotency_key="mine")
    assert request.with_namespace(NS).idempotency_key == "mine"


@pytest.mark.parametrize(
    ("namespace", "error"),
    [
        ("", ValueError),
        ("has space", ValueError),
        ("n" * 191, ValueError),
        ("caf\u00e9", ValueError),
        ("line\n", ValueError),
        (7, TypeError),
        (b"bytes", TypeError),
    ],
)
def test_a_bad_namespace_is_an_error_naming_it(namespace: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="idempotency_namespace"):
        RunRequest(FLOW, source_path="s3://b/1").with_namespace(namespace)


def test_the_longest_namespace_still_makes_a_valid_key() -> None:
    key = RunRequest(FLOW, source_path="s3://b/1").with_namespace("n" * 190).idempotency_key
    assert len(key) == 255 and KEY.fullmatch(key)
