"""The pricing engine: one cart in, one fully apportioned quote out. No writes.

Stacking order (docs/promotions.md has the full rules and worked examples):

1. item level: flash-sale price or item discount; a line gets at most one, the
   best for the customer (ties: higher priority, then older promotion);
2. order level: full reductions, highest priority first, each on what is left
   after the previous stages (and previous full reductions);
3. coupons: min spend checked against the goods amount after promotions; one
   coupon per order unless every template involved allows stacking;
4. member price rate, last, on what is left (skipped when an applied promotion
   does not stack with member rights);
5. delivery fee waiver, separately from the goods (the best single waiver:
   member free delivery or a waiver promotion).

Promotions sharing a non-empty ``exclusive_group`` never combine: every choice
of one promotion per group is priced and the cheapest total for the customer
wins. Every amount is rounded to the cent half up; every order-level discount
is apportioned to the lines by their remaining amounts (promotions.apportion).
"""

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from promotions import selectors
from promotions.apportion import CENT, apportion, money
from promotions.models import CouponKind, CouponStatus, PromotionKind, applies_to_order_type
from promotions.rules import CouponRule, PromotionRule, normalize_coupon_code

ZERO = Decimal("0.00")
ONE = Decimal("1")
# Django builds ``Choices.values`` on each access: listed once (in declaration order, as the engine applies them).
PROMOTION_KINDS = tuple(PromotionKind.values)
# Beyond this many combinations of exclusive-group choices, each group keeps
# its highest-priority promotion instead of pricing every combination.
MAX_GROUP_COMBINATIONS = 64


@dataclass(frozen=True)
class CartLine:
    sku_id: int
    sku_code: str
    name: str
    category_id: int
    unit_price: Decimal
    quantity: int


@dataclass(frozen=True)
class PricingContext:
    brand_id: int
    store_id: int
    customer_id: int | None
    order_type: str  # delivery | pickup | dine_in | voucher
    member_price_rate: Decimal  # 1.000 when no tier
    member_free_delivery: bool
    delivery_fee: Decimal
    coupon_codes: tuple[str, ...]
    now: datetime


@dataclass
class AppliedDiscount:
    kind: str  # full_reduction | item_discount | flash_sale | coupon | delivery_fee_waiver | member
    name: str
    reference: str  # "promotion:12", "coupon:ABC123", "member:rate", "member:free_delivery"
    amount: Decimal
    explanation: str
    promotion_id: int | None = None
    coupon_id: int | None = None


@dataclass
class QuotedLine:
    sku_id: int
    quantity: int
    unit_price: Decimal  # the list price
    subtotal: Decimal
    discount: Decimal  # every goods discount apportioned to this line
    total: Decimal
    flash_sale_promotion_id: int | None


@dataclass
class Quote:
    lines: list[QuotedLine]
    discounts: list[AppliedDiscount]  # goods discounts: sum == sum(line.discount) == discount_total
    subtotal: Decimal
    discount_total: Decimal
    delivery_fee: Decimal  # after the waiver
    delivery_fee_discount: Decimal
    total_goods: Decimal
    rejected_coupons: list[dict]  # {"code", "reason_code", "message"}
    flash_sale_lines: dict[int, int]  # sku id -> flash sale whose stock is deducted on order
    # The waiver behind delivery_fee_discount (at most one entry; sum == delivery_fee_discount).
    fee_discounts: list[AppliedDiscount] = field(default_factory=list)
    # Things the customer should know that are not errors, e.g. a flash price not
    # given because the purchase limit is reached: {"code", "message", ...}.
    notices: list[dict] = field(default_factory=list)

    @property
    def flash_sale_units(self) -> dict[int, int]:
        """promotion id -> flash-price units of this order, summed over its lines.

        What flash_sale_limit_reserve needs: one call per promotion with this
        quantity (every flash-priced line, whatever its stock deduction mode).
        """
        units: dict[int, int] = {}
        for line in self.lines:
            if line.flash_sale_promotion_id is not None:
                units[line.flash_sale_promotion_id] = units.get(line.flash_sale_promotion_id, 0) + line.quantity
        return units

    @property
    def total(self) -> Decimal:
        """Goods after discounts plus the delivery fee after the waiver (packaging is the caller's)."""
        return self.total_goods + self.delivery_fee


def quote_compute(*, lines: list[CartLine], context: PricingContext) -> Quote:
    """Price a cart with the promotions live for the store and the customer's coupons.

    Reads only (promotions.selectors); never writes, never locks. The order
    placement must still reserve coupons and flash-sale limits through
    promotions.services, which re-check under concurrency.
    """
    promotions = [PromotionRule.from_model(promotion) for promotion in selectors.promotions_active_for_store(
        brand_id=context.brand_id, store_id=context.store_id, now=context.now)]
    coupons = [CouponRule.from_model(coupon) for coupon in selectors.coupon_list_by_codes(
        brand_id=context.brand_id, customer_id=context.customer_id, codes=context.coupon_codes)]
    limited_flash_ids = [rule.id for rule in promotions
                         if rule.kind == PromotionKind.FLASH_SALE and rule.purchase_limit is not None]
    flash_used = {}
    if context.customer_id is not None and limited_flash_ids:
        flash_used = selectors.flash_sale_used_by_customer(
            customer_id=context.customer_id, promotion_ids=limited_flash_ids)
    return quote_compute_from_rules(
        lines=lines, context=context, promotions=promotions, coupons=coupons, flash_used=flash_used)


def quote_compute_from_rules(
    *, lines: list[CartLine], context: PricingContext, promotions: list[PromotionRule],
    coupons: list[CouponRule], flash_used: dict[int, int] | None = None,
) -> Quote:
    """quote_compute on explicit snapshots: pure, deterministic, no database."""
    _check_input(lines=lines, context=context)
    flash_used = flash_used or {}
    applicable = sorted(
        (rule for rule in promotions if rule.applies(order_type=context.order_type, now=context.now)),
        key=lambda rule: (-rule.priority, rule.id),
    )
    best: tuple | None = None
    for chosen in _exclusive_group_choices(applicable):
        quote = _Pricing(lines=lines, context=context, coupons=coupons, flash_used=flash_used).run(chosen)
        # Cheapest for the customer; then higher priorities; then older promotions.
        rank = (quote.total, -sum(rule.priority for rule in chosen), tuple(sorted(rule.id for rule in chosen)))
        if best is None or rank < best[0]:
            best = (rank, quote)
    return best[1]


def _check_input(*, lines: list[CartLine], context: PricingContext) -> None:
    for line in lines:
        if line.quantity < 1:
            raise ValueError(f"quantity of {line.sku_code} must be at least 1")
        if line.unit_price < 0 or line.unit_price != line.unit_price.quantize(CENT):
            raise ValueError(f"unit price of {line.sku_code} must be non-negative whole cents")
    if context.delivery_fee < 0 or context.delivery_fee != context.delivery_fee.quantize(CENT):
        raise ValueError("delivery fee must be non-negative whole cents")
    if not ZERO < context.member_price_rate <= ONE:
        raise ValueError("member price rate must be in (0, 1]")


def _exclusive_group_choices(rules: list[PromotionRule]) -> list[list[PromotionRule]]:
    """Every set of promotions to price: the ungrouped ones plus one of each exclusive group."""
    free = [rule for rule in rules if not rule.exclusive_group]
    groups: dict[str, list[PromotionRule]] = {}
    for rule in rules:
        if rule.exclusive_group:
            groups.setdefault(rule.exclusive_group, []).append(rule)
    members = [groups[name] for name in sorted(groups)]
    count = 1
    for group in members:
        count *= len(group)
    if count > MAX_GROUP_COMBINATIONS:
        # Rules are sorted by priority: the first of each group is its top priority.
        return [_by_priority(free + [group[0] for group in members])]
    return [_by_priority(free + list(choice)) for choice in itertools.product(*members)]


def _by_priority(rules: list[PromotionRule]) -> list[PromotionRule]:
    return sorted(rules, key=lambda rule: (-rule.priority, rule.id))


class _Pricing:
    """One pass of the stacking pipeline over one set of promotions."""

    def __init__(self, *, lines, context, coupons, flash_used) -> None:
        self.lines: list[CartLine] = lines
        self.context: PricingContext = context
        self.coupons = {coupon.code: coupon for coupon in coupons}
        self.flash_used: dict[int, int] = flash_used
        self.subtotals = [money(line.unit_price * line.quantity) for line in lines]
        self.line_discounts = [ZERO for _ in lines]
        self.flash_promotions: dict[int, PromotionRule] = {}  # line index -> flash sale applied
        self.discounts: list[AppliedDiscount] = []
        self.applied: list[PromotionRule] = []
        self.rejected: list[dict] = []
        self.notices: list[dict] = []

    def remaining(self, index: int) -> Decimal:
        return self.subtotals[index] - self.line_discounts[index]

    def remaining_total(self, indexes=None) -> Decimal:
        indexes = range(len(self.lines)) if indexes is None else indexes
        return sum((self.remaining(index) for index in indexes), ZERO)

    def add_apportioned(self, *, amount: Decimal, indexes: list[int]) -> None:
        parts = apportion(amount=amount, weights=[self.remaining(index) for index in indexes])
        for index, part in zip(indexes, parts, strict=True):
            self.line_discounts[index] += part

    def run(self, promotions: list[PromotionRule]) -> Quote:
        by_kind = {kind: [rule for rule in promotions if rule.kind == kind] for kind in PROMOTION_KINDS}
        self.item_level(by_kind[PromotionKind.FLASH_SALE] + by_kind[PromotionKind.ITEM_DISCOUNT])
        self.full_reductions(by_kind[PromotionKind.FULL_REDUCTION])
        coupon_applied = self.apply_coupons()
        member_applied = self.member_rate()
        fee_discounts = self.delivery_fee_waiver(
            by_kind[PromotionKind.DELIVERY_FEE_WAIVER], coupon_applied=coupon_applied, member_applied=member_applied)
        return self.quote(fee_discounts)

    # 1. item level ----------------------------------------------------------
    def item_level(self, rules: list[PromotionRule]) -> None:
        flash_left = {rule.id: rule.purchase_limit - self.flash_used.get(rule.id, 0)
                      for rule in rules if rule.kind == PromotionKind.FLASH_SALE and rule.purchase_limit is not None}
        per_rule: dict[int, list[str]] = {}
        amounts: dict[int, Decimal] = {}
        for index, line in enumerate(self.lines):
            best: tuple[Decimal, PromotionRule] | None = None
            for rule in rules:
                if not rule.targets(sku_id=line.sku_id, category_id=line.category_id):
                    continue
                discount = self.item_discount(rule, index)
                if discount <= 0:
                    continue
                if rule.id in flash_left and line.quantity > flash_left[rule.id]:
                    self.notices.append({
                        "code": "flash_sale_limit_reached", "sku_id": line.sku_id, "promotion_id": rule.id,
                        "limit": rule.purchase_limit, "already": self.flash_used.get(rule.id, 0),
                        "message": _("%(name)s: at most %(limit)s per customer at the flash price; "
                                     "%(sku)s is charged at the usual price.")
                        % {"name": rule.name, "limit": rule.purchase_limit, "sku": line.name},
                    })
                    continue
                # Rules come by priority, so on equal discounts the first one stays.
                if best is None or discount > best[0]:
                    best = (discount, rule)
            if best is None:
                continue
            discount, rule = best
            self.line_discounts[index] += discount
            if rule.kind == PromotionKind.FLASH_SALE:
                self.flash_promotions[index] = rule
                if rule.id in flash_left:
                    flash_left[rule.id] -= line.quantity
            amounts[rule.id] = amounts.get(rule.id, ZERO) + discount
            per_rule.setdefault(rule.id, []).append(self.item_explanation(rule, line, discount))
        for rule in rules:
            if rule.id in amounts:
                self.applied.append(rule)
                self.discounts.append(AppliedDiscount(
                    kind=rule.kind, name=rule.name, reference=rule.reference, amount=amounts[rule.id],
                    explanation="; ".join(per_rule[rule.id]), promotion_id=rule.id))

    def item_discount(self, rule: PromotionRule, index: int) -> Decimal:
        line, subtotal = self.lines[index], self.subtotals[index]
        if rule.kind == PromotionKind.FLASH_SALE:
            price = rule.flash_price
        elif rule.discount_rate is not None:
            return subtotal - money(subtotal * rule.discount_rate)
        else:
            price = rule.fixed_price
        if price is None or price >= line.unit_price:
            return ZERO
        return money((line.unit_price - price) * line.quantity)

    def item_explanation(self, rule: PromotionRule, line: CartLine, discount: Decimal) -> str:
        if rule.kind == PromotionKind.ITEM_DISCOUNT and rule.discount_rate is not None:
            return _("%(name)s: %(sku)s × %(qty)s pays %(rate)s%% of %(subtotal)s, %(discount)s off") % {
                "name": rule.name, "sku": line.name, "qty": line.quantity,
                "rate": _percent(rule.discount_rate), "subtotal": money(line.unit_price * line.quantity),
                "discount": discount}
        price = rule.flash_price if rule.kind == PromotionKind.FLASH_SALE else rule.fixed_price
        return _("%(name)s: %(sku)s × %(qty)s at %(price)s instead of %(list_price)s, %(discount)s off") % {
            "name": rule.name, "sku": line.name, "qty": line.quantity, "price": price,
            "list_price": line.unit_price, "discount": discount}

    # 2. order level: full reductions -----------------------------------------
    def full_reductions(self, rules: list[PromotionRule]) -> None:
        for rule in rules:
            indexes = [index for index, line in enumerate(self.lines)
                       if not rule.has_targets or rule.targets(sku_id=line.sku_id, category_id=line.category_id)]
            base = self.remaining_total(indexes)
            reached = [tier for tier in rule.tiers if tier[0] <= base]
            if not reached:
                continue
            threshold, reduction = max(reached, key=lambda tier: (tier[1], -tier[0]))
            amount = min(money(reduction), base)
            if amount <= 0:
                continue
            self.add_apportioned(amount=amount, indexes=indexes)
            self.applied.append(rule)
            self.discounts.append(AppliedDiscount(
                kind=rule.kind, name=rule.name, reference=rule.reference, amount=amount, promotion_id=rule.id,
                explanation=_("%(name)s: amount %(base)s reaches %(threshold)s, %(amount)s off") % {
                    "name": rule.name, "base": base, "threshold": money(threshold), "amount": amount}))

    # 3. coupons ----------------------------------------------------------------
    def apply_coupons(self) -> bool:
        after_promotions = self.remaining_total()
        used: list[CouponRule] = []
        seen: set[str] = set()
        for raw_code in self.context.coupon_codes:
            code = normalize_coupon_code(raw_code)
            if not code or code in seen:
                continue
            seen.add(code)
            coupon = self.coupons.get(code)
            reason = self.coupon_rejection(coupon, after_promotions=after_promotions, used=used)
            amount = ZERO
            if reason is None:
                amount = self.coupon_amount(coupon)
                if amount <= 0:
                    reason = "coupon_not_applicable", _("There is nothing left for this coupon to take off.")
            if reason is not None:
                self.rejected.append({"code": code, "reason_code": reason[0], "message": str(reason[1])})
                continue
            self.add_apportioned(amount=amount, indexes=list(range(len(self.lines))))
            used.append(coupon)
            self.discounts.append(AppliedDiscount(
                kind="coupon", name=coupon.name, reference=coupon.reference, amount=amount, coupon_id=coupon.id,
                explanation=self.coupon_explanation(coupon, after_promotions=after_promotions, amount=amount)))
        return bool(used)

    def coupon_rejection(self, coupon: CouponRule | None, *, after_promotions: Decimal,
                         used: list[CouponRule]) -> tuple[str, str] | None:
        context = self.context
        if coupon is None or coupon.customer_id != context.customer_id or coupon.brand_id != context.brand_id:
            return "coupon_not_found", _("No such coupon in your account.")
        if coupon.status == CouponStatus.USED:
            return "coupon_used", _("This coupon has already been used.")
        if coupon.status == CouponStatus.RESERVED:
            return "coupon_reserved", _("This coupon is held by another order awaiting payment.")
        if coupon.status == CouponStatus.EXPIRED or context.now >= coupon.valid_until:
            return "coupon_expired", _("This coupon has expired.")
        if context.now < coupon.valid_from:
            return "coupon_not_yet_valid", _("This coupon is not valid yet.")
        if not applies_to_order_type(list(coupon.order_types), context.order_type):
            return "coupon_not_applicable", _("This coupon cannot be used for this type of order.")
        if after_promotions < coupon.min_spend:
            return "coupon_min_spend_not_met", _("Spend %(min_spend)s to use this coupon (now %(amount)s).") % {
                "min_spend": coupon.min_spend, "amount": after_promotions}
        if self.applied and not coupon.stackable_with_promotions:
            return "coupon_not_stackable", _("This coupon cannot be combined with the promotions of this order.")
        blocking = [rule.name for rule in self.applied if not rule.stackable_with_coupons]
        if blocking:
            return "coupon_not_stackable", _("%(promotion)s cannot be combined with coupons.") % {
                "promotion": blocking[0]}
        if used and not (coupon.stackable_with_coupons and all(other.stackable_with_coupons for other in used)):
            return "coupon_not_stackable", _("Only one coupon can be used on this order.")
        return None

    def coupon_amount(self, coupon: CouponRule) -> Decimal:
        left = self.remaining_total()
        if coupon.kind == CouponKind.PERCENT_OFF:
            amount = money(left * coupon.value / 100)
            if coupon.max_discount is not None:
                amount = min(amount, coupon.max_discount)
        else:
            amount = coupon.value
        return min(money(amount), left)

    def coupon_explanation(self, coupon: CouponRule, *, after_promotions: Decimal, amount: Decimal) -> str:
        if coupon.kind == CouponKind.PERCENT_OFF:
            return _("%(name)s: %(value)s%% off, %(amount)s off") % {
                "name": coupon.name, "value": coupon.value.normalize(), "amount": amount}
        return _("%(name)s: %(amount)s off (amount %(base)s, minimum spend %(min_spend)s)") % {
            "name": coupon.name, "amount": amount, "base": after_promotions, "min_spend": coupon.min_spend}

    # 4. member rights --------------------------------------------------------
    def member_rate(self) -> bool:
        rate = self.context.member_price_rate
        if rate >= ONE or any(not rule.member_stackable for rule in self.applied):
            return False
        base = self.remaining_total()
        amount = base - money(base * rate)
        if amount <= 0:
            return False
        self.add_apportioned(amount=amount, indexes=list(range(len(self.lines))))
        self.discounts.append(AppliedDiscount(
            kind="member", name=_("Member price"), reference="member:rate", amount=amount,
            explanation=_("Member price: pays %(rate)s%% of %(base)s, %(amount)s off") % {
                "rate": _percent(rate), "base": base, "amount": amount}))
        return True

    # 5. delivery fee ---------------------------------------------------------
    def delivery_fee_waiver(self, rules: list[PromotionRule], *, coupon_applied: bool,
                            member_applied: bool) -> list[AppliedDiscount]:
        fee = self.context.delivery_fee
        if fee <= 0:
            return []
        goods = self.remaining_total()
        candidates: list[AppliedDiscount] = []
        if self.context.member_free_delivery:
            candidates.append(AppliedDiscount(
                kind="member", name=_("Member free delivery"), reference="member:free_delivery", amount=fee,
                explanation=_("Member free delivery: delivery fee %(fee)s waived") % {"fee": fee}))
        for rule in rules:
            if goods < rule.min_spend or (coupon_applied and not rule.stackable_with_coupons) \
                    or (member_applied and not rule.member_stackable):
                continue
            amount = fee if rule.max_waiver is None else min(fee, rule.max_waiver)
            candidates.append(AppliedDiscount(
                kind=PromotionKind.DELIVERY_FEE_WAIVER.value, name=rule.name, reference=rule.reference,
                amount=amount, promotion_id=rule.id,
                explanation=_("%(name)s: goods %(goods)s reach %(min_spend)s, %(amount)s of the %(fee)s "
                              "delivery fee waived") % {
                    "name": rule.name, "goods": goods, "min_spend": rule.min_spend, "amount": amount, "fee": fee}))
        if not candidates:
            return []
        # Largest waiver; on a tie the first candidate (member rights, then by priority).
        best = max(candidates, key=lambda candidate: candidate.amount)
        if best.promotion_id is not None:
            self.applied.append(next(rule for rule in rules if rule.id == best.promotion_id))
        return [best]

    def quote(self, fee_discounts: list[AppliedDiscount]) -> Quote:
        quoted = [
            QuotedLine(
                sku_id=line.sku_id, quantity=line.quantity, unit_price=line.unit_price,
                subtotal=self.subtotals[index], discount=self.line_discounts[index], total=self.remaining(index),
                flash_sale_promotion_id=self.flash_promotions[index].id if index in self.flash_promotions else None,
            )
            for index, line in enumerate(self.lines)
        ]
        subtotal = sum(self.subtotals, ZERO)
        discount_total = sum(self.line_discounts, ZERO)
        fee_discount = sum((discount.amount for discount in fee_discounts), ZERO)
        return Quote(
            lines=quoted, discounts=self.discounts, subtotal=subtotal, discount_total=discount_total,
            delivery_fee=self.context.delivery_fee - fee_discount, delivery_fee_discount=fee_discount,
            total_goods=subtotal - discount_total, rejected_coupons=self.rejected,
            flash_sale_lines={self.lines[index].sku_id: rule.id for index, rule in self.flash_promotions.items()
                              if rule.force_deduct_on_order},
            fee_discounts=fee_discounts, notices=self.notices,
        )


def _percent(rate: Decimal) -> str:
    """0.80 -> "80", 0.985 -> "98.5"."""
    return format((rate * 100).normalize(), "f")
