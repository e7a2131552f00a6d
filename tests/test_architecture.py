"""Dependencies point one way (STYLE.md rule 1).

Bottom to top: core -> accounts -> catalog -> inventory | promotions | payments ->
orders -> channels | pos | storefront | backoffice -> demo. A module may import its own app or a lower layer; apps
on the same layer never import each other. Imports anywhere in a module count
(inside functions and ``if TYPE_CHECKING`` too): a lower app refers to a higher one
by an opaque reference, never an import.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "core": 0,
    "accounts": 1,
    "catalog": 2,
    "inventory": 3, "promotions": 3, "payments": 3,
    "orders": 4,
    "aftersales": 5,
    "channels": 6, "pos": 6, "storefront": 6, "backoffice": 6,
    "demo": 7,
}


def imported_apps(source: str, *, module: str) -> list[tuple[int, str]]:
    """(line, app) of every import of one of our apps in ``source``.

    ``module`` is the dotted name of the module (for relative imports)."""
    found = []
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in LAYERS:
                found.append((node.lineno, top))
    return found


def violations(source: str, *, module: str) -> list[str]:
    """Every import in ``source`` that points from ``module``'s app to a
    higher layer or to a sibling on the same layer."""
    app = module.split(".")[0]
    layer = LAYERS[app]
    return [
        f"{module}:{line} imports {target} (layer {LAYERS[target]}) from {app} (layer {layer})"
        for line, target in imported_apps(source, module=module)
        if target != app and LAYERS[target] >= layer
    ]


def app_modules():
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            # A package's __init__ keeps its name so relative imports resolve to the package.
            module = ".".join(relative.with_suffix("").parts)
            yield module, path


def test_every_app_exists_and_has_modules():
    modules = {module.split(".")[0] for module, _ in app_modules()}
    assert modules == set(LAYERS)


def test_no_import_points_the_wrong_way():
    found = []
    for module, path in app_modules():
        found += violations(path.read_text(encoding="utf-8"), module=module)

    assert found == []


def test_core_imports_none_of_the_other_apps():
    imported = set()
    for module, path in app_modules():
        if module.startswith("core."):
            imported |= {app for _, app in imported_apps(path.read_text(encoding="utf-8"), module=module)}

    assert imported <= {"core"}


# --- the checker checks -------------------------------------------------------------


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("core.errors", "from orders.models import Order\n", ["core.errors:1 imports orders (layer 4) from core (layer 0)"]),
    ("accounts.models", "import catalog.models\n", ["accounts.models:1 imports catalog (layer 2) from accounts (layer 1)"]),
    ("inventory.services", "def f():\n    from promotions import services\n",
     ["inventory.services:2 imports promotions (layer 3) from inventory (layer 3)"]),
    ("payments.services", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from inventory.models import Stock\n",
     ["payments.services:3 imports inventory (layer 3) from payments (layer 3)"]),
    ("channels.meituan", "from pos import services\n", ["channels.meituan:1 imports pos (layer 6) from channels (layer 6)"]),
    ("orders.services", "from channels.tasks import push\n",
     ["orders.services:1 imports channels (layer 6) from orders (layer 4)"]),
])
def test_checker_flags_a_wrong_way_import(module, source, expected):
    assert violations(source, module=module) == expected


@pytest.mark.parametrize(("module", "source"), [
    ("orders.services", "from core.errors import Conflict\nfrom accounts.models import Store\nimport catalog\n"),
    ("orders.services", "from inventory.services import stock_deduct\nfrom orders.locks import order_lock\n"),
    ("orders.models.machines", "from .order import Order\nfrom . import order\nfrom ..locks import order_lock\n"),
    ("pos.api", "from orders.services import order_transition\nimport django\nimport config.celery_app\n"),
    ("core.health", "from config.celery_app import app\n"),
])
def test_checker_allows_own_app_lower_layers_and_third_party(module, source):
    assert violations(source, module=module) == []


def test_checker_resolves_relative_imports_to_the_own_app():
    assert imported_apps("from ..locks import order_lock\n", module="orders.models.machines") == [(1, "orders")]
    assert imported_apps("from . import x\n", module="pos.api") == [(1, "pos")]


# --- no import cycles inside an app ---------------------------------------------------
#
# Inside every app (and the simulator) the modules form a one-way order: no module
# imports, even through others, a module that imports it. An import inside a
# function (the usual way to hide a cycle) is allowed only in an AppConfig's
# ``ready`` (Django's place for wiring once the models are loaded) or for an optional
# dependency, with a comment saying so (``# optional: ...``). No module imports a
# private name (``_x``) from another module.

CYCLE_CHECKED = [*LAYERS, "simulator"]


def _module_name(relative: Path) -> tuple[str, bool]:
    parts = list(relative.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _sources(apps) -> dict[str, tuple[str, bool]]:
    found = {}
    for app in apps:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            name, is_package = _module_name(relative)
            found[name] = (path.read_text(encoding="utf-8"), is_package)
    return found


def _function_nodes(tree: ast.AST) -> dict[int, str]:
    """id(import node) -> the name of the function it sits in."""
    inside = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import | ast.ImportFrom):
                    inside.setdefault(id(sub), node.name)
    return inside


def _imports(tree: ast.AST, *, module: str, is_package: bool):
    """(node, imported module or module.name, names) of every import in ``tree``."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node, target, [alias.name for alias in node.names]


def _resolve(name: str, modules) -> str | None:
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the modules of its own app it imports outside functions."""
    graph = {module: set() for module in sources}
    for module, (source, is_package) in sources.items():
        tree = ast.parse(source)
        in_function = _function_nodes(tree)
        app = module.split(".")[0]
        for node, target, names in _imports(tree, module=module, is_package=is_package):
            if id(node) in in_function:
                continue
            # ``from package import submodule`` depends on the submodule.
            targets = [f"{target}.{name}" if f"{target}.{name}" in sources else target for name in names] or [target]
            for name in targets:
                resolved = _resolve(name, sources)
                if resolved and resolved != module and resolved.split(".")[0] == app:
                    graph[module].add(resolved)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def hidden_imports(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Imports inside functions, other than in ``ready`` of an apps module or marked optional."""
    found = []
    for module, (source, is_package) in sources.items():
        tree = ast.parse(source)
        lines = source.splitlines()
        in_function = _function_nodes(tree)
        for node, target, _names in _imports(tree, module=module, is_package=is_package):
            function = in_function.get(id(node))
            if function is None:
                continue
            if module.endswith(".apps") and function == "ready":
                continue
            if "# optional:" in lines[node.lineno - 1]:
                continue
            found.append(f"{module}:{node.lineno} imports {target} inside {function}()")
    return found


def private_imports(sources: dict[str, tuple[str, bool]], *, known: set[str]) -> list[str]:
    """``from other_module import _name`` where other_module is one of ours."""
    found = []
    for module, (source, is_package) in sources.items():
        for node, target, names in _imports(ast.parse(source), module=module, is_package=is_package):
            if _resolve(target, known) in (None, module):
                continue
            found += [f"{module}:{node.lineno} imports {name} from {target}"
                      for name in names if name.startswith("_") and not name.startswith("__")]
    return found


def test_no_import_cycle_inside_any_app():
    assert import_cycles(import_graph(_sources(CYCLE_CHECKED))) == []


def test_no_import_hidden_in_a_function():
    assert hidden_imports(_sources(CYCLE_CHECKED)) == []


def test_no_private_name_imported_from_another_module():
    sources = _sources(CYCLE_CHECKED)
    assert private_imports(sources, known=set(sources)) == []


# --- the cycle checker checks ------------------------------------------------------------


def _fake(**modules: str) -> dict[str, tuple[str, bool]]:
    """Module sources by dotted name (``__`` for a dot; a trailing ``__init`` makes a package)."""
    found = {}
    for key, source in modules.items():
        name = key.replace("__", ".")
        is_package = name.endswith(".init")
        found[name.removesuffix(".init")] = (source, is_package)
    return found


def test_checker_finds_a_cycle_through_three_modules_and_names_them():
    sources = _fake(orders__a="from orders.b import x\n", orders__b="from orders import c\n",
                    orders__c="from .a import y\n", orders__d="from orders.a import z\n", orders__init="")
    assert import_cycles(import_graph(sources)) == [["orders.a", "orders.b", "orders.c"]]


def test_checker_counts_an_import_of_the_package_that_re_exports_the_importer():
    sources = _fake(orders__services__init="from orders.services.core import t\n",
                    orders__services__core="from orders.services.events import e\n",
                    orders__services__events="from orders.services import t\n")
    assert import_cycles(import_graph(sources)) == [
        ["orders.services", "orders.services.core", "orders.services.events"]]


def test_checker_ignores_one_way_imports_and_other_apps():
    sources = _fake(orders__a="from orders.b import x\nfrom pos.a import y\n", orders__b="import django\n",
                    pos__a="from orders.a import z\n")
    assert import_cycles(import_graph(sources)) == []


def test_checker_flags_an_import_hidden_in_a_function_but_not_ready_or_optional():
    sources = _fake(
        orders__a="def f():\n    from orders.b import x\n",
        orders__apps="class C:\n    def ready(self):\n        from orders.b import x\n",
        orders__c="def g():\n    import ctypes  # optional: Linux only\n",
    )
    assert hidden_imports(sources) == ["orders.a:2 imports orders.b inside f()"]


def test_checker_flags_a_private_name_from_another_module_only():
    sources = _fake(payments__a="from payments.b import _secret, public\nfrom json import _default_decoder\n",
                    payments__b="from .b import _own\n")
    assert private_imports(sources, known=set(sources)) == ["payments.a:1 imports _secret from payments.b"]
