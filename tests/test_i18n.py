"""Simplified Chinese and English (docs/i18n.md).

The test settings use LANGUAGE_CODE "en", so every test picks its language
explicitly: translation.override() in code, Accept-Language over HTTP.
"""

import ast
import gettext as gnu_gettext
import json
from pathlib import Path

import pytest
from django.utils import translation

from core.errors import TransitionNotAllowed
from orders.models import OrderStatus, OrderType
from orders.status_map import status_label
from tests.factories import StoreFactory
from tests.order_helpers import make_order, staff_client, transitions_url

ROOT = Path(__file__).resolve().parent.parent
ZH_PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
ZH_MO = ZH_PO.with_suffix(".mo")


def _po_entries(path: Path) -> list[dict]:
    """The live entries of a .po file: {"msgctxt", "msgid", "msgid_plural", "msgstr": [...], "flags"}.

    Obsolete (#~) entries are comments here and are skipped; the header
    (msgid "") is included.
    """
    entries: list[dict] = []
    entry: dict | None = None
    field = None

    def flush():
        nonlocal entry
        if entry is not None and "msgid" in entry:
            entries.append(entry)
        entry = None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#"):
            if entry is not None and "msgid" in entry:
                flush()
            entry = entry or {"flags": set(), "msgstr": {}}
            if line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            continue
        entry = entry or {"flags": set(), "msgstr": {}}
        if line.startswith('"'):
            value = ast.literal_eval(line)
        else:
            keyword, _, literal = line.partition(" ")
            value = ast.literal_eval(literal)
            if keyword.startswith("msgstr"):
                field = ("msgstr", int(keyword[7:-1]) if "[" in keyword else 0)
                entry["msgstr"][field[1]] = ""
            elif keyword in ("msgctxt", "msgid", "msgid_plural"):
                if keyword == "msgctxt" and "msgid" in entry:  # a new entry without a blank line
                    flush()
                    entry = {"flags": set(), "msgstr": {}}
                field = keyword
                entry[field] = ""
            else:
                raise AssertionError(f"unexpected .po line: {raw!r}")
        if isinstance(field, tuple):
            entry["msgstr"][field[1]] += value
        else:
            entry[field] += value
    flush()
    return entries


def _po_messages() -> list[dict]:
    return [entry for entry in _po_entries(ZH_PO) if entry["msgid"]]


def _mo_key(entry: dict, form: int | None = None):
    msgid = entry["msgid"] if "msgctxt" not in entry else f"{entry['msgctxt']}\x04{entry['msgid']}"
    return msgid if form is None else (msgid, form)


@pytest.fixture
def store():
    return StoreFactory()


# --- values in code ---------------------------------------------------------------


def test_buyer_label_of_a_dispatched_delivery_order_in_chinese():
    with translation.override("zh-hans"):
        label = status_label(order_type=OrderType.DELIVERY, status=OrderStatus.DISPATCHED, audience="buyer")

    assert label == "骑手正在送餐"


def test_same_label_in_english():
    with translation.override("en"):
        label = status_label(order_type="delivery", status="dispatched", audience="buyer")

    assert label == "On the way"


def test_merchant_label_of_a_ready_delivery_order_in_chinese():
    with translation.override("zh-hans"):
        label = status_label(order_type="delivery", status="ready", audience="merchant")

    assert label == "出餐完成"


def test_order_status_label_in_chinese():
    with translation.override("zh-hans"):
        labels = (str(OrderStatus.PAID.label), str(OrderStatus.PENDING_PAYMENT.label), str(OrderStatus.REFUNDED.label))

    assert labels == ("已支付", "待支付", "已退款")


def test_order_status_label_in_english():
    with translation.override("en"):
        assert str(OrderStatus.PAID.label) == "Paid"


def test_domain_error_message_follows_the_active_language():
    error = TransitionNotAllowed()

    with translation.override("zh-hans"):
        chinese = str(error.message)
    with translation.override("en"):
        english = str(error.message)

    assert chinese == "当前状态下不允许此操作。"
    assert english == "This action is not allowed in the current status."


# --- over HTTP ----------------------------------------------------------------------


@pytest.mark.django_db
def test_api_error_message_in_chinese_with_accept_language_zh_hans(client, store):
    order = make_order(store=store, order_type=OrderType.PICKUP, paid=True)
    clerk = staff_client(client, store=store, role="clerk")

    response = clerk.post(transitions_url(order), data=json.dumps({"action": "pick_up"}),
                          content_type="application/json", headers={"Accept-Language": "zh-hans"})

    assert response.status_code == 409
    assert response.headers["Content-Language"] == "zh-hans"
    assert response.json()["error"]["code"] == "transition_not_allowed"
    assert response.json()["error"]["message"] == "订单在“paid”状态下不能执行“pick_up”。"


@pytest.mark.django_db
def test_api_error_message_in_english_with_accept_language_en(client, store):
    order = make_order(store=store, order_type=OrderType.PICKUP, paid=True)
    clerk = staff_client(client, store=store, role="clerk")

    response = clerk.post(transitions_url(order), data=json.dumps({"action": "pick_up"}),
                          content_type="application/json", headers={"Accept-Language": "en"})

    assert response.status_code == 409
    assert response.json()["error"]["message"] == "The order cannot do “pick_up” in status “paid”."


@pytest.mark.django_db
def test_admin_login_page_in_chinese(client):
    response = client.get("/admin/login/", headers={"Accept-Language": "zh-hans"})

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans"' in html
    assert 'value="登录"' in html
    assert "统一订单中台" in html and "Django 管理" not in html


@pytest.mark.django_db
def test_admin_login_page_in_english(client):
    response = client.get("/admin/login/", headers={"Accept-Language": "en"})

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en"' in html
    assert 'value="Log in"' in html
    assert "Unified order center" in html and "Django administration" not in html
    assert "登录" not in html


# --- the catalog itself ---------------------------------------------------------------


def test_every_chinese_msgid_is_translated_and_none_is_fuzzy():
    entries = _po_entries(ZH_PO)
    messages = [entry for entry in entries if entry["msgid"]]

    assert len(messages) > 400
    assert [entry["msgid"] for entry in entries if "fuzzy" in entry["flags"]] == []
    assert [entry["msgid"] for entry in messages if not all(entry["msgstr"].values())] == []


def test_placeholders_are_kept_in_every_translation():
    import re

    placeholder = re.compile(r"%\(\w+\)[sd]|%%|%[sd]|\{\w*\}")
    mismatched = [
        entry["msgid"] for entry in _po_messages()
        if sorted(placeholder.findall(entry["msgid"])) != sorted(placeholder.findall(entry["msgstr"][0]))
    ]

    assert mismatched == []


def test_committed_mo_matches_the_po():
    """The .mo is recompiled after every .po change (make messages)."""
    with ZH_MO.open("rb") as handle:
        catalog = gnu_gettext.GNUTranslations(handle)._catalog

    stale = []
    for entry in _po_messages():
        if "msgid_plural" in entry:
            forms = {form: catalog.get(_mo_key(entry, form)) for form in entry["msgstr"]}
            if forms != entry["msgstr"]:
                stale.append(entry["msgid"])
        elif catalog.get(_mo_key(entry)) != entry["msgstr"][0]:
            stale.append(entry["msgid"])

    assert stale == []


def test_django_serves_every_po_translation_in_chinese():
    wrong = []
    with translation.override("zh-hans"):
        for entry in _po_messages():
            if "msgid_plural" in entry or "msgctxt" in entry:
                continue
            if translation.gettext(entry["msgid"]) != entry["msgstr"][0]:
                wrong.append(entry["msgid"])

    assert wrong == []


_GETTEXT_CALLS = {"_": 0, "gettext": 0, "gettext_lazy": 0, "ngettext": 0, "ngettext_lazy": 0,
                  "pgettext": 1, "pgettext_lazy": 1, "npgettext": 1, "npgettext_lazy": 1}
_SOURCE_DIRS = ("accounts", "aftersales", "backoffice", "catalog", "channels", "config", "core", "demo",
                "inventory", "orders", "payments", "pos", "promotions", "storefront")


def _source_msgids() -> dict[str, str]:
    """msgid -> "file:line" of every string literal passed to a gettext function in our apps."""
    found: dict[str, str] = {}
    for folder in _SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name not in _GETTEXT_CALLS or len(node.args) <= _GETTEXT_CALLS[name]:
                    continue
                argument = node.args[_GETTEXT_CALLS[name]]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str) and argument.value:
                    found.setdefault(argument.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_translatable_string_of_the_code_is_in_the_chinese_catalogue():
    """A string wrapped in gettext but missing from the .po would show in English to
    Chinese users: run `make messages` and translate what it adds."""
    catalogue = {entry["msgid"] for entry in _po_messages()}
    missing = {msgid: where for msgid, where in _source_msgids().items() if msgid not in catalogue}

    assert missing == {}
