"""The worked examples of docs/promotions.md, end to end through the database.

Each test builds the example's promotions and coupons as rows, prices the cart
with quote_compute and asserts exactly the numbers printed in the document.
"""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from promotions.engine import CartLine, PricingContext, quote_compute
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    CouponFactory,
    CouponTemplateFactory,
    CustomerFactory,
    PromotionFactory,
    SkuFactory,
    StoreFactory,
)
from tests.promotions.builders import assert_consistent

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
D = Decimal


@pytest.fixture
def shop():
    brand = BrandFactory()
    return {"brand": brand, "store": StoreFactory(brand=brand), "customer": CustomerFactory(brand=brand)}


def cart_line(sku, qty: int) -> CartLine:
    return CartLine(sku_id=sku.pk, sku_code=sku.code, name=sku.product.name, category_id=sku.product.category_id,
                    unit_price=sku.price, quantity=qty)


def context(shop, *, order_type="pickup", rate="1.000", free_delivery=False, fee="0.00", codes=()):
    return PricingContext(brand_id=shop["brand"].pk, store_id=shop["store"].pk, customer_id=shop["customer"].pk,
                          order_type=order_type, member_price_rate=D(rate), member_free_delivery=free_delivery,
                          delivery_fee=D(fee), coupon_codes=tuple(codes), now=NOW)


def sku(shop, name: str, price: str, category=None):
    category = category or CategoryFactory(brand=shop["brand"])
    return SkuFactory(brand=shop["brand"], product__name=name, product__category=category, price=D(price))


def figures(quote):
    return [(q.subtotal, q.discount, q.total) for q in quote.lines]


def test_example_1_tiered_full_reduction_apportioned(shop):
    chicken, cola = sku(shop, "宫保鸡丁", "28.00"), sku(shop, "可乐", "6.00")
    promotion = PromotionFactory(brand=shop["brand"], name="满减", tiers=[
        {"threshold": "30.00", "reduction": "5.00"}, {"threshold": "60.00", "reduction": "12.00"}])

    quote = quote_compute(lines=[cart_line(chicken, 2), cart_line(cola, 1)], context=context(shop))

    assert quote.subtotal == D("62.00")
    assert [(d.promotion_id, d.amount) for d in quote.discounts] == [(promotion.pk, D("12.00"))]
    assert quote.discounts[0].explanation == "满减: amount 62.00 reaches 60.00, 12.00 off"
    assert figures(quote) == [(D("56.00"), D("10.84"), D("45.16")), (D("6.00"), D("1.16"), D("4.84"))]
    assert (quote.discount_total, quote.total_goods) == (D("12.00"), D("50.00"))
    assert_consistent(quote)


def test_example_2_item_discount_then_full_reduction_then_member_rate(shop):
    hot = CategoryFactory(brand=shop["brand"], name="热菜")
    chicken, rice = sku(shop, "宫保鸡丁", "28.00", hot), sku(shop, "米饭", "3.00")
    item = PromotionFactory(brand=shop["brand"], name="热菜8折", kind="item_discount", tiers=[],
                            discount_rate=D("0.800"), target_categories=[hot])
    reduction = PromotionFactory(brand=shop["brand"], name="满40减5",
                                 tiers=[{"threshold": "40.00", "reduction": "5.00"}])

    quote = quote_compute(lines=[cart_line(chicken, 2), cart_line(rice, 1)], context=context(shop, rate="0.980"))

    assert quote.subtotal == D("59.00")
    assert [(d.kind, d.reference, d.amount) for d in quote.discounts] == [
        ("item_discount", f"promotion:{item.pk}", D("11.20")),
        ("full_reduction", f"promotion:{reduction.pk}", D("5.00")),
        ("member", "member:rate", D("0.86")),
    ]
    assert figures(quote) == [(D("56.00"), D("16.70"), D("39.30")), (D("3.00"), D("0.36"), D("2.64"))]
    assert (quote.discount_total, quote.total_goods) == (D("17.06"), D("41.94"))
    assert_consistent(quote)


def test_example_3_flash_sale_coupon_rejections_and_delivery_waiver(shop):
    tea, cake = sku(shop, "奶茶", "18.00"), sku(shop, "蛋糕", "25.00")
    flash = PromotionFactory(brand=shop["brand"], name="奶茶秒杀", kind="flash_sale", tiers=[],
                             flash_price=D("9.90"), purchase_limit=3, target_skus=[tea])
    waiver = PromotionFactory(brand=shop["brand"], name="满30免配送费", kind="delivery_fee_waiver", tiers=[],
                              min_spend=D("30.00"), order_types=["delivery"])
    customer = shop["customer"]
    eight = CouponFactory(customer=customer, code="MAN40JIAN8", template=CouponTemplateFactory(
        brand=shop["brand"], name="满40减8", value=D("8.00"), min_spend=D("40.00")))
    CouponFactory(customer=customer, code="MAN100JIAN20", template=CouponTemplateFactory(
        brand=shop["brand"], name="满100减20", value=D("20.00"), min_spend=D("100.00")))

    quote = quote_compute(
        lines=[cart_line(tea, 2), cart_line(cake, 1)],
        context=context(shop, order_type="delivery", fee="5.00", codes=("MAN40JIAN8", "MAN100JIAN20", "NOPE")),
    )

    assert quote.subtotal == D("61.00")
    assert [(d.kind, d.amount, d.promotion_id, d.coupon_id) for d in quote.discounts] == [
        ("flash_sale", D("16.20"), flash.pk, None), ("coupon", D("8.00"), None, eight.pk)]
    assert [(r["code"], r["reason_code"]) for r in quote.rejected_coupons] == [
        ("MAN100JIAN20", "coupon_min_spend_not_met"), ("NOPE", "coupon_not_found")]
    assert figures(quote) == [(D("36.00"), D("19.74"), D("16.26")), (D("25.00"), D("4.46"), D("20.54"))]
    assert (quote.discount_total, quote.total_goods) == (D("24.20"), D("36.80"))
    assert (quote.delivery_fee, quote.delivery_fee_discount) == (D("0.00"), D("5.00"))
    assert [d.promotion_id for d in quote.fee_discounts] == [waiver.pk]
    assert quote.total == D("36.80")
    assert quote.flash_sale_lines == {tea.pk: flash.pk}
    assert quote.lines[0].flash_sale_promotion_id == flash.pk
    assert_consistent(quote)


def test_example_4_exclusive_group_chooses_the_best_for_the_customer(shop):
    duck, soup = sku(shop, "烤鸭", "32.00"), sku(shop, "汤", "8.00")
    PromotionFactory(brand=shop["brand"], name="满60减12", priority=10, exclusive_group="anniversary",
                     tiers=[{"threshold": "60.00", "reduction": "12.00"}])
    b = PromotionFactory(brand=shop["brand"], name="烤鸭75折", priority=1, exclusive_group="anniversary",
                         kind="item_discount", tiers=[], discount_rate=D("0.750"), target_skus=[duck])
    c = PromotionFactory(brand=shop["brand"], name="满30减3", priority=0,
                         tiers=[{"threshold": "30.00", "reduction": "3.00"}])

    quote = quote_compute(lines=[cart_line(duck, 2), cart_line(soup, 1)], context=context(shop))

    assert quote.subtotal == D("72.00")
    assert [(d.promotion_id, d.amount) for d in quote.discounts] == [(b.pk, D("16.00")), (c.pk, D("3.00"))]
    assert figures(quote) == [(D("64.00"), D("18.57"), D("45.43")), (D("8.00"), D("0.43"), D("7.57"))]
    assert (quote.discount_total, quote.total_goods) == (D("19.00"), D("53.00"))
    assert_consistent(quote)


def test_example_5_promotion_excluding_member_rate_and_capped_percent_coupon(shop):
    noodles = sku(shop, "牛肉面", "20.00")
    reduction = PromotionFactory(brand=shop["brand"], name="满50减10", member_stackable=False,
                                 tiers=[{"threshold": "50.00", "reduction": "10.00"}])
    ticket = CouponFactory(customer=shop["customer"], code="TENPCT", template=CouponTemplateFactory(
        brand=shop["brand"], name="9折券", kind="percent_off", value=D("10"), max_discount=D("4.00")))

    quote = quote_compute(lines=[cart_line(noodles, 3)], context=context(
        shop, order_type="delivery", fee="6.00", rate="0.980", free_delivery=True, codes=("tenpct",)))

    assert [(d.kind, d.amount) for d in quote.discounts] == [("full_reduction", D("10.00")), ("coupon", D("4.00"))]
    assert quote.discounts[0].promotion_id == reduction.pk
    assert quote.discounts[1].coupon_id == ticket.pk
    assert figures(quote) == [(D("60.00"), D("14.00"), D("46.00"))]
    assert (quote.discount_total, quote.total_goods) == (D("14.00"), D("46.00"))
    assert (quote.delivery_fee, quote.delivery_fee_discount) == (D("0.00"), D("6.00"))
    assert [d.reference for d in quote.fee_discounts] == ["member:free_delivery"]
    assert quote.total == D("46.00")
    assert_consistent(quote)
