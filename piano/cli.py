"""The `piano` command: the daemon, its chat and console clients, and a runtime demo.

- ``piano run --config piano.toml``: run the daemon until SIGTERM or Ctrl-C.
- ``piano chat [--config ...] [--message TEXT]``: talk to an agent through the running daemon.
- ``piano status [--config ...]``: print the running daemon's supervision tree and threads.
- ``piano doctor [--config ...]``: check the codex binary, bwrap, Chromium, the config, the
  database, and say how to fix what is missing.
- ``piano install-service --config ... [--unit PATH | --print]``: a systemd unit for the daemon
  (restart on failure, ``systemctl reload`` sends SIGHUP).
- ``piano console [--socket PATH | --config ...]``: attach a REPL to a running system.
- ``piano demo [--socket PATH]``: a small actor system with a console on PATH, until Ctrl-C.

Each subcommand is a function ``_name(args) -> int`` registered by ``_add_name(subparsers)``
in `_COMMANDS`; add new ones the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

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
    parser.add_argument("--config", default=None, help="take the socket from this daemon config")
    parser.add_argument(
        "--history",
        default=None,
        help="history file (default: $PIANO_CONSOLE_HISTORY or ~/.piano_console_history)",
    )
    parser.set_defaults(run=_console)


def _console(args: argparse.Namespace) -> int:
    from actors.console import run_client

    socket = args.socket
    if args.config is not None:
        config = _load(args.config)
        if config is None:
            return 2
        socket = str(config.state_path(config.daemon.console_socket))
    return run_client(socket, history_file=args.history)


def _load(path: str | None) -> Any:
    from piano.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"piano: {exc}", file=sys.stderr)
        return None


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="run the Piano daemon")
    parser.add_argument("--config", default=None, help="the TOML configuration file")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from piano.daemon import Reloader, build_application, configure_logging, secure_state

    config = _load(args.config)
    if config is None:
        return 2
    if config.store.backend == "postgres":  # what only the environment tells: the DSN
        from piano.config import ConfigError

        try:
            config.store.dsn()
        except ConfigError as exc:
            print(f"piano: {args.config or '(defaults)'}: {exc}", file=sys.stderr)
            return 2
    configure_logging(config)
    try:
        secure_state(config)
    except OSError as exc:
        print(
            f"piano: {args.config}: daemon.state_dir: cannot create or secure "
            f"{exc.filename or config.daemon.state_dir}: {exc.strerror}: "
            "choose a directory the daemon can write",
            file=sys.stderr,
        )
        return 2
    application = build_application(config)
    application.reload = Reloader(args.config, config)  # SIGHUP
    return application.main()


def _add_chat(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("chat", help="talk to an agent through the running daemon")
    parser.add_argument("--config", default=None, help="the daemon's TOML configuration file")
    parser.add_argument("--socket", default=None, help="the chat socket (default: from config)")
    parser.add_argument("--conversation", default="default", help="conversation name")
    parser.add_argument("--agent", default=None, help="agent name (default: the default agent)")
    parser.add_argument(
        "--thread", default=None, help="attach to an existing thread by its id (any surface)"
    )
    parser.add_argument("--message", default=None, help="send one message, print the answer, exit")
    parser.add_argument("--approve", action="store_true", help="accept approvals (scripted use)")
    parser.set_defaults(run=_chat)


def _chat(args: argparse.Namespace) -> int:
    from piano.surfaces.terminal import run_chat

    socket = args.socket
    if socket is None:
        config = _load(args.config)
        if config is None:
            return 2
        socket = str(config.state_path(config.daemon.chat_socket))
    return run_chat(
        socket,
        conversation=args.conversation,
        agent=args.agent,
        message=args.message,
        approve=args.approve,
        thread=args.thread,
    )


def _add_doctor(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("doctor", help="check what Piano needs and how to fix it")
    parser.add_argument("--config", default=None, help="the daemon's TOML configuration file")
    parser.set_defaults(run=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from piano.doctor import run_checks

    return run_checks(args.config)


def _add_status(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="print the running daemon's tree and threads")
    parser.add_argument("--config", default=None, help="the daemon's TOML configuration file")
    parser.set_defaults(run=_status)


STATUS = [
    "tree()",
    # one expression per statement: the console waits for more input after a compound
    # statement such as a one-line `for`, and would never run it
    "print('threads:', *(f'  {key.surface}:{key.conversation} ({key.agent}) -> {ref!r}' "
    "for key, ref in sorted((await conversations()).items(), key=str)), sep='\\n')",
]


CLUSTER_STATUS = ["print(*(await cluster_status()), sep='\\n')"]
"""What `piano status` adds on a cluster's node: members, partition owners, conversations'
lease holders (`piano.cluster.cluster_status`)."""


def _status(args: argparse.Namespace) -> int:
    from actors.console import run_statements

    config = _load(args.config)
    if config is None:
        return 2
    statements = STATUS + (CLUSTER_STATUS if config.cluster is not None else [])
    return run_statements(
        str(config.state_path(config.daemon.console_socket)), statements, banner=False
    )


def _add_install_service(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subparsers.add_parser(
        "install-service", help="write a systemd unit that runs this daemon"
    )
    parser.add_argument("--config", required=True, help="the daemon's TOML configuration file")
    parser.add_argument(
        "--unit",
        default=None,
        help="where to write the unit (default: ~/.config/systemd/user/piano.service)",
    )
    parser.add_argument("--print", action="store_true", help="print the unit, write nothing")
    parser.set_defaults(run=_install_service)


def _install_service(args: argparse.Namespace) -> int:
    from pathlib import Path

    from piano.daemon import systemd_unit

    config = _load(args.config)
    if config is None:
        return 2
    unit = systemd_unit(Path(args.config).resolve(), config)
    if args.print:
        print(unit, end="")
        return 0
    path = Path(args.unit or "~/.config/systemd/user/piano.service").expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(unit)
    print(f"wrote {path}")
    print(
        "enable and start it: systemctl --user daemon-reload && "
        f"systemctl --user enable --now {path.name}"
    )
    print(f"reload the configuration: systemctl --user reload {path.name}  (SIGHUP)")
    print("secrets (OPENAI_API_KEY, ...): put KEY=value lines in ~/.config/piano/env (mode 0600)")
    return 0


_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_run,
    _add_chat,
    _add_status,
    _add_doctor,
    _add_install_service,
    _add_console,
    _add_demo,
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


if __name__ == "__main__":
    main()
