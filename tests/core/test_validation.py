"""Bad arguments, as families: any value of a wrong type is a TypeError, any value of the right
type outside what is allowed a ValueError; either names the argument and the value's type, and
is raised before any request.

The client points at a port nobody listens on, so a call that reached the network would end in
an APIConnectionError instead.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, RetryPolicy, RunRequest, Timeout
from lume_async.webhooks import ReplayGuard, WebhookReceiver, verify

from .._profiles import examples

RUN_ID = "run_01HY0000000000000000000000"
FLOW = "customer_cleaner:v1"
PATH = "s3://bucket/batch_001"

Call = Callable[[AsyncLume, Any], Awaitable[Any] | Any]

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.floats()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2),
    st.complex_numbers(),
    st.datetimes(),
    st.builds(object),
)


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text(value: Any) -> bool:
    return isinstance(value, str)


def secrets(value: Any) -> bool:
    """One secret, or a list of them while one is being rotated out."""
    many = isinstance(value, list | tuple | set) and all(isinstance(s, str) for s in value)
    return isinstance(value, str) or many


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


# (argument, the call with the value in that argument, which types it takes)
TYPED: list[tuple[str, Call, Callable[[Any], bool]]] = [
    ("run_id", lambda c, v: c.runs.get(v), text),
    ("run_id", lambda c, v: c.runs.cancel(v), text),
    ("page", lambda c, v: c.runs.results_page(RUN_ID, page=v), integer),
    ("page_size", lambda c, v: c.runs.results_page(RUN_ID, page_size=v), integer),
    ("page_size", lambda c, v: c.runs.rejects(RUN_ID, page_size=v), integer),
    ("page_size", lambda c, v: c.runs.list(page_size=v), integer),
    ("page_size", lambda c, v: c.flows.list(page_size=v), integer),
    ("order_by", lambda c, v: c.runs.list(order_by=v), text),
    ("cursor", lambda c, v: c.runs.list(cursor=v), optional(text)),
    ("source_path", lambda c, v: c.runs.list(source_path=v), optional(text)),
    ("descending", lambda c, v: c.runs.list(descending=v), lambda v: isinstance(v, bool)),
    (
        "created_after",
        lambda c, v: c.runs.list(created_after=v),
        optional(datetime.__instancecheck__),
    ),
    ("flow_version", lambda c, v: c.run(v, PATH), text),
    ("source_path", lambda c, v: c.run(FLOW, v), optional(text)),
    ("label", lambda c, v: c.run(FLOW, PATH, label=v), optional(text)),
    ("force_rerun", lambda c, v: c.run(FLOW, PATH, force_rerun=v), lambda v: isinstance(v, bool)),
    ("idempotency_key", lambda c, v: c.run(FLOW, PATH, idempotency_key=v), optional(text)),
    (
        "idempotency_namespace",
        lambda c, v: c.run(FLOW, PATH, idempotency_namespace=v),
        optional(text),
    ),
    (
        "idempotency_namespace",
        lambda c, v: c.runs.create_many([], idempotency_namespace=v),
        optional(text),
    ),
    (
        "idempotency_namespace",
        lambda c, v: RunRequest(FLOW, source_path=PATH).with_namespace(v),
        text,
    ),
    (
        "run_metadata",
        lambda c, v: c.run(FLOW, PATH, run_metadata=v),
        optional(dict.__instancecheck__),
    ),
    ("label", lambda c, v: c.runs.update(RUN_ID, label=v), optional(text)),
    ("timeout", lambda c, v: c.runs.wait_all([], timeout=v), optional(number)),
    ("poll_interval", lambda c, v: c.runs.wait_all([], poll_interval=v), number),
    ("timeout", lambda c, v: c.process(FLOW, PATH, timeout=v), optional(number)),
    ("concurrency", lambda c, v: c.runs.cancel_many([RUN_ID], concurrency=v), integer),
    ("name", lambda c, v: c.flows.get(v), text),
    ("endpoint_id", lambda c, v: c.webhook_endpoints.get(v), text),
    ("url", lambda c, v: c.webhook_endpoints.create(v), text),
    ("timeout", lambda c, v: c.with_options(timeout=v), lambda v: v is None or number(v)),
    ("max_retries", lambda c, v: c.with_options(max_retries=v), optional(integer)),
    ("retry", lambda c, v: c.with_options(retry=v), optional(RetryPolicy.__instancecheck__)),
    ("max_connections", lambda c, v: AsyncLume(api_key="k", max_connections=v), integer),
    ("clock", lambda c, v: AsyncLume(api_key="k", clock=v), lambda v: v is None),
    ("max_retries", lambda c, v: RetryPolicy(max_retries=v), integer),
    ("base_delay", lambda c, v: RetryPolicy(base_delay=v), optional(number)),
    ("total", lambda c, v: Timeout(total=v), optional(number)),
    ("tolerance", lambda c, v: verify(b"{}", {}, "s", tolerance=v), number),
    ("secret", lambda c, v: WebhookReceiver(v), secrets),
    ("path", lambda c, v: WebhookReceiver("s", path=v), text),
    ("ttl", lambda c, v: ReplayGuard(ttl=v), number),
]


def type_names(value: Any) -> set[str]:
    """The value's type, and for a container the types of its items (an item may be to blame)."""
    names = {type(value).__name__}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | dict):
        names |= {type(item).__name__ for item in value}
    return names


def call(loop: asyncio.Runner, lume: AsyncLume, fn: Call, value: Any) -> None:
    async def attempt() -> None:
        result = fn(lume, value)
        if isinstance(result, Awaitable):
            await result

    loop.run(attempt())


def names_the_type(exc: BaseException, value: Any) -> bool:
    return any(name in str(exc) for name in type_names(value))


@pytest.mark.parametrize(
    ("argument", "fn", "takes"),
    [pytest.param(*row, id=f"{i}-{row[0]}") for i, row in enumerate(TYPED)],
)
@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=ANY_VALUE)
def test_a_value_of_a_wrong_type_is_a_type_error_naming_the_argument_and_type(
    loop: asyncio.Runner,
    offline: AsyncLume,
    argument: str,
    fn: Call,
    takes: Callable[[Any], bool],
    value: Any,
) -> None:
    if takes(value):
        return  # the right type: its values are the next test's business
    with pytest.raises(TypeError, match=rf"\b{re.escape(argument)}\b") as caught:
        call(loop, offline, fn, value)
    assert names_the_type(caught.value, value), str(caught.value)


# (argument, the call, values of the right type that are not allowed)
OUT_OF_RANGE: list[tuple[str, Call, st.SearchStrategy[Any]]] = [
    (
        "page_size",
        lambda c, v: c.runs.logs(RUN_ID, page_size=v),
        st.integers().filter(lambda n: not 1 <= n <= 100),
    ),
    ("page", lambda c, v: c.runs.results_page(RUN_ID, page=v), st.integers(max_value=0)),
    ("concurrency", lambda c, v: c.runs.create_many([], concurrency=v), st.integers(max_value=0)),
    (
        "max_connections",
        lambda c, v: AsyncLume(api_key="k", max_connections=v),
        st.integers(max_value=0),
    ),
    (
        "timeout",
        lambda c, v: c.runs.wait_all([], timeout=v),
        st.floats(max_value=-1e-9) | st.just(math.nan),
    ),
    (
        "poll_interval",
        lambda c, v: c.runs.wait_all([], poll_interval=v),
        st.floats().filter(lambda x: not (math.isfinite(x) and x > 0)),
    ),
    (
        "timeout",
        lambda c, v: c.with_options(timeout=v),
        st.floats().filter(lambda x: not (math.isfinite(x) and x > 0)),
    ),
    (
        "run_id",
        lambda c, v: c.runs.get(v),
        st.text().filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_\-]{1,128}", s)),
    ),
    (
        "flow_version",
        lambda c, v: c.run(v, PATH),
        st.text().filter(lambda s: not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*:v[0-9]+", s)),
    ),
    (
        "idempotency_key",
        lambda c, v: RunRequest(FLOW, source_path=PATH, idempotency_key=v),
        st.text().filter(lambda s: not re.fullmatch(r"[!-~]{1,255}", s)),
    ),
    (
        "idempotency_namespace",
        lambda c, v: c.runs.create(FLOW, PATH, idempotency_namespace=v),
        st.text().filter(lambda s: not re.fullmatch(r"[!-~]{1,190}", s)),
    ),
    (
        "idempotency_namespace",
        lambda c, v: c.runs.create_many([], idempotency_namespace=v),
        st.text().filter(lambda s: not re.fullmatch(r"[!-~]{1,190}", s)),
    ),
    (
        "status",
        lambda c, v: c.runs.list(status=v),
        st.text().filter(
            lambda s: (
                s.upper()
                not in {
                    "INCOMPLETE",
                    "CREATED",
                    "PENDING",
                    "RUNNING",
                    "SYNCING_SOURCE",
                    "TRANSFORMING",
                    "SYNCING_TARGET",
                    "SUCCEEDED",
                    "PARTIAL_FAILED",
                    "FAILED",
                    "CRASHED",
                    "CANCELED",
                }
            )
        ),
    ),
    (
        "order_by",
        lambda c, v: c.runs.list(order_by=v),
        st.just("updated_at") | st.text().filter(lambda s: s != "created_at"),
    ),
    (
        "cursor",
        lambda c, v: c.runs.list(cursor=v),
        st.text().filter(lambda s: not (0 < len(s) <= 4096 and s.isascii() and s.isprintable())),
    ),
    ("source_path", lambda c, v: c.runs.list(source_path=v), st.just("")),
    ("tolerance", lambda c, v: verify(b"{}", {}, "s", tolerance=v), st.floats(max_value=-1e-9)),
    ("ttl", lambda c, v: ReplayGuard(ttl=v), st.floats(max_value=0)),
]


@pytest.mark.parametrize(
    ("argument", "fn", "values"),
    [pytest.param(*row, id=f"{i}-{row[0]}") for i, row in enumerate(OUT_OF_RANGE)],
)
@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_value_out_of_range_is_a_value_error_naming_the_argument_and_type(
    loop: asyncio.Runner,
    offline: AsyncLume,
    argument: str,
    fn: Call,
    values: st.SearchStrategy[Any],
    data: st.DataObject,
) -> None:
    value = data.draw(values)
    with pytest.raises(ValueError, match=rf"\b{re.escape(argument)}\b") as caught:
        call(loop, offline, fn, value)
    assert names_the_type(caught.value, value), str(caught.value)
