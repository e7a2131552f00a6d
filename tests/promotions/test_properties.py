"""Property-based tests: apportion() and quote_compute keep their invariants for any input.

Every property runs derandomised (the same examples on every run and every machine) and
without Hypothesis's per-example deadline or its too-slow health check: both are wall-clock
budgets that fail on a loaded machine. The apportion properties also run an explicit set of
edge cases (@example) before the generated ones.
"""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from promotions.apportion import apportion
from promotions.engine import CartLine
from tests.promotions.builders import assert_consistent, coupon, price, promo

CENT = Decimal("0.01")
# Same examples on every run; no wall-clock limits (a loaded CI box must not fail a property).
DETERMINISTIC = settings(derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda value: Decimal(value) / 100)


@st.composite
def amounts_and_weights(draw):
    weights = draw(st.lists(cents, min_size=1, max_size=20))
    total = int(sum(weights) * 100)
    amount = Decimal(draw(st.integers(min_value=0, max_value=total))) / 100
    return amount, weights


def d(*values):
    return [Decimal(value) for value in values]


# Edge cases every run tries first: nothing to split, all of it, zero weights, ties, one cent
# over many equal weights, a remainder cent that must go to the largest remainder, big sums.
APPORTION_EXAMPLES = [
    (Decimal("0.00"), d("0.00")),
    (Decimal("0.00"), d("0.00", "0.00", "0.00")),
    (Decimal("10.00"), d("10.00")),
    (Decimal("30.00"), d("10.00", "0.00", "20.00")),
    (Decimal("0.01"), d("1.00", "1.00", "1.00")),
    (Decimal("0.02"), d("0.01", "0.01", "0.01")),
    (Decimal("1.00"), d("0.01", "0.01", "0.98")),
    (Decimal("10.00"), d("3.33", "3.33", "3.34")),
    (Decimal("0.99"), d("0.50", "0.49", "0.01")),
    (Decimal("7.77"), d("1.00", "2.00", "3.00", "4.00", "5.00", "6.00", "7.00")),
    (Decimal("100000.00"), d("99999.99", "0.01", "100000.00")),
    (Decimal("0.19"), d(*["0.01"] * 20)),
]


def with_apportion_examples(test):
    for case in APPORTION_EXAMPLES:
        test = example(case)(test)
    return test


@DETERMINISTIC
@given(amounts_and_weights())
@with_apportion_examples
def test_apportion_parts_sum_exactly_and_never_exceed_their_weight(case):
    amount, weights = case

    parts = apportion(amount=amount, weights=weights)

    assert len(parts) == len(weights)
    assert sum(parts, Decimal("0")) == amount
    for part, weight in zip(parts, weights, strict=True):
        assert Decimal("0") <= part <= weight
        assert part == part.quantize(CENT)


@DETERMINISTIC
@given(amounts_and_weights())
@with_apportion_examples
def test_apportion_is_deterministic_and_close_to_proportional(case):
    amount, weights = case
    total = sum(weights)

    parts = apportion(amount=amount, weights=weights)

    assert parts == apportion(amount=amount, weights=list(weights))
    if total == 0:
        return
    for part, weight in zip(parts, weights, strict=True):
        # largest remainder: never more than one cent away from the exact share
        assert abs(part - amount * weight / total) < CENT


def test_apportion_edges():
    assert apportion(amount=Decimal("0.00"), weights=[]) == []
    assert apportion(amount=Decimal("0.00"), weights=[Decimal("0.00")]) == [Decimal("0.00")]
    assert apportion(amount=Decimal("0.01"), weights=[Decimal("1.00")] * 3) == [
        Decimal("0.01"), Decimal("0.00"), Decimal("0.00")]
    assert apportion(amount=Decimal("5.00"), weights=[Decimal("0.00"), Decimal("5.00")]) == [
        Decimal("0.00"), Decimal("5.00")]
    with pytest.raises(ValueError):
        apportion(amount=Decimal("1.01"), weights=[Decimal("1.00")])
    with pytest.raises(ValueError):
        apportion(amount=Decimal("0.001"), weights=[Decimal("1.00")])
    with pytest.raises(ValueError):
        apportion(amount=Decimal("0.00"), weights=[Decimal("-1.00")])


def test_apportion_splits_to_the_cent_and_never_beyond_a_line():
    # Moved from tests/channels/test_intake.py: platform intake's own copy is gone.
    assert apportion(amount=Decimal("10.00"), weights=[Decimal("56.00"), Decimal("2.50")]) == [
        Decimal("9.57"), Decimal("0.43")]
    assert apportion(amount=Decimal("0.01"), weights=[Decimal("1.00"), Decimal("1.00"), Decimal("1.00")]) == [
        Decimal("0.01"), Decimal("0.00"), Decimal("0.00")]
    assert sum(apportion(amount=Decimal("7.77"), weights=[Decimal("3.33")] * 3)) == Decimal("7.77")
    assert apportion(amount=Decimal("0.00"), weights=[Decimal("5.00")]) == [Decimal("0.00")]


# quote_compute -----------------------------------------------------------------------

SKU_IDS = [1, 2, 3, 4]
CATEGORY_IDS = [10, 20]
prices = st.integers(min_value=0, max_value=50_000).map(lambda value: Decimal(value) / 100)
rates = st.integers(min_value=1, max_value=1000).map(lambda value: Decimal(value) / 1000)
groups = st.sampled_from(["", "", "a", "b"])
common = {"priority": st.integers(-3, 3), "exclusive_group": groups, "stackable_with_coupons": st.booleans(),
          "member_stackable": st.booleans()}


@st.composite
def cart_lines(draw):
    count = draw(st.integers(min_value=0, max_value=6))
    return [CartLine(sku_id=draw(st.sampled_from(SKU_IDS)), sku_code="S", name="S",
                     category_id=draw(st.sampled_from(CATEGORY_IDS)), unit_price=draw(prices),
                     quantity=draw(st.integers(min_value=1, max_value=20)))
            for _ in range(count)]


tier = st.tuples(prices, prices).map(lambda pair: (max(pair), min(pair))).filter(lambda pair: pair[1] > 0)
full_reductions = st.builds(
    lambda tiers, categories, **flags: promo("full_reduction", tiers=tiers, category_ids=categories, **flags),
    st.lists(tier, min_size=1, max_size=3), st.sets(st.sampled_from(CATEGORY_IDS), max_size=1), **common)
rate_discounts = st.builds(
    lambda skus, categories, rate, **flags: promo("item_discount", sku_ids=skus, category_ids=categories,
                                                  discount_rate=rate, **flags),
    st.sets(st.sampled_from(SKU_IDS), max_size=2), st.sets(st.sampled_from(CATEGORY_IDS), max_size=1), rates,
    **common)
fixed_prices = st.builds(
    lambda skus, fixed, **flags: promo("item_discount", sku_ids=skus, fixed_price=fixed, **flags),
    st.sets(st.sampled_from(SKU_IDS), min_size=1, max_size=2), prices, **common)
flash_sales = st.builds(
    lambda skus, flash, limit, **flags: promo("flash_sale", sku_ids=skus, flash_price=flash,
                                              purchase_limit=limit, **flags),
    st.sets(st.sampled_from(SKU_IDS), min_size=1, max_size=1), prices, st.none() | st.integers(1, 10), **common)
waivers = st.builds(
    lambda min_spend, cap, **flags: promo("delivery_fee_waiver", min_spend=min_spend, max_waiver=cap, **flags),
    prices, st.none() | prices.filter(lambda value: value > 0), **common)
coupons = st.builds(
    lambda index, kind, value, min_spend, cap, stack_promotions, stack_coupons: coupon(
        f"C{index}", kind=kind, value=value if kind == "amount_off" else min(value, Decimal("100")),
        min_spend=min_spend, max_discount=cap, stackable_with_promotions=stack_promotions,
        stackable_with_coupons=stack_coupons),
    st.integers(0, 3), st.sampled_from(["amount_off", "percent_off"]), prices.filter(lambda value: value > 0),
    prices, st.none() | prices.filter(lambda value: value > 0), st.booleans(), st.booleans())


@settings(DETERMINISTIC, max_examples=300)
@given(
    lines=cart_lines(),
    promotions=st.lists(st.one_of(full_reductions, rate_discounts, fixed_prices, flash_sales, waivers), max_size=6),
    tickets=st.lists(coupons, max_size=3, unique_by=lambda rule: rule.code),
    codes=st.lists(st.sampled_from(["C0", "C1", "C2", "C3", "XX"]), max_size=4),
    rate=st.sampled_from([Decimal("1.000"), Decimal("0.980"), Decimal("0.955"), Decimal("0.500")]),
    free_delivery=st.booleans(),
    fee=prices,
)
def test_quote_keeps_its_invariants(lines, promotions, tickets, codes, rate, free_delivery, fee):
    quote = price(lines, promotions=promotions, coupons=tickets, codes=codes, rate=str(rate),
                  free_delivery=free_delivery, delivery_fee=str(fee), order_type="delivery")

    assert_consistent(quote)
    assert quote.subtotal == sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
    assert Decimal("0") <= quote.total_goods <= quote.subtotal
    assert quote.delivery_fee + quote.delivery_fee_discount == fee
    assert len(quote.fee_discounts) <= 1
    assert quote.total == quote.total_goods + quote.delivery_fee
    # a coupon code is either applied once or rejected once
    applied = [d.reference.removeprefix("coupon:") for d in quote.discounts if d.kind == "coupon"]
    rejected = [r["code"] for r in quote.rejected_coupons]
    assert sorted(applied + rejected) == sorted(set(codes))
    assert len([d for d in quote.discounts if d.kind == "coupon"]) <= max(1, len(tickets))
    # a line is flagged as flash-sale only when the flash price took something off
    for quoted in quote.lines:
        if quoted.flash_sale_promotion_id is not None:
            assert quoted.discount > 0
    # exclusive groups: at most one promotion of each group applied
    applied_ids = {d.promotion_id for d in quote.discounts + quote.fee_discounts if d.promotion_id}
    by_id = {rule.id: rule for rule in promotions}
    for group in ("a", "b"):
        assert len([pid for pid in applied_ids if by_id[pid].exclusive_group == group]) <= 1


@settings(DETERMINISTIC, max_examples=200)
@given(lines=cart_lines(), promotions=st.lists(st.one_of(full_reductions, rate_discounts, fixed_prices),
                                               max_size=5))
def test_promotions_never_make_a_cart_dearer(lines, promotions):
    with_promotions = price(lines, promotions=promotions)
    without = price(lines)

    assert with_promotions.total_goods <= without.total_goods
