"""The ``lume`` command: the demo, the emulator, and runs on a Lume service.

It needs the ``cli`` extra (click and rich); nothing else in the SDK imports this package or those
libraries. Every command exits 0, or 1 with one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    import click
    import rich  # noqa: F401  (checked here so a missing extra is one clear line)
except ModuleNotFoundError as exc:  # the package was installed without the ``cli`` extra
    sys.stderr.write(f"error: the lume command needs {exc.name}: pip install 'lume-sdk[cli]'\n")
    raise SystemExit(1) from None

from .._config import ENV_API_KEY, ENV_BASE_URL
from .._exceptions import LumeError
from .._version import __version__
from ._demo import demo, emulator
from ._runs import runs
from ._settings import Settings, fail

__all__ = ["main"]


class _Main(click.Group):
    """Turns every error the SDK raises into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (LumeError, ValueError, TypeError) as exc:
            fail(str(exc) or type(exc).__name__)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--base-url", envvar=ENV_BASE_URL, help=f"Service URL [env {ENV_BASE_URL}].")
@click.option("--api-key", envvar=ENV_API_KEY, help=f"API key [env {ENV_API_KEY}].")
@click.option("--json", "json_", is_flag=True, help="Print JSON instead of tables.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per HTTP request.")
@click.version_option(__version__, prog_name="lume")
@click.pass_context
def main(
    ctx: click.Context, base_url: str | None, api_key: str | None, json_: bool, timeout: float
) -> None:
    """Lume data-transformation runs from the command line.

    Start with `lume demo`; point the `runs` commands at a service with LUME_BASE_URL and
    LUME_API_KEY (or at `lume emulator`).
    """
    ctx.obj = Settings(base_url=base_url, api_key=api_key, json=json_, timeout=timeout)


main.add_command(demo)
main.add_command(emulator)
main.add_command(runs)
