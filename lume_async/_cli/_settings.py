"""The ``lume`` command's global options, and how a command turns them into a client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import attrs
import click

from .._client import AsyncLume
from .._config import ENV_API_KEY
from ._escape import visible

__all__ = ["Settings", "fail", "json_flag"]

T = TypeVar("T")


@attrs.define
class Settings:
    """The global options, shared by every subcommand through the click context."""

    base_url: str | None
    api_key: str | None
    json: bool
    timeout: float

    def run(self, call: Callable[[AsyncLume], Awaitable[T]]) -> T:
        """Run ``call`` with a client made from these options, on a fresh event loop."""
        if not self.api_key:
            fail(f"no API key: pass --api-key or set {ENV_API_KEY}")
        lume = AsyncLume(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout)

        async def go() -> T:
            async with lume:
                return await call(lume)

        return asyncio.run(go())


def fail(message: str) -> NoReturn:
    """One ``error: ...`` line on stderr (server text in it spelled out), and exit status 1."""
    click.echo(f"error: {visible(' '.join(message.split()))}", err=True)
    raise SystemExit(1)


def json_flag(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` after the subcommand too, as scripts tend to write it."""

    def enable(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_object(Settings).json = True  # type: ignore[union-attr]

    flag = click.option("--json", "json_", is_flag=True, expose_value=False, callback=enable)
    return flag(command)
