"""The repository's layering, read from its source: no package imports another package's
private names, and no two packages import each other, however indirectly.

Every ``import`` and ``from ... import`` is read from the syntax tree of every first-party
module (``actors``, ``supervisors``, ``schemas``, ``piano``, ``bench``, ``examples``,
``scripts``), wherever it stands: at the top, inside a function, or under ``TYPE_CHECKING`` (a
type is a dependence too).

- **Private names.** A dotted name whose component starts with one underscore (``_client``,
  ``_helper``) is private to the package that holds it: the package itself when the component
  is a module or package inside it, the module's package when it is a name inside a module.
  Only modules inside that package may import it; what another package needs is exported from
  the owner's ``__init__``. Tests are exempt (a unit's tests may reach into it), and so are
  third-party packages' private modules (not this repository's layering).
- **Cycles.** A package is a top-level package, or, under ``piano``, ``piano.X`` (a subpackage
  or a top-level module such as ``piano.config``), or ``actors.pipeline`` (`LAYERED`). If
  package A imports package B, B must not import A, directly or through others
  (``piano.agents → piano.codex → piano.config → piano.agents`` is a cycle).

Each failure names the offending import, file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("actors", "supervisors", "schemas", "piano", "bench", "examples", "scripts")
"""The first-party top-level packages (and script directories) the rules apply to."""


@dataclass(frozen=True)
class Import:
    """One imported dotted name (``a.b.c``, or ``a.b`` + name ``c`` for ``from a.b import c``)
    in module `importer`, at `where` (file:line)."""

    importer: str
    target: str
    name: str | None
    where: str


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[-1] == "__init__"
    if package:
        parts = parts[:-1]
    return ".".join(parts), package


def _imports(path: Path) -> Iterator[Import]:
    module, package = _module_name(path)
    where = str(path.relative_to(ROOT))
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, None, f"{where}:{node.lineno}")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                name = None if alias.name == "*" else alias.name
                yield Import(module, target, name, f"{where}:{node.lineno}")


def _modules() -> Iterator[Path]:
    for top in FIRST_PARTY:
        yield from sorted((ROOT / top).rglob("*.py"))


def _is_package(dotted: str) -> bool:
    return (ROOT / Path(*dotted.split(".")) / "__init__.py").exists()


def _private_owner(imported: Import) -> tuple[str, str] | None:
    """(the private dotted name, the package that owns it), if the import names one."""
    parts = imported.target.split(".") + ([imported.name] if imported.name else [])
    if parts[0] not in FIRST_PARTY:
        return None
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            holder = ".".join(parts[:index])
            owner = holder if _is_package(holder) else holder.rpartition(".")[0]
            return ".".join(parts[: index + 1]), owner
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def private_imports() -> list[str]:
    """Every import of a private name from outside its owning package."""
    found = []
    for path in _modules():
        for imported in _imports(path):
            private = _private_owner(imported)
            if private is not None and not _inside(imported.importer, private[1]):
                name, owner = private
                found.append(
                    f"{imported.where}: {imported.importer} imports {name}, private to {owner}"
                )
    return found


LAYERED = {"actors.pipeline"}
"""Subpackages that are layers of their own: pipelines are built on `supervisors`, which is
built on the `actors` core."""


def package_of(module: str) -> str | None:
    """The package a module belongs to for the cycle rule (None: not first-party)."""
    parts = module.split(".")
    if parts[0] not in FIRST_PARTY:
        return None
    if parts[0] == "piano" and len(parts) > 1:
        return f"piano.{parts[1]}"
    if ".".join(parts[:2]) in LAYERED:
        return ".".join(parts[:2])
    return parts[0]


def package_graph() -> dict[str, dict[str, list[str]]]:
    """Package → package it imports → where (file:line, imported name)."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in _modules():
        for imported in _imports(path):
            source = package_of(imported.importer)
            target = package_of(imported.target)
            if imported.target == "piano" and imported.name:  # from piano import config
                target = package_of(f"piano.{imported.name}")
            if source is None or target is None or source == target:
                continue
            graph.setdefault(source, {}).setdefault(target, []).append(
                f"{imported.where} ({imported.target}"
                + (f".{imported.name})" if imported.name else ")")
            )
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, {}):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _explain(component: list[str], graph: dict[str, dict[str, list[str]]]) -> str:
    lines = [" ↔ ".join(component)]
    for source in component:
        for target in component:
            for where in graph.get(source, {}).get(target, [])[:3]:
                lines.append(f"  {source} → {target}: {where}")
    return "\n".join(lines)


def test_no_package_imports_another_packages_private_names() -> None:
    found = private_imports()
    assert not found, "private names imported across packages:\n" + "\n".join(found)


def test_no_two_packages_import_each_other_even_through_others() -> None:
    graph = package_graph()
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(
        _explain(component, graph) for component in found
    )


BACKEND_MODULES = ("piano.agents.codex", "piano.agents.openai")
"""The agent backends' packages: loaded by name (`piano.agents.backend_class`)."""


def test_the_router_and_the_daemon_import_no_backend_they_pick_by_name() -> None:
    found = [
        f"{imported.where}: {imported.importer} imports {imported.target}"
        + (f".{imported.name}" if imported.name else "")
        for path in _modules()
        for imported in _imports(path)
        if package_of(imported.importer) in ("piano.threads", "piano.daemon")
        and any(
            _inside(f"{imported.target}.{imported.name or ''}", backend)
            for backend in BACKEND_MODULES
        )
    ]
    assert not found, "backends are picked by name, not imported:\n" + "\n".join(found)


def test_the_layering_rules_catch_what_they_are_meant_to_catch(tmp_path: Path) -> None:
    """The checks themselves: a private import across packages is named, one inside its
    package is not, and a three-package cycle is found."""
    across = Import("piano.threads._router", "piano.codex._client", "connection", "x.py:1")
    assert _private_owner(across) == ("piano.codex._client", "piano.codex")
    within = Import("piano.codex._rpc", "piano.codex._client", "connection", "x.py:2")
    owner = _private_owner(within)
    assert owner is not None
    assert _inside(within.importer, owner[1])
    name = Import("piano.web._api", "piano.web", "_helper", "x.py:3")
    assert _private_owner(name) == ("piano.web._helper", "piano.web")
    assert _private_owner(Import("bench.idle", "pykka._envelope", None, "x.py:4")) is None
    graph = {"a": {"b": ["1"]}, "b": {"c": ["2"]}, "c": {"a": ["3"]}, "d": {"a": ["4"]}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ["1"]}, "b": {}}) == []
