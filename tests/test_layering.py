"""minigrad's imports go one way: the module-level import graph has no cycle, the bottom layer
(Tensor, Function, argument validation) depends on no op, and no function body imports a
minigrad module (the usual way of hiding a cycle until the function runs).

The graph is read from the source with ``ast``, not from ``sys.modules``, so a cycle is found
even when the current import order happens to survive it. Edges are the explicit imports:
``from .ops import arithmetic`` is an edge to ``minigrad.ops.arithmetic`` (a submodule),
``from .tensor import Tensor`` one to ``minigrad.tensor``. The implicit import of a package's
``__init__`` before its submodules is not an edge (a package that imports its own submodules
would otherwise always be a cycle); a submodule that needs a name from its package's
``__init__`` says so explicitly and is counted.
"""
import ast
import pathlib

import pytest

import minigrad

PACKAGE_DIR = pathlib.Path(minigrad.__file__).resolve().parent

#: Function bodies allowed to import a minigrad module: {(module, function): reason}. None:
#: every dependency is a module-level import, so the graph below is the whole truth.
FUNCTION_LEVEL_IMPORTS_ALLOWED = {}

#: The bottom layer: these may not reach (directly or through others) any module of the
#: packages listed in ``ABOVE_THE_BOTTOM``; the ops, layers and optimisers build on them.
BOTTOM = ("minigrad._validate", "minigrad._autograd_state", "minigrad.tensor",
          "minigrad.function")
ABOVE_THE_BOTTOM = ("minigrad.ops", "minigrad.nn", "minigrad.optim", "minigrad.data")


def _module_name(path):
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources():
    """{module name: path} of every Python module of minigrad."""
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _modules():
    """Every importable minigrad module name: the Python sources and the Cython extensions
    (leaves: a kernel imports no Python module of minigrad)."""
    return set(_sources()) | {_module_name(p) for p in PACKAGE_DIR.rglob("*.pyx")}


def _targets(node, module, is_package, modules):
    """The minigrad modules an Import/ImportFrom node of ``module`` imports."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return {_longest_module(name, modules) for name in names} - {None}
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module
    found = set()
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        found.add(submodule if submodule in modules else _longest_module(source, modules))
    return found - {None}


def _longest_module(name, modules):
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def _imports():
    """(module-level edges {module: set of modules}, function-level imports
    [(module, function, imported module, line)])."""
    modules = _modules()
    edges, in_functions = {}, []
    for module, path in _sources().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges[module] = set()
        _visit(tree, None, module, is_package, modules, edges[module], in_functions)
    return edges, in_functions


def _visit(node, function, module, is_package, modules, edges, in_functions):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            targets = _targets(child, module, is_package, modules)
            if function is None:
                edges |= targets
            else:
                in_functions += [(module, function, t, child.lineno) for t in sorted(targets)]
        inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
            else function
        _visit(child, inner, module, is_package, modules, edges, in_functions)


def _cycles(edges):
    """The strongly connected components with more than one module, or with a self-import
    (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, ()):
                    components.append(sorted(component))
    return components


def _reachable(edges, start):
    seen, todo = set(), [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_graph_reader_sees_the_imports_it_must_see():
    """Guards the reader itself: known edges are found, so an empty result means no cycle,
    not an unread tree."""
    edges, _ = _imports()
    assert "minigrad.ops.conv" in edges["minigrad.nn.conv"]           # from ..ops.conv import
    assert "minigrad.ops.pooling" in edges["minigrad.nn.pooling"]     # from ..ops import pooling
    assert "minigrad._kernels.pooling" in edges["minigrad.ops.pooling"]
    assert "minigrad.function" in edges["minigrad.ops.arithmetic"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]


def test_module_level_imports_have_no_cycle():
    edges, _ = _imports()
    cycles = _cycles(edges)
    described = ["; ".join(f"{m} imports {sorted(edges[m] & set(c))}" for m in c)
                 for c in cycles]
    assert not cycles, "import cycles in minigrad:\n" + "\n".join(described)


@pytest.mark.parametrize("module", BOTTOM)
def test_the_bottom_layer_depends_on_no_op_layer_or_optimiser(module):
    edges, _ = _imports()
    assert module in edges, f"{module} is gone: update BOTTOM"
    above = sorted(m for m in _reachable(edges, module)
                   if any(m == p or m.startswith(p + ".") for p in ABOVE_THE_BOTTOM))
    assert not above, f"{module} depends on {above}"


def test_no_function_imports_a_minigrad_module():
    _, in_functions = _imports()
    found = [f"{module}.{function} (line {line}) imports {target}"
             for module, function, target, line in in_functions
             if (module, function) not in FUNCTION_LEVEL_IMPORTS_ALLOWED]
    assert not found, ("imports inside functions (make them module-level, or list them in "
                       "FUNCTION_LEVEL_IMPORTS_ALLOWED with the reason):\n" + "\n".join(found))
