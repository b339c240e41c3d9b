"""The controller's layout: no import cycles, domains that know nothing of HTTP,
provisioning that does not import the controller, a controller that imports no node
role."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOMAINS = ("controller.db", "controller.fleet", "controller.ratings", "controller.broadcasts",
           "controller.cameras", "controller.broker", "controller.access", "controller.documents")
WEB = ("controller.web", "fastapi", "starlette", "uvicorn")
NODE_ROLES = ("kiosk", "speaker_node", "camera_node")


def _modules(package: str) -> dict[str, pathlib.Path]:
    base = ROOT / package
    out = {}
    for path in base.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _parse(source: str) -> ast.Module:
    """``ast.parse``, once more on CPython 3.11's "AST constructor recursion depth mismatch":
    its AST state counts recursion per interpreter, not per thread, so a parse can trip
    over one another thread of the test process made (CPython gh-106905, fixed in 3.12)."""
    for attempt in range(5):
        try:
            return ast.parse(source)
        except SystemError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """Every module ``path`` imports, at any depth except ``if TYPE_CHECKING:`` blocks."""
    tree = _parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
    return found


def _graph(package: str) -> dict[str, set[str]]:
    modules = _modules(package)
    known = set(modules)
    return {name: {m for m in _imports(path, known) if m in known and m != name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_controller_has_no_import_cycles():
    """Regression: service <-> api <-> alerts/cases/roster and storage -> broadcasts ->
    writer -> storage were cycles broken only by function-local imports."""
    cycle = _cycle(_graph("controller"))
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_domains_know_nothing_of_http():
    graph = _modules("controller")
    offenders = []
    for name, path in graph.items():
        if name.startswith(DOMAINS):
            bad = {m for m in _imports(path, set(graph)) if m.startswith(WEB)}
            offenders += [f"{name} imports {m}" for m in sorted(bad)]
    assert offenders == []


def test_provisioning_does_not_import_the_controller():
    offenders = [f"{name} imports {m}" for name, path in _modules("provisioning").items()
                 for m in _imports(path, set()) if m.startswith("controller")]
    assert offenders == []


def test_controller_imports_no_node_role():
    """The controller may share node_runtime and wire with the nodes, not a role's package:
    a rule both sides apply (e.g. node_runtime.https) lives in node_runtime."""
    offenders = [f"{name} imports {m}" for name, path in _modules("controller").items()
                 for m in _imports(path, set()) if m.split(".")[0] in NODE_ROLES]
    assert offenders == []


def test_nothing_but_service_and_cli_build_the_whole_controller():
    """Services are given their dependencies; only the composition root knows them all."""
    users = [name for name, path in _modules("controller").items()
             if "controller.service" in _imports(path, {"controller.service"})]
    assert sorted(users) == ["controller.cli.serve"]
