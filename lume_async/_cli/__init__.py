"""The ``lume`` command: the demo, the emulator, and runs, flows and webhooks on a Lume service.

It needs the ``cli`` extra (click and rich); nothing else in the SDK imports this package or those
libraries. Errors end a command with one ``error: ...`` line on stderr (``{"error": {...}}`` with
``--json``) and the exit statuses that ``_exit`` documents.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

try:
    import click
    import rich  # noqa: F401  (checked here so a missing extra is one clear line)
except ModuleNotFoundError as exc:  # the package was installed without the ``cli`` extra
    sys.stderr.write(f"error: the lume command needs {exc.name}: pip install 'lume-sdk[cli]'\n")
    raise SystemExit(1) from None

from .._config import ENV_API_KEY, ENV_BASE_URL
from .._network import ENV_CA_BUNDLE
from .._version import __version__
from ._command import LumeGroup, NoCommand, Number
from ._demo import demo, emulator
from ._exit import (
    EXIT_STATUSES,
    CommandError,
    ExitStatus,
    exit_status_of,
    one_line_warnings,
    report,
)
from ._flows import flows
from ._runs import runs
from ._settings import Settings
from ._signals import as_terminated, terminable
from ._streams import reader_left, reserve, settle
from ._webhooks import webhooks

__all__ = ["main"]


class _Main(LumeGroup):
    """Ends every invocation itself: one error line (or JSON) and a documented exit status."""

    sdk_names = {"default_headers": "headers"}  # noqa: RUF012

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        argv = list(sys.argv[1:] if args is None else args)
        closed = reserve()  # before any connection can take a closed stream's descriptor
        for stream in (sys.stdout, sys.stderr):  # a character the terminal cannot show is
            reconfigure = getattr(stream, "reconfigure", None)  # spelled out, not fatal
            if reconfigure is not None:
                reconfigure(errors="backslashreplace")
        settings = Settings()
        failure: BaseException
        try:
            if "stdout" in closed:  # what the command prints would be lost: do nothing
                raise CommandError(
                    "standard output is closed; redirect it to /dev/null to drop what lume prints"
                )
            with terminable(), one_line_warnings(lambda: settings.json or "--json" in argv):
                done = super().main(
                    argv, prog_name, complete_var, standalone_mode=False, obj=settings
                )
        except (click.Abort, KeyboardInterrupt):  # Ctrl-C outside a request
            if sys.stderr is not None and sys.stderr.isatty():
                click.echo(err=True)  # past the ``^C`` the terminal showed
            failure = CommandError("interrupted", status=ExitStatus.INTERRUPTED, kind="interrupted")
        except NoCommand as bare:  # ``lume runs``: the help, as click would show it
            if not (settings.json or "--json" in argv):
                bare.show()
                raise SystemExit(ExitStatus.USAGE) from None
            failure = bare
        except Exception as exc:  # click's usage errors, SDK errors, a bad argument
            failure = exc
            settle()  # already failing: what standard output still holds may go
        else:
            lost = settle()  # the output written in full, or the command failed
            if lost is None or reader_left(lost):
                raise SystemExit(done if isinstance(done, int) else ExitStatus.OK)
            failure = CommandError(f"cannot write standard output: {lost.strerror or lost}")
        failure = as_terminated(failure)
        # --json may not have been read yet when the arguments themselves were wrong.
        try:
            report(failure, as_json=settings.json or "--json" in argv)
        except OSError as exc:  # ``2>&1 | head``: the reader is gone, the status still says
            if not reader_left(exc):
                raise
        raise SystemExit(exit_status_of(failure))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # click would print an empty line first, on a pipe too
            raise click.Abort from None
        except OSError as exc:  # click would exit 1 and say nothing
            if not reader_left(exc):
                raise
            # ``lume ... | head``: the reader has what it wanted; the runs still decide the status.
            outcome = ctx.find_object(Settings).outcome  # type: ignore[union-attr]
            if outcome is not None:
                raise outcome from None
            return ExitStatus.OK


@click.group(
    cls=_Main,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog=EXIT_STATUSES,
)
@click.option("--base-url", envvar=ENV_BASE_URL, help=f"Service URL [env {ENV_BASE_URL}].")
@click.option("--api-key", envvar=ENV_API_KEY, help=f"API key [env {ENV_API_KEY}].")
@click.option("--json", "json_", is_flag=True, help="Print JSON instead of tables (errors too).")
@click.option(
    "--timeout", default=60.0, type=Number(min=0, min_open=True), help="Seconds per HTTP request."
)
@click.option(
    "--max-retries",
    default=3,
    type=click.IntRange(min=0),
    help="Retries of a failed request (connection errors, 408, 429, 5xx but 501).",
)
@click.option(
    "--proxy",
    metavar="URL",
    help="Send requests through this http(s) proxy [default: HTTPS_PROXY / HTTP_PROXY].",
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True),
    help=f"PEM file of the CAs to trust [env {ENV_CA_BUNDLE}; default: the system's].",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="An extra header for every request (repeat for several).",
)
@click.version_option(__version__, prog_name="lume")
@click.pass_obj
def main(
    settings: Settings,
    base_url: str | None,
    api_key: str | None,
    json_: bool,
    timeout: float,
    max_retries: int,
    proxy: str | None,
    ca_bundle: str | None,
    headers: tuple[str, ...],
) -> None:
    """Lume data-transformation runs from the command line.

    Start with `lume demo`; point the other commands at a service with LUME_BASE_URL and
    LUME_API_KEY (or at `lume emulator`).
    """
    settings.base_url = base_url
    settings.api_key = api_key
    settings.json = settings.json or json_
    settings.timeout = timeout
    settings.max_retries = max_retries
    settings.proxy = proxy
    settings.ca_bundle = ca_bundle
    for header in headers:
        name, colon, value = header.partition(":")
        if not colon:
            # Not echoed: a header given on the command line is often a credential.
            raise click.BadParameter(
                f"a value of {len(header)} characters has no ':' (not shown: it may be a"
                " credential); write 'NAME: VALUE'",
                param_hint="'--header'",
            )
        settings.headers[name.strip()] = value.strip()


main.add_command(demo)
main.add_command(emulator)
main.add_command(runs)
main.add_command(flows)
main.add_command(webhooks)
