"""Architecture checks: public API, torch-free import, import-linter contracts, module and function
size, no classes inside functions, no import cycle (STYLE.md section 1; issue 12, criterion 1)."""

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import faceleaks

ROOT = Path(__file__).resolve().parents[1]


def test_public_api_names_resolve():
    for name in faceleaks.__all__:
        assert getattr(faceleaks, name) is not None, name
    assert sorted(faceleaks.__all__) == sorted(set(faceleaks.__all__))


def test_importing_faceleaks_does_not_load_torch():
    code = "import sys, faceleaks, faceleaks.report.tables; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed (pip install -e .[dev])")
def test_import_contracts():
    result = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- size, nesting and import-cycle checks (STYLE.md section 1; issue 12, criterion 1) -------------

PACKAGE = ROOT / "faceleaks"
MAX_MODULE_LINES = 300
MAX_FUNCTION_CODE_LINES = 50


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def code_lines(func: ast.FunctionDef | ast.AsyncFunctionDef, source_lines: list[str]) -> int:
    """Lines of code in ``func``'s body: from the first statement after its docstring to its end,
    blank and comment-only lines excluded (the signature and the docstring do not count)."""
    body = func.body
    if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        body = body[1:]
    if not body:
        return 0
    lines = source_lines[body[0].lineno - 1 : func.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_code_lines_counts_body_without_docstring_blanks_and_comments():
    src = 'def f(a,\n      b):\n    """Doc.\n\n    More."""\n    x = 1\n\n    # note\n    return (x +\n            a)\n'
    func = next(_functions(ast.parse(src)))
    assert code_lines(func, src.splitlines()) == 3
    assert code_lines(next(_functions(ast.parse("def g():\n    '''only a docstring'''\n"))), []) == 0


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_modules_have_at_most_300_lines():
    offenders = {}
    for path in _modules():
        n = len(path.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            offenders[_relative(path)] = n
    for name, n in sorted(offenders.items()):
        print(f"{name}: {n} lines")
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines: {offenders}; split them by what they hold"


def test_functions_have_at_most_50_lines_of_code():
    offenders = {}
    for path in _modules():
        source = path.read_text()
        lines = source.splitlines()
        for func in _functions(ast.parse(source)):
            n = code_lines(func, lines)
            if n > MAX_FUNCTION_CODE_LINES:
                offenders[f"{_relative(path)}:{func.lineno} {func.name}"] = n
    for name, n in sorted(offenders.items()):
        print(f"{name}: {n} lines of code")
    assert not offenders, (f"functions over {MAX_FUNCTION_CODE_LINES} lines of code (docstring excluded): "
                           f"{offenders}; extract helpers")


def test_no_class_defined_inside_a_function():
    offenders = []
    for path in _modules():
        for func in _functions(ast.parse(path.read_text())):
            offenders += [f"{_relative(path)}:{node.lineno} class {node.name} in {func.name}"
                          for node in ast.walk(func) if isinstance(node, ast.ClassDef)]
    offenders = sorted(set(offenders))
    print("\n".join(offenders))
    assert not offenders, f"classes defined inside functions: {offenders}; move them to module level"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit); each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
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
                    work.append((child, iter(sorted(graph.get(child, ())))))
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
                out.append(sorted(component))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle (first node repeated at the end) per strongly connected component
    that has one (two or more nodes, or a node importing itself)."""
    found = []
    for component in strongly_connected(graph):
        start, inside = component[0], set(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        paths, seen = [[start]], set()
        while paths:  # breadth first: the first path back to start is a shortest cycle
            path = paths.pop(0)
            nxt = sorted(graph.get(path[-1], set()) & inside)
            if start in nxt:
                found.append(path + [start])
                break
            paths += [path + [n] for n in nxt if n not in seen and not seen.add(n)]
    return found


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
    ({"a": {"b"}, "b": set(), "c": {"c"}}, [["c", "c"]]),
    ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"z"}, "z": {"x", "y"}}, [["a", "b", "a"], ["x", "y", "z", "x"]]),
])
def test_cycles_finds_every_strongly_connected_component(graph, expected):
    assert sorted(cycles(graph)) == expected


def test_no_import_cycle_in_faceleaks():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (pip install -e .[dev])")
    # Every import counts: module level, inside functions and under TYPE_CHECKING.
    built = grimp.build_graph("faceleaks", cache_dir=None)
    graph = {m: set(built.find_modules_directly_imported_by(m)) for m in built.modules}
    found = cycles(graph)
    for cycle in found:
        print(" -> ".join(cycle))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)
