"""The pricing engine on snapshots (no database): every kind and every stacking rule."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.promotions.builders import (
    END,
    NOW,
    D,
    assert_consistent,
    coupon,
    full_reduction,
    line,
    price,
    promo,
)


def test_no_promotion_prices_the_list_price():
    quote = price([line(sku_id=1, price="28.00", qty=2)])

    assert quote.subtotal == D("56.00")
    assert quote.discount_total == D("0.00")
    assert quote.total_goods == D("56.00")
    assert quote.lines[0].total == D("56.00")
    assert quote.discounts == []
    assert_consistent(quote)


# full reduction ---------------------------------------------------------------------


def test_full_reduction_below_threshold_gives_nothing():
    quote = price([line(sku_id=1, price="49.99")], promotions=[full_reduction(("50.00", "10.00"))])

    assert quote.discount_total == D("0.00")
    assert quote.discounts == []


def test_full_reduction_at_threshold_applies():
    rule = full_reduction(("50.00", "10.00"), name="满50减10")

    quote = price([line(sku_id=1, price="50.00")], promotions=[rule])

    assert quote.discount_total == D("10.00")
    [applied] = quote.discounts
    assert (applied.kind, applied.reference, applied.amount, applied.promotion_id) == (
        "full_reduction", f"promotion:{rule.id}", D("10.00"), rule.id)
    assert applied.explanation == "满50减10: amount 50.00 reaches 50.00, 10.00 off"


@pytest.mark.parametrize(("amount", "expected"), [
    ("29.99", "0.00"), ("30.00", "5.00"), ("59.99", "5.00"), ("60.00", "12.00"), ("100.00", "25.00"),
])
def test_full_reduction_best_tier_reached_applies(amount, expected):
    # Tiers in any order; the largest reduction reached wins.
    rule = full_reduction(("100.00", "25.00"), ("30.00", "5.00"), ("60.00", "12.00"))

    quote = price([line(sku_id=1, price=amount)], promotions=[rule])

    assert quote.discount_total == D(expected)


def test_full_reduction_is_apportioned_by_remaining_amount():
    quote = price([line(sku_id=1, price="10.00"), line(sku_id=2, price="10.00"), line(sku_id=3, price="10.00")],
                  promotions=[full_reduction(("30.00", "10.00"))])

    # 10.00 / 3: 3.33 each and the left cent to the first line (ties go to the earlier line).
    assert [q.discount for q in quote.lines] == [D("3.34"), D("3.33"), D("3.33")]
    assert_consistent(quote)


def test_full_reduction_with_targets_counts_and_discounts_only_those_lines():
    rule = full_reduction(("20.00", "5.00"), category_ids={200})

    quote = price([line(sku_id=1, price="15.00", category_id=200), line(sku_id=2, price="40.00", category_id=100)],
                  promotions=[rule])

    assert quote.discount_total == D("0.00")  # only 15.00 of drinks

    quote = price([line(sku_id=1, price="15.00", qty=2, category_id=200),
                   line(sku_id=2, price="40.00", category_id=100)], promotions=[rule])
    assert [q.discount for q in quote.lines] == [D("5.00"), D("0.00")]


def test_two_full_reductions_apply_by_priority_each_on_what_is_left():
    high = full_reduction(("50.00", "10.00"), priority=5)
    low = full_reduction(("45.00", "3.00"), priority=1)

    quote = price([line(sku_id=1, price="55.00")], promotions=[low, high])

    # high first: 55 -> 45; low on 45.00 reaches 45.00 -> 42.00
    assert [d.promotion_id for d in quote.discounts] == [high.id, low.id]
    assert quote.total_goods == D("42.00")


def test_priority_order_decides_whether_a_second_reduction_still_reaches_its_threshold():
    first = full_reduction(("50.00", "10.00"), priority=1)
    second = full_reduction(("50.00", "8.00"), priority=5)

    quote = price([line(sku_id=1, price="55.00")], promotions=[first, second])

    # second (higher priority) takes 8 -> 47.00; first needs 50.00: no longer reached.
    assert [d.promotion_id for d in quote.discounts] == [second.id]
    assert quote.total_goods == D("47.00")


# item level ----------------------------------------------------------------------


def test_item_discount_rate_on_a_category():
    rule = promo("item_discount", category_ids={200}, discount_rate="0.80", name="饮品8折")

    quote = price([line(sku_id=1, price="12.50", qty=3, category_id=200, name="柠檬茶"),
                   line(sku_id=2, price="20.00", category_id=100)], promotions=[rule])

    # 37.50 * 0.80 = 30.00 -> 7.50 off
    assert [q.discount for q in quote.lines] == [D("7.50"), D("0.00")]
    assert quote.discounts[0].explanation == "饮品8折: 柠檬茶 × 3 pays 80% of 37.50, 7.50 off"


def test_item_discount_rate_rounds_half_up_per_line():
    rule = promo("item_discount", sku_ids={1}, discount_rate="0.85")

    quote = price([line(sku_id=1, price="9.90")], promotions=[rule])

    # 9.90 * 0.85 = 8.415 -> 8.42; 1.48 off
    assert quote.lines[0].discount == D("1.48")


def test_item_discount_fixed_price():
    rule = promo("item_discount", sku_ids={1}, fixed_price="19.90")

    quote = price([line(sku_id=1, price="28.00", qty=2)], promotions=[rule])

    assert quote.lines[0].discount == D("16.20")
    assert quote.lines[0].total == D("39.80")


def test_fixed_price_above_list_price_does_nothing():
    rule = promo("item_discount", sku_ids={1}, fixed_price="30.00")

    quote = price([line(sku_id=1, price="28.00")], promotions=[rule])

    assert quote.discount_total == D("0.00")
    assert quote.discounts == []


def test_a_line_gets_only_the_best_item_level_promotion():
    rate = promo("item_discount", category_ids={100}, discount_rate="0.90", priority=9)
    fixed = promo("item_discount", sku_ids={1}, fixed_price="20.00", priority=1)

    quote = price([line(sku_id=1, price="28.00"), line(sku_id=2, price="10.00")], promotions=[rate, fixed])

    # sku 1: 10% = 2.80 vs fixed 8.00 -> fixed; sku 2: only the rate -> 1.00
    assert [q.discount for q in quote.lines] == [D("8.00"), D("1.00")]
    assert {d.promotion_id: d.amount for d in quote.discounts} == {rate.id: D("1.00"), fixed.id: D("8.00")}


def test_equal_item_discounts_go_to_the_higher_priority():
    low = promo("item_discount", sku_ids={1}, fixed_price="20.00", priority=1)
    high = promo("item_discount", sku_ids={1}, fixed_price="20.00", priority=2)

    quote = price([line(sku_id=1, price="28.00")], promotions=[low, high])

    assert [d.promotion_id for d in quote.discounts] == [high.id]


def test_flash_sale_price_and_stock_on_order():
    rule = promo("flash_sale", sku_ids={1}, flash_price="9.90", purchase_limit=3, name="秒杀")

    quote = price([line(sku_id=1, price="18.00", qty=2, name="奶茶"), line(sku_id=2, price="5.00")],
                  promotions=[rule])

    assert quote.lines[0].discount == D("16.20")
    assert quote.lines[0].flash_sale_promotion_id == rule.id
    assert quote.lines[1].flash_sale_promotion_id is None
    assert quote.flash_sale_lines == {1: rule.id}
    assert quote.discounts[0].kind == "flash_sale"
    assert quote.discounts[0].explanation == "秒杀: 奶茶 × 2 at 9.90 instead of 18.00, 16.20 off"


def test_flash_sale_without_forced_deduction_is_not_in_flash_sale_lines():
    rule = promo("flash_sale", sku_ids={1}, flash_price="9.90", force_deduct_on_order=False)

    quote = price([line(sku_id=1, price="18.00")], promotions=[rule])

    assert quote.lines[0].flash_sale_promotion_id == rule.id
    assert quote.flash_sale_lines == {}


def test_flash_sale_beyond_the_purchase_limit_falls_back_to_the_usual_price():
    rule = promo("flash_sale", sku_ids={1}, flash_price="9.90", purchase_limit=3)

    quote = price([line(sku_id=1, price="18.00", qty=2)], promotions=[rule], flash_used={rule.id: 2})

    assert quote.lines[0].discount == D("0.00")
    assert quote.lines[0].flash_sale_promotion_id is None
    assert quote.flash_sale_lines == {}
    [notice] = quote.notices
    assert (notice["code"], notice["limit"], notice["already"], notice["promotion_id"]) == (
        "flash_sale_limit_reached", 3, 2, rule.id)


def test_flash_sale_limit_counts_every_line_of_the_promotion():
    rule = promo("flash_sale", sku_ids={1, 2}, flash_price="5.00", purchase_limit=3)

    quote = price([line(sku_id=1, price="8.00", qty=2), line(sku_id=2, price="8.00", qty=2)], promotions=[rule])

    # 2 units fit, the next 2 would make 4 > 3
    assert [q.flash_sale_promotion_id for q in quote.lines] == [rule.id, None]
    assert [q.discount for q in quote.lines] == [D("6.00"), D("0.00")]


def test_item_level_before_full_reduction():
    item = promo("item_discount", sku_ids={1}, fixed_price="20.00")
    reduction = full_reduction(("50.00", "10.00"))

    quote = price([line(sku_id=1, price="28.00", qty=2)], promotions=[reduction, item])

    # 56.00 -> 40.00 after the item discount: below 50, no reduction
    assert quote.total_goods == D("40.00")
    assert [d.kind for d in quote.discounts] == ["item_discount"]


# exclusive groups -------------------------------------------------------------------


def test_exclusive_group_keeps_only_the_best_promotion():
    small = full_reduction(("50.00", "8.00"), exclusive_group="g", priority=9)
    big = full_reduction(("50.00", "12.00"), exclusive_group="g", priority=1)
    other = full_reduction(("30.00", "1.00"))

    quote = price([line(sku_id=1, price="60.00")], promotions=[small, big, other])

    assert {d.promotion_id for d in quote.discounts} == {big.id, other.id}
    assert quote.total_goods == D("47.00")


def test_exclusive_group_tie_goes_to_the_higher_priority():
    first = full_reduction(("50.00", "10.00"), exclusive_group="g", priority=1)
    second = full_reduction(("50.00", "10.00"), exclusive_group="g", priority=2)

    quote = price([line(sku_id=1, price="60.00")], promotions=[first, second])

    assert [d.promotion_id for d in quote.discounts] == [second.id]


def test_exclusive_group_spans_item_and_order_level():
    item = promo("item_discount", sku_ids={1}, discount_rate="0.90", exclusive_group="g")
    reduction = full_reduction(("50.00", "10.00"), exclusive_group="g")

    quote = price([line(sku_id=1, price="60.00")], promotions=[item, reduction])

    # 10% = 6.00 vs 10.00: the reduction alone
    assert [d.promotion_id for d in quote.discounts] == [reduction.id]
    assert quote.total_goods == D("50.00")


def test_promotions_outside_their_window_or_order_type_or_inactive_do_not_apply():
    quote = price([line(sku_id=1, price="60.00")], order_type="pickup", promotions=[
        full_reduction(("50.00", "10.00"), starts_at=NOW + timedelta(seconds=1)),
        full_reduction(("50.00", "10.00"), ends_at=NOW),
        full_reduction(("50.00", "10.00"), order_types=("delivery",)),
        full_reduction(("50.00", "10.00"), is_active=False),
    ])

    assert quote.discount_total == D("0.00")


# coupons -----------------------------------------------------------------------------


def test_amount_off_coupon_applies_after_promotions():
    rule = full_reduction(("50.00", "10.00"))
    ticket = coupon("ABC", value="5.00", min_spend="45.00")

    quote = price([line(sku_id=1, price="56.00")], promotions=[rule], coupons=[ticket], codes=["abc "])

    assert quote.total_goods == D("41.00")
    applied = quote.discounts[-1]
    assert (applied.kind, applied.reference, applied.coupon_id, applied.amount) == (
        "coupon", "coupon:ABC", ticket.id, D("5.00"))
    assert quote.rejected_coupons == []


def test_coupon_min_spend_is_checked_after_promotions():
    rule = full_reduction(("50.00", "10.00"))
    ticket = coupon("ABC", value="5.00", min_spend="50.00")

    quote = price([line(sku_id=1, price="56.00")], promotions=[rule], coupons=[ticket], codes=["ABC"])

    # 56 - 10 = 46 < 50
    assert quote.total_goods == D("46.00")
    assert quote.rejected_coupons == [{"code": "ABC", "reason_code": "coupon_min_spend_not_met",
                                       "message": "Spend 50.00 to use this coupon (now 46.00)."}]


def test_percent_off_coupon_rounds_half_up_and_respects_its_cap():
    quote = price([line(sku_id=1, price="33.35")], coupons=[coupon("P", kind="percent_off", value="15")],
                  codes=["P"])
    # 33.35 * 15% = 5.0025 -> 5.00
    assert quote.discount_total == D("5.00")

    quote = price([line(sku_id=1, price="33.30")], coupons=[coupon("P", kind="percent_off", value="15")],
                  codes=["P"])
    # 4.995 -> 5.00 (half up)
    assert quote.discount_total == D("5.00")

    quote = price([line(sku_id=1, price="100.00")],
                  coupons=[coupon("P", kind="percent_off", value="15", max_discount="8.00")], codes=["P"])
    assert quote.discount_total == D("8.00")


def test_amount_off_coupon_never_takes_more_than_is_left():
    quote = price([line(sku_id=1, price="6.00")], coupons=[coupon("BIG", value="10.00")], codes=["BIG"])

    assert quote.discount_total == D("6.00")
    assert quote.lines[0].total == D("0.00")


@pytest.mark.parametrize(("ticket", "reason"), [
    (coupon("X", status="used"), "coupon_used"),
    (coupon("X", status="reserved"), "coupon_reserved"),
    (coupon("X", status="expired"), "coupon_expired"),
    (coupon("X", valid_until=NOW), "coupon_expired"),
    (coupon("X", valid_from=NOW + timedelta(days=1), valid_until=END), "coupon_not_yet_valid"),
    (coupon("X", customer_id=999), "coupon_not_found"),
    (coupon("X", brand_id=999), "coupon_not_found"),
    (coupon("X", order_types=("delivery",)), "coupon_not_applicable"),
    (coupon("X", min_spend="100.00"), "coupon_min_spend_not_met"),
])
def test_unusable_coupons_are_rejected_with_a_stable_reason(ticket, reason):
    quote = price([line(sku_id=1, price="60.00")], coupons=[ticket], codes=["X"])

    assert quote.discount_total == D("0.00")
    assert [(r["code"], r["reason_code"]) for r in quote.rejected_coupons] == [("X", reason)]
    assert quote.rejected_coupons[0]["message"]


def test_unknown_code_and_anonymous_customer_are_not_found():
    quote = price([line(sku_id=1, price="60.00")], codes=["NOPE"])
    assert quote.rejected_coupons[0]["reason_code"] == "coupon_not_found"

    quote = price([line(sku_id=1, price="60.00")], coupons=[coupon("X")], codes=["X"], customer_id=None)
    assert quote.rejected_coupons[0]["reason_code"] == "coupon_not_found"


def test_only_one_coupon_per_order_unless_templates_allow():
    first, second = coupon("A", value="5.00"), coupon("B", value="3.00")

    quote = price([line(sku_id=1, price="60.00")], coupons=[first, second], codes=["A", "B", "A"])

    assert quote.discount_total == D("5.00")
    assert quote.rejected_coupons == [{"code": "B", "reason_code": "coupon_not_stackable",
                                       "message": "Only one coupon can be used on this order."}]


def test_coupons_whose_templates_stack_combine():
    first = coupon("A", value="5.00", stackable_with_coupons=True)
    second = coupon("B", value="3.00", stackable_with_coupons=True)

    quote = price([line(sku_id=1, price="60.00")], coupons=[first, second], codes=["A", "B"])

    assert quote.discount_total == D("8.00")
    assert quote.rejected_coupons == []


def test_coupon_not_stackable_with_promotions_is_rejected_when_one_applied():
    ticket = coupon("X", stackable_with_promotions=False)

    quote = price([line(sku_id=1, price="60.00")], promotions=[full_reduction(("50.00", "10.00"))],
                  coupons=[ticket], codes=["X"])
    assert quote.discount_total == D("10.00")
    assert quote.rejected_coupons[0]["reason_code"] == "coupon_not_stackable"

    # with no promotion applying, the same coupon is fine
    quote = price([line(sku_id=1, price="40.00")], promotions=[full_reduction(("50.00", "10.00"))],
                  coupons=[ticket], codes=["X"])
    assert quote.discount_total == D("10.00")
    assert quote.rejected_coupons == []


def test_promotion_not_stackable_with_coupons_blocks_them():
    rule = full_reduction(("50.00", "10.00"), stackable_with_coupons=False, name="店庆满减")

    quote = price([line(sku_id=1, price="60.00")], promotions=[rule], coupons=[coupon("X")], codes=["X"])

    assert quote.discount_total == D("10.00")
    assert quote.rejected_coupons == [{"code": "X", "reason_code": "coupon_not_stackable",
                                       "message": "店庆满减 cannot be combined with coupons."}]


# member rights ---------------------------------------------------------------------


def test_member_rate_applies_last_on_what_is_left():
    quote = price([line(sku_id=1, price="60.00")], promotions=[full_reduction(("50.00", "10.00"))],
                  coupons=[coupon("X", value="5.00")], codes=["X"], rate="0.98")

    # 60 - 10 - 5 = 45.00; 45.00 * 0.98 = 44.10 -> 0.90 off
    assert [(d.kind, d.amount) for d in quote.discounts] == [
        ("full_reduction", D("10.00")), ("coupon", D("5.00")), ("member", D("0.90"))]
    assert quote.total_goods == D("44.10")
    assert quote.discounts[-1].explanation == "Member price: pays 98% of 45.00, 0.90 off"


def test_member_rate_rounds_half_up():
    quote = price([line(sku_id=1, price="0.25")], rate="0.98")

    # 0.245 -> 0.25: nothing off
    assert quote.discount_total == D("0.00")

    quote = price([line(sku_id=1, price="12.75")], rate="0.98")
    # 12.495 -> 12.50: 0.25 off
    assert quote.discount_total == D("0.25")


def test_member_rate_is_skipped_when_a_promotion_does_not_stack_with_it():
    rule = promo("item_discount", sku_ids={1}, fixed_price="20.00", member_stackable=False)

    quote = price([line(sku_id=1, price="28.00"), line(sku_id=2, price="10.00")], promotions=[rule], rate="0.90")

    assert [d.kind for d in quote.discounts] == ["item_discount"]
    assert quote.total_goods == D("30.00")


# delivery fee ----------------------------------------------------------------------


def test_delivery_fee_waiver_needs_its_min_spend_after_discounts():
    waiver = promo("delivery_fee_waiver", min_spend="30.00", order_types=("delivery",))

    quote = price([line(sku_id=1, price="32.00")], promotions=[waiver, full_reduction(("30.00", "3.00"))],
                  order_type="delivery", delivery_fee="5.00")

    # goods 29.00 < 30.00
    assert (quote.delivery_fee, quote.delivery_fee_discount, quote.fee_discounts) == (D("5.00"), D("0.00"), [])

    quote = price([line(sku_id=1, price="33.00")], promotions=[waiver, full_reduction(("30.00", "3.00"))],
                  order_type="delivery", delivery_fee="5.00")
    assert (quote.delivery_fee, quote.delivery_fee_discount) == (D("0.00"), D("5.00"))
    assert quote.fee_discounts[0].kind == "delivery_fee_waiver"
    assert quote.fee_discounts[0].promotion_id == waiver.id
    # kept apart from the goods discounts
    assert quote.discount_total == D("3.00")
    assert quote.total == D("30.00")


def test_delivery_fee_waiver_with_a_cap_and_the_best_single_waiver():
    capped = promo("delivery_fee_waiver", max_waiver="3.00")
    member_quote = price([line(sku_id=1, price="20.00")], promotions=[capped], order_type="delivery",
                         delivery_fee="5.00", free_delivery=True)
    assert member_quote.delivery_fee_discount == D("5.00")
    assert [d.reference for d in member_quote.fee_discounts] == ["member:free_delivery"]

    quote = price([line(sku_id=1, price="20.00")], promotions=[capped], order_type="delivery", delivery_fee="5.00")
    assert (quote.delivery_fee, quote.delivery_fee_discount) == (D("2.00"), D("3.00"))


def test_waiver_not_stackable_with_coupons_is_skipped_when_a_coupon_applied():
    waiver = promo("delivery_fee_waiver", stackable_with_coupons=False)

    quote = price([line(sku_id=1, price="20.00")], promotions=[waiver], coupons=[coupon("X", value="1.00")],
                  codes=["X"], order_type="delivery", delivery_fee="4.00")

    assert quote.delivery_fee == D("4.00")


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        price([line(sku_id=1, price="1.00", qty=0)])
    with pytest.raises(ValueError):
        price([line(sku_id=1, price="1.001")])
    with pytest.raises(ValueError):
        price([line(sku_id=1, price="1.00")], rate="0")


def test_empty_cart_prices_zero():
    quote = price([], promotions=[full_reduction(("0.01", "0.01"))], coupons=[coupon("X")], codes=["X"])

    assert (quote.subtotal, quote.discount_total, quote.total_goods) == (Decimal("0"), Decimal("0"), Decimal("0"))
    assert quote.rejected_coupons[0]["reason_code"] == "coupon_not_applicable"


def test_flash_sale_units_sum_every_flash_line_of_a_promotion():
    both = promo("flash_sale", sku_ids={1, 2}, flash_price="5.00", force_deduct_on_order=False)

    quote = price([line(sku_id=1, price="8.00", qty=2), line(sku_id=2, price="8.00", qty=1),
                   line(sku_id=3, price="8.00")], promotions=[both])

    assert quote.flash_sale_units == {both.id: 3}
    assert quote.flash_sale_lines == {}
