"""The click classes every ``lume`` command is made of: SDK argument errors told in CLI words.

The SDK checks its arguments before it sends anything and names them as Python does
(``force_rerun must be a bool``); a command line user typed ``--force-rerun``. Each command maps
the names of its parameters (and the SDK names it passes them as) onto its options and
arguments, and a ``ValueError`` or ``TypeError`` that escapes it becomes a usage error (exit 2)
in those words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import click
from click.core import ParameterSource

from ._exit import CommandError, ExitStatus, speak_cli

__all__ = ["LumeCommand", "LumeGroup", "NoCommand", "Number", "cli_names"]


class Number(click.FloatRange):
    """A ``FloatRange`` that refuses ``nan``, and ``inf`` unless ``infinite`` (click's range
    lets both through: every comparison with ``nan`` is false)."""

    def __init__(
        self,
        min: float | None = None,
        max: float | None = None,
        *,
        min_open: bool = False,
        max_open: bool = False,
        infinite: bool = False,
    ) -> None:
        super().__init__(min, max, min_open=min_open, max_open=max_open)
        self.infinite = infinite

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number) or (math.isinf(number) and not self.infinite):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def cli_names(command: click.Command, aliases: Mapping[str, str]) -> dict[str, str]:
    """Python name -> how the command line spells it: ``--force-rerun``, ``RUN_ID``."""
    names: dict[str, str] = {}
    for param in command.params:
        if param.name is None or param.expose_value is False:
            continue
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            names[param.name] = longest
        elif isinstance(param, click.Argument):
            names[param.name] = param.human_readable_name
            if param.nargs != 1 and param.name.endswith("s"):  # run_id, one of RUN_IDS
                names.setdefault(param.name[:-1], param.human_readable_name[:-1])
    for sdk_name, param_name in aliases.items():
        names[sdk_name] = names.get(param_name, param_name)
    return names


class LumeCommand(click.Command):
    """A command whose SDK argument errors speak its own option names.

    ``sdk_names`` maps an SDK argument name to the parameter that feeds it when the two differ
    (``{"source_data": "data"}``); parameters named like the SDK's arguments need no entry.
    """

    def __init__(self, *args: Any, sdk_names: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sdk_names = dict(sdk_names or {})

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, UnicodeEncodeError):  # the terminal's encoding, not the arguments
                raise
            names: dict[str, str] = {}
            for context in reversed(_lineage(ctx)):  # the command's own names win
                command = context.command
                names.update(cli_names(command, getattr(command, "sdk_names", {})))
                names.update(_from_environment(context))
            message = speak_cli(str(exc) or type(exc).__name__, names)
            raise CommandError(
                f"{message} (see: {ctx.command_path} --help)",
                status=ExitStatus.USAGE,
                kind="usage",
            ) from exc


def _from_environment(ctx: click.Context) -> dict[str, str]:
    """Options whose value came from an environment variable, named by it: ``$LUME_API_KEY``."""
    found: dict[str, str] = {}
    for param in ctx.command.params:
        if param.name is None or not isinstance(param.envvar, str):
            continue
        if ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT:
            found[param.name] = f"${param.envvar}"
    return found


def _lineage(ctx: click.Context) -> list[click.Context]:
    """``ctx`` and its parents: the subcommand first, ``lume`` itself last."""
    found = []
    current: click.Context | None = ctx
    while current is not None:
        found.append(current)
        current = current.parent
    return found


class LumeGroup(click.Group):
    """A group whose commands are ``LumeCommand`` s and whose subgroups are ``LumeGroup`` s."""

    command_class = LumeCommand
    group_class = type
    sdk_names: dict[str, str] = {}  # noqa: RUF012  (read only)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # One behaviour whatever click's version: 8.1 shows the help and exits 0, later ones
        # raise a usage error of their own.
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            raise NoCommand(ctx)
        return super().parse_args(ctx, args)


class NoCommand(click.UsageError):
    """A group called without a command (``lume runs``): its help, and exit status 2."""

    def __init__(self, ctx: click.Context) -> None:
        super().__init__("Missing command.", ctx=ctx)

    def show(self, file: Any = None) -> None:
        assert self.ctx is not None
        click.echo(self.ctx.get_help(), file=file, err=file is None)
