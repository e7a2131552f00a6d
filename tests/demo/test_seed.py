"""manage.py seed_demo: the demo brand, every reachable status, idempotent."""

import json
import logging
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import resolve
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Brand, Customer, MemberTier, StaffMembership, Store
from catalog.models import Category, PlatformSkuMapping, Product, Sku, StoreSku
from catalog.selectors import sku_resolve_platform_code
from channels.models import StoreBinding
from core.models import OutboxMessage
from orders.models import Order, OrderEvent, OrderLine, OrderType, VoucherCode
from orders.models.machines import machine_states
from pos.models import PosTerminal
from pos.services import terminal_token_hash
from simulator.orders_gen import DEFAULT_ELEME_MENU, DEFAULT_MEITUAN_MENU

pytestmark = pytest.mark.django_db

COUNTED = [Brand, Store, MemberTier, Category, Product, Sku, StoreSku, PlatformSkuMapping, get_user_model(),
           StaffMembership, Customer, Order, OrderLine, OrderEvent, StoreBinding, PosTerminal, OutboxMessage, VoucherCode]
DEMO_CONFIG = Path(__file__).resolve().parent.parent.parent / "simulator" / "demo_config.json"


def seed(orders=40) -> str:
    out = StringIO()
    call_command("seed_demo", "--orders", str(orders), stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def test_seed_creates_one_brand_three_stores_and_the_menu():
    seed()

    brand = Brand.objects.get()
    assert brand.code == "demo"
    stores = {s.code: s for s in Store.objects.filter(brand=brand)}
    assert sorted(stores) == ["jingan", "pudong", "xuhui"]
    assert [code for code, s in sorted(stores.items()) if s.auto_accept] == ["xuhui"]
    assert [code for code, s in sorted(stores.items()) if s.mode == "busy"] == ["jingan"]
    assert list(MemberTier.objects.values_list("code", "price_rate", "free_delivery").order_by("rank")) == [
        ("normal", Decimal("1.000"), False),
        ("gold", Decimal("0.990"), False),
        ("super", Decimal("0.980"), True),
    ]
    assert Category.objects.filter(brand=brand).count() == 6
    assert Sku.objects.filter(brand=brand).count() == 30
    assert StoreSku.objects.filter(store__brand=brand).count() == 90
    assert StoreSku.objects.filter(is_available=False).count() == 2
    assert set(PlatformSkuMapping.objects.values_list("platform", flat=True)) == {"meituan", "eleme"}
    assert Customer.objects.filter(brand=brand, tier__isnull=False).count() == 20


def test_seed_creates_a_login_for_every_staff_role():
    output = seed()

    memberships = set(StaffMembership.objects.values_list("user__username", "role", "store__code"))
    assert memberships == {
        ("demo_hq", "brand_admin", None),
        ("xuhui_manager", "store_manager", "xuhui"), ("xuhui_clerk", "clerk", "xuhui"),
        ("jingan_manager", "store_manager", "jingan"), ("jingan_clerk", "clerk", "jingan"),
        ("pudong_manager", "store_manager", "pudong"), ("pudong_clerk", "clerk", "pudong"),
    }
    users = get_user_model().objects.all()
    assert sorted(u.username for u in users if u.is_superuser) == ["admin"]
    assert all(u.is_staff and u.check_password("demo12345") for u in users)
    assert "pudong_clerk" in output and "demo12345" in output


def test_seed_orders_cover_every_reachable_type_and_status():
    seed()

    pairs = set(Order.objects.values_list("order_type", "status"))
    assert pairs == {(t.value, s) for t in OrderType for s in machine_states(t)}
    assert Order.objects.count() == 40


def test_platform_orders_are_delivery_or_pickup_with_a_channel_order_id():
    seed()

    platform = Order.objects.filter(channel__in=["meituan", "eleme"])
    assert platform.exists()
    assert set(platform.values_list("order_type", flat=True)) <= {"delivery", "pickup"}
    assert not platform.filter(channel_order_id__isnull=True).exists()
    assert not platform.filter(status="pending_payment").exists()
    assert not Order.objects.filter(channel__in=["miniapp", "app"], channel_order_id__isnull=False).exists()


def test_every_order_status_was_reached_through_recorded_transitions():
    seed()

    for order in Order.objects.all():
        last = OrderEvent.objects.filter(order=order).order_by("id").last()
        assert last.to_status == order.status


def test_seeded_voucher_orders_carry_one_code_per_unit_in_the_state_of_their_order():
    seed()

    vouchers = Order.objects.filter(order_type=OrderType.VOUCHER).prefetch_related("voucher_codes", "lines")
    states = {}
    for order in vouchers:
        codes = sorted(code.state for code in order.voucher_codes.all())
        states.setdefault(order.status, set()).add(tuple(codes))
        if order.status in ("issued", "redeemed", "completed", "refunded"):
            assert len(codes) == sum(line.quantity for line in order.lines.all())
    assert states["issued"] == {("issued",)}
    assert states["redeemed"] == {("redeemed",)}
    assert states["completed"] == {("redeemed",)}
    assert states["refunded"] == {("void",)}
    assert states["pending_payment"] == {()}


def test_seeding_twice_changes_no_counts():
    seed()
    first = counts()

    output = seed()

    assert counts() == first
    assert first["Order"] == 40
    assert "creating 0" in output


def test_seed_binds_every_store_to_the_simulators_meituan_and_eleme_shops():
    seed()

    bindings = {(b.store.code, b.platform): b for b in StoreBinding.objects.select_related("store")}
    assert {key: b.shop_code for key, b in bindings.items()} == {
        ("xuhui", "meituan"): "mt-store-1", ("xuhui", "eleme"): "el-store-1",
        ("jingan", "meituan"): "mt-store-2", ("jingan", "eleme"): "el-store-2",
        ("pudong", "meituan"): "mt-store-3", ("pudong", "eleme"): "el-store-3",
    }
    assert {(b.platform, b.app_id, b.secret, b.token) for b in bindings.values()} == {
        ("meituan", "sim-mt-app", "sim-mt-secret", ""), ("eleme", "sim-el-app", "sim-el-secret", "sim-el-token")}
    assert {(b.base_url, b.pull_interval_seconds, b.enabled) for b in bindings.values()} == {
        ("http://127.0.0.1:8100", 10, True)}


def test_the_simulator_demo_config_registers_exactly_the_bound_shops_and_pushes_to_our_receivers():
    seed()
    config = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))

    shops = {(s["app_poi_code"], s["app_id"], s["secret"]) for s in config["meituan_shops"]}
    shops |= {(s["shop_id"], s["app_key"], s["secret"], s["token"]) for s in config["eleme_shops"]}

    bound = {(b.shop_code, b.app_id, b.secret) if b.platform == "meituan" else (b.shop_code, b.app_id, b.secret, b.token)
             for b in StoreBinding.objects.all()}
    assert shops == bound
    assert {s["rate_per_minute"] for s in config["meituan_shops"] + config["eleme_shops"]} == {2}
    assert {s["push_url"] for s in config["meituan_shops"]} == {"http://127.0.0.1:8000/channels/push/meituan"}
    assert {s["push_url"] for s in config["eleme_shops"]} == {"http://127.0.0.1:8000/channels/push/eleme"}
    assert resolve("/channels/push/meituan/create_order").url_name == "push-meituan"
    assert resolve("/channels/push/eleme").url_name == "push-eleme"


def test_every_item_of_the_simulators_default_menus_maps_to_one_of_our_skus():
    seed()
    brand = Brand.objects.get()
    store = Store.objects.get(code="xuhui")

    meituan = {(item["app_food_code"], item["sku_id"]): sku_resolve_platform_code(
        brand_id=brand.pk, store_id=store.pk, platform="meituan", merchant_code=item["app_food_code"],
        platform_sku_id=item["sku_id"]).code for item in DEFAULT_MEITUAN_MENU}
    eleme_by_extend_code = {item["extend_code"]: sku_resolve_platform_code(
        brand_id=brand.pk, store_id=store.pk, platform="eleme", merchant_code=item["extend_code"]).code
        for item in DEFAULT_ELEME_MENU}
    eleme_by_sku_id = {str(item["sku_id"]): sku_resolve_platform_code(
        brand_id=brand.pk, store_id=store.pk, platform="eleme", platform_sku_id=str(item["sku_id"])).code
        for item in DEFAULT_ELEME_MENU}

    assert meituan == {("mt_gbjd", "1001001"): "HC001", ("mt_gbjd", "1001002"): "HC002",
                       ("mt_yxrs", "1001003"): "HC003", ("mt_mpdf", "1001005"): "HC005",
                       ("mt_yzcf", "1002001"): "ZS001"}
    assert eleme_by_extend_code == {code: code for code in ["HC001", "HC003", "HC005", "ZS001", "TG001", "YP001"]}
    assert eleme_by_sku_id == {"200000101": "HC001", "200000103": "HC003", "200000105": "HC005",
                               "200000401": "ZS001", "200000201": "TG001", "200000301": "YP001"}


def test_seed_creates_one_demo_pos_terminal_per_store_with_a_known_hashed_token_that_works():
    output = seed()

    terminals = {t.store.code: t for t in PosTerminal.objects.select_related("store")}
    assert sorted(terminals) == ["jingan", "pudong", "xuhui"]
    for code, terminal in terminals.items():
        token = f"demo-pos-{code}"
        assert terminal.key_hash == terminal_token_hash(token) and token not in terminal.key_hash
        assert (terminal.name, terminal.role, terminal.revoked_at) == ("演示POS", "cashier", None)
        assert token in output
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token demo-pos-pudong")
    assert client.get("/api/pos/v1/menu").status_code == 200


def test_a_rotated_demo_token_is_kept_and_not_printed():
    from pos.services import pos_terminal_rotate

    seed()
    terminal = PosTerminal.objects.get(store__code="jingan")
    pos_terminal_rotate(terminal_id=terminal.pk)

    output = seed()

    assert PosTerminal.objects.get(pk=terminal.pk).key_hash != terminal_token_hash("demo-pos-jingan")
    assert "demo-pos-jingan" not in output and "(rotated)" in output
    assert PosTerminal.objects.count() == 3


def test_bindings_follow_the_simulator_base_url_setting(settings):
    settings.SIMULATOR_BASE_URL = "http://sim.example:9100"

    seed()

    assert set(StoreBinding.objects.values_list("base_url", flat=True)) == {"http://sim.example:9100"}


def test_seeded_platform_orders_queue_nothing_for_the_simulator():
    seed()

    assert not OutboxMessage.objects.filter(topic="platform.order_action", status="pending").exists()
    assert OutboxMessage.objects.filter(topic="platform.order_action", status="delivered").exists()


# --- the simulator knows the seeded platform orders ------------------------------------------


def _exported(settings) -> dict:
    return json.loads(Path(settings.SIMULATOR_ORDERS_FILE).read_text(encoding="utf-8"))


def _demo_simulator_config(orders_file: str):
    """What `python -m simulator --config simulator/demo_config.json --orders FILE` starts with,
    without generated orders or pushes (no receiver in this test)."""
    from simulator.__main__ import load_config_file, load_orders_file
    from simulator.server import SimConfig

    values = load_config_file(str(DEMO_CONFIG))
    for key in ("meituan_shops", "eleme_shops"):
        values[key] = tuple({**shop, "rate_per_minute": 0, "push_url": ""} for shop in values[key])
    values.update(load_orders_file(orders_file))
    return SimConfig(**values)


def test_seed_writes_every_open_platform_order_for_the_simulator_in_its_platform_status(settings, tmp_path):
    from orders.status_map import status_view

    settings.SIMULATOR_ORDERS_FILE = str(tmp_path / "orders.json")
    seed()

    exported = _exported(settings)
    open_orders = Order.objects.filter(channel__in=["meituan", "eleme"]).exclude(
        status__in=["completed", "cancelled", "refunded"]).select_related("store")
    shops = {(b.store_id, b.platform): b.shop_code for b in StoreBinding.objects.all()}
    expected = {(o.channel, o.channel_order_id, shops[(o.store_id, o.channel)],
                 status_view(order_type=o.order_type, status=o.status).for_audience(o.channel)) for o in open_orders}
    got = {("meituan", str(s["order_id"]), s["shop"], s["status"]) for s in exported["meituan_orders"]}
    got |= {("eleme", s["id"], s["shop"], s["status"]) for s in exported["eleme_orders"]}
    assert expected and expected <= got
    assert {key[3] for key in got if key[0] == "meituan"} <= {2, 4, 6, 8, 9}
    seeded_day_seqs = [(o.channel, o.store_id, timezone.localdate(o.placed_at), o.channel_day_seq)
                       for o in Order.objects.filter(channel__in=["meituan", "eleme"])]
    assert len(set(seeded_day_seqs)) == len(seeded_day_seqs)  # one number per platform, shop and day


def test_seeded_platform_orders_are_accepted_and_reconciled_against_the_simulator_without_a_warning(
        settings, tmp_path, caplog):
    from datetime import timedelta

    from channels.services import platform_orders_reconcile
    from core.actors import Actor
    from core.models import OutboxStatus
    from core.outbox import outbox_relay
    from orders.services import order_transition
    from simulator.testing import running_simulator

    settings.SIMULATOR_ORDERS_FILE = str(tmp_path / "orders.json")
    seed()
    waiting = {o.channel: o for o in Order.objects.filter(channel__in=["meituan", "eleme"], status="paid")}
    assert sorted(waiting) == ["eleme", "meituan"]

    with running_simulator(_demo_simulator_config(settings.SIMULATOR_ORDERS_FILE)) as sim:
        StoreBinding.objects.update(base_url=sim.base_url)
        with caplog.at_level(logging.WARNING):
            for order in waiting.values():
                order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"))
            relayed = outbox_relay(limit=10)
            reconciled = platform_orders_reconcile(now=timezone.now() + timedelta(minutes=11))
        at_platform = (requests.get(f"{sim.base_url}/_sim/meituan/orders/{waiting['meituan'].channel_order_id}",
                                    timeout=5).json()["status"],
                       requests.get(f"{sim.base_url}/_sim/eleme/orders/{waiting['eleme'].channel_order_id}",
                                    timeout=5).json()["status"])
        confirms = [(c["route"], c["status"]) for c in requests.get(
            f"{sim.base_url}/_sim/calls", params={"direction": "in"}, timeout=5).json()["calls"]
            if c["route"].endswith(("order/confirm", "confirmOrderLite"))]

    assert relayed == {"delivered": 2, "failed": 0}
    assert sorted(confirms) == [("/api/v1/eleme.order.confirmOrderLite", 200), ("/api/v1/order/confirm", 200)]
    assert at_platform == (4, "valid")
    assert set(OutboxMessage.objects.filter(key__in=[o.order_no for o in waiting.values()])
               .values_list("status", flat=True)) == {OutboxStatus.DELIVERED}
    assert reconciled.errors == [] and reconciled.changed == 0
    assert reconciled.checked == Order.objects.filter(
        channel__in=["meituan", "eleme"], status__in=["accepted", "ready", "dispatched"]).count() > 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
