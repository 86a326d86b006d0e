"""The package's layers: core <- adapter (adapter/, trainers/) <- app, no import cycles, complete ``__all__``.

Read from the source with ``ast`` (every import, also the ones inside functions), so nothing is imported.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "nnunet_pruning"
LAYERS = {"core": 0, "adapter": 1, "trainers": 1, "app": 2}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """Every module ``name`` imports (absolute names), at any depth of its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in MODULES}
    if name == "nnunet_pruning":  # the lazy public API names its modules in a table
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODULES:
                found.add(node.value)
    return found


def _internal(imports: set[str]) -> set[str]:
    return {m for m in imports if m in MODULES and m != "nnunet_pruning"}


def _layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


@pytest.mark.parametrize("name", [m for m in MODULES if _layer(m) == 0])
def test_core_imports_neither_nnunet_nor_upper_layers(name):
    imports = _imports(name)
    assert not {m for m in imports if m.split(".")[0] == "nnunetv2"}, f"{name} imports nnU-Net"
    upper = {m for m in _internal(imports) if (_layer(m) or 0) > 0}
    assert not upper, f"core module {name} imports {upper}"


@pytest.mark.parametrize("name", [m for m in MODULES if _layer(m) is not None])
def test_arrows_point_down(name):
    upward = {m for m in _internal(_imports(name)) if _layer(m) is not None and _layer(m) > _layer(name)}
    assert not upward, f"{name} imports a higher layer: {upward}"


def test_public_api_uses_core_only():
    assert {_layer(m) for m in _internal(_imports("nnunet_pruning"))} == {0}


def test_no_import_cycle():
    graph = {m: _internal(_imports(m)) - {m} for m in MODULES}
    # a module imports its package's __init__ implicitly; those edges are not cycles of concepts
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_known_cycles_are_gone():
    assert "nnunet_pruning.app.cli" not in _imports("nnunet_pruning.app.compare")
    assert "nnunet_pruning.adapter.networks" not in _imports("nnunet_pruning.trainers.guards")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_all_is_complete(name):
    tree = ast.parse(MODULES[name].read_text())
    declared = None
    public = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                declared = node.value
        if isinstance(node, ast.ImportFrom) and any(alias.name == "__all__" for alias in node.names):
            declared = "re-exported"
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            public.add(node.name)
    assert declared is not None, f"{name} has no __all__"
    if isinstance(declared, (ast.List, ast.Tuple)):
        names = {e.value for e in declared.elts if isinstance(e, ast.Constant)}
        missing = public - names
        assert not missing, f"{name}: public names missing from __all__: {sorted(missing)}"


def test_public_api_names_resolve():
    import nnunet_pruning

    for name in nnunet_pruning.__all__:
        assert getattr(nnunet_pruning, name) is not None
    from nnunet_pruning.core.errors import PruningError
    from nnunet_pruning.core.groups import find_groups

    assert nnunet_pruning.PruningError is PruningError and nnunet_pruning.find_groups is find_groups
