"""A run's metadata reads back exactly as the service sent it, however it was kept and copied.

Kept shaped, deflated or parsed; copied by pickle at every protocol, ``copy``, ``deepcopy`` or
``attrs.evolve``; read first by many threads at once; carried by any call over the wire: every
section reads as the reference decoder (cattrs) builds it from the JSON sent, of the same types
(an int is not a float, ``-0.0`` keeps its sign, a ``+05:30`` time its offset), or is refused alike.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import operator
import pickle
import threading
from datetime import datetime
from typing import Any, get_type_hints

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_async import AsyncLume, ResponseValidationError
from lume_async._converter import converter, decode_run, run_from_obj
from lume_async.models import PipelineMetadata, ResultsMetadata, RunData, RunMetadata, StageError
from lume_async.testing import Emulator, VirtualClock

from .._profiles import examples
from ._scripted import Answer, ScriptedServer, Seen

RUN_ID = "run_01M8HTCDSS19EPQAMMAQHYE1M2"
FLOW = "customer_cleaner:v1"
PATH = "s3://bucket/batch_001"
AT = "2026-11-28T19:33:45.601841Z"
# Each section of RunMetadata, and its type (RunInfo | None, ..., tuple[StageError, ...]).
SECTIONS = {f.alias: get_type_hints(RunMetadata)[f.name] for f in attrs.fields(RunMetadata)[:5]}
# Where each of the eighteen values of the documented shape sits, in order.
SHAPE = (
    "run.status run.started_at run.finished_at pipeline.created_at pipeline.completed_at "
    "pipeline.duration_seconds pipeline.stages.sync_source_seconds pipeline.stages."
    "transform_seconds pipeline.stages.sync_target_seconds results.input_rows results.mapped_rows "
    "results.rejected_rows results.target_locations validation.tests_executed validation."
    "tests_failed validation.error_rate validation.top_errors errors"
)
SLOTS = [tuple(where.split(".")) for where in SHAPE.split(" ")]

# --- what a service may send ----------------------------------------------------------------------

edge_numbers = st.sampled_from(
    [0, -0.0, 0.0, 1, 1.0, 1e308, -1e308, 5e-324, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]
)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=8) | st.sampled_from(
    ["", "é", "\u2028", "😀", "\x00", "run_", RUN_ID, FLOW, PATH]
)
stamps = st.sampled_from([AT, "2026-11-28T19:33:45+05:30", "2026-11-28T19:33:45", "2026-11-28"])
finite = st.floats(allow_nan=False, allow_infinity=False)
leaves = st.none() | st.booleans() | edge_numbers | finite | texts | stamps | st.just("yesterday")
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["error_code", "field", "count", "stage", "message",
                                       "mapped", "rejects", "x"]), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
numbers = st.none() | edge_numbers | finite
counts = st.none() | st.integers(0, 2**64 - 1)


def record(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


stage_error = record(stage=texts, error_code=texts, message=texts)
top_error = record(error_code=texts, field=texts, count=counts)
locations = st.none() | record(mapped=texts, rejects=texts)
# A value of the type each slot documents.
VALID = [st.none() | st.sampled_from(["SUCCEEDED", "TRANSFORMING", "INCOMPLETE", "FUTURE"])]
VALID += [st.none() | stamps] * 4 + [numbers] * 4 + [counts] * 3 + [locations, counts, counts]
VALID += [numbers, st.lists(top_error, max_size=2), st.lists(stage_error, max_size=2)]


@st.composite
def values(draw: st.DrawFn) -> tuple[Any, ...]:
    """Eighteen values: of their documented types, the last nine empty for a run in flight, and
    here and there any JSON value instead."""
    vals = list(draw(st.tuples(*VALID)))
    if draw(st.booleans()):
        vals[9:] = [None] * 7 + [[], []]
    for i in draw(st.lists(st.integers(0, len(SLOTS) - 1), max_size=2)):
        vals[i] = draw(json_values)
    return tuple(vals)


def shaped(vals: tuple[Any, ...], run_id: Any = RUN_ID, path: Any = PATH) -> dict[str, Any]:
    """Metadata of the documented shape, keys in the documented order, with these values."""
    metadata: dict[str, Any] = {"run": {"run_id": run_id, "flow_version": FLOW}}
    metadata["run"]["source_path"] = path
    for where, value in zip(SLOTS, vals, strict=True):
        section = metadata
        for key in where[:-1]:
            section = section.setdefault(key, {})
        section[where[-1]] = value
    return metadata


@st.composite
def metadata_and_run(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run as an answer carries it: metadata shaped, nearly shaped, or reordered."""
    path = draw(st.sampled_from([PATH, None, "absent"]))
    metadata = shaped(draw(values()), path=None if path == "absent" else path)
    change = draw(st.sampled_from(["", "order", "drop", "add", "strings", "top", ""]))
    rnd = draw(st.randoms(use_true_random=False))
    where = rnd.choice(SLOTS)
    section = functools.reduce(operator.getitem, where[:-1], metadata)
    if change == "order":
        items = list(section.items())
        rnd.shuffle(items)
        section.clear()
        section.update(items)
    elif change == "drop":
        del section[where[-1]]
    elif change == "add":
        section["x-" + where[-1]] = draw(json_values)
    elif change == "strings":
        key = rnd.choice(["run_id", "flow_version", "source_path"])
        metadata["run"][key] = draw(st.sampled_from(["run_other", None, 7, "", RUN_ID + " "]))
    elif change == "top":
        metadata[draw(st.sampled_from(["x", "errors", "run"]))] = draw(json_values)
    run = {"id": RUN_ID, "status": "SUCCEEDED", "flow_version": FLOW, "source_path": path}
    run |= {"created_at": AT, "updated_at": AT, "metadata": metadata}
    if path == "absent":
        del run["source_path"]
    return metadata, run


# --- comparing ------------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down, floats by their repr (``-0.0`` is not 0.0)."""
    if type(a) is not type(b):
        return False
    if attrs.has(type(a)):
        return all(same(getattr(a, f.alias), getattr(b, f.alias)) for f in attrs.fields(type(a)))
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


def expected(metadata: Any) -> dict[str, Any]:
    """What the reference decoder makes of each section sent, or the error it refuses it with."""
    out: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        try:
            out[name] = converter.structure(metadata.get(name), cls)
        except Exception as exc:  # the refusal is the expected answer
            out[name] = type(exc)
    return out


def sections(metadata: RunMetadata | None) -> dict[str, Any]:
    """Each section of ``metadata`` as read, or the class of the error reading it raised."""
    assert metadata is not None
    return {name: _section(metadata, name) for name in SECTIONS}


def _section(metadata: RunMetadata, name: str) -> Any:
    try:
        return getattr(metadata, name)
    except ResponseValidationError:
        return ResponseValidationError


def assert_as_sent(metadata: RunMetadata | None, sent: dict[str, Any]) -> None:
    got, want = sections(metadata), expected(sent)
    for name in SECTIONS:
        if isinstance(want[name], type):  # refused: reading the section raises
            assert got[name] is ResponseValidationError, name
        else:
            assert same(got[name], want[name]), (name, got[name], want[name])


def keepings(run: dict[str, Any]) -> dict[str, RunData]:
    """The run decoded every way the SDK decodes one: each kept as its path keeps it."""
    body = orjson.dumps(run)
    return {
        "get (parsed)": decode_run(body),
        "create (packed)": decode_run(body, compact=True),
        "poll or listing item (packed)": run_from_obj(orjson.loads(body)),
        "item kept parsed": run_from_obj(orjson.loads(body), compact=False),
    }


# --- every keeping, every copy --------------------------------------------------------------------


# 100 examples, the most tests/README.md allows a test that does not count what its draws reach:
# each example is four keepings of one run, each section checked against cattrs.
@settings(max_examples=examples(100))
@given(metadata_and_run())
def test_metadata_reads_back_as_sent_however_it_was_kept(case: Any) -> None:
    sent, run = case
    for name, decoded in keepings(run).items():
        assert decoded.metadata is not None, name
        assert_as_sent(decoded.metadata, sent)


def copies(run: RunData) -> dict[str, RunData]:
    made = {f"pickle {p}": pickle.loads(pickle.dumps(run, protocol=p)) for p in range(6)}
    made |= {"copy": copy.copy(run), "deepcopy": copy.deepcopy(run)}
    made["evolve"] = attrs.evolve(run, label="relabelled")
    # metadata.run says what the service recorded, whatever strings the run is given
    made["evolve its strings"] = attrs.evolve(
        run, id="run_01X", flow_version="f:v9", source_path=""
    )
    return made


@settings(max_examples=examples(100))
@given(metadata_and_run(), st.booleans())
def test_metadata_reads_back_as_sent_from_every_copy_of_a_run_read_or_not(
    case: Any, read_first: bool
) -> None:
    sent, run = case
    for decoded in keepings(run).values():
        if read_first:
            assert decoded.metadata is not None
        for made in copies(decoded).values():
            assert_as_sent(made.metadata, sent)


CHANGES = [("run", None), ("pipeline", PipelineMetadata(duration_seconds=1.5))]
CHANGES += [("results", ResultsMetadata(mapped_rows=1)), ("validation", None)]
CHANGES += [("errors", (StageError(stage="x"),))]


@pytest.mark.parametrize("compact", [True, False], ids=["packed", "parsed"])
@pytest.mark.parametrize(("section", "value"), CHANGES)
def test_metadata_read_from_an_answer_evolves_like_any_model(
    compact: bool, section: str, value: Any
) -> None:
    """``attrs.evolve`` gives a changed copy (models/__init__.py): the section named changes,
    the others stay as sent, as for metadata built by hand."""
    run = metadata_and_run_example()
    metadata = decode_run(orjson.dumps(run), compact=compact).metadata
    assert metadata is not None
    by_hand = RunMetadata(**{name: getattr(metadata, name) for name in SECTIONS})

    evolved = attrs.evolve(metadata, **{section: value})

    assert getattr(evolved, section) == value
    assert evolved == attrs.evolve(by_hand, **{section: value})
    assert dict(evolved) == {**dict(metadata), section: value}
    assert evolved[section] == value
    assert pickle.loads(pickle.dumps(evolved)) == evolved
    assert metadata == by_hand  # the original is untouched


def metadata_and_run_example() -> dict[str, Any]:
    vals = ("PARTIAL_FAILED", AT, AT, AT, AT, 2.0, 0.6, 0.8, 0.4, 5, 3, 2)
    vals += ({"mapped": "lume://m", "rejects": "lume://r"}, 20, 2, 0.1)
    vals += ([{"error_code": "empty_value", "field": "full_name", "count": 1}], [])
    run = {"id": RUN_ID, "status": "PARTIAL_FAILED", "flow_version": FLOW, "source_path": PATH}
    return run | {"created_at": AT, "updated_at": AT, "metadata": shaped(vals)}


@settings(max_examples=examples(100))
@given(metadata_and_run())
def test_runs_compare_hash_and_print_alike_read_or_not_and_kept_either_way(case: Any) -> None:
    _, run = case
    fresh, reference = keepings(run), keepings(run)
    for decoded in reference.values():
        assert decoded.metadata is not None  # read: the others are compared unread
    first = reference["get (parsed)"]
    for name, decoded in fresh.items():
        assert decoded == first, name
        assert repr(decoded) == repr(first), name
        metadata = decoded.metadata
        assert metadata is not None and metadata == first.metadata
        assert hash(metadata) == hash(first.metadata)


@pytest.mark.parametrize("length", [510, 511, 512, 513, 514])
def test_shaped_metadata_around_512_bytes_of_values_reads_back_as_sent(length: int) -> None:
    run = metadata_and_run_example()
    metadata = run["metadata"]
    errors: list[Any] = [{"stage": "transform", "error_code": "x", "message": ""}]
    metadata["errors"] = errors
    errors[0]["message"] = "m" * (length - len(orjson.dumps(_values_of(metadata))))
    assert len(orjson.dumps(_values_of(metadata))) == length

    packed = run_from_obj(orjson.loads(orjson.dumps(run)))

    assert (packed._metadata.__class__ is tuple) == (length <= 512)  # shaped
    for decoded in (packed, *keepings(run).values()):
        assert_as_sent(decoded.metadata, metadata)


def _values_of(metadata: dict[str, Any]) -> list[Any]:
    return [functools.reduce(operator.getitem, where, metadata) for where in SLOTS]


@pytest.mark.parametrize("kind", ["shaped", "deflated", "parsed"])
def test_many_threads_reading_a_run_first_all_get_the_metadata_sent(kind: str) -> None:
    run = metadata_and_run_example()
    if kind == "deflated":
        run["metadata"]["x-extra"] = [1, 2.5, None]
    sent = run["metadata"]
    for _ in range(20):
        decoded = decode_run(orjson.dumps(run), compact=kind != "parsed")
        if kind != "parsed":
            assert (decoded._metadata.__class__ is tuple) == (kind == "shaped")
        start, got = threading.Barrier(16), []
        threads = [threading.Thread(target=_read_at, args=(decoded, start, got)) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert len(got) == 16
        want = sections(decode_run(orjson.dumps(run)).metadata)
        assert all(all(same(g[n], want[n]) for n in SECTIONS) for g in got)
        assert_as_sent(decoded.metadata, sent)
        assert decoded._metadata_json is None and decoded.metadata is decoded.metadata


def _read_at(run: RunData, start: threading.Barrier, got: list[Any]) -> None:
    start.wait(timeout=10)  # all threads read at once: each may be first
    got.append(sections(run.metadata))


# --- over the wire: every path that carries a run -------------------------------------------------


async def every_path(run: dict[str, Any]) -> dict[str, RunMetadata | None]:
    """The run's metadata as each public call that carries a run hands it over."""

    def respond(seen: Seen) -> Answer:  # PENDING when created, SUCCEEDED after: raw bytes
        if seen.method == "POST" and seen.path == "/v1/runs":
            return Answer(201, orjson.dumps({**run, "status": "PENDING"}))
        if seen.path.startswith(("/v1/runs/batch-get", "/v1/runs?")):  # with no next page
            return Answer(200, b'{"items":[' + orjson.dumps(run) + b'],"next_cursor":null}')
        return Answer(200, orjson.dumps(run))

    async with ScriptedServer() as server:
        server.respond = respond
        clock = VirtualClock()  # the waits take no real time
        async with AsyncLume(api_key="k", base_url=server.url, clock=clock) as lume:
            created = await lume.runs.create(FLOW, PATH)
            at_create = created.data  # kept before the wait moves the handle on
            waited = await (await lume.runs.create(FLOW, PATH)).wait(timeout=60, poll_interval=1)
            all_waited = await lume.runs.wait_all([created], timeout=60, poll_interval=1)
            many = await lume.runs.get_many([RUN_ID])
            return {
                "create": at_create.metadata,
                "get": (await lume.runs.get(RUN_ID)).metadata,
                "wait (poller)": waited.metadata,
                "wait_all (poller)": all_waited[0].metadata,
                "runs.wait": (await lume.runs.wait(RUN_ID, timeout=60)).metadata,
                "batch_get": (await lume.runs.batch_get([RUN_ID]))[RUN_ID].metadata,
                "get_many": many[0].unwrap().metadata,
                "list": (await lume.runs.list().collect())[0].metadata,
                "refresh": (await created.refresh()).metadata,
            }


@settings(max_examples=examples(15))
@given(metadata_and_run())
def test_every_path_over_the_wire_hands_over_the_metadata_sent(
    loop: asyncio.Runner, case: Any
) -> None:
    sent, run = case
    for path, metadata in loop.run(every_path(run)).items():
        assert metadata is not None, path
        assert_as_sent(metadata, sent)


@pytest.mark.parametrize("value", [b"18446744073709551616", b"-9223372036854775809", b"1.5"])
def test_a_row_count_no_int_of_64_bits_holds_is_refused_on_every_path_never_read_wrong(
    loop: asyncio.Runner, value: bytes
) -> None:
    """orjson reads an integer past 64 bits as a float: such a count is refused like any other
    non-integer, the same way however the run was kept, never handed over rounded."""
    run = metadata_and_run_example()
    body = orjson.dumps(run).replace(b'"input_rows":5', b'"input_rows":' + value)
    assert body.count(value) == 1
    wired = orjson.loads(body)

    for metadata in loop.run(every_path(wired)).values():
        assert metadata is not None and metadata.run is not None
        with pytest.raises(ResponseValidationError, match=r"\$\.metadata\.results\.input_rows"):
            metadata.results  # noqa: B018
        assert_as_sent(metadata, run["metadata"] | {"results": wired["metadata"]["results"]})


def test_escaped_unicode_reads_back_as_sent_and_a_lone_surrogate_is_refused_not_altered() -> None:
    """JSON escapes arrive as the characters they name (a surrogate pair as one character); a
    lone surrogate, which orjson does not parse, fails the answer with ResponseValidationError
    rather than reaching the metadata replaced or dropped."""
    run = metadata_and_run_example()
    run["metadata"]["errors"] = [{"stage": "transform", "error_code": "x", "message": "MSG"}]
    body = orjson.dumps(run)
    escaped = body.replace(b"MSG", rb"\u00e9\ud83d\ude00\u2028\\\"\u0000")
    for compact in (True, False):
        metadata = decode_run(escaped, compact=compact).metadata
        assert metadata is not None
        assert metadata.errors[0].message == 'é😀\u2028\\"\x00'
        assert metadata == decode_run(orjson.dumps(orjson.loads(escaped)), compact=compact).metadata
        for lone in (rb"\ud800", rb"\udfff", rb"a\ud83d"):
            with pytest.raises(ResponseValidationError, match="not valid JSON"):
                decode_run(body.replace(b"MSG", lone), compact=compact)


@pytest.mark.anyio
async def test_the_emulators_runs_read_the_same_metadata_on_every_path(
    vemu: Emulator, vlume: AsyncLume
) -> None:
    queries = ["rows=3", "rows=9&reject_rate=0.4", "rows=4&outcome=FAILED", "rows=0"]
    paths = [f"synthetic://fidelity/{i}?{q}" for i, q in enumerate(queries)]
    handles = [await vlume.runs.create(FLOW, path) for path in paths]
    for handle in handles:  # in flight: the create's answer (packed) reads as a get's (parsed)
        fetched = (await vlume.runs.get(handle.id)).data
        assert not fetched.is_terminal and fetched.updated_at == handle.updated_at
        assert pickle.loads(pickle.dumps(handle.data, protocol=0)).metadata == fetched.metadata

    done = await vlume.runs.wait_all(handles, timeout=3600, poll_interval=1)

    unread = {h.id: h.data for h in done}  # as the poller left them, not read yet
    assert all(data._metadata_json is not None for data in unread.values())
    evolved = {
        k: attrs.evolve(d, id="run_01OTHER", source_path="s3://x") for k, d in unread.items()
    }
    listed = {run.id: run.data for run in await vlume.runs.list(flow_version=FLOW).collect()}
    batch = await vlume.runs.batch_get([h.id for h in handles])
    for run_id, data in unread.items():
        fetched = (await vlume.runs.get(run_id)).data
        assert fetched.is_terminal
        for other in (data, listed[run_id], batch[run_id], evolved[run_id]):
            assert other.metadata == fetched.metadata
            got, want = sections(other.metadata), sections(fetched.metadata)
            assert all(same(got[name], want[name]) for name in SECTIONS)
