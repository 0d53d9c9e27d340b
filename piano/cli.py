"""The `piano` command: a demo actor system, and a console to attach to a running one.

- ``piano demo [--socket PATH]``: a small actor system with a console on PATH, until Ctrl-C.
- ``piano console [--socket PATH]``: attach a REPL to the console of a running system.

Each subcommand is a function ``_name(args) -> int`` registered by ``_add_name(subparsers)``
in `_COMMANDS`; add new ones the same way.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence

DEFAULT_SOCKET = "piano-demo.sock"


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("demo", help="run a demo actor system with a console")
    parser.add_argument(
        "--socket", default=DEFAULT_SOCKET, help=f"console socket (default: {DEFAULT_SOCKET})"
    )
    parser.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from actors.console import run_demo

    try:
        asyncio.run(run_demo(args.socket))
    except FileExistsError as exc:
        print(f"piano demo: {exc}")
        return 1
    return 0


def _add_console(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("console", help="attach a REPL to a running system")
    parser.add_argument(
        "--socket", default=DEFAULT_SOCKET, help=f"console socket (default: {DEFAULT_SOCKET})"
    )
    parser.add_argument(
        "--history",
        default=None,
        help="history file (default: $PIANO_CONSOLE_HISTORY or ~/.piano_console_history)",
    )
    parser.set_defaults(run=_console)


def _console(args: argparse.Namespace) -> int:
    from actors.console import run_client

    return run_client(args.socket, history_file=args.history)


_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_demo,
    _add_console,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="piano", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    raise SystemExit(args.run(args))
