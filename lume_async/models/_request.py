"""``RunRequest``: one run to create, checked on construction, with its idempotency key."""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import orjson

from .._validation import (
    canonical_json,
    check_idempotency_key,
    check_idempotency_namespace,
    check_principal,
    check_principal_list,
    check_run_request,
    check_tags,
    encode_json,
    encode_with_rows,
    key_json,
    wrong_type,
)

__all__ = ["RunRequest"]

# Versions the derivation, so a future change of the identity's shape cannot collide with it.
_DERIVATION = b"lume-run-request-v1\x1e"


def _none_given(value: object) -> bool:
    """True for the default of the list fields: nothing to check (the usual case, on every
    request of a fan-out)."""
    return value.__class__ is tuple and not value


def _tags(value: Iterable[str]) -> tuple[str, ...]:
    return () if _none_given(value) else tuple(check_tags(value))


def _monitoring_by(value: Iterable[str]) -> tuple[str, ...]:
    return () if _none_given(value) else check_principal_list(value, "monitoring_by")


def _monitoring_groups(value: Iterable[str]) -> tuple[str, ...]:
    return () if _none_given(value) else check_principal_list(value, "monitoring_groups")


def _managing_by(value: Iterable[str]) -> tuple[str, ...]:
    return () if _none_given(value) else check_principal_list(value, "managing_by")


def _managing_groups(value: Iterable[str]) -> tuple[str, ...]:
    return () if _none_given(value) else check_principal_list(value, "managing_groups")


def _sent(wire: bytes | None) -> bytes | None:
    """What a request's encoded body says, for ``==``: as JSON, where ``True`` is not ``1``."""
    return None if wire is None else canonical_json(wire)


def _metadata_sent(metadata: Mapping[str, Any] | None) -> bytes | None:
    """What ``run_metadata`` sends, for ``==``: a datetime as it is written on the wire."""
    return None if metadata is None else canonical_json(encode_json(metadata, "run_metadata"))


def new_idempotency_key() -> str:
    """A fresh key: 128 bits from the OS random source (as ``uuid4``, a quarter of its cost)."""
    return f"lume-{os.urandom(16).hex()}"


@attrs.frozen(repr=False)
class RunRequest:
    """One run to create, checked on construction so a bad batch fails before any request.

    Exactly one of ``source_path`` (a location the service reads) and ``source_data`` (rows sent
    inline, a sequence of JSON objects) is given. ``flow_version`` is written ``name:vN``.

    ``idempotency_key`` is sent as the create's Idempotency-Key (the header of a single create, the
    item's key in a ``batch-create``). Unless given, it is generated when the request is built,
    and it stays with the object: sending the same request again (a retry of a failed
    ``create_many`` item) replays the first answer instead of making a second run, for as long
    as the service remembers keys (24 h). ``with_idempotency_key(key)``
    and ``with_namespace(namespace)`` give a copy with another key; any other change
    (``attrs.evolve(request, label=...)``) is another request, with a fresh key unless one was
    given. Equality compares what is asked for, as it is sent (inline rows as they were when the
    request was made; values as JSON, where ``True`` is not ``1`` nor ``1`` ``1.0``), and a
    given key, not a generated one: requests that derive one key in a namespace are equal.

    Who may see the run: ``run_owner`` (default: the principal of the API key) and those named in
    ``managing_by`` / ``managing_groups`` may read, update and cancel it; those in
    ``monitoring_by`` / ``monitoring_groups`` may read it; tenant admins may do anything.

    Attributes:
        flow_version: The flow version to apply, ``name:vN``.
        source_path: A location the service reads, such as ``s3://bucket/batch_001``.
        source_data: Rows sent inline, a sequence of JSON objects.
        run_metadata: Your own metadata, stored with the run.
        force_rerun: Run even if this (flow_version, source_path) already wrote data.
        label: A label for the run.
        tags: Tags for the run, in the order given (a set's sorted: it has no order of its own).
        idempotency_key: The key of this create: the one given, else one generated with the
            request (1 to 255 printable ASCII characters without spaces).
        run_owner: Who owns the run (default: the principal of the API key).
        monitoring_by: Principals who may read the run.
        monitoring_groups: Groups whose principals may read the run.
        managing_by: Principals who may read, update and cancel the run.
        managing_groups: Groups whose principals may read, update and cancel the run.

    Raises:
        ValueError: An argument is malformed, or both or neither of ``source_path`` and
            ``source_data`` are given.
        TypeError: An argument has the wrong type.

    Examples:
        >>> request = RunRequest("customer_cleaner:v1", source_path="s3://bucket/batch_001")
        >>> request.to_wire()
        {'flow_version': 'customer_cleaner:v1', 'source_path': 's3://bucket/batch_001'}
        >>> request.idempotency_key == request.idempotency_key  # the object keeps its key
        True
        >>> request.with_namespace("nightly-2026-11-28").idempotency_key[:19]
        'nightly-2026-11-28:'
        >>> RunRequest("customer_cleaner", source_path="s3://bucket/batch_001")
        Traceback (most recent call last):
        ValueError: flow_version must be ...
    """

    flow_version: str
    # Positional too, as in ``lume.run(flow_version, source_path)``.
    source_path: str | None = None
    # Compared as sent (``_wire``): the rows are the caller's, who may change them afterwards.
    source_data: Sequence[Mapping[str, Any]] | None = attrs.field(
        default=None, kw_only=True, eq=False
    )
    run_metadata: Mapping[str, Any] | None = attrs.field(
        default=None, kw_only=True, eq=_metadata_sent
    )
    force_rerun: bool = attrs.field(default=False, kw_only=True)
    label: str | None = attrs.field(default=None, kw_only=True)
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags)
    run_owner: str | None = attrs.field(default=None, kw_only=True)
    monitoring_by: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_monitoring_by)
    monitoring_groups: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_monitoring_groups
    )
    managing_by: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_managing_by)
    managing_groups: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_managing_groups
    )
    _given_key: str | None = attrs.field(default=None, kw_only=True, alias="idempotency_key")
    _generated_key: str = attrs.field(init=False, factory=new_idempotency_key, eq=False)
    # The body as sent, with inline rows: encoding it is also how the rows are checked. Equal
    # requests send equal bodies (compared as JSON: the order of a row's keys does not count,
    # the type of a value does, as it does on the wire).
    _wire: bytes | None = attrs.field(init=False, default=None, eq=_sent, hash=False)

    def __attrs_post_init__(self) -> None:
        rows = check_run_request(
            flow_version=self.flow_version,
            source_path=self.source_path,
            source_data=self.source_data,
            run_metadata=self.run_metadata,
            force_rerun=self.force_rerun,
            label=self.label,
            idempotency_key=self._given_key,
        )
        if self.run_owner is not None:
            check_principal(self.run_owner, "run_owner")
        if self.run_metadata is not None:  # a snapshot: what was checked is what is sent
            # As a dict: a read-only mapping (``MappingProxyType``) or a view cannot be copied
            # as itself, and the JSON object sent is a dict whatever mapping held it.
            object.__setattr__(self, "run_metadata", copy.deepcopy(dict(self.run_metadata)))
        if rows is not None:
            object.__setattr__(self, "source_data", tuple(rows))
            object.__setattr__(self, "_wire", encode_with_rows(self._head(), "source_data", rows))

    @property
    def idempotency_key(self) -> str:
        """The Idempotency-Key this request is created with: the one given, or its own."""
        return self._given_key if self._given_key is not None else self._generated_key

    def with_idempotency_key(self, key: str) -> RunRequest:
        """The same request, created with ``key`` (1-255 printable ASCII, no spaces)."""
        check_idempotency_key(key)
        keyed = copy.copy(self)  # the rows as they were encoded when checked, not as they are now
        object.__setattr__(keyed, "_given_key", key)
        return keyed

    def with_namespace(self, namespace: str) -> RunRequest:
        """The same request keyed by ``namespace``: what ``idempotency_namespace=`` sends.

        The key is ``<namespace>:<sha256 hex>`` of the whole request body as it is sent (flow
        version, source path or inline rows, run metadata, force_rerun, label, tags, owner and
        permission lists) as JSON with sorted keys: the same job re-run with the same namespace
        derives the same keys, after an upgrade of the SDK too (but for a source path's request
        whose metadata holds a naive or a UTC datetime, sent with ``Z``, which earlier versions
        keyed as Python writes it), and two requests that differ in anything they ask of the
        service never share one. A request whose key was given explicitly is returned as it is:
        a given key wins.

        Raises:
            ValueError: ``namespace`` is not 1 to 190 printable ASCII characters without spaces.
            TypeError: ``namespace`` is not a str.
        """
        if check_idempotency_namespace(namespace) is None:
            raise wrong_type("idempotency_namespace", "a str", namespace)
        if self._given_key is not None:
            return self
        # What is sent, keys sorted: what differs on the wire (a datetime and its text, true and
        # 1) derives another key, what does not (key order) the same key. Inline rows are read
        # back from the body they were encoded to, as ``to_wire()`` gives them.
        body = key_json(self._head()) if self._wire is None else canonical_json(self._wire)
        digest = hashlib.sha256(_DERIVATION + body).hexdigest()
        return self.with_idempotency_key(f"{namespace}:{digest}")

    def to_wire(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/runs`` (the idempotency key travels as a header); inline
        rows as they were when the request was made (and checked)."""
        if self._wire is not None:
            return dict(orjson.loads(self._wire))
        body = self._head()
        if self.source_path is None:
            body["source_data"] = list(self.source_data or ())
        return body

    def wire_body(self) -> bytes:
        """``to_wire()`` as JSON bytes (with inline rows: encoded once, when they were checked)."""
        if self._wire is not None:
            return self._wire
        return encode_with_rows(self._head(), "source_data", None)

    def _head(self) -> dict[str, Any]:
        """The body without the inline rows."""
        body: dict[str, Any] = {"flow_version": self.flow_version}
        if self.source_path is not None:
            body["source_path"] = self.source_path
        if self.run_metadata is not None:
            body["run_metadata"] = dict(self.run_metadata)
        if self.force_rerun:
            body["force_rerun"] = True
        if self.label is not None:
            body["label"] = self.label
        if self.tags:
            body["tags"] = list(self.tags)
        if self.run_owner is not None:
            body["run_owner"] = self.run_owner
        for name in ("monitoring_by", "monitoring_groups", "managing_by", "managing_groups"):
            names: tuple[str, ...] = getattr(self, name)
            if names:
                body[name] = list(names)
        return body

    def __repr__(self) -> str:
        parts = [repr(self.flow_version)]
        if self.source_path is not None:
            parts.append(f"source_path={self.source_path!r}")
        else:
            parts.append(f"source_data=<{len(self.source_data or ())} rows>")
        for name in ("run_metadata", "label"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        if self.force_rerun:
            parts.append("force_rerun=True")
        if self.tags:
            parts.append(f"tags={self.tags!r}")
        if self.run_owner is not None:
            parts.append(f"run_owner={self.run_owner!r}")
        for name in ("monitoring_by", "monitoring_groups", "managing_by", "managing_groups"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)!r}")
        parts.append(f"idempotency_key={self.idempotency_key!r}")
        return f"RunRequest({', '.join(parts)})"
