"""The package boundaries, read from the source: a service never imports another service, a
library never imports a service or the host, and no two modules import each other, directly or
round a longer loop. Only the host (`authpi.platform`) imports services.

Every `import` counts wherever it stands (module level or inside a function), except those under
`if TYPE_CHECKING:`: they never run, so they cannot form an import cycle, but they still count
for the service and library rules (a type from another service is a dependency on it)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = "platform"  # services/platform: the host, not a service

# Import cycles that exist on purpose, each with its reason. Keep it short: fix a cycle rather
# than list it here. Each entry is the sorted set of modules of one cycle.
ALLOWED_CYCLES: frozenset[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or package), resolved against the known modules
    line: int
    type_checking: bool


@dataclass(frozen=True)
class Module:
    name: str  # authpi.<package>.<...>
    kind: str  # "service", "library" or "host"
    package: str  # authpi.<package>
    path: Path
    rel: str  # the path from the scanned root, for messages
    is_package: bool  # an __init__.py


def discover(root: Path) -> dict[str, Module]:
    """Every module under services/*/src and libs/*/src, by dotted name."""
    found: dict[str, Module] = {}
    for group, kind in (("services", "service"), ("libs", "library")):
        for src in sorted(root.glob(f"{group}/*/src")):
            for path in sorted(src.rglob("*.py")):
                parts = list(path.relative_to(src).with_suffix("").parts)
                is_package = parts[-1] == "__init__"
                if is_package:
                    parts.pop()
                if len(parts) < 2 or parts[0] != "authpi":
                    continue
                what = "host" if kind == "service" and parts[1] == HOST else kind
                name = ".".join(parts)
                rel = path.relative_to(root).as_posix()
                found[name] = Module(name, what, f"authpi.{parts[1]}", path, rel, is_package)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: Module, source: str, known: Iterable[str]) -> list[Import]:
    """The `authpi.*` imports of one module, each resolved to the most specific known module."""
    names = set(known)
    tree = ast.parse(source, filename=str(module.path))
    found: list[Import] = []

    def add(target: str, node: ast.stmt, guarded: bool) -> None:
        if target == "authpi" or target.startswith("authpi."):
            found.append(Import(module.name, target, node.lineno, guarded))

    def visit(nodes: Iterable[ast.stmt], guarded: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node, guarded)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    add(sub if sub in names else base, node, guarded)
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, True)
                visit(node.orelse, guarded)
                continue
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child], guarded)
                else:
                    visit(_statements(child), guarded)

    visit(tree.body, False)
    return found


def _statements(node: ast.AST) -> list[ast.stmt]:
    """Statements nested in an expression-level node (an except handler, a match case...)."""
    return [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]


def _owner(target: str, modules: Mapping[str, Module]) -> Module | None:
    name = target
    while name:
        if name in modules:
            return modules[name]
        name = name.rpartition(".")[0]
    return None


def boundary_violations(modules: Mapping[str, Module], found: Iterable[Import]) -> list[str]:
    """Imports that cross a boundary: service -> another service or the host, library ->
    service or host."""
    problems: list[str] = []
    for imp in found:
        source, target = modules[imp.source], _owner(imp.target, modules)
        if target is None or target.package == source.package:
            continue
        where = f"{source.rel}:{imp.line}"
        if source.kind == "service" and target.kind in ("service", "host"):
            problems.append(f"{where}: service {source.package} imports {imp.target}")
        elif source.kind == "library" and target.kind in ("service", "host"):
            problems.append(f"{where}: library {source.package} imports {imp.target}")
    return sorted(set(problems))


def import_cycles(modules: Mapping[str, Module], found: Iterable[Import]) -> list[list[str]]:
    """Every strongly connected set of two or more modules (or a module importing itself),
    over the imports that run (those under `if TYPE_CHECKING:` never do)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in found:
        target = _owner(imp.target, modules)
        if target is not None and not imp.type_checking:
            graph[imp.source].add(target.name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(start: str) -> None:
        # Tarjan's algorithm, iterative (no recursion limit on a deep import chain).
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1 or node in graph[node]:
                    cycles.append(sorted(members))

    for name in sorted(graph):
        if name not in index:
            connect(name)
    return sorted(cycles)


def scan(root: Path) -> tuple[dict[str, Module], list[Import]]:
    modules = discover(root)
    found = [
        imp
        for module in modules.values()
        for imp in imports_of(module, module.path.read_text(), modules)
    ]
    return modules, found


@pytest.fixture(scope="module")
def tree() -> tuple[dict[str, Module], list[Import]]:
    return scan(ROOT)


def test_services_and_libraries_keep_to_their_side(tree):
    modules, found = tree
    assert {m.kind for m in modules.values()} == {"service", "library", "host"}
    assert boundary_violations(modules, found) == []


def test_no_import_cycle_between_modules(tree):
    modules, found = tree
    cycles = [c for c in import_cycles(modules, found) if frozenset(c) not in ALLOWED_CYCLES]
    assert cycles == []


def test_every_allowed_cycle_still_exists(tree):
    """An allow-list entry whose cycle is gone is removed, so the list never grows stale."""
    modules, found = tree
    present = {frozenset(c) for c in import_cycles(modules, found)}
    assert ALLOWED_CYCLES <= present


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cross_service_import_is_caught(tmp_path):
    _write(
        tmp_path,
        {
            "services/alpha/src/authpi/alpha/__init__.py": "",
            "services/alpha/src/authpi/alpha/api.py": "from authpi.beta.handlers import Beta\n",
            "services/beta/src/authpi/beta/__init__.py": "",
            "services/beta/src/authpi/beta/handlers.py": "class Beta: ...\n",
        },
    )
    problems = boundary_violations(*scan(tmp_path))
    assert len(problems) == 1
    assert "service authpi.alpha imports authpi.beta.handlers" in problems[0]


def test_a_function_level_import_counts(tmp_path):
    _write(
        tmp_path,
        {
            "services/alpha/src/authpi/alpha/__init__.py": "",
            "services/alpha/src/authpi/alpha/api.py": (
                "def later():\n    try:\n        import authpi.beta\n    except ImportError:\n"
                "        pass\n"
            ),
            "services/beta/src/authpi/beta/__init__.py": "",
        },
    )
    assert len(boundary_violations(*scan(tmp_path))) == 1


def test_a_library_importing_a_service_or_the_host_is_caught(tmp_path):
    _write(
        tmp_path,
        {
            "libs/util/src/authpi/util/__init__.py": "",
            "libs/util/src/authpi/util/a.py": "from authpi.alpha import api\n",
            "libs/util/src/authpi/util/b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from authpi.platform.host import Platform\n"
            ),
            "services/alpha/src/authpi/alpha/__init__.py": "",
            "services/alpha/src/authpi/alpha/api.py": "",
            "services/platform/src/authpi/platform/__init__.py": "",
            "services/platform/src/authpi/platform/host.py": "from authpi.alpha import api\n",
        },
    )
    problems = boundary_violations(*scan(tmp_path))
    assert len(problems) == 2  # the host itself may import the service
    assert all("library authpi.util imports" in p for p in problems)


def test_an_import_cycle_is_caught_and_type_checking_imports_are_not(tmp_path):
    _write(
        tmp_path,
        {
            "services/alpha/src/authpi/alpha/__init__.py": "",
            "services/alpha/src/authpi/alpha/a.py": "from authpi.alpha import b\n",
            "services/alpha/src/authpi/alpha/b.py": (
                "def f():\n    from authpi.alpha.c import g\n"
            ),
            "services/alpha/src/authpi/alpha/c.py": "from . import a\ndef g(): ...\n",
            "services/alpha/src/authpi/alpha/d.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from authpi.alpha.e import E\n"
            ),
            "services/alpha/src/authpi/alpha/e.py": "from authpi.alpha.d import *\nclass E: ...\n",
        },
    )
    assert import_cycles(*scan(tmp_path)) == [
        ["authpi.alpha.a", "authpi.alpha.b", "authpi.alpha.c"]
    ]


# The protocol core and every domain package stay free of the web framework (STYLE.md 5, 13):
# the `api/` layer adapts requests and responses.
FRAMEWORK_FREE = ("authpi.token.grants", "authpi.token.endpoints")
WEB_FRAMEWORKS = frozenset({"litestar", "starlette", "uvicorn"})


def external_imports(source: str) -> set[str]:
    """The top-level names of the non-`authpi` packages a module imports, wherever it does."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names - {"authpi"}


def reaches_web_framework(
    modules: Mapping[str, Module], found: Iterable[Import], roots: Iterable[str]
) -> dict[str, list[str]]:
    """For each module reachable from `roots` over `authpi` imports that imports a web
    framework: the chain of modules that leads to it."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in found:
        target = _owner(imp.target, modules)
        if target is not None and not imp.type_checking:
            graph[imp.source].add(target.name)
    chains: dict[str, list[str]] = {name: [name] for name in roots}
    queue = list(chains)
    while queue:
        name = queue.pop(0)
        for nxt in sorted(graph[name]):
            if nxt not in chains:
                chains[nxt] = [*chains[name], nxt]
                queue.append(nxt)
    return {
        name: chain
        for name, chain in sorted(chains.items())
        if external_imports(modules[name].path.read_text()) & WEB_FRAMEWORKS
    }


def _core(modules: Mapping[str, Module]) -> list[str]:
    prefixes = (*FRAMEWORK_FREE, *(f"{m.package}.domain" for m in modules.values()))
    return sorted(
        name for name in modules if any(name == p or name.startswith(f"{p}.") for p in prefixes)
    )


def test_protocol_and_domain_code_never_reach_the_web_framework(tree):
    modules, found = tree
    core = _core(modules)
    assert any(name.startswith("authpi.token.grants.") for name in core)
    assert reaches_web_framework(modules, found, core) == {}


def test_a_grant_reaching_the_web_framework_is_caught(tmp_path):
    _write(
        tmp_path,
        {
            "services/token/src/authpi/token/__init__.py": "",
            "services/token/src/authpi/token/grants/__init__.py": "",
            "services/token/src/authpi/token/grants/code.py": "from authpi.token.api import x\n",
            "services/token/src/authpi/token/api.py": "from litestar import post\nx = post\n",
        },
    )
    modules, found = scan(tmp_path)
    assert reaches_web_framework(modules, found, _core(modules)) == {
        "authpi.token.api": ["authpi.token.grants.code", "authpi.token.api"]
    }
