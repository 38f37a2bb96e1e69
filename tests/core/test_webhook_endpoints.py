"""``lume.webhook_endpoints``: registering where completion events go, and receiving them."""

from __future__ import annotations

import pytest

from lume_async import AsyncLume, NotFoundError, RunStatus, WebhookEndpoint
from lume_async.webhooks import WebhookReceiver

pytestmark = pytest.mark.anyio

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_create_list_get_delete(lume: AsyncLume) -> None:
    made = await lume.webhook_endpoints.create("http://127.0.0.1:9/hook", events=["run.failed"])
    assert isinstance(made, WebhookEndpoint)
    assert made.id and made.url == "http://127.0.0.1:9/hook"
    assert made.events == ("run.failed",)
    assert made.secret is not None and made.secret.startswith("whsec_")
    assert made.secret not in repr(made)

    assert [e.id for e in await lume.webhook_endpoints.list().collect()] == [made.id]
    assert (await lume.webhook_endpoints.get(made.id)).url == made.url

    await lume.webhook_endpoints.delete(made.id)
    assert await lume.webhook_endpoints.list().collect() == []
    with pytest.raises(NotFoundError):
        await lume.webhook_endpoints.get(made.id)


async def test_a_given_secret_is_kept(lume: AsyncLume) -> None:
    made = await lume.webhook_endpoints.create("https://hooks.example.com/lume", secret=SECRET)
    assert made.secret == SECRET
    assert set(made.events) == {
        "run.succeeded",
        "run.partial_failed",
        "run.failed",
        "run.crashed",
        "run.canceled",
    }


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"url": "ftp://x/hook"}, ValueError),
        ({"url": 42}, TypeError),
        ({"url": "http://127.0.0.1/h", "events": "run.failed"}, TypeError),
        ({"url": "http://127.0.0.1/h", "events": ["run.exploded"]}, ValueError),
        ({"url": "http://127.0.0.1/h", "events": []}, ValueError),
        ({"url": "http://127.0.0.1/h", "secret": ""}, ValueError),
        ({"url": "http://127.0.0.1/h", "secret": 7}, TypeError),
    ],
)
async def test_bad_arguments_fail_before_any_request(
    lume: AsyncLume, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await lume.webhook_endpoints.create(**kwargs)  # type: ignore[arg-type]


async def test_a_registered_receiver_ends_waits_at_once(lume: AsyncLume) -> None:
    receiver = WebhookReceiver(SECRET)
    async with receiver.serve() as url:
        await lume.webhook_endpoints.create(url, secret=SECRET)
        async with AsyncLume(
            api_key=lume._core.config.api_key.reveal(), base_url=lume.base_url, webhooks=receiver
        ) as pushed:
            run = await pushed.run("customer_cleaner:v1", "synthetic://hooked?rows=5&duration=1")
            await run.wait(timeout=30, poll_interval=30)  # polling alone would take 30 s
            sweeps = pushed._core.waiting.sweeps
    assert run.status is RunStatus.SUCCEEDED
    assert sweeps == 1  # the sweep every waiter starts with; the event ended the wait
