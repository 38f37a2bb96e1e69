"""The ``lume`` command's global options, and how a command turns them into a client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NoReturn, TypeVar

import attrs
import click

from .._client import AsyncLume
from .._config import ENV_API_KEY
from .._event_loop import run
from .._exceptions import RunTimeoutError
from .._run import AsyncRun
from ._exit import CommandError, interrupted, timed_out
from ._signals import on_the_loop

__all__ = ["Settings", "fail", "json_flag"]

T = TypeVar("T")


@attrs.define
class Settings:
    """The global options, shared by every subcommand through the click context.

    ``going`` holds the runs a command started or waits for: when Ctrl-C ends it, those not
    finished are named, with the command that cancels them.
    """

    base_url: str | None = None
    api_key: str | None = None
    json: bool = False
    timeout: float = 60.0
    max_retries: int = 3
    proxy: str | None = None
    ca_bundle: str | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    going: list[AsyncRun] = attrs.field(factory=list)
    on_interrupt: str | None = None  # what to do next, said when Ctrl-C ends the command
    # How the runs waited on ended, decided before they are printed: the exit status still,
    # should the reader of standard output stop reading (``lume runs wait ... | head``).
    outcome: CommandError | None = None

    def watch(self, runs: Iterable[AsyncRun]) -> None:
        """Name these runs if the command is interrupted."""
        self.going.extend(runs)

    def client(self) -> AsyncLume:
        if not self.api_key:
            fail(f"no API key: pass --api-key or set {ENV_API_KEY}")
        return AsyncLume(
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            proxy=self.proxy,
            ca_bundle=self.ca_bundle,
            default_headers=self.headers,
        )

    def run(self, call: Callable[[AsyncLume], Awaitable[T]]) -> T:
        """Run ``call`` with a client made from these options, on a fresh event loop.

        Ctrl-C cancels ``call`` (the client closes) and ends the command with status 130.
        """
        lume = self.client()

        async def go() -> T:
            with on_the_loop():  # SIGTERM: as Ctrl-C
                async with lume:
                    return await call(lume)

        try:
            return run(go())
        except KeyboardInterrupt:
            raise interrupted(self.going, hint=self.on_interrupt) from None
        except RunTimeoutError as exc:
            raise timed_out(exc, self.going) from exc


def fail(message: str) -> NoReturn:
    """End the command with exit status 1 and ``message`` (one line, or JSON with --json)."""
    raise CommandError(message)


def json_flag(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` after the subcommand too, as scripts tend to write it."""

    def enable(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_object(Settings).json = True  # type: ignore[union-attr]

    flag = click.option(
        "--json",
        "json_",
        is_flag=True,
        expose_value=False,
        callback=enable,
        is_eager=True,
        help="Print JSON (errors too, on stderr).",
    )
    return flag(command)
