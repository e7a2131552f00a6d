"""The promotion admin: brand admins manage their own brand's promotions and issue coupons."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from accounts.models import StaffRole
from promotions.models import Coupon
from tests.factories import (
    BrandFactory,
    CouponTemplateFactory,
    CustomerFactory,
    PromotionFactory,
    SkuFactory,
    StoreFactory,
    staff_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def brand_admin_client(client):
    brand = BrandFactory()
    client.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=brand))
    return client, brand


def test_brand_admin_sees_only_their_brands_promotions(brand_admin_client):
    client, brand = brand_admin_client
    PromotionFactory(brand=brand, name="ours")
    PromotionFactory(name="theirs")

    response = client.get("/admin/promotions/promotion/")

    assert response.status_code == 200
    assert "ours" in response.content.decode()
    assert "theirs" not in response.content.decode()


def test_store_staff_cannot_manage_promotions(client):
    store = StoreFactory()
    client.force_login(staff_user(role=StaffRole.STORE_MANAGER, store=store))

    assert client.get("/admin/promotions/promotion/").status_code == 403


def promotion_form(brand, **fields):
    data = {
        "brand": brand.pk, "name": "饮品8折", "kind": "item_discount", "is_active": "on", "all_stores": "on",
        "starts_at_0": "2025-01-01", "starts_at_1": "00:00:00", "ends_at_0": "2026-01-01", "ends_at_1": "00:00:00",
        "order_types": '["delivery"]', "tiers": "[]", "priority": "0", "discount_rate": "0.8", "min_spend": "0",
        "stackable_with_coupons": "on", "member_stackable": "on", "force_deduct_on_order": "on",
    }
    data.update(fields)
    return data


def test_brand_admin_creates_an_item_discount(brand_admin_client):
    client, brand = brand_admin_client
    sku = SkuFactory(brand=brand)

    response = client.post("/admin/promotions/promotion/add/", promotion_form(brand, target_skus=[sku.pk]))

    assert response.status_code == 302
    promotion = brand.promotions.get()
    assert (promotion.discount_rate, promotion.order_types) == (Decimal("0.800"), ["delivery"])
    assert list(promotion.target_skus.all()) == [sku]


def test_promotion_form_refuses_another_brands_sku_and_bad_kind_fields(brand_admin_client):
    client, brand = brand_admin_client
    foreign_sku = SkuFactory()

    refused = [
        promotion_form(brand, target_skus=[foreign_sku.pk]),
        promotion_form(brand, fixed_price="9.90"),  # rate and fixed price both set
        promotion_form(brand, kind="full_reduction", tiers='[{"threshold": "5.00", "reduction": "10.00"}]'),
        promotion_form(brand, order_types='["takeaway"]'),
    ]

    for data in refused:
        response = client.post("/admin/promotions/promotion/add/", data)
        assert response.status_code == 200  # the form again, with errors
    assert not brand.promotions.exists()


def test_brand_admin_issues_a_coupon_through_the_service(brand_admin_client):
    client, brand = brand_admin_client
    template = CouponTemplateFactory(brand=brand, value=Decimal("5.00"), valid_days=10)
    customer = CustomerFactory(brand=brand)

    response = client.post("/admin/promotions/coupon/add/", {"template": template.pk, "customer": customer.pk})

    assert response.status_code == 302
    coupon = Coupon.objects.get()
    assert (coupon.customer_id, coupon.status, len(coupon.code)) == (customer.pk, "available", 10)
    assert coupon.valid_until > datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert client.get(f"/admin/promotions/coupon/{coupon.pk}/change/").status_code == 200
