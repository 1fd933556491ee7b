#!/usr/bin/env python
"""Check the package's import graph, read from the source: no cycles, dependencies one way.

Every ``import`` and ``from ... import`` statement counts, wherever it stands: at module level,
inside a function, under ``if TYPE_CHECKING``. An import hidden inside a function still makes
the module depend on its target at run time, so it takes part in cycles like any other. The
packages' ``__init__`` files import nothing, so importing ``a.b.c`` adds no edge through them.

The rules checked:

1. no cycle among the modules of a package (``caesar_mrcnn``, ``ssl_backbones``);
2. nothing in ``caesar_mrcnn.detection``, ``measure``, ``evaluation`` or ``io`` imports
   ``caesar_mrcnn.training``: finding and measuring sources never needs the training code;
3. ``caesar_mrcnn.detection`` never imports ``caesar_mrcnn.zoo.pack`` (the maintainers' packing
   tool, which itself may use the training code);
4. ``ssl_backbones`` never imports ``caesar_mrcnn``;
5. no module imports another module's private names (``from a.b import _helper``): what other
   modules need is public, so that a private name can change with its module alone.

Rules 2-4 hold for chains too: a detection module that imports a helper which imports the
training code depends on the training code.

Usage::

    python scripts/import_graph.py            # exit 0 when every rule holds, 1 otherwise
    python scripts/import_graph.py --edges    # also print every edge (importer -> imported)
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGES = ("caesar_mrcnn", "ssl_backbones")

FORBIDDEN = (
    # (importer prefix, imported prefix, why)
    *((f"caesar_mrcnn.{p}", "caesar_mrcnn.training",
       "inference, measurement, evaluation and I/O never depend on the training code")
      for p in ("detection", "measure", "evaluation", "io")),
    ("caesar_mrcnn.detection", "caesar_mrcnn.zoo.pack",
     "the packing tool is for maintainers; detection uses zoo.lookup"),
    ("ssl_backbones", "caesar_mrcnn", "ssl_backbones stays independent of caesar_mrcnn"),
)


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of ``path`` (a ``.py`` file below ``root``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect_modules(root: Path) -> dict[str, Path]:
    """Every module of :data:`PACKAGES` below ``root``, by dotted name."""
    found = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a module or ``module.attribute``) lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``module`` imports anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: Iterable[str] = ()
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # Relative import: strip one package level per dot beyond the first.
                pkg = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            # ``from pkg import mod`` imports the submodule ``pkg.mod`` when there is one.
            targets = [f"{base}.{a.name}" for a in node.names] or [base]
        for target in targets:
            hit = _resolve(target, modules)
            if hit is not None and hit != module:
                out.add(hit)
    return out


def private_imports(root: Path) -> list[str]:
    """One line per ``from <project module> import _name`` in another module."""
    modules = collect_modules(root)
    lines = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            source = _resolve(node.module, modules)
            if source is None or source == module:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    lines.append(f"private: {module} imports {alias.name} from {source}")
    return sorted(lines)


def build_graph(root: Path) -> dict[str, set[str]]:
    """Importer -> set of imported project modules, for every module of :data:`PACKAGES`."""
    modules = collect_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _shortest_path(graph: dict[str, set[str]], src: str, prefix: str) -> list[str] | None:
    """A shortest import chain from ``src`` to any module under ``prefix`` (None if none)."""
    prev = {src: src}
    frontier = [src]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt in prev:
                    continue
                prev[nxt] = node
                if _under(nxt, prefix):
                    path = [nxt]
                    while path[-1] != src:
                        path.append(prev[path[-1]])
                    return path[::-1]
                nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return None


def forbidden_edges(graph: dict[str, set[str]]) -> list[str]:
    """One line per module that reaches, directly or through other modules, a module that a
    rule of :data:`FORBIDDEN` keeps it from; the line shows a shortest chain."""
    lines = []
    for src in sorted(graph):
        for a, b, why in FORBIDDEN:
            if not _under(src, a):
                continue
            path = _shortest_path(graph, src, b)
            if path is not None:
                lines.append(f"forbidden: {' -> '.join(path)} ({why})")
    return lines


def cycles(graph: dict[str, set[str]], prefix: str = "caesar_mrcnn") -> list[list[str]]:
    """The import cycles among modules under ``prefix``: one per strongly connected component
    of more than one module (Tarjan's algorithm), each listed as a closed path."""
    nodes = sorted(n for n in graph if _under(n, prefix))
    edges = {n: sorted(d for d in graph[n] if _under(d, prefix)) for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:
        # Iterative depth-first search: the graph may be deeper than Python's recursion limit.
        nonlocal counter
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        components.append(sorted(comp))

    for n in nodes:
        if n not in index:
            visit(n)
    return [_closed_path(comp, edges) for comp in components]


def _closed_path(component: list[str], edges: dict[str, list[str]]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component."""
    start = component[0]
    members = set(component)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in edges[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in prev:
                    prev[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return component  # pragma: no cover - a component of >1 module always has a cycle


def problems(root: Path) -> list[str]:
    """Every broken rule under ``root`` (the repository), one line each; empty when clean."""
    graph = build_graph(root)
    lines = [f"cycle: {' -> '.join(c)}" for pkg in PACKAGES for c in cycles(graph, pkg)]
    return lines + forbidden_edges(graph) + private_imports(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="repository root (default: the one holding this script)")
    parser.add_argument("--edges", action="store_true", help="print every edge as well")
    args = parser.parse_args(argv)
    if args.edges:
        graph = build_graph(args.root)
        for src in sorted(graph):
            for dst in sorted(graph[src]):
                print(f"{src} -> {dst}")
    found = problems(args.root)
    for line in found:
        print(line)
    if not found:
        print("import graph: no cycle, no forbidden edge, no private import")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
