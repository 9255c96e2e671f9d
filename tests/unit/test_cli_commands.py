"""The ``monitor`` root group: its commands, and a light start-up."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from monitor.cli import cli

COMMANDS = {
    "alert-bridge",
    "backfill",
    "backtest",
    "dashboards",
    "dead-letters",
    "demo",
    "evaluate",
    "replay",
    "report",
    "rules",
    "sources",
    "tickets",
    "tokens",
    "train",
    "worker",
}
SUBCOMMANDS = {
    "dashboards": {"install"},
    "evaluate": {"bursts", "sentiment"},
    "rules": {"check"},
    "sources": {"check", "run", "sample-server", "status"},
    "train": {"sentiment"},
    "tickets": {
        "list",
        "show",
        "reviews",
        "ack",
        "start",
        "assign",
        "transfer",
        "comment",
        "escalate",
        "resolve",
        "close",
        "reopen",
    },
    "tokens": {"hash"},
}


def test_root_group_lists_every_command_in_help() -> None:
    shown = CliRunner().invoke(cli, ["--help"], obj={})

    assert shown.exit_code == 0
    listed = shown.output.split("Commands:", 1)[1].split()
    assert COMMANDS <= set(listed)
    assert set(cli.commands) == COMMANDS


def test_command_groups_keep_their_subcommands() -> None:
    for name, subcommands in SUBCOMMANDS.items():
        group = cli.commands[name]
        assert set(getattr(group, "commands", {})) == subcommands, name


def test_importing_the_cli_leaves_heavy_libraries_to_the_commands() -> None:
    heavy = ("faust", "aiokafka", "aiohttp", "elasticsearch", "snownlp")
    probe = (
        "import sys, monitor.cli; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
