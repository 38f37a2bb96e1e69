"""Command line of the emulator, shared by ``python -m lume_async.testing`` and ``lume emulator``.

On start it prints a human-readable URL and key, then one machine-readable line
``LUME_EMULATOR {"url": ..., "api_key": ...}`` for scripts that start it as a subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import re
import signal
import sys
from typing import NoReturn

import orjson

from ._emulator import Emulator
from ._faults import FaultProfile

__all__ = [
    "BadArguments",
    "build_parser",
    "emulator_for",
    "emulator_from",
    "listening_failure",
    "main",
    "serve",
    "serve_until_stopped",
]

READY_PREFIX = "LUME_EMULATOR "

# The emulator's settings as its command line spells them, where the two differ.
_OPTIONS = {
    "api_key": "--api-key",
    "kinds": "--fault-kinds",
    "rate": "--faults",
    "rate_limit": "--rate-limit",
    "time_scale": "--time-scale",
}
_SETTING = re.compile(rf"^({'|'.join(sorted(_OPTIONS, key=len, reverse=True))})(?= must)")


class BadArguments(ValueError):
    """Arguments the emulator refuses: one line naming the option, ending in where to read more.

    ``main`` prints it as ``error: ...`` with exit status 2, as ``lume``'s commands do.
    """


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadArguments(f"{message} (see: {self.prog} --help)")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number from 0 to 65535, got {text!r}"
        ) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 65535, got {port}")
    return port


def build_parser(prog: str = "python -m lume_async.testing") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Serve the Lume API emulator.",
        formatter_class=_Help,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=_port, default=8080, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--api-key", default=None, help="API key to accept (none given: one is generated)"
    )
    parser.add_argument(
        "--faults", type=float, default=0.0, metavar="RATE", help="fault rate between 0 and 1"
    )
    parser.add_argument(
        "--fault-kinds",
        default="500,503,429,reset",
        help="comma-separated kinds: 500,502,503,429,reset,delay,truncate",
    )
    parser.add_argument("--time-scale", type=float, default=1.0, help="run clock speed-up")
    parser.add_argument("--seed", type=int, default=0, help="seed for ids, data and faults")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="requests/s per key (none: unlimited)"
    )
    return parser


def emulator_from(args: argparse.Namespace) -> Emulator:
    """The emulator the parsed arguments describe (ValueError for a setting it refuses)."""
    faults = None
    if args.faults:
        kinds = tuple(k.strip() for k in args.fault_kinds.split(",") if k.strip())
        faults = FaultProfile(rate=args.faults, kinds=kinds, seed=args.seed)
    return Emulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        time_scale=args.time_scale,
        faults=faults,
        seed=args.seed,
        rate_limit=args.rate_limit,
    )


async def serve(emulator: Emulator) -> None:
    """Serve until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        print(f"Lume emulator listening on {emulator.url}")
        print(f"API key: {emulator.api_key}")
        ready = {"url": emulator.url, "api_key": emulator.api_key, "port": emulator.port}
        print(READY_PREFIX + orjson.dumps(ready).decode(), flush=True)
        await stop.wait()


def emulator_for(argv: list[str] | None, prog: str) -> Emulator:
    """The emulator the command line ``argv`` asks for; BadArguments if it cannot be."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.api_key == "":
        parser.error("--api-key must not be empty; leave it out to have one made")
    try:
        return emulator_from(args)
    except ValueError as exc:  # the emulator's own check, in the words of its command line
        parser.error(_SETTING.sub(lambda m: _OPTIONS[m.group(1)], str(exc)))


def serve_until_stopped(emulator: Emulator) -> None:
    """Serve ``emulator`` in this process until SIGINT or SIGTERM; OSError if it cannot."""
    # This process is the emulator alone, and its state is a growing heap of long-lived runs: with
    # the default thresholds, full collections stalled webhook deliveries by over 100 ms at 2,000
    # completions/s (benchmarks/fanout.py). Collect the young generation far less often.
    gc.set_threshold(100_000, 50, 100)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(emulator))


def listening_failure(emulator: Emulator, exc: OSError) -> str:
    """Why ``emulator`` could not serve, naming where it was to listen."""
    return f"cannot listen on {emulator.host}:{emulator.port}: {exc.strerror or exc}"


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    try:
        emulator = emulator_for(argv, prog or "python -m lume_async.testing")
    except BadArguments as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    try:
        serve_until_stopped(emulator)
    except OSError as exc:
        print(f"error: {listening_failure(emulator, exc)}", file=sys.stderr)
        return 1
    return 0
