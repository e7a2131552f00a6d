"""quote_compute reading promotions, coupons and flash-sale usage from the database."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from promotions.engine import CartLine, PricingContext, quote_compute
from promotions.models import FlashSaleUsage
from promotions.selectors import coupon_list_available, promotions_active_for_store
from tests.factories import (
    BrandFactory,
    CouponFactory,
    CustomerFactory,
    PromotionFactory,
    SkuFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
D = Decimal


def cart(sku, qty=1):
    return [CartLine(sku_id=sku.pk, sku_code=sku.code, name="x", category_id=sku.product.category_id,
                     unit_price=sku.price, quantity=qty)]


def context(store, customer=None, codes=(), now=NOW):
    return PricingContext(brand_id=store.brand_id, store_id=store.pk, customer_id=customer.pk if customer else None,
                          order_type="pickup", member_price_rate=D("1.000"), member_free_delivery=False,
                          delivery_fee=D("0.00"), coupon_codes=tuple(codes), now=now)


def test_live_promotions_are_those_of_the_brand_the_store_and_the_time():
    store = StoreFactory()
    other_store = StoreFactory(brand=store.brand)
    everywhere = PromotionFactory(brand=store.brand, priority=1)
    here = PromotionFactory(brand=store.brand, all_stores=False, stores=[store], priority=5)
    PromotionFactory(brand=store.brand, all_stores=False, stores=[other_store])
    PromotionFactory(brand=store.brand, is_active=False)
    PromotionFactory(brand=store.brand, starts_at=datetime(2025, 7, 1, tzinfo=timezone.utc))
    PromotionFactory(brand=BrandFactory())

    live = promotions_active_for_store(brand_id=store.brand_id, store_id=store.pk, now=NOW)

    assert [promotion.pk for promotion in live] == [here.pk, everywhere.pk]


def test_quote_reads_a_constant_number_of_queries(django_assert_num_queries):
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand, price=D("60.00"))
    customer = CustomerFactory(brand=store.brand)
    for _ in range(3):
        PromotionFactory(brand=store.brand, kind="flash_sale", tiers=[], flash_price=D("50.00"), purchase_limit=2,
                         target_skus=[sku])
    ticket = CouponFactory(template__brand=store.brand, customer=customer)

    # promotions + 2 prefetches + coupons + flash-sale usage
    with django_assert_num_queries(5):
        quote = quote_compute(lines=cart(sku), context=context(store, customer, codes=(ticket.code,)))

    assert quote.total_goods == D("40.00")


def test_another_customers_or_brands_coupon_is_not_found():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand, price=D("60.00"))
    me = CustomerFactory(brand=store.brand)
    someone_else = CouponFactory(template__brand=store.brand, customer=CustomerFactory(brand=store.brand))
    other_brand = CouponFactory()

    quote = quote_compute(lines=cart(sku), context=context(store, me, codes=(someone_else.code, other_brand.code)))

    assert [r["reason_code"] for r in quote.rejected_coupons] == ["coupon_not_found", "coupon_not_found"]
    assert quote.discount_total == D("0.00")


def test_flash_sale_already_held_by_the_customer_counts_towards_the_limit():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand, price=D("18.00"))
    customer = CustomerFactory(brand=store.brand)
    flash = PromotionFactory(brand=store.brand, kind="flash_sale", tiers=[], flash_price=D("9.90"),
                             purchase_limit=3, target_skus=[sku])
    FlashSaleUsage.objects.create(promotion=flash, customer=customer, used=2, limit=3)

    within = quote_compute(lines=cart(sku, 1), context=context(store, customer))
    beyond = quote_compute(lines=cart(sku, 2), context=context(store, customer))
    anonymous = quote_compute(lines=cart(sku, 2), context=context(store))

    assert within.lines[0].flash_sale_promotion_id == flash.pk
    assert beyond.lines[0].flash_sale_promotion_id is None
    assert beyond.notices[0]["code"] == "flash_sale_limit_reached"
    assert anonymous.lines[0].flash_sale_promotion_id == flash.pk


def test_available_coupons_of_a_customer():
    customer = CustomerFactory()
    soon = CouponFactory(template__brand=customer.brand, customer=customer,
                         valid_until=datetime(2025, 7, 1, tzinfo=timezone.utc))
    later = CouponFactory(template__brand=customer.brand, customer=customer)
    CouponFactory(template__brand=customer.brand, customer=customer, status="used", order_ref="O1")
    CouponFactory(template__brand=customer.brand, customer=customer,
                  valid_until=datetime(2025, 5, 1, tzinfo=timezone.utc))

    assert list(coupon_list_available(customer_id=customer.pk, now=NOW)) == [soon, later]
