"""No import cycle among Cyclotron's modules, imports under ``TYPE_CHECKING`` and inside
functions included (grimp counts them all).

``.importlinter`` holds the layers and forbids cycles between the packages of one folder
(``acyclic_siblings``); this test holds the module graph itself, where a cycle can also run
through a package's ``__init__`` or stay inside ``services/``, which that contract skips.
"""

from __future__ import annotations

from itertools import pairwise

import grimp


def find_cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """Modules importing each other in a ring, the first repeated at the end; None if acyclic."""
    done: set[str] = set()
    for root in sorted(graph.modules):
        if root in done:
            continue
        path = [root]  # the depth-first walk from root, each module importing the next
        pending = [iter(sorted(graph.find_modules_directly_imported_by(root)))]
        while pending:
            imported = next(pending[-1], None)
            if imported is None:
                done.add(path.pop())
                pending.pop()
            elif imported in path:
                return [*path[path.index(imported) :], imported]
            elif imported not in done:
                path.append(imported)
                pending.append(iter(sorted(graph.find_modules_directly_imported_by(imported))))
    return None


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """Each import of the ring with the line that makes it."""
    steps = []
    for importer, imported in pairwise(cycle):
        lines = graph.get_import_details(importer=importer, imported=imported)
        where = ", ".join(f"l.{detail['line_number']}" for detail in lines)
        steps.append(f"{importer} -> {imported} ({where})")
    return "\n".join(steps)


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("cyclotron", cache_dir=None)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle:\n" + describe(graph, cycle)


def test_a_ring_through_a_package_init_is_found() -> None:
    graph = grimp.ImportGraph()
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg")
    graph.add_import(importer="pkg", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.b")
    graph.add_import(importer="pkg.c", imported="pkg.d")
    assert find_cycle(graph) == ["pkg", "pkg.c", "pkg.b", "pkg"]


def test_shared_imports_without_a_ring_are_no_cycle() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.a", "p.c"), ("p.b", "p.d"), ("p.c", "p.d")]:
        graph.add_import(importer=importer, imported=imported)
    assert find_cycle(graph) is None
