"""The source tree as data: its modules, their imports, sizes and annotations (read with ``ast``,
nothing imported), for tests/test_architecture.py and for a maintainer's look at the tree
(``python tests/architecture.py``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("search", "spaces", "trainables", "cluster")  # installed as stiltsearch.<folder>


@dataclass
class Module:
    name: str  # dotted, e.g. stiltsearch.search.study.core
    path: Path
    tree: ast.Module
    lines: int
    imports: set[str] = field(default_factory=set)  # stiltsearch modules it imports, anywhere in it
    # (home module, name) of each name it takes with ``from home import name`` at any level
    names: set[tuple[str, str]] = field(default_factory=set)

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("stiltsearch", *(parts[:-1] if parts[-1] == "__init__" else parts)))
            text = path.read_text()
            found[name] = Module(name, path, ast.parse(text), len(text.splitlines()))
    for module in found.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stiltsearch"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    if sub in found:  # ``from package import module``
                        module.imports.add(sub)
                    else:
                        module.imports.add(node.module)
                        module.names.add((node.module, alias.name))
            elif isinstance(node, ast.Import):
                module.imports |= {a.name for a in node.names if a.name.startswith("stiltsearch")}
    return found


def cycles(found: dict[str, Module]) -> list[list[str]]:
    """Import circles between modules (a package's ``__init__`` importing its own modules aside)."""
    graph = {m.name: {i for i in m.imports if i in found and not (m.is_package and i.startswith(m.name + "."))}
             for m in found.values()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return out


def defined(module: Module) -> set[str]:
    """Names a module binds at its top level by definition or assignment (not by import)."""
    names: set[str] = set()
    for node in module.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def reexports(found: dict[str, Module]) -> list[str]:
    """``a imports X from b`` where b does not define X (b imported it): the import graph would lie."""
    problems = []
    for module in found.values():
        for home, name in sorted(module.names):
            if home in found and not found[home].is_package and name not in defined(found[home]):
                problems.append(f"{module.name} imports {name} from {home}, which does not define it")
    return problems


def functions(module: Module) -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function and method."""
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, (node.end_lineno or node.lineno) - node.lineno + 1


def annotations(module: Module) -> Iterator[ast.expr]:
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    yield arg.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            is_alias = isinstance(node.annotation, ast.Name) and node.annotation.id == "TypeAlias"
            if is_alias and node.value is not None:  # an alias counts once, where it is defined
                value = node.value
                yield ast.parse(value.value, mode="eval").body if isinstance(value, ast.Constant) else value
            else:
                yield node.annotation


def uses_any(annotation: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "Any" or isinstance(n, ast.Attribute) and n.attr == "Any"
               for n in ast.walk(annotation))


if __name__ == "__main__":
    found = modules()
    print("circles:", cycles(found) or "none")
    print("\n".join(reexports(found)) or "no re-exports")
    big = sorted(((m.lines, m.name) for m in found.values() if m.lines > 300), reverse=True)
    print("modules over 300 lines:", big or "none")
    long = sorted(((n, f"{m.name}.{f}") for m in found.values() for f, n in functions(m) if n > 40), reverse=True)
    print(f"functions over 40 lines ({len(long)}):", long)
    notes = [a for m in found.values() for a in annotations(m)]
    print(f"Any in {sum(map(uses_any, notes))} of {len(notes)} annotations "
          f"({100 * sum(map(uses_any, notes)) / len(notes):.1f} %)")
