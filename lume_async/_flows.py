"""``lume.flows``: the transformation flows and their published versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._bound import BoundToClient
from ._exceptions import NotFoundError, ResponseValidationError
from ._pagination import AsyncPaginator, numbered_listing
from ._validation import check_flow_name, check_flow_version, describe
from .models import Flow

if TYPE_CHECKING:
    from ._transport import RequestOptions, Transport

__all__ = ["AsyncFlows"]


class AsyncFlows(BoundToClient):
    """The flows resource of one client (``lume.flows``)."""

    def __init__(self, transport: Transport, options: RequestOptions | None) -> None:
        self._transport = transport
        self._options = options

    def list(self, *, page_size: int = 100) -> AsyncPaginator[Flow]:
        """Every flow this API key can run."""
        return numbered_listing(
            self._transport,
            "/v1/flows",
            "/v1/flows",
            Flow,
            page_size,
            options=self._options,
            item_id=_flow_name,
            check_item=check_answered_flow,
        )

    async def get(self, name: str) -> Flow:
        """One flow by name (``customer_cleaner``; a ``name:vN`` version string also works).

        Raises:
            NotFoundError: No flow of this name is visible to this API key, or a version string
                names a version the flow does not have.
            ResponseValidationError: The answer is another flow, or lists a version of
                another flow.
            ValueError: ``name`` is malformed, or its version part is not ``vN`` (before any
                request).
        """
        base = check_flow_name(name)
        response = await self._transport.request(
            "GET",
            f"/v1/flows/{base}",
            route="/v1/flows/{name}",
            retryable=True,
            options=self._options,
        )
        flow = response.structure(Flow, what="flow")
        try:
            if flow.name != base:
                raise ValueError(f"asked for flow {base!r}, answered flow {describe(flow.name)}")
            check_answered_flow(flow)
        except ValueError as exc:
            raise ResponseValidationError(
                f"malformed flow: {exc}", request_id=response.request_id
            ) from None
        asked = str.__str__(name)  # checked above: a str
        if ":" in asked and not any(version.id == asked for version in flow.versions):
            # The flow exists, the version asked for does not: no run could be started from it.
            known = ", ".join(version.version for version in flow.versions) or "none"
            raise NotFoundError(
                f"flow {base} has no version {asked.split(':', 1)[1]} (it has: {known})",
                status_code=404,
                code="not_found",
                request_id=response.request_id,
            )
        return flow


def _flow_name(flow: Flow) -> str:
    return flow.name


def check_answered_flow(flow: Flow) -> None:
    """ValueError unless the flow's name can be asked for and each of its versions is one of
    its own (``name:vN``): a run started from a version's ``id`` runs this flow."""
    if ":" in flow.name or not _is_valid(check_flow_name, flow.name):
        raise ValueError(f"the flow's name is not a flow name: {describe(flow.name)}")
    for version in flow.versions:
        expected = f"{flow.name}:{version.version}"
        if version.id != expected or not _is_valid(check_flow_version, version.id):
            raise ValueError(
                f"flow {flow.name!r} lists version {describe(version.version)} with the id"
                f" {describe(version.id)}; its versions are written '{flow.name}:vN'"
            )


def _is_valid(check: Callable[[object], object], value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True
