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
    "channels": 5, "pos": 5, "storefront": 5, "backoffice": 5,
    "demo": 6,
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
    ("channels.meituan", "from pos import services\n", ["channels.meituan:1 imports pos (layer 5) from channels (layer 5)"]),
    ("orders.services", "from channels.tasks import push\n",
     ["orders.services:1 imports channels (layer 5) from orders (layer 4)"]),
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
