"""The shape of the code: what may import what, no import cycles, no oversized modules.

The import graph is built from the source with :mod:`ast`, so it sees every import:
top-level ones, those inside functions and those under ``if TYPE_CHECKING:``. Relative
imports are resolved. ``from X import Y`` is an edge to ``X.Y`` when that is a module of
the tree, else to ``X``. An edge goes to the named module only: ``import relay.store.sqlite``
is not also counted as importing ``relay.store`` (whose ``__init__`` Python runs first), so
a layer may use ``relay.store.interface`` without being charged for ``relay.store``'s
``open_store``.

Failure messages list every offender, one per line, so all of them can be fixed at once.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "relay", "console", "shared")
OTHER_CODE = ("tests", "bench", "scripts", "harness")  # harness/ only if present
MAX_LINES = 600


# -- the graph --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One edge: ``importer`` imports ``target`` (a module of the tree or an outside name)."""

    importer: str
    target: str
    path: str  # "relay/api.py"
    line: int

    @property
    def where(self) -> str:
        """``relay/api.py:21``"""
        return f"{self.path}:{self.line}"

    @property
    def top(self) -> str:
        """The top-level package imported: ``websockets`` for ``websockets.asyncio.server``."""
        return self.target.partition(".")[0]


def python_files(root: Path, folders: Iterable[str]) -> list[Path]:
    """Every ``.py`` file below the folders of ``root`` that exist, sorted."""
    return sorted(
        p for folder in folders if (root / folder).is_dir() for p in (root / folder).rglob("*.py")
    )


def module_name(root: Path, path: Path) -> str:
    """``relay/store/__init__.py`` → ``relay.store``; ``relay/api.py`` → ``relay.api``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """The dotted names an ``import`` / ``from … import`` node imports (none for other nodes)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: start from the importer's package, go up level - 1
            package = module if is_package else module.rpartition(".")[0]
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            yield submodule if submodule in modules else source


def collect_imports(root: Path, folders: Iterable[str]) -> list[Import]:
    """Every import made by the ``.py`` files below ``folders``, in file and line order."""
    files = python_files(root, folders)
    modules = {module_name(root, path) for path in files}
    found: set[Import] = set()
    for path in files:
        module = module_name(root, path)
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            for target in _imported(node, module, path.name == "__init__.py", modules):
                found.add(Import(module, target, rel, getattr(node, "lineno", 0)))
    return sorted(found, key=lambda i: (i.path, i.line, i.target))


def in_package(name: str, *packages: str) -> bool:
    """Whether the dotted ``name`` is one of ``packages`` or below one of them."""
    return any(name == p or name.startswith(p + ".") for p in packages)


def internal_graph(imports: Iterable[Import], prefix: str) -> dict[str, set[str]]:
    """Module → modules it imports, both named ``prefix`` or ``prefix.…``."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if in_package(imp.importer, prefix):
            graph.setdefault(imp.importer, set())
            if in_package(imp.target, prefix):
                graph[imp.importer].add(imp.target)
                graph.setdefault(imp.target, set())
    return graph


def knots(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module: each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while node not in component:
                component.add(stack.pop())
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [component for component in components if len(component) > 1]


def cycle_through(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """A shortest cycle ``[start, b, …, start]`` within ``component`` (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # cannot happen in an SCC


# -- the relay's layers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A layer of the relay and the layers it may import.

    ``modules`` are space-separated module names, each covering the modules below it too,
    except one written ``=name``, which is that module alone. ``may_import`` names other
    layers, ``*`` for all. A layer may always import itself, shared/, the stdlib and
    third-party packages (the websockets rules below are separate).
    """

    name: str
    modules: str
    may_import: str

    def contains(self, module: str) -> bool:
        """Whether ``module`` belongs to this layer."""
        words = self.modules.split()
        return f"={module}" in words or in_package(module, *(w for w in words if w[0] != "="))

    def allows(self, target: Layer | None) -> bool:
        """Whether this layer may import a module of ``target`` (``None``: in no layer)."""
        names = self.may_import.split()
        return target is not None and (target == self or "*" in names or target.name in names)


LAYERS = (
    #     name               modules                  may import
    Layer("transport",       "relay.transport",       "api services core billing model settings"),
    Layer("api",             "relay.api",             "services core billing model settings"),
    Layer("services",        "relay.services",        "core billing model settings "
                                                      "store.interface"),
    Layer("core",            "relay.core",            "model"),
    Layer("billing",         "relay.billing",         "model"),
    Layer("model",           "relay.model",           ""),
    Layer("store.interface", "relay.store.interface", "model"),
    # The implementations, and the package whose __init__ holds open_store, which picks one.
    Layer("store",           "relay.store.sqlite relay.store.postgres =relay.store",
                                                      "store.interface model"),
    Layer("settings",        "relay.settings",        "core billing model"),
    Layer("root",            "relay.app relay.cli relay.help_texts relay.init relay.ops "
                             "relay.tls =relay",
                                                      "*"),
)  # fmt: skip


def layer_of(module: str) -> Layer | None:
    """The layer ``module`` belongs to, if any."""
    return next((layer for layer in LAYERS if layer.contains(module)), None)


def expect_none(offenders: list[str], rule: str) -> None:
    """Fail with ``rule`` and every offender, one per line, if there are any."""
    if offenders:
        pytest.fail(f"{rule}:\n  " + "\n  ".join(offenders), pytrace=False)


# -- the rules --------------------------------------------------------------------------------

IMPORTS = collect_imports(ROOT, PACKAGES)
RELAY_MODULES = sorted(internal_graph(IMPORTS, "relay"))


def test_the_graph_is_not_empty() -> None:
    """A walker that found nothing would make every rule below pass."""
    found = {module_name(ROOT, p).partition(".")[0] for p in python_files(ROOT, PACKAGES)}
    assert found == set(PACKAGES)
    assert len(RELAY_MODULES) > 10
    assert any(in_package(i.target, "relay") for i in IMPORTS if in_package(i.importer, "relay"))


def test_components_import_only_shared() -> None:
    """agent, relay and console import each other's modules never; shared imports none of them."""
    bad = [
        f"{i.where}: {i.importer} imports {i.target}"
        for i in IMPORTS
        if i.top in PACKAGES and i.top not in (i.importer.partition(".")[0], "shared")
    ]
    expect_none(bad, "agent, relay and console may share code only through shared/")


def test_no_import_cycle_among_relay_modules() -> None:
    graph = internal_graph(IMPORTS, "relay")
    found = []
    for knot in knots(graph):
        found.append(f"{len(knot)} modules in one knot: {' '.join(sorted(knot))}")
        seen: set[frozenset[tuple[str, str]]] = set()
        for module in sorted(knot):  # the shortest cycle through each, each cycle once
            cycle = cycle_through(graph, knot, module)
            if (edges := frozenset(zip(cycle, cycle[1:], strict=False))) not in seen:
                seen.add(edges)
                found.append("    " + " -> ".join(cycle))
    expect_none(found, "relay modules import each other in a cycle (TYPE_CHECKING imports count)")


def test_every_relay_module_is_in_a_layer() -> None:
    homeless = [
        f"module {m} is in no layer: put it in transport/api/services/core/billing/store"
        for m in RELAY_MODULES
        if layer_of(m) is None
    ]
    expect_none(homeless, "every relay module belongs to a layer (LAYERS in this file)")


def test_relay_layers_import_only_what_they_may() -> None:
    bad = []
    for i in IMPORTS:
        importer = layer_of(i.importer)
        if importer is None or not in_package(i.target, "relay"):
            continue  # not relay code, code in no layer (the test above), or not a relay import
        target = layer_of(i.target)
        if not importer.allows(target):
            name = target.name if target else "no layer"
            bad.append(f"{i.where}: {i.importer} ({importer.name}) imports {i.target} ({name})")
    expect_none(bad, "a relay layer imports a layer it may not (LAYERS in this file)")


def test_nothing_but_relay_cli_imports_relay_app() -> None:
    """relay.app is the composition root: only the command line runs it, and tests
    that need a node in their own event loop (a tap on the pumped bytes, the store's
    write counter). Bench and scripts start ``qp-relay`` like an operator."""
    everything = collect_imports(ROOT, PACKAGES + OTHER_CODE)
    bad = [
        f"{i.where}: {i.importer} imports {i.target}"
        for i in everything
        if in_package(i.target, "relay.app")
        and not in_package(i.importer, "relay.app", "relay.cli", "tests")
    ]
    expect_none(bad, "nothing but relay.cli imports relay.app")


def test_core_billing_and_model_import_no_store_api_transport_or_websockets() -> None:
    forbidden = ("relay.store", "relay.api", "relay.transport", "websockets")
    bad = [
        f"{i.where}: {i.importer} imports {i.target}"
        for i in IMPORTS
        if in_package(i.importer, "relay.core", "relay.billing", "relay.model")
        and in_package(i.target, *forbidden)
    ]
    expect_none(bad, f"relay core, billing and model import none of {', '.join(forbidden)}")


def test_only_transport_imports_websockets() -> None:
    """Outside relay.transport (and the roots that wire it up) no relay code speaks websockets."""
    bad = []
    for i in IMPORTS:
        layer = layer_of(i.importer)
        in_transport = layer is not None and layer.name in ("transport", "root")
        if i.top == "websockets" and in_package(i.importer, "relay") and not in_transport:
            bad.append(f"{i.where}: {i.importer} imports {i.target}")
    expect_none(bad, "in the relay only relay.transport imports websockets")


def test_no_module_over_600_lines() -> None:
    long = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in python_files(ROOT, PACKAGES + OTHER_CODE)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    expect_none(long, f"modules over {MAX_LINES} lines: split them")


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    """Each module imported alone, so none leans on another having been imported first."""
    modules = sorted({module_name(ROOT, p) for p in python_files(ROOT, PACKAGES)})

    def fails(module: str) -> str | None:
        """Why ``python -c "import module"`` failed, or None."""
        command = [sys.executable, "-c", f"import {module}"]
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return f"{module}: still importing after 60 s"
        if done.returncode == 0:
            return None
        tail = "\n    ".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        return f"{module}: exit {done.returncode}\n    {tail}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(fails, modules) if f is not None]
    assert len(modules) > 40, modules
    expect_none(failures, f"modules that fail to import alone (of {len(modules)})")


# -- the checks check: the graph builder and the layer table on known input -------------------


def test_the_graph_builder_finds_a_type_checking_cycle_and_every_kind_of_import(
    tmp_path: Path,
) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
        "pkg/c.py": "def f() -> None:\n    from .sub.d import X\n    import websockets.asyncio\n",
        "pkg/sub/__init__.py": "from .. import c\n",
        "pkg/sub/d.py": "from ..a import thing\nfrom pkg import nothing_such\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    imports = collect_imports(tmp_path, ["pkg"])
    assert {(i.importer, i.target) for i in imports} == {
        ("pkg.a", "pkg.b"),
        ("pkg.b", "typing"),
        ("pkg.b", "pkg.a"),  # under TYPE_CHECKING, relative
        ("pkg.c", "pkg.sub.d"),  # in a function
        ("pkg.c", "websockets.asyncio"),
        ("pkg.sub", "pkg.c"),  # relative, from a package's __init__
        ("pkg.sub.d", "pkg.a"),  # two levels up
        ("pkg.sub.d", "pkg"),  # a name, not a module: the package
    }
    assert [i.where for i in imports if i.importer == "pkg.b"] == ["pkg/b.py:1", "pkg/b.py:3"]
    graph = internal_graph(imports, "pkg")
    assert knots(graph) == [{"pkg.a", "pkg.b"}]
    assert cycle_through(graph, {"pkg.a", "pkg.b"}, "pkg.b") == ["pkg.b", "pkg.a", "pkg.b"]


def test_the_cycle_finder_on_a_knot_with_a_chord() -> None:
    graph = {"x": {"y"}, "y": {"z"}, "z": {"x", "y"}, "w": {"x"}}
    assert knots(graph) == [{"x", "y", "z"}]
    assert cycle_through(graph, {"x", "y", "z"}, "x") == ["x", "y", "z", "x"]
    assert cycle_through(graph, {"x", "y", "z"}, "y") == ["y", "z", "y"]


def test_the_layer_table() -> None:
    def name(module: str) -> str | None:
        layer = layer_of(module)
        return layer.name if layer else None

    assert name("relay.api") == name("relay.api.sessions") == "api"
    assert name("relay.api_billing") is None  # a prefix is a whole name, not a few letters
    assert name("relay.store") == "store" and name("relay.store.sqlite.billing") == "store"
    assert name("relay.store.billing_sqlite") is None
    assert name("relay") == name("relay.cli") == "root"
    services, store = layer_of("relay.services"), layer_of("relay.store")
    assert services and store
    assert services.allows(layer_of("relay.store.interface"))
    assert not services.allows(store)  # open_store is the roots' business
    assert not store.allows(services) and not services.allows(None)
    root = layer_of("relay")
    assert root and root.allows(services) and store.allows(layer_of("relay.store.sqlite"))
