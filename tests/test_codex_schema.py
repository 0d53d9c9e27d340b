"""The msgspec structs in `schemas.codex` agree with the JSON schema of the pinned codex binary.

The schema comes from `codex app-server generate-json-schema --out DIR` of the binary the client
runs. For every struct we define: each field exists under its wire name; for structs we receive,
each field we require is required by the schema and every value the schema allows decodes (types,
nullability, enum members, union variants); for structs we send, every value we can produce is
allowed and every field the schema requires is required. A codex upgrade that renames, drops or
retypes anything Piano uses fails here with the path of the field and what changed.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi
import pytest

from piano.codex import find_codex_binary
from schemas.codex import (
    KNOWN_ITEM_TYPES,
    NOTIFICATIONS,
    SERVER_REQUESTS,
    CommandExecutionRequestApprovalResponse,
    FileChangeRequestApprovalResponse,
    InitializeParams,
    ItemStartedNotification,
    KnownThreadItem,
    McpServerElicitationRequestParams,
    McpServerElicitationRequestResponse,
    ModelListParams,
    Request,
    RpcErrorBody,
    RpcNotification,
    RpcRequest,
    RpcResponse,
    ThreadInjectItemsParams,
    ThreadLoadedListParams,
    ThreadResumeParams,
    ThreadStartParams,
    ThreadUnsubscribeParams,
    TurnInterruptParams,
    TurnStartParams,
    TurnSteerParams,
    decode_message,
)
from tests.fakes.responses_provider import make_codex_dirs

Direction = Literal["in", "out"]
CLIENT_REQUESTS: list[type[Request[Any]]] = [
    InitializeParams,
    ModelListParams,
    ThreadStartParams,
    ThreadResumeParams,
    ThreadLoadedListParams,
    ThreadInjectItemsParams,
    ThreadUnsubscribeParams,
    TurnStartParams,
    TurnSteerParams,
    TurnInterruptParams,
]
# Item types Piano knowingly leaves to `UnknownItem`; a type in neither list is new in codex.
UNMODELLED_ITEM_TYPES = {
    "hookPrompt",
    "functionCallOutput",
    "collabAgentToolCall",
    "subAgentActivity",
    "sleep",
    "imageGeneration",
}
ITEM_MARKER = typing.get_type_hints(ItemStartedNotification)["item"]


@pytest.fixture(scope="module")
def schema_doc() -> Iterator[dict[str, Any]]:
    try:
        binary = find_codex_binary()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    dirs = make_codex_dirs()
    out = dirs.root / "schema"
    try:
        subprocess.run(
            [str(binary), "app-server", "generate-json-schema", "--out", str(out)],
            env={**os.environ, **dirs.env},
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield json.loads((out / "codex_app_server_protocol.schemas.json").read_text())
    finally:
        shutil.rmtree(dirs.root, ignore_errors=True)


class Checker:
    """Compares msgspec type info with JSON schema; collects readable problems."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.problems: list[str] = []
        self._seen: set[tuple[type[Any], int, str]] = set()

    def definition(self, name: str) -> dict[str, Any]:
        defs = self.doc["definitions"]
        found = defs.get(name) or defs["v2"].get(name)
        assert found is not None, f"definition {name} is gone from the codex schema"
        return typing.cast(dict[str, Any], found)

    def method_params(self, union: str, method: str) -> dict[str, Any] | None:
        for variant in self.definition(union)["oneOf"]:
            if variant["properties"]["method"].get("enum") == [method]:
                return typing.cast(dict[str, Any], variant["properties"]["params"])
        return None

    def received_by_method(self, union: str, table: dict[str, type[Any]]) -> None:
        """Check each params struct against the params of its method in `union`."""
        for method, cls in table.items():
            params = self.method_params(union, method)
            if params is None:
                self.problems.append(f"{method}: no longer in {union}")
            else:
                self.struct(struct_info(cls), params, "in", method)

    def resolve(self, s: Any) -> Any:
        while isinstance(s, dict) and "$ref" in s:
            node: Any = self.doc
            for part in s["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            s = node
        return s

    def alts(self, s: Any) -> list[tuple[str, Any]]:
        """Flatten a schema into (kind, detail) alternatives."""
        s = self.resolve(s)
        if s is True or not isinstance(s, dict):
            return [("any", None)]
        if "allOf" in s and len(s["allOf"]) == 1:
            return self.alts(s["allOf"][0])
        union = s.get("oneOf") or s.get("anyOf")
        if union and "properties" not in s:
            return [a for sub in union for a in self.alts(sub)]
        if "enum" in s:
            values = [v for v in s["enum"] if v is not None]
            return [("string", set(values))] + ([("null", None)] if None in s["enum"] else [])
        kinds = s.get("type")
        if kinds is None:
            return [("object", s)] if "properties" in s else [("any", None)]
        out: list[tuple[str, Any]] = []
        for kind in [kinds] if isinstance(kinds, str) else kinds:
            detail = {"array": s.get("items", True), "object": s}.get(kind)
            out.append((kind, detail))
        return out

    def py_alts(self, t: Any) -> list[Any]:
        if isinstance(t, mi.UnionType):
            return [a for sub in t.types for a in self.py_alts(sub)]
        if isinstance(t, mi.CustomType) and t.cls is ITEM_MARKER:
            return [
                *self.py_alts(struct_info(KnownThreadItem)),
                mi.DictType(mi.AnyType(), mi.AnyType()),
            ]
        return [t]

    def compare(self, t: Any, s: Any, direction: Direction, path: str) -> None:
        s_alts, p_alts = self.alts(s), self.py_alts(t)
        if any(k == "any" for k, _ in s_alts) or any(
            isinstance(p, mi.AnyType | mi.RawType) for p in p_alts
        ):
            return
        literals = {v for p in p_alts if isinstance(p, mi.LiteralType) for v in p.values}
        enums = {v for k, d in s_alts if k == "string" and d for v in d}
        free_string = any(k == "string" and not d for k, d in s_alts)
        has = {type(p) for p in p_alts}
        if literals and not free_string and literals != enums:
            theirs, ours = sorted(map(str, enums)), sorted(map(str, literals))
            self.problems.append(f"{path}: enum changed: schema {theirs}, ours {ours}")
        if direction == "in":
            self._covers_schema(p_alts, s_alts, has, bool(literals), path)
        else:
            self._allowed_by_schema(p_alts, s_alts, free_string, path)

    def _covers_schema(
        self,
        p_alts: list[Any],
        s_alts: list[tuple[str, Any]],
        has: set[type],
        literals: bool,
        path: str,
    ) -> None:
        simple = {
            "null": mi.NoneType,
            "integer": mi.IntType,
            "number": mi.FloatType,
            "boolean": mi.BoolType,
        }
        for kind, detail in s_alts:
            if kind in simple and simple[kind] not in has:
                self.problems.append(f"{path}: schema allows {kind}, ours does not decode it")
            elif kind == "string" and mi.StrType not in has and not (literals and detail):
                self.problems.append(f"{path}: schema allows any string, ours does not")
            elif kind == "array":
                lists = [p for p in p_alts if isinstance(p, mi.ListType)]
                if not lists:
                    self.problems.append(f"{path}: schema allows an array, ours does not")
                for p in lists:
                    self.compare(p.item_type, detail, "in", f"{path}[]")
            elif kind == "object":
                self._object_in(p_alts, detail, path)

    def _object_in(self, p_alts: list[Any], s: dict[str, Any], path: str) -> None:
        structs = [p for p in p_alts if isinstance(p, mi.StructType)]
        catch_all = any(isinstance(p, mi.DictType) for p in p_alts)
        tag = _tag_of(s)
        if tag is not None:
            match = [p for p in structs if p.tag_field == tag[0] and p.tag == tag[1]]
            if match:
                self.struct(match[0], s, "in", f"{path}<{tag[1]}>")
            elif not catch_all:
                self.problems.append(f"{path}: variant {tag[0]}={tag[1]!r} is not decoded")
            return
        untagged = [p for p in structs if p.tag is None]
        if untagged:
            self.struct(untagged[0], s, "in", path)
        elif not catch_all and not structs:
            self.problems.append(f"{path}: schema allows an object, ours does not")

    def _allowed_by_schema(
        self, p_alts: list[Any], s_alts: list[tuple[str, Any]], free_string: bool, path: str
    ) -> None:
        kinds = {k for k, _ in s_alts}
        simple: dict[type[mi.Type], str] = {
            mi.NoneType: "null",
            mi.IntType: "integer",
            mi.BoolType: "boolean",
            mi.FloatType: "number",
            mi.DictType: "object",
        }
        for p in p_alts:
            if type(p) in simple and simple[type(p)] not in kinds:
                self.problems.append(f"{path}: ours sends {simple[type(p)]}, schema forbids it")
            elif isinstance(p, mi.StrType) and not free_string:
                self.problems.append(f"{path}: ours sends any string, schema wants an enum")
            elif isinstance(p, mi.ListType):
                arrays = [d for k, d in s_alts if k == "array"]
                if not arrays:
                    self.problems.append(f"{path}: ours sends an array, schema forbids it")
                for items in arrays:
                    self.compare(p.item_type, items, "out", f"{path}[]")
            elif isinstance(p, mi.StructType):
                self._struct_out(p, [d for k, d in s_alts if k == "object"], path)

    def _struct_out(self, p: mi.StructType, objects: list[dict[str, Any]], path: str) -> None:
        if p.tag is not None:
            match = [o for o in objects if _tag_of(o) == (p.tag_field, p.tag)]
            if not match:
                self.problems.append(f"{path}: variant {p.tag_field}={p.tag!r} is gone")
                return
            self.struct(p, match[0], "out", f"{path}<{p.tag}>")
            return
        attempts = []
        for candidate in objects:
            sub = Checker(self.doc)
            sub.struct(p, candidate, "out", path)
            if not sub.problems:
                return
            attempts.append(sub.problems)
        best = min(attempts, key=len) if attempts else [f"{path}: not an object"]
        self.problems.extend(best)

    def struct(self, t: mi.StructType, s: Any, direction: Direction, path: str) -> None:
        s = self.resolve(s)
        key = (t.cls, id(s), direction)
        if key in self._seen:
            return
        self._seen.add(key)
        props: dict[str, Any] = s.get("properties", {})
        for sub in (*s.get("anyOf", []), *s.get("oneOf", [])):
            props = {**self.resolve(sub).get("properties", {}), **props}
        required = set(s.get("required", []))
        omit_defaults = t.cls.__struct_config__.omit_defaults
        names = {f.encode_name: f for f in t.fields}
        for name, f in names.items():
            where = f"{path}.{name}"
            if name not in props:
                self.problems.append(f"{where}: not in the schema (it has {sorted(props)})")
                continue
            if direction == "in" and f.required and name not in required:
                self.problems.append(f"{where}: ours is required, the schema's is optional")
            ftype = f.type
            if direction == "out" and omit_defaults and f.default is None:
                kept = [a for a in self.py_alts(ftype) if not isinstance(a, mi.NoneType)]
                ftype = mi.UnionType(tuple(kept)) if len(kept) > 1 else kept[0]
            self.compare(ftype, props[name], direction, where)
        if direction == "out":
            for name in sorted(required - {t.tag_field}):
                if name not in names or not names[name].required:
                    self.problems.append(f"{path}.{name}: the schema requires it, ours may omit it")


def struct_info(cls: Any) -> Any:
    """`msgspec.inspect.type_info`, typed loosely (it returns a union the checker narrows)."""
    return mi.type_info(cls)


def _tag_of(s: dict[str, Any]) -> tuple[str, str] | None:
    for field in ("type", "method"):
        enum = s.get("properties", {}).get(field, {}).get("enum")
        if isinstance(enum, list) and len(enum) == 1:
            return field, enum[0]
    return None


def _report(checker: Checker) -> str:
    return "codex protocol drift (schema of the pinned binary vs schemas/codex):\n  " + (
        "\n  ".join(checker.problems)
    )


def test_every_notification_piano_decodes_matches_the_schema(schema_doc: dict[str, Any]) -> None:
    checker = Checker(schema_doc)
    checker.received_by_method("ServerNotification", NOTIFICATIONS)
    assert not checker.problems, _report(checker)


def test_approval_requests_and_their_answers_match_the_schema(schema_doc: dict[str, Any]) -> None:
    checker = Checker(schema_doc)
    checker.received_by_method("ServerRequest", SERVER_REQUESTS)
    for answer in (
        CommandExecutionRequestApprovalResponse,
        FileChangeRequestApprovalResponse,
        McpServerElicitationRequestResponse,
    ):
        name = answer.__name__
        checker.struct(struct_info(answer), checker.definition(name), "out", name)
    assert not checker.problems, _report(checker)


@pytest.mark.parametrize("params_type", CLIENT_REQUESTS, ids=lambda c: c.method)
def test_client_requests_and_their_results_match_the_schema(
    schema_doc: dict[str, Any], params_type: type[Request[Any]]
) -> None:
    checker = Checker(schema_doc)
    params = checker.method_params("ClientRequest", params_type.method)
    assert params is not None, f"client request {params_type.method} is gone from ClientRequest"
    checker.struct(struct_info(params_type), params, "out", params_type.method)
    result = params_type.response_type
    checker.struct(struct_info(result), checker.definition(result.__name__), "in", result.__name__)
    assert not checker.problems, _report(checker)


def test_every_thread_item_type_is_modelled_or_knowingly_left_to_unknown_item(
    schema_doc: dict[str, Any],
) -> None:
    checker = Checker(schema_doc)
    variants = {
        v["properties"]["type"]["enum"][0] for v in checker.definition("ThreadItem")["oneOf"]
    }
    assert not (new := variants - KNOWN_ITEM_TYPES - UNMODELLED_ITEM_TYPES), (
        f"new ThreadItem types {sorted(new)}: model them in schemas/codex/_items.py or add them "
        "to UNMODELLED_ITEM_TYPES"
    )
    assert not (gone := KNOWN_ITEM_TYPES - variants), f"ThreadItem types gone: {sorted(gone)}"


def test_the_envelopes_use_only_json_rpc_members_the_schema_defines(
    schema_doc: dict[str, Any],
) -> None:
    checker = Checker(schema_doc)
    response = checker.definition("JSONRPCResponse")["properties"]
    error = checker.definition("JSONRPCError")["properties"]
    expected: dict[type[msgspec.Struct], set[str]] = {
        RpcRequest: set(checker.definition("JSONRPCRequest")["properties"]),
        RpcNotification: set(checker.definition("JSONRPCNotification")["properties"]),
        RpcResponse: set(response) | set(error),
        RpcErrorBody: set(checker.definition("JSONRPCErrorError")["properties"]),
    }
    for cls, allowed in expected.items():
        extra = {f.encode_name for f in msgspec.structs.fields(cls)} - allowed
        assert not extra, f"{cls.__name__}: {sorted(extra)} not in the JSON-RPC schema"


def test_the_checker_reports_a_dropped_field_a_new_enum_value_and_a_new_variant(
    schema_doc: dict[str, Any],
) -> None:
    doc = copy.deepcopy(schema_doc)
    v2 = doc["definitions"]["v2"]
    del v2["AgentMessageDeltaNotification"]["properties"]["delta"]
    v2["TurnStatus"]["enum"].append("paused")
    v2["ThreadStatus"]["oneOf"].append(
        {"properties": {"type": {"enum": ["sleeping"], "type": "string"}}, "type": "object"}
    )
    checker = Checker(doc)
    checker.received_by_method("ServerNotification", NOTIFICATIONS)
    report = _report(checker)
    assert "item/agentMessage/delta.delta: not in the schema" in report
    assert "'paused'" in report
    assert "variant type='sleeping' is not decoded" in report


def test_the_schema_is_generated_by_the_binary_the_client_runs() -> None:
    binary = find_codex_binary()
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    pinned = (Path(__file__).resolve().parents[1] / "scripts" / "codex-version").read_text()
    assert version.split()[-1] == pinned.strip(), f"{binary} is {version}, pinned {pinned}"


def test_an_elicitation_is_a_tool_approval_only_when_codex_marks_it_as_one() -> None:
    def decode(meta: object) -> McpServerElicitationRequestParams:
        line = json.dumps(
            {
                "id": 7,
                "method": "mcpServer/elicitation/request",
                "params": {
                    "threadId": "t",
                    "serverName": "piano",
                    "mode": "form",
                    "message": "Allow?",
                    "requestedSchema": {"type": "object", "properties": {}},
                    "_meta": meta,
                },
            }
        ).encode()
        request = decode_message(line)
        assert isinstance(request, RpcRequest)
        assert isinstance(request.params, McpServerElicitationRequestParams)
        return request.params

    marked = {
        "codex_approval_kind": "mcp_tool_call",
        "tool_name": "web_fetch",
        "tool_params": {"url": "https://example.org/"},
    }
    assert decode(marked).tool_call() == ("web_fetch", {"url": "https://example.org/"})
    assert decode(None).tool_call() is None  # another server's form: Piano declines it
    assert decode({"codex_approval_kind": "something_else"}).tool_call() is None
