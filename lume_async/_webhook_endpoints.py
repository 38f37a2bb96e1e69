"""``lume.webhook_endpoints``: where the service sends run completion events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import _converter
from ._bound import BoundToClient
from ._exceptions import ResponseValidationError
from ._pagination import AsyncPaginator, numbered_listing
from ._validation import (
    check_endpoint_id,
    check_endpoint_secret,
    check_endpoint_url,
    check_events,
    describe,
)
from .models import WebhookEndpoint
from .models._request import new_idempotency_key

if TYPE_CHECKING:
    from ._responses import Response
    from ._transport import RequestOptions, Transport

__all__ = ["AsyncWebhookEndpoints"]


class AsyncWebhookEndpoints(BoundToClient):
    """The webhook endpoints of one API key (``lume.webhook_endpoints``)."""

    def __init__(self, transport: Transport, options: RequestOptions | None) -> None:
        self._transport = transport
        self._options = options

    async def create(
        self,
        url: str,
        *,
        events: Iterable[str] | None = None,
        secret: str | None = None,
    ) -> WebhookEndpoint:
        """Send completion events to ``url`` (every run.* type unless ``events`` narrows it).

        The service signs each delivery with ``secret`` (one of the form ``whsec_<base64>`` is
        made when none is given; read it from the result). Hand the same secret to a
        ``WebhookReceiver`` to verify them.

        Raises:
            InvalidRequestError: The service refused the endpoint (422).
            ResponseValidationError: The answer has no secret, or not the one given (the
                message names the endpoint made, to delete it by).
            ValueError: ``url`` is not an http(s) URL, or an event type or the secret is
                malformed (before any request).
        """
        # Made in a call of its own: no local of this frame holds the secret under another
        # name (error reporters serialise frame locals, and drop only those named secret).
        response: Response | None = await self._transport.request(
            "POST",
            "/v1/webhooks",
            route="/v1/webhooks",
            body=_endpoint_body(url, events, secret),
            retryable=True,
            idempotency_key=new_idempotency_key(),
            options=self._options,
        )
        try:
            return _endpoint_of(response, created=True, secret=secret)
        except BaseException:
            response = None  # its body holds the endpoint's secret
            raise

    def list(self, *, page_size: int = 100) -> AsyncPaginator[WebhookEndpoint]:
        """Every webhook endpoint of this API key."""
        return numbered_listing(
            self._transport,
            "/v1/webhooks",
            "/v1/webhooks",
            WebhookEndpoint,
            page_size,
            options=self._options,
            item_id=_endpoint_id,
            check_item=_check_endpoint,
        )

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        """One webhook endpoint by id.

        Raises:
            NotFoundError: No endpoint with this id belongs to this API key.
            ResponseValidationError: The answer is another endpoint.
            ValueError: ``endpoint_id`` is malformed (before any request).
        """
        response: Response | None = await self._transport.request(
            "GET",
            f"/v1/webhooks/{check_endpoint_id(endpoint_id)}",
            route="/v1/webhooks/{webhook_id}",
            retryable=True,
            options=self._options,
        )
        try:
            return _endpoint_of(response, endpoint_id=endpoint_id)
        except BaseException:
            response = None  # its body holds the endpoint's secret
            raise

    async def delete(self, endpoint_id: str) -> None:
        """Stop sending events to this endpoint.

        A retry that finds the endpoint gone, after an attempt whose answer was lost, counts as
        done: that attempt deleted it.

        Raises:
            NotFoundError: No endpoint with this id belongs to this API key.
            ValueError: ``endpoint_id`` is malformed (before any request).
        """
        await self._transport.request(
            "DELETE",
            f"/v1/webhooks/{check_endpoint_id(endpoint_id)}",
            route="/v1/webhooks/{webhook_id}",
            retryable=True,
            options=self._options,
            gone_is_done=True,
        )


def _endpoint_id(endpoint: WebhookEndpoint) -> str:
    return endpoint.id


def _check_endpoint(endpoint: WebhookEndpoint) -> None:
    """ValueError for an endpoint whose id could not be sent back (to get or delete it)."""
    try:
        check_endpoint_id(endpoint.id)
    except ValueError:
        raise ValueError(
            f"the endpoint's id is not a webhook endpoint id: {describe(endpoint.id)}"
        ) from None


def _endpoint_of(
    response: Response | None,
    *,
    endpoint_id: str | None = None,
    created: bool = False,
    secret: str | None = None,
) -> WebhookEndpoint:
    """The endpoint an answer carries, or ResponseValidationError: the one asked for
    (``endpoint_id``), or one just ``created``, which carries the secret its deliveries are
    signed with (the ``secret`` given, if one was).

    The answer holds the secret: neither the error, its message, nor a frame left behind (error
    reporters read their locals) holds the answer, its JSON or its secret under another name.
    """
    assert response is not None
    request_id = response.request_id
    endpoint: WebhookEndpoint | None = None
    try:
        endpoint = response.structure(WebhookEndpoint, what="webhook endpoint")
        _check_endpoint(endpoint)
    except (ResponseValidationError, ValueError) as exc:  # raised below, away from the decoder
        problem: str | None = str(exc)
    else:
        problem = None
        if endpoint_id is not None and endpoint.id != endpoint_id:
            problem = f"asked for endpoint {endpoint_id!r}, answered endpoint {endpoint.id!r}"
        elif created and endpoint.secret is None:
            problem = f"endpoint {endpoint.id} was created, but its secret was not sent"
        elif created and secret is not None and endpoint.secret != secret:
            problem = f"endpoint {endpoint.id} was created with another secret than the one given"
    response = None
    if problem is not None:
        endpoint = None
        raise ResponseValidationError(
            f"malformed webhook endpoint: {problem}", request_id=request_id
        )
    assert endpoint is not None
    return endpoint


def _endpoint_body(url: str, events: Iterable[str] | None, secret: str | None) -> bytes:
    """The JSON body of a create, checked (ValueError before any request)."""
    body: dict[str, object] = {"url": check_endpoint_url(url)}
    if events is not None:
        body["events"] = check_events(events)
    if secret is not None:
        body["secret"] = check_endpoint_secret(secret)
    return _converter.dumps(body)
