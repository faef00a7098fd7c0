"""The package's imports go one way: no cycle, and no module importing a layer above its own.

Every module of im2col/ is parsed with ``ast`` (nothing is imported), and every import it makes is
an edge, at module level or inside a function alike: a lazy import is still a dependency, only a
later one. Imports under ``if TYPE_CHECKING:`` are skipped; they never run (the engine names the
validation layer's ``Geometry`` in annotations that way).

The layers, top to bottom (:data:`LAYERS`):

* **top**: the package's face and what stands on the public functions: ``__init__`` (it imports
  the teaching modules, so it cannot sit below them), the teaching layer (explain, explorer, plots,
  data and their parts, the filter bank ``kernels``, ``reference``), the command line, the benchmark (bench,
  ``_bench_*``, and ``_layers``, the benchmark's layer shapes, which call ``im2col`` itself) and the
  torch layer (``nn`` and its parts);
* **api**: the public functions (``_functional``, ``_conv2d``, ``_nd``, ``_conv1d``); the drivers
  and routes that take their checked arguments to the kernels (``_im2col_drivers``,
  ``_conv2d_routes``, ``_conv2d_nhwc``, ``_nd_drivers``, ``_conv3d_routes``: they check little, but
  read the validation layer's buffer helpers, so they sit beside the functions that call them); the
  call plans in front of them (``_plans``, which rebuild a call's geometry through the validation
  layer, so they sit above it rather than in the engine), and ``_autograd``, the public functions'
  hand-off to the torch layer;
* **validation**: ``_validation`` and ``_geometry`` (sizes, padding, output sizes);
* **engine**: routes and kernels' callers that take checked arguments (``_engine``, ``_gemm``,
  ``_threads``, ``_tiles``);
* **kernels**: the compiled modules (setup.py's ``Extension`` names, and those built in im2col/).

A module may import its own layer or any layer below. The one exception (:data:`UPWARD`) is a call
that needs autograd: the public functions hand it to im2col.nn, imported at that moment, and nn
calls the public functions back; that edge is left out of the cycle check too, and no other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "im2col"

#: Layer name → the modules in it, top layer first; a name ending in '*' is a prefix.
_TEACHING = {
    "explain",
    "explorer",
    "plots",
    "data",
    "kernels",
    "reference",
    "_explain*",
    "_plot*",
    "_gif",
    "_digits",
    "_idx",
}
_TORCH_BENCH_CLI = {"nn", "_torch*", "_nn*", "bench", "_bench*", "_layers", "__main__", "_cli*"}
LAYERS: dict[str, set[str]] = {
    "top": {"__init__"} | _TEACHING | _TORCH_BENCH_CLI,
    "api": {
        "_functional",
        "_conv2d",
        "_conv2d_routes",
        "_conv2d_nhwc",
        "_im2col_drivers",
        "_nd",
        "_nd_drivers",
        "_conv3d_routes",
        "_conv1d",
        "_plans",
        "_autograd",
    },
    "validation": {"_validation", "_geometry"},
    "engine": {"_engine", "_gemm", "_threads", "_tiles"},
    "kernels": set(),  # filled from setup.py: every compiled extension
}

#: The only imports allowed to go up a layer, with the reason.
UPWARD = {
    ("_autograd", "nn"): "a call that needs autograd runs through im2col.nn's operators (imported then, lazily)",
}


def compiled_modules() -> set[str]:
    """The extension modules setup.py builds, as names inside the package (``_kernels``, ...): its
    ``Extension("im2col.…", ...)`` names, and any extension already built into im2col/."""
    tree = ast.parse((PACKAGE.parent / "setup.py").read_text())
    names = {path.name.split(".")[0] for pattern in ("*.so", "*.pyd") for path in PACKAGE.glob(pattern)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Extension" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith("im2col."):
                names.add(str(first.value).removeprefix("im2col."))
    return names


def python_modules() -> dict[str, Path]:
    """Module name inside the package → its source file (``__init__`` for the package itself)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        modules[".".join(parts)] = path
    return modules


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of the statements under ``if TYPE_CHECKING:`` (they never run)."""
    skipped = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING"):  # fmt: skip
            for stmt in node.body:
                skipped.update(id(n) for n in ast.walk(stmt))
    return skipped


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that module ``name`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_blocks(tree)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    found = set()

    def target(dotted: str) -> str | None:
        """A package module for ``dotted`` (inside the package), or the package itself."""
        if dotted in known:
            return dotted
        return "__init__" if dotted == "" else None

    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "im2col" or alias.name.startswith("im2col."):
                    inner = alias.name.removeprefix("im2col").removeprefix(".")
                    found.add(target(inner) or inner)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            elif node.module == "im2col" or (node.module or "").startswith("im2col."):
                base = []
            else:
                continue  # another package
            module = ".".join(base)
            if node.module and not node.level:
                module = node.module.removeprefix("im2col").removeprefix(".")
            elif node.module:
                module = ".".join([*base, node.module])
            for alias in node.names:  # `from . import x`: x is a module if there is one
                sub = f"{module}.{alias.name}" if module else alias.name
                found.add(sub if sub in known else (target(module) or module))
    found.discard(name)
    return found


def layer_of(module: str) -> str | None:
    for layer, members in LAYERS.items():
        if module in members or any(m.endswith("*") and module.startswith(m[:-1]) for m in members):
            return layer
    return None


def import_graph() -> dict[str, set[str]]:
    LAYERS["kernels"] = compiled_modules()
    sources = python_modules()
    known = set(sources) | LAYERS["kernels"]
    return {name: imports_of(name, path, known) for name, path in sources.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_the_import_parser_sees_every_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "from __future__ import annotations\nfrom typing import TYPE_CHECKING\nimport numpy\n"
        "from . import a, b\nfrom .c import x\nimport im2col\nimport im2col.d\nfrom im2col.e import y\n"
        "def f():\n    from ._f import z\n"
        "if TYPE_CHECKING:\n    from .g import T\n"
    )
    known = {"a", "b", "c", "d", "e", "_f", "g", "m"}
    assert imports_of("m", src, known) == {"a", "b", "c", "__init__", "d", "e", "_f"}


def test_every_module_has_a_layer():
    graph = import_graph()
    missing = sorted(set(graph) - {m for m in graph if layer_of(m)})
    assert not missing, (
        f"im2col/{missing[0]}.py is in no layer of tests/test_imports.py: add it to LAYERS['top'] (teaching, "
        f"torch, benchmark, CLI), LAYERS['api'] (public functions), LAYERS['validation'] (argument checks) or "
        f"LAYERS['engine'] (code that trusts checked arguments); compiled modules come from setup.py. "
        f"Unclassified: {missing}"
    )
    imported = {m for targets in graph.values() for m in targets}
    unknown = sorted(m for m in imported if m not in graph and m not in LAYERS["kernels"])
    assert not unknown, f"imports of modules that do not exist in im2col/ or setup.py: {unknown}"
    listed = {m for members in LAYERS.values() for m in members if not m.endswith("*")}
    stale = sorted(listed - set(graph) - LAYERS["kernels"])
    assert not stale, f"LAYERS in tests/test_imports.py lists modules that no longer exist: {stale}"


def test_no_module_imports_a_layer_above_its_own():
    graph = import_graph()
    rank = {layer: i for i, layer in enumerate(LAYERS)}  # 0 is the top
    upward = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if (module, target) in UPWARD:
                continue
            if layer_of(module) and layer_of(target) and rank[layer_of(target)] < rank[layer_of(module)]:
                upward.append(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})")
    assert not upward, "imports going up a layer (see the layers in tests/test_imports.py):\n" + "\n".join(upward)


def test_no_import_cycle():
    graph = import_graph()
    for module, target in UPWARD:
        graph[module].discard(target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in im2col/: " + " → ".join(cycle)


@pytest.mark.parametrize("edge", sorted(UPWARD))
def test_the_allowed_upward_imports_still_exist(edge):
    """An exception nobody needs any more goes: the list must not hide a future edge."""
    module, target = edge
    assert target in import_graph()[module]
