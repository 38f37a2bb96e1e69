"""Errors speak the command line's language: option names, one line, never a traceback."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_async._cli import main
from lume_async._cli._command import LumeCommand, cli_names
from lume_async._cli._exit import speak_cli
from lume_async.testing import Emulator

from .._profiles import examples
from .conftest import CUSTOMERS, lume


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def commands(group: click.Group = main, path: str = "lume") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


LUME_COMMANDS = [(path, c) for path, c in commands() if isinstance(c, LumeCommand)]
PYTHON_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def test_every_command_but_the_emulator_speaks_cli_in_its_errors() -> None:
    assert {path for path, _ in commands()} - {path for path, _ in LUME_COMMANDS} == {
        "lume demo",
        "lume emulator",
    }


@pytest.mark.parametrize(("path", "command"), LUME_COMMANDS, ids=[p for p, _ in LUME_COMMANDS])
def test_every_sdk_argument_name_of_a_command_reads_as_one_of_its_options(
    path: str, command: LumeCommand
) -> None:
    names = cli_names(command, command.sdk_names)
    usage = " ".join(click.Context(command, info_name=path).get_help().split())
    for sdk_name, spelled in names.items():
        said = speak_cli(f"{sdk_name} must be something, got 'x' (str)", names)
        assert said.startswith(f"{spelled} must be"), (sdk_name, said)
        assert spelled in usage, f"{path}: {spelled} is not in its help"


NAMING = [(p, c) for p, c in LUME_COMMANDS if cli_names(c, c.sdk_names)]


@given(st.sampled_from(NAMING), st.data())
@settings(max_examples=examples(100), deadline=None)
def test_a_message_naming_sdk_arguments_names_none_after_translation(
    case: tuple[str, LumeCommand], data: st.DataObject
) -> None:
    _, command = case
    names = cli_names(command, command.sdk_names)
    chosen = data.draw(st.lists(st.sampled_from(sorted(names)), min_size=1, max_size=4))
    filler = data.draw(st.sampled_from([" and ", ", ", " or ", ": ", " ("]))
    said = speak_cli(filler.join(chosen) + " must be given", names)
    left = {word for word in PYTHON_NAME.findall(said) if word in names and "_" in word}
    assert left == set(), said


def test_speak_cli_leaves_options_and_other_words_alone() -> None:
    names = {"force_rerun": "--force-rerun", "label": "--label"}
    assert speak_cli("--force-rerun and labels", names) == "--force-rerun and labels"
    assert speak_cli("force_rerun must be a bool", names) == "--force-rerun must be a bool"


def test_speak_cli_numbers_the_items_of_a_repeated_option() -> None:
    names = {"tags": "--tag"}
    assert speak_cli("tags[2] must be a str", names) == "--tag #3 must be a str"


def test_a_missing_source_names_the_argument_and_the_option(emu: Emulator) -> None:
    line = lume("runs", "create", CUSTOMERS, emu=emu).error_line()
    assert "exactly one of SOURCE_PATH and --data" in line
    assert "source_data" not in line


def test_a_bad_flow_version_names_the_argument(emu: Emulator) -> None:
    line = lume("runs", "create", "not a flow", "s3://b/x", emu=emu).error_line()
    assert line.startswith("error: FLOW_VERSION must be")


def test_a_malformed_run_id_names_the_argument(emu: Emulator) -> None:
    line = lume("runs", "logs", "not a run", emu=emu).error_line()
    assert line.startswith("error: RUN_ID must be a run id")


def test_data_that_is_not_json_is_one_usage_line(emu: Emulator) -> None:
    done = lume("runs", "create", CUSTOMERS, "--data", "-", emu=emu, stdin="[{oops")
    assert done.status == 2
    assert "--data is not valid JSON" in done.error_line()


def test_an_unknown_flow_version_is_one_error_line(emu: Emulator) -> None:
    done = lume("runs", "create", "nope:v1", "synthetic://a", emu=emu)
    assert done.status == 1
    assert "404" in done.error_line()


def test_a_bad_api_key_is_one_error_line(emu: Emulator) -> None:
    done = lume("runs", "list", emu=emu, env={"LUME_API_KEY": "not-the-key"})
    assert "401" in done.error_line()


def test_a_missing_api_key_is_one_error_line() -> None:
    done = lume("runs", "list", env={"LUME_BASE_URL": "http://127.0.0.1:9"})
    assert "LUME_API_KEY" in done.error_line()


def test_an_unreachable_server_is_one_error_line() -> None:
    env = {"LUME_BASE_URL": f"http://127.0.0.1:{free_port()}", "LUME_API_KEY": "k"}
    done = lume("--max-retries", "0", "runs", "get", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", env=env)
    assert done.status == 1
    assert "cannot connect" in done.error_line()


@given(text=st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("-")))
@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_any_run_id_ends_in_a_status_and_one_line_never_a_traceback(
    emu: Emulator, text: str
) -> None:
    done = lume("runs", "get", text, emu=emu)
    assert done.status in (1, 2)
    line = done.error_line()
    if done.status == 2:
        assert line.startswith("error: RUN_ID must be")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "80000"], "--port: must be a number from 0 to 65535, got 80000"),
        (["--port", "http"], "--port: must be a number from 0 to 65535, got 'http'"),
        (["--faults", "3"], "--faults must be between 0 and 1"),
        (["--time-scale", "-1"], "--time-scale must be"),
    ],
)
def test_a_bad_emulator_setting_is_one_usage_line(args: list[str], says: str) -> None:
    done = lume("emulator", *args)
    assert done.status == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert says in line
    assert line.endswith("(see: lume emulator --help)")


def test_a_port_in_use_is_one_error_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "lume_async", "emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("error: ")


def test_the_emulator_help_shows_its_defaults() -> None:
    done = lume("emulator", "--help")
    assert done.status == 0
    text = " ".join(done.stdout.split())
    assert "(default: 8080)" in text
    assert "(default: 1.0)" in text


# -- the command itself -------------------------------------------------------------------------


def test_console_script_is_installed_next_to_the_interpreter() -> None:
    script = Path(sys.executable).with_name("lume")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("lume, version ")


def test_without_the_cli_extra_the_command_says_what_to_install() -> None:
    code = "import sys; sys.modules['click'] = None; import lume_async._cli"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: the lume command needs click: pip install 'lume-sdk[cli]'"
    ]


def test_the_sdk_does_not_import_the_cli_libraries() -> None:
    code = (
        "import sys, lume_async, lume_async.testing, lume_sync; "
        "print(sorted(m for m in ('click', 'rich') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "[]"
