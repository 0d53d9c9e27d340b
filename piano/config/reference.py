"""The configuration reference, generated from the schema: ``docs/configuration.md``.

Every key of `piano.config.Config` is found by walking its msgspec structs
(`msgspec.inspect`), so a key added to a struct appears here with its type, its default and
its valid values without anyone writing them down; what it means comes from the field's
docstring (the string literal under it in the struct) or else from `DESCRIPTIONS`, and an
example value for a key without a useful default from `EXAMPLES`. A test
(`tests/piano/test_configref.py`) fails when the committed page differs from `render()`, or
when a key has no description. Regenerate with::

    .venv/bin/python -m piano.configref > docs/configuration.md

`suggest` is the configuration's "did you mean": the known key nearest to a misspelt one.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import itertools
import json
import textwrap
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

__all__ = [
    "DESCRIPTIONS",
    "EXAMPLES",
    "Key",
    "choices",
    "keys",
    "render",
    "struct_at",
    "suggest",
]


@dataclass(frozen=True)
class Key:
    """One configuration key: its table (``agents.<name>``; "" for the top level), its name,
    its type in words, its default (TOML, or "unset"), what it means and an example value."""

    section: str
    name: str
    type: str
    default: str
    description: str
    example: str

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name


DESCRIPTIONS: dict[str, str] = {
    "default_agent": "The agent a conversation gets when its surface names none.",
    "daemon.state_dir": "Where the database, codex's home and the sockets live (made 0700).",
    "daemon.database": "The SQLite database, relative to `state_dir` unless absolute.",
    "daemon.console_socket": "The socket `piano console` and `piano status` attach to.",
    "daemon.chat_socket": "The socket `piano chat` talks to.",
    "daemon.log_level": "The lowest level logged (to stderr); reloaded on SIGHUP.",
    "daemon.log_format": "`json` lines or readable `console` lines; reloaded on SIGHUP.",
    "daemon.shutdown_timeout": "Seconds SIGTERM waits for the tree to stop before killing it.",
    "codex.binary": "The codex binary; empty: the pinned `.codex` install, then `PATH`.",
    "codex.home": "codex's `CODEX_HOME`; empty: `codex-home` in the state directory.",
    "codex.args": "Extra arguments to `codex app-server`.",
    "codex.request_timeout": "Seconds a request to codex may take; an unanswered "
    "`turn/start` restarts codex, so the turn cannot run later.",
    "codex.restart_backoff": "The longest wait before a crashed codex is restarted the first "
    "time (each wait is drawn at random below its ceiling: `actors.Backoff`).",
    "codex.restart_backoff_cap": "The longest wait between restarts (the ceiling doubles).",
    "providers.<name>.base_url": "The server's OpenAI-compatible base URL, `/v1` included.",
    "providers.<name>.wire_api": "The API codex speaks to it: `responses` (codex agents need "
    'it); `chat` only for `backend = "openai"` agents.',
    "providers.<name>.env_key": "The environment variable holding the API key (never the key "
    "itself); unset for a server that needs none.",
    "providers.<name>.request_max_retries": "codex's retries of a failed request.",
    "providers.<name>.stream_max_retries": "codex's retries of a dropped stream.",
    "providers.<name>.stream_idle_timeout_ms": "Milliseconds codex waits on a silent stream.",
    "agents.<name>.backend": "`codex` (codex app-server, its sandbox and tools) or `openai` "
    "(any OpenAI-compatible server through the openai SDK, Piano's tools).",
    "agents.<name>.model": "The model name the provider knows; needed by `openai` agents.",
    "agents.<name>.provider": "A `[providers.<name>]` table; unset: OpenAI with `OPENAI_API_KEY`.",
    "agents.<name>.workspace": "The directory the agent works in.",
    "agents.<name>.sandbox": "What codex's commands may touch.",
    "agents.<name>.approval_policy": "When codex asks the user before running a command.",
    "agents.<name>.instructions": "Extra instructions given to the model.",
    "agents.<name>.busy": "What a message does while a turn runs: wait its turn, steer the "
    "running turn, or interrupt it.",
    "agents.<name>.turn_timeout": "Seconds a turn may run before it is interrupted.",
    "agents.<name>.approval_timeout": "Seconds an approval waits for the user; then declined.",
    "agents.<name>.idle_timeout": "Seconds an idle conversation's actor lives.",
    "agents.<name>.openai.base_url": "The server; unset: the provider's `base_url`.",
    "agents.<name>.openai.api": "`responses` or `chat` (Chat Completions); unset: the "
    "provider's `wire_api`.",
    "agents.<name>.openai.api_key_env": "The key's variable; unset: the provider's `env_key`, "
    'then `OPENAI_API_KEY`; `""` for a server that needs none.',
    "agents.<name>.openai.max_rounds": "Model responses per user message (tool calls loop).",
    "agents.<name>.openai.tools": "Tool groups the agent gets (web_fetch, browser, shell, "
    "notes, send_message).",
    "agents.<name>.openai.handoffs": "Agents this one may hand the conversation to.",
    "agents.<name>.openai.max_retries": "Retries of a 429, a 5xx or a refused connection.",
    "agents.<name>.openai.retry_backoff": "The longest wait before the first retry (the "
    "ceiling then doubles; each wait is drawn at random below it).",
    "agents.<name>.openai.retry_backoff_cap": "The longest wait between retries.",
    "agents.<name>.openai.request_timeout": "Seconds one request to the server may take.",
    "agents.<name>.openai.max_output_tokens": "A cap on each response's tokens.",
    "agents.<name>.openai.temperature": "Sampling temperature; unset: the server's default.",
    "agents.<name>.openai.history_limit": "Past messages sent with each request at most.",
    "tools.browser.chromium": "The Chromium binary (Debian's `chromium`).",
    "tools.browser.chromedriver": "The chromedriver binary (Debian's `chromium-driver`).",
    "tools.browser.max_sessions": "Live headless Chromiums across all threads.",
    "tools.browser.idle_timeout": "Seconds an unused browser session lives.",
    "tools.browser.start_timeout": "Seconds Chromium may take to start.",
    "tools.browser.page_load_timeout": "Seconds a page may take to load.",
    "tools.browser.script_timeout": "Seconds a page script may run.",
    "tools.browser.action_timeout": "Seconds one browser action may take.",
    "tools.browser.window_size": "The window size, `width,height`.",
    "tools.browser.text_limit": "Characters of page text returned to the model.",
    "tools.browser.extra_args": "Extra Chromium arguments.",
    "tools.browser.block_dns": "Resolve nothing but localhost (offline tests only).",
    "tools.browser.allowed_networks": "CIDRs let through the private-address guard.",
    "tools.browser.sandbox_uid": "The uid a root daemon runs the browser sandbox as.",
    "tools.jail.enabled": "Offer the jailed shell.",
    "tools.jail.timeout": "The default and the maximum of a command's timeout, in seconds.",
    "tools.jail.output_cap_bytes": "Bytes of a command's output kept.",
    "tools.jail.memory_limit_mib": "Memory per jail; unset: no limit.",
    "tools.jail.pids_limit": "Processes per jail; unset: no limit.",
    "tools.jail.cpu_limit": "Cores per jail; unset: no limit.",
    "tools.jail.max_sessions": "Live jails across all threads.",
    "tools.jail.idle_timeout": "Seconds an unused jail lives.",
    "tools.jail.store": "The store actor commands are audited to (empty: the log only).",
    "tools.webfetch.enabled": "Offer web fetch.",
    "tools.webfetch.timeout": "Seconds a fetch may take.",
    "tools.webfetch.max_bytes": "The largest response read.",
    "tools.webfetch.max_redirects": "Redirects followed (each one vetted).",
    "tools.webfetch.max_concurrent": "Fetches running at once.",
    "tools.webfetch.allowed_networks": "CIDRs let through the private-address guard.",
    "tools.webfetch.inline_limit": "Characters returned inline; longer text is saved.",
    "tools.mcp.enabled": "Give codex agents Piano's tools through the MCP endpoint.",
    "tools.mcp.host": "The endpoint's address (loopback).",
    "tools.mcp.port": "The endpoint's port; 0: a free one, kept across restarts.",
    "tools.mcp.path": "The endpoint's HTTP path.",
    "tools.mcp.server_name": "The name codex knows the server by.",
    "tools.mcp.approval_mode": "`approve` runs tools without asking; `prompt` asks the user "
    "each time; `auto` and `writes` ask for some.",
    "tools.mcp.secret_env": "The variable holding the token-signing key (unset: random).",
    "tools.mcp.tool_timeout_sec": "Seconds codex waits for one tool call.",
    "web.enabled": "Serve the web chat and dashboard.",
    "web.host": "The address to listen on (loopback unless behind a proxy you trust).",
    "web.port": "The TCP port.",
    "web.token_env": "The variable holding the access token.",
    "web.heartbeat": "Seconds between the stream's heartbeats.",
    "web.dashboard_interval": "Seconds between dashboard snapshots.",
    "media.enabled": "Accept voice notes, images and files.",
    "media.inbox": "Files are saved under `<agent workspace>/<inbox>/`.",
    "media.max_voice_bytes": "The largest voice note or audio file.",
    "media.max_voice_seconds": "The longest voice note, when its length is known.",
    "media.max_image_bytes": "The largest image.",
    "media.max_file_bytes": "The largest file.",
    "media.download_timeout": "Seconds a download from a surface may take.",
    "media.transcription.provider": "A `[providers.<name>]` whose `base_url` and `env_key` "
    "transcribe voice notes.",
    "media.transcription.base_url": "The transcription server (wins over `provider`).",
    "media.transcription.model": "The transcription model.",
    "media.transcription.api_key_env": "The key's variable; unset: the provider's, then "
    '`OPENAI_API_KEY`; `""` for none.',
    "media.transcription.language": "The spoken language's ISO code; unset: detected.",
    "media.transcription.timeout": "Seconds a transcription may take.",
    "telegram.enabled": "Run the Telegram surface (the table's presence asks for it).",
    "telegram.token_env": "The variable holding the bot token.",
    "telegram.base_url": "The Bot API's address (a local Bot API server's, if you run one).",
    "telegram.mode": "`polling` or `webhook`.",
    "telegram.users": "Telegram user ids and their role (`admin` or `user`).",
    "telegram.chats": "Group chats whose members may all talk, and their role.",
    "telegram.default_agent": "The agent of Telegram chats; unset: `default_agent`.",
    "telegram.group_context": "A group answer sees the chat's last N messages.",
    "telegram.document_threshold": "Answers longer than this go as a Markdown document.",
    "telegram.message_limit": "Telegram's message length limit.",
    "telegram.edit_interval_private": "Seconds between progress edits in a private chat.",
    "telegram.edit_interval_group": "Seconds between progress edits in a group.",
    "telegram.poll_timeout": "Seconds a long poll waits.",
    "telegram.max_document_bytes": "The largest document sent.",
    "telegram.preview_chars": "Characters of a tool's output in the progress message.",
    "telegram.refusal_interval": "Seconds between refusals to the same stranger.",
    "telegram.inbox_retention": "Seconds received files are kept.",
    "telegram.webhook.listen": "The webhook server's address.",
    "telegram.webhook.port": "The webhook server's port.",
    "telegram.webhook.path": "The webhook's HTTP path.",
    "telegram.webhook.url": "The public HTTPS address Telegram posts to.",
    "telegram.webhook.secret_env": "The variable holding the webhook's secret token.",
}
"""What each key means, for keys whose field has no docstring of its own."""

EXAMPLES: dict[str, str] = {
    "default_agent": '"default"',
    "codex.binary": '"/usr/local/bin/codex"',
    "codex.home": '"/var/lib/piano/codex-home"',
    "providers.<name>.base_url": '"http://127.0.0.1:8080/v1"',
    "providers.<name>.env_key": '"LOCAL_API_KEY"',
    "providers.<name>.request_max_retries": "4",
    "providers.<name>.stream_max_retries": "5",
    "providers.<name>.stream_idle_timeout_ms": "300000",
    "agents.<name>.model": '"gpt-5.5"',
    "schedules.<name>.prompt": '"Summarise what changed in the repository since yesterday."',
    "schedules.<name>.cron": '"0 8 * * 1-5"',
    "schedules.<name>.agent": '"default"',
    "agents.<name>.provider": '"local"',
    "agents.<name>.instructions": '"Answer briefly."',
    "agents.<name>.openai.base_url": '"http://127.0.0.1:8000/v1"',
    "agents.<name>.openai.api": '"chat"',
    "agents.<name>.openai.api_key_env": '""',
    "agents.<name>.openai.handoffs": '["archivist"]',
    "agents.<name>.openai.max_output_tokens": "4096",
    "agents.<name>.openai.temperature": "0.2",
    "tools.browser.allowed_networks": '["10.1.2.0/24"]',
    "tools.webfetch.allowed_networks": '["10.1.2.0/24"]',
    "tools.mcp.secret_env": '"PIANO_MCP_SECRET"',
    "web.allowed_origins": '["https://piano.example.org"]',
    "web.default_agent": '"default"',
    "media.transcription.provider": '"openai"',
    "media.transcription.base_url": '"http://127.0.0.1:9000/v1"',
    "media.transcription.api_key_env": '"OPENAI_API_KEY"',
    "media.transcription.language": '"en"',
    "telegram.users": '{ "1001" = "admin", "1002" = "user" }',
    "projects.<name>.path": '"~/src/piano"',
    "projects.<name>.description": '"the orchestrator"',
    "telegram.chats": '{ "-100200300" = "user" }',
    "telegram.default_agent": '"default"',
    "telegram.webhook.url": '"https://bot.example.org/telegram"',
    "cluster.node_id": '"node-a"',
    "prices.<name>.input": "1.25",
    "prices.<name>.cached_input": "0.125",
    "prices.<name>.output": "10.0",
    "limits.turns_per_day": "50",
    "limits.tokens_per_day": "2_000_000",
    "limits.users.<name>.turns_per_day": "500",
}
"""Example values (TOML) for keys whose default is no example (unset, empty)."""


def _field_docs(cls: type) -> dict[str, str]:
    """The docstrings under a class's fields (``name: type = value`` then a string)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for statement, after in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[statement.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def _struct(t: mi.Type) -> mi.StructType | None:
    """The struct a field's type is (or may be: ``Struct | None``)."""
    if isinstance(t, mi.StructType):
        return t
    if isinstance(t, mi.UnionType):
        found = [s for s in t.types if isinstance(s, mi.StructType)]
        return found[0] if len(found) == 1 else None
    return None


def _describe_type(t: mi.Type) -> str:
    if isinstance(t, mi.UnionType):
        parts = [_describe_type(s) for s in t.types if not isinstance(s, mi.NoneType)]
        optional = any(isinstance(s, mi.NoneType) for s in t.types)
        return " or ".join(parts) + (" (or unset)" if optional else "")
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(f"`{_toml(v)}`" for v in sorted(t.values, key=str))
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.StrType):
        return "string"
    if isinstance(t, mi.IntType | mi.FloatType):
        bounds = [
            f"{sign} {value}"
            for sign, value in ((">", t.gt), ("≥", t.ge), ("<", t.lt), ("≤", t.le))
            if value is not None
        ]
        kind = "integer" if isinstance(t, mi.IntType) else "number"
        return kind + (f" ({', '.join(bounds)})" if bounds else "")
    if isinstance(t, mi.ListType):
        return f"array of {_describe_type(t.item_type)}"
    if isinstance(t, mi.DictType):
        return f"table of {_describe_type(t.value_type)}"
    return type(t).__name__.removesuffix("Type").lower()


def _toml(value: Any) -> str:
    """`value` as a TOML value (inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def _default(field: mi.Field) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return msgspec.NODEFAULT


def _walk(struct: mi.StructType, section: str) -> list[Key]:
    found: list[Key] = []
    docs = _field_docs(struct.cls)
    nested: list[tuple[mi.StructType, str]] = []
    for field in struct.fields:
        path = f"{section}.{field.name}" if section else field.name
        inner = _struct(field.type)
        if inner is not None:
            nested.append((inner, path))
            continue
        if isinstance(field.type, mi.DictType) and isinstance(field.type.value_type, mi.StructType):
            nested.append((field.type.value_type, f"{path}.<name>"))
            continue
        default = _default(field)
        shown = (
            "required"
            if default is msgspec.NODEFAULT
            else "unset"
            if default is None
            else _toml(default)
        )
        example = EXAMPLES.get(path)
        if example is None:
            example = shown if shown not in ("unset", "required", '""', "[]", "{}") else ""
        found.append(
            Key(
                section=section,
                name=field.name,
                type=_describe_type(field.type),
                default=shown,
                description=docs.get(field.name) or DESCRIPTIONS.get(path, ""),
                example=example,
            )
        )
    for inner, path in nested:
        found.extend(_walk(inner, path))
    return found


def keys() -> list[Key]:
    """Every key of the configuration, table by table in the schema's order."""
    from piano.config import Config

    root = mi.type_info(Config)
    assert isinstance(root, mi.StructType)
    return _walk(root, "")


def struct_at(path: list[str]) -> type[msgspec.Struct] | None:
    """The struct class of the table at `path` (``["agents", "x", "openai"]``), if any."""
    from piano.config import Config

    t: mi.Type = mi.type_info(Config)
    for part in path:
        struct = _struct(t)
        if struct is not None:
            fields = {f.name: f.type for f in struct.fields}
            if part not in fields:
                return None
            t = fields[part]
        elif isinstance(t, mi.DictType):
            t = t.value_type
        else:
            return None
    struct = _struct(t)
    return struct.cls if struct is not None else None


def choices(path: list[str]) -> list[str] | None:
    """The valid values of the key at `path` when they are a fixed set (a ``Literal``)."""
    cls = struct_at(path[:-1])
    if cls is None:
        return None
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    for field in info.fields:
        if field.name == path[-1]:
            kinds = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
            for kind in kinds:
                if isinstance(kind, mi.LiteralType):
                    return sorted(str(value) for value in kind.values)
    return None


def suggest(table: list[str], unknown: str) -> str | None:
    """The known key of the table at `table` nearest to the `unknown` one, if one is near."""
    cls = struct_at(table)
    if cls is None:
        return None
    close = difflib.get_close_matches(unknown, cls.__struct_fields__, n=1, cutoff=0.6)
    return close[0] if close else None


_INTRO = """\
# Configuration reference

<!-- Generated by `python -m piano.configref` from the configuration's schema
(`piano/config/` and the structs it uses); tests/piano/test_configref.py fails when this
file differs. Edit the schema or piano/config/reference.py, then regenerate:
.venv/bin/python -m piano.configref > docs/configuration.md -->

Piano reads one TOML file: `piano run --config piano.toml` (`scripts/run` uses
`examples/piano.toml` unless `PIANO_CONFIG` names another). Every key below is optional unless
marked *required*; a table not written keeps every default. Any key can be overridden from the
environment as `PIANO__SECTION__KEY=value` (`PIANO__AGENTS__DEFAULT__MODEL=gpt-5.5`; the value
is read as TOML when it parses, else as a string). Secrets never go in the file: the file names
the environment variable that holds each one (`env_key`, `token_env`, `secret_env`).

A mistake is refused at start with one line naming the file, the key and the fix, by
`piano run` and `piano doctor` alike: a misspelt key gets the nearest real one
(`agents.default.modle: no such key; did you mean model?`), a value outside a set of choices
gets the valid ones (`agents.default.busy: must be one of interrupt, queue, steer; got 'wait'`).

`SIGHUP` (`systemctl reload piano`) re-reads the file: `daemon.log_level` and
`daemon.log_format` change at once; any other changed key is named in a warning
(`daemon.reload_needs_restart`) and takes effect at the next start. A file that no longer loads
is refused with its error and the daemon goes on with what it had.

## Pointing Piano at a self-hosted OpenAI-compatible server

Declare the server once as a provider, then give an agent that provider. Which `backend` and
`wire_api` to choose depends on what the server speaks:

- **It serves the Responses API** (`POST /v1/responses`: vLLM, recent llama.cpp server,
  LiteLLM, Ollama's OpenAI layer with `/v1/responses`): keep `backend = "codex"` (the default:
  codex runs the agent, with its sandbox and Piano's tools) and `wire_api = "responses"` (the
  default).
- **It serves only Chat Completions** (`POST /v1/chat/completions`): codex no longer speaks that,
  so use `backend = "openai"` (Piano's own agent loop on the openai SDK, with Piano's tools) and
  `wire_api = "chat"` (or `api = "chat"` under the agent's `openai` table).

```toml
[providers.local]
base_url = "http://127.0.0.1:8080/v1"   # the server's base URL, /v1 included
wire_api = "responses"                  # or "chat" (then backend = "openai" below)
env_key = "LOCAL_API_KEY"               # omit for a server that needs no key

[agents.default]
backend = "codex"                       # "openai" for a Chat-Completions-only server
model = "qwen3-coder"                   # the model name the server knows
provider = "local"
```

Then `piano doctor --config piano.toml` asks the server for the model (the same request Piano
makes when a turn fails) and says what it answered. The key itself is exported before
`piano run` (`export LOCAL_API_KEY=...`); it is never written to the file or the log.
"""


def render() -> str:
    """The whole of ``docs/configuration.md``: the introduction, then a table and an example
    per section, providers and agents first (what a newcomer writes)."""
    out = [_INTRO]
    by_section: dict[str, list[Key]] = {}
    for key in keys():
        by_section.setdefault(key.section, []).append(key)
    first = ("", "providers.<name>", "agents.<name>", "agents.<name>.openai")
    ordered = sorted(
        by_section.items(),
        key=lambda item: (item[0] not in first, first.index(item[0]) if item[0] in first else 0),
    )
    for section, found in ordered:
        out.append(f"\n## `[{section}]`\n" if section else "\n## Top level\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|\n")
        for key in found:
            out.append(
                f"| `{key.name}` | {key.type} | `{key.default}` | {key.description} |\n"
                if key.default not in ("unset", "required")
                else f"| `{key.name}` | {key.type} | {key.default} | {key.description} |\n"
            )
        examples = [key for key in found if key.example]
        if examples:
            named = "local" if section.startswith("providers") else "default"
            header = f"[{section.replace('<name>', named)}]\n"
            width = max(len(key.name) for key in examples)
            out.append(
                "\nExample:\n\n```toml\n"
                + (header if section else "")
                + "".join(f"{key.name:<{width}} = {key.example}\n" for key in examples)
                + "```\n"
            )
    return "".join(out)


if __name__ == "__main__":
    print(render(), end="")
