"""Immutable snapshots of promotions and coupons, as the pricing engine sees them.

The engine computes on these, never on model instances, so it can be run (and
property-tested) without a database; ``from_model`` builds them from rows
loaded by promotions.selectors.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from promotions.models import Coupon, Promotion, applies_to_order_type


@dataclass(frozen=True)
class PromotionRule:
    id: int
    name: str
    kind: str
    starts_at: datetime
    ends_at: datetime
    priority: int = 0
    exclusive_group: str = ""
    order_types: tuple[str, ...] = ()
    sku_ids: frozenset[int] = frozenset()
    category_ids: frozenset[int] = frozenset()
    tiers: tuple[tuple[Decimal, Decimal], ...] = ()  # (threshold, reduction)
    discount_rate: Decimal | None = None
    fixed_price: Decimal | None = None
    flash_price: Decimal | None = None
    purchase_limit: int | None = None
    force_deduct_on_order: bool = True
    min_spend: Decimal = Decimal("0.00")
    max_waiver: Decimal | None = None
    stackable_with_coupons: bool = True
    member_stackable: bool = True
    is_active: bool = True

    @classmethod
    def from_model(cls, promotion: Promotion) -> "PromotionRule":
        """Expects ``target_skus`` and ``target_categories`` prefetched (see selectors)."""
        return cls(
            id=promotion.pk,
            name=promotion.name,
            kind=promotion.kind,
            starts_at=promotion.starts_at,
            ends_at=promotion.ends_at,
            priority=promotion.priority,
            exclusive_group=promotion.exclusive_group,
            order_types=tuple(promotion.order_types or ()),
            sku_ids=frozenset(sku.pk for sku in promotion.target_skus.all()),
            category_ids=frozenset(category.pk for category in promotion.target_categories.all()),
            tiers=tuple((Decimal(str(tier["threshold"])), Decimal(str(tier["reduction"])))
                        for tier in promotion.tiers or ()),
            discount_rate=promotion.discount_rate,
            fixed_price=promotion.fixed_price,
            flash_price=promotion.flash_price,
            purchase_limit=promotion.purchase_limit,
            force_deduct_on_order=promotion.force_deduct_on_order,
            min_spend=promotion.min_spend,
            max_waiver=promotion.max_waiver,
            stackable_with_coupons=promotion.stackable_with_coupons,
            member_stackable=promotion.member_stackable,
            is_active=promotion.is_active,
        )

    @property
    def reference(self) -> str:
        return f"promotion:{self.id}"

    @property
    def has_targets(self) -> bool:
        return bool(self.sku_ids or self.category_ids)

    def targets(self, *, sku_id: int, category_id: int) -> bool:
        return sku_id in self.sku_ids or category_id in self.category_ids

    def applies(self, *, order_type: str, now: datetime) -> bool:
        return (self.is_active and self.starts_at <= now < self.ends_at
                and applies_to_order_type(list(self.order_types), order_type))


@dataclass(frozen=True)
class CouponRule:
    id: int
    code: str
    brand_id: int
    customer_id: int
    status: str
    valid_from: datetime
    valid_until: datetime
    name: str
    kind: str  # CouponKind value
    value: Decimal
    max_discount: Decimal | None = None
    min_spend: Decimal = Decimal("0.00")
    order_types: tuple[str, ...] = ()
    stackable_with_promotions: bool = True
    stackable_with_coupons: bool = False

    @classmethod
    def from_model(cls, coupon: Coupon) -> "CouponRule":
        """Expects ``template`` loaded with the coupon (see selectors)."""
        template = coupon.template
        return cls(
            id=coupon.pk,
            code=coupon.code,
            brand_id=template.brand_id,
            customer_id=coupon.customer_id,
            status=coupon.status,
            valid_from=coupon.valid_from,
            valid_until=coupon.valid_until,
            name=template.name,
            kind=template.kind,
            value=template.value,
            max_discount=template.max_discount,
            min_spend=template.min_spend,
            order_types=tuple(template.order_types or ()),
            stackable_with_promotions=template.stackable_with_promotions,
            stackable_with_coupons=template.stackable_with_coupons,
        )

    @property
    def reference(self) -> str:
        return f"coupon:{self.code}"


def normalize_coupon_code(code: str) -> str:
    """What the customer typed, as stored: no surrounding blanks, upper case."""
    return code.strip().upper()
