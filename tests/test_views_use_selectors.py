"""Views read through selectors (STYLE.md rules 2 and 8; issue 11).

A view module (``api.py``, ``views.py``, ``oms_callback.py`` of an app, or a module of
an ``api`` / ``views`` package) holds no query of its own: no ``<Model>.objects``.
Its reads come from the app's ``selectors`` (scoped to the caller there), its writes
from services. Admin modules are not views in this sense.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
VIEW_MODULES = {"api.py", "views.py", "oms_callback.py"}
VIEW_PACKAGES = {"api", "views"}


def view_modules():
    apps = [app for app in settings.INSTALLED_APPS if (ROOT / app / "__init__.py").exists()]
    for app in apps:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if path.name in VIEW_MODULES or VIEW_PACKAGES & set(relative.parts[1:-1]):
                yield ".".join(relative.with_suffix("").parts), path


def inline_queries(source: str, *, module: str) -> list[str]:
    """Every ``<Name>.objects`` in ``source`` (``Order.objects.filter(...)``, ``OrderLine.objects``...)."""
    return [
        f"{module}:{node.lineno} {node.value.id}.objects"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "objects" and isinstance(node.value, ast.Name)
    ]


def test_no_view_module_queries_a_model_itself():
    found = []
    for module, path in view_modules():
        found += inline_queries(path.read_text(encoding="utf-8"), module=module)

    assert found == []


def test_the_scan_finds_the_view_modules():
    modules = {module for module, _ in view_modules()}

    assert {"storefront.api", "storefront.oms_callback", "backoffice.api", "backoffice.views", "pos.api",
            "channels.views"} <= modules


# --- the checker checks -------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ('def get(self):\n    return Order.objects.filter(customer_id=1)\n', ["m:2 Order.objects"]),
    ('x = Prefetch("lines", queryset=OrderLine.objects.order_by("line_no"))\n', ["m:1 OrderLine.objects"]),
    ('def get(self):\n    from accounts.models import Store\n    return Store.objects.first()\n',
     ["m:3 Store.objects"]),
])
def test_checker_flags_an_inline_query(source, expected):
    assert inline_queries(source, module="m") == expected


@pytest.mark.parametrize("source", [
    "from storefront.selectors import order_list_for_customer\nx = order_list_for_customer(customer_id=1)\n",
    "x = self.store_orders().get(order_no=order_no)\n",
    "try:\n    pass\nexcept Order.DoesNotExist:\n    pass\n",
])
def test_checker_allows_selector_calls_and_model_names(source):
    assert inline_queries(source, module="m") == []
