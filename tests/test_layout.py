"""The layout stays true: rooms import only the rooms above them in the flow, and no two
modules import each other, directly or round a circle (DESIGN.md, "One direction of
flow"). The imports are read from the source with ``ast``, nested imports included."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """The workbench modules ``name`` imports (a package's __init__ only when a name is
    taken from the package itself, not when a submodule is)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workbench"):
                    out.add(_existing(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("workbench"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULES else _existing(target))
    out.discard(name)
    return out


def _existing(dotted: str) -> str:
    while dotted not in MODULES and "." in dotted:
        dotted = dotted.rsplit(".", 1)[0]
    return dotted


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


# what each room may import from the package (its own modules always)
ALLOWED = {
    "errors": set(),
    "display": set(),
    "paths": set(),
    "timeutil": set(),
    "catalog": {"errors"},
    "store": {"errors", "timeutil", "catalog", "paths", "display"},
    "charts": {"errors", "display"},
}
# rooms nothing below access may reach: people's reads go through a Session
NOT_FROM_STORE = {"access", "sim", "importer", "analysis", "widgets", "exercises", "lake", "cli"}


def test_the_walk_finds_the_package():
    assert "workbench.store.eventstore" in GRAPH and "workbench.access.session" in GRAPH
    assert "workbench.store.schema" in GRAPH["workbench.store.eventstore"] or any(
        m.startswith("workbench.store") for m in GRAPH["workbench.store.eventstore"]
    )


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_lower_rooms_import_only_what_is_below_them(room):
    bad = []
    for module, imports in GRAPH.items():
        if _room(module) != room:
            continue
        for target in imports:
            other = _room(target)
            if other != room and other not in ALLOWED[room]:
                bad.append(f"{module} imports {target}")
    assert not bad, bad


def test_the_store_knows_nothing_of_its_readers():
    bad = [
        f"{m} imports {t}"
        for m, ts in GRAPH.items()
        if _room(m) == "store"
        for t in ts
        if _room(t) in NOT_FROM_STORE
    ]
    assert not bad, bad


def test_analyses_read_through_whatever_they_are_given():
    """analysis/ works on anything with .sql(): no store, access or DuckDB of its own."""
    bad = [
        f"{m} imports {t}"
        for m, ts in GRAPH.items()
        if _room(m) == "analysis"
        for t in ts
        if _room(t) in {"store", "access", "sim", "importer", "charts", "widgets", "cli"}
    ]
    assert not bad, bad


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other round a circle (Tarjan's strongly
    connected components of more than one module)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_there_is_no_import_cycle():
    assert not _cycles(GRAPH), _cycles(GRAPH)


def test_the_cycle_check_would_see_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_too_long_without_a_reason(module):
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= 850, f"{module} has {lines} lines: split it by job"
