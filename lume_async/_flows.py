"""``lume.flows``: the transformation flows and their published versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._pagination import AsyncPaginator, numbered_listing
from ._validation import check_flow_name
from .models import Flow

if TYPE_CHECKING:
    from ._transport import RequestOptions, Transport

__all__ = ["AsyncFlows"]


class AsyncFlows:
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
        )

    async def get(self, name: str) -> Flow:
        """One flow by name (``customer_cleaner``; a ``name:vN`` version string also works).

        Raises:
            NotFoundError: No flow of this name is visible to this API key.
            ValueError: ``name`` is malformed (before any request).
        """
        base = check_flow_name(name)
        response = await self._transport.request(
            "GET",
            f"/v1/flows/{base}",
            route="/v1/flows/{name}",
            retryable=True,
            options=self._options,
        )
        return response.structure(Flow, what="flow")


def _flow_name(flow: Flow) -> str:
    return flow.name
