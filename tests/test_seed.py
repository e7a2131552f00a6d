"""manage.py seed_demo: the demo brand, every reachable status, idempotent."""

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.models import Brand, Customer, MemberTier, StaffMembership, Store
from catalog.models import Category, PlatformSkuMapping, Product, Sku, StoreSku
from orders.models import Order, OrderEvent, OrderLine, OrderType
from orders.models.machines import machine_states

pytestmark = pytest.mark.django_db

COUNTED = [Brand, Store, MemberTier, Category, Product, Sku, StoreSku, PlatformSkuMapping, get_user_model(),
           StaffMembership, Customer, Order, OrderLine, OrderEvent]


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


def test_seeding_twice_changes_no_counts():
    seed()
    first = counts()

    output = seed()

    assert counts() == first
    assert first["Order"] == 40
    assert "creating 0" in output
