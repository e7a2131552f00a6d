"""Every setting has one default, in config/settings.py (issue 11).

App code reads ``settings.X``; a ``getattr(settings, "X", default)`` would keep a
second default that can drift from the one in config/settings.py (it did:
ORDER_PLACEMENT_BATCH_MAX was 64 there and 1 at its reader). tests/ and bench/
probe settings on purpose and are not app code.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def app_packages() -> list[str]:
    """Our apps (the INSTALLED_APPS that live in this checkout) and config."""
    return [app for app in settings.INSTALLED_APPS if (ROOT / app / "__init__.py").exists()] + ["config"]


def app_modules():
    for package in app_packages():
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            yield ".".join(relative.with_suffix("").parts), path


def _is_settings(node: ast.expr) -> bool:
    """``settings`` or ``<anything>.settings`` (``django.conf.settings``)."""
    return (isinstance(node, ast.Name) and node.id == "settings") or (
        isinstance(node, ast.Attribute) and node.attr == "settings")


def second_defaults(source: str, *, module: str) -> list[str]:
    """Every ``getattr(settings, <name>, <default>)`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) == 3 and _is_settings(node.args[0])):
            name, default = ast.unparse(node.args[1]), ast.unparse(node.args[2])
            found.append(f"{module}:{node.lineno} getattr(settings, {name}, {default})")
    return found


def test_no_setting_has_a_second_default_in_app_code():
    found = []
    for module, path in app_modules():
        found += second_defaults(path.read_text(encoding="utf-8"), module=module)

    assert found == []


def test_the_scan_covers_every_app():
    packages = {module.split(".")[0] for module, _ in app_modules()}

    assert {"core", "orders", "channels", "payments", "storefront", "demo", "config"} <= packages


# --- the checker checks -------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ('from django.conf import settings\nx = getattr(settings, "OUTBOX_RELAY_BATCH", 50)\n',
     ["m:2 getattr(settings, 'OUTBOX_RELAY_BATCH', 50)"]),
    ('import django.conf\ndef f():\n    return int(getattr(django.conf.settings, "A", 1))\n',
     ["m:3 getattr(settings, 'A', 1)"]),
    ('from django.conf import settings\nname = "A"\nx = getattr(settings, name, None)\n',
     ["m:3 getattr(settings, name, None)"]),
])
def test_checker_flags_a_getattr_with_a_default(source, expected):
    assert second_defaults(source, module="m") == expected


@pytest.mark.parametrize("source", [
    "from django.conf import settings\nx = settings.OUTBOX_RELAY_BATCH\n",
    'from django.conf import settings\nx = getattr(settings, "ACCEPT_TIMEOUTS")\n',
    'x = getattr(request, "user", None)\n',
    'x = settings_like.get("A", 1)\n',
])
def test_checker_allows_plain_reads_and_other_getattrs(source):
    assert second_defaults(source, module="m") == []
