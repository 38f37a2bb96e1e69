"""``RunRequest``: one run to create, checked on construction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._validation import check_principal, check_principal_list, check_run_request, check_tags

__all__ = ["RunRequest"]


def _tags(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(check_tags(value))


def _monitoring_by(value: Iterable[str]) -> tuple[str, ...]:
    return check_principal_list(value, "monitoring_by")


def _monitoring_groups(value: Iterable[str]) -> tuple[str, ...]:
    return check_principal_list(value, "monitoring_groups")


def _managing_by(value: Iterable[str]) -> tuple[str, ...]:
    return check_principal_list(value, "managing_by")


def _managing_groups(value: Iterable[str]) -> tuple[str, ...]:
    return check_principal_list(value, "managing_groups")


@attrs.frozen
class RunRequest:
    """One run to create, checked on construction so a bad batch fails before any request.

    Exactly one of ``source_path`` (a location the service reads) and ``source_data`` (rows sent
    inline, a sequence of JSON objects) is given. ``flow_version`` is written ``name:vN``.
    ``idempotency_key`` is sent as a header, so retries of this create never make a second run.

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
        tags: Tags for the run.
        idempotency_key: The key of this create; one is generated per create when None.
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
        >>> RunRequest("customer_cleaner", source_path="s3://bucket/batch_001")
        Traceback (most recent call last):
        ValueError: flow_version must be ...
    """

    flow_version: str
    source_path: str | None = attrs.field(default=None, kw_only=True)
    source_data: Sequence[Mapping[str, Any]] | None = attrs.field(default=None, kw_only=True)
    run_metadata: Mapping[str, Any] | None = attrs.field(default=None, kw_only=True)
    force_rerun: bool = attrs.field(default=False, kw_only=True)
    label: str | None = attrs.field(default=None, kw_only=True)
    tags: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_tags)
    idempotency_key: str | None = attrs.field(default=None, kw_only=True)
    run_owner: str | None = attrs.field(default=None, kw_only=True)
    monitoring_by: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_monitoring_by)
    monitoring_groups: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_monitoring_groups
    )
    managing_by: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_managing_by)
    managing_groups: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_managing_groups
    )

    def __attrs_post_init__(self) -> None:
        rows = check_run_request(
            flow_version=self.flow_version,
            source_path=self.source_path,
            source_data=self.source_data,
            run_metadata=self.run_metadata,
            force_rerun=self.force_rerun,
            label=self.label,
            idempotency_key=self.idempotency_key,
        )
        if self.run_owner is not None:
            check_principal(self.run_owner, "run_owner")
        if rows is not None:
            object.__setattr__(self, "source_data", rows)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/runs`` (the idempotency key travels as a header)."""
        body: dict[str, Any] = {"flow_version": self.flow_version}
        if self.source_path is not None:
            body["source_path"] = self.source_path
        else:
            body["source_data"] = list(self.source_data or ())
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
