"""Snapshots for pricing tests that need no database."""

from datetime import datetime, timezone
from decimal import Decimal

from promotions.engine import CartLine, PricingContext, Quote, quote_compute_from_rules
from promotions.rules import CouponRule, PromotionRule

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = datetime(2026, 1, 1, tzinfo=timezone.utc)
BRAND_ID = 1
CUSTOMER_ID = 7

_next_id = iter(range(1000, 10**9))


def D(value) -> Decimal:
    return Decimal(str(value))


def line(*, sku_id: int, price, qty: int = 1, category_id: int = 100, name: str | None = None) -> CartLine:
    return CartLine(sku_id=sku_id, sku_code=f"SKU{sku_id}", name=name or f"SKU{sku_id}",
                    category_id=category_id, unit_price=D(price), quantity=qty)


def context(*, order_type="pickup", rate="1.000", free_delivery=False, delivery_fee="0.00", codes=(),
            customer_id=CUSTOMER_ID, now=NOW) -> PricingContext:
    return PricingContext(brand_id=BRAND_ID, store_id=1, customer_id=customer_id, order_type=order_type,
                          member_price_rate=D(rate), member_free_delivery=free_delivery,
                          delivery_fee=D(delivery_fee), coupon_codes=tuple(codes), now=now)


def promo(kind: str, **fields) -> PromotionRule:
    fields.setdefault("id", next(_next_id))
    fields.setdefault("name", f"{kind} {fields['id']}")
    fields.setdefault("starts_at", START)
    fields.setdefault("ends_at", END)
    for name in ("sku_ids", "category_ids"):
        if name in fields:
            fields[name] = frozenset(fields[name])
    if "tiers" in fields:
        fields["tiers"] = tuple((D(threshold), D(reduction)) for threshold, reduction in fields["tiers"])
    for name in ("discount_rate", "fixed_price", "flash_price", "min_spend", "max_waiver"):
        if fields.get(name) is not None:
            fields[name] = D(fields[name])
    return PromotionRule(kind=kind, **fields)


def full_reduction(*tiers, **fields) -> PromotionRule:
    return promo("full_reduction", tiers=tiers, **fields)


def coupon(code: str, *, value="10.00", kind="amount_off", **fields) -> CouponRule:
    fields.setdefault("id", next(_next_id))
    fields.setdefault("brand_id", BRAND_ID)
    fields.setdefault("customer_id", CUSTOMER_ID)
    fields.setdefault("status", "available")
    fields.setdefault("valid_from", START)
    fields.setdefault("valid_until", END)
    fields.setdefault("name", f"coupon {code}")
    for name in ("min_spend", "max_discount"):
        if fields.get(name) is not None:
            fields[name] = D(fields[name])
    return CouponRule(code=code, kind=kind, value=D(value), **fields)


def price(lines, *, promotions=(), coupons=(), flash_used=None, **context_fields) -> Quote:
    return quote_compute_from_rules(lines=list(lines), context=context(**context_fields),
                                    promotions=list(promotions), coupons=list(coupons), flash_used=flash_used)


def assert_consistent(quote: Quote) -> None:
    """The invariants every quote keeps."""
    assert sum((q.discount for q in quote.lines), Decimal("0")) == quote.discount_total
    assert sum((d.amount for d in quote.discounts), Decimal("0")) == quote.discount_total
    assert quote.subtotal - quote.discount_total == quote.total_goods
    for quoted in quote.lines:
        assert quoted.subtotal == quoted.unit_price * quoted.quantity
        assert quoted.total == quoted.subtotal - quoted.discount
        assert Decimal("0") <= quoted.discount <= quoted.subtotal
        assert quoted.discount == quoted.discount.quantize(Decimal("0.01"))
    assert sum((d.amount for d in quote.fee_discounts), Decimal("0")) == quote.delivery_fee_discount
    assert quote.delivery_fee >= 0
