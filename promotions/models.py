"""The promotion center: promotions, coupon templates, issued coupons, flash-sale limits.

Vocabulary and predicates only. Pricing lives in ``promotions.engine`` (pure),
state changes of coupons and flash-sale counters in ``promotions.services``
(conditional UPDATEs). The stacking rules are documented in docs/promotions.md.

Order types are named by their string value ("delivery", "pickup", "dine_in",
"voucher"): orders sits above promotions and is never imported here.
"""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Brand, Customer, Store
from catalog.models import Category, Sku

MONEY = {"max_digits": 10, "decimal_places": 2}

ORDER_TYPE_CHOICES = [
    ("delivery", _("Delivery")),
    ("pickup", _("Pickup")),
    ("dine_in", _("Dine-in")),
    ("voucher", _("E-voucher")),
]
ORDER_TYPE_VALUES = frozenset(value for value, _label in ORDER_TYPE_CHOICES)


def validate_order_types(value) -> None:
    if not isinstance(value, list) or any(item not in ORDER_TYPE_VALUES for item in value):
        raise ValidationError(
            _("Order types must be a list of: %(choices)s."), params={"choices": ", ".join(sorted(ORDER_TYPE_VALUES))}
        )


def validate_tiers(value) -> None:
    """``[{"threshold": "50.00", "reduction": "10.00"}, ...]``: positive amounts, reduction <= threshold."""
    if not isinstance(value, list):
        raise ValidationError(_("Tiers must be a list."))
    for tier in value:
        try:
            threshold = Decimal(str(tier["threshold"]))
            reduction = Decimal(str(tier["reduction"]))
        except (TypeError, KeyError, InvalidOperation):
            raise ValidationError(_('Each tier needs a "threshold" and a "reduction" amount.')) from None
        if threshold.as_tuple().exponent < -2 or reduction.as_tuple().exponent < -2:
            raise ValidationError(_("Tier amounts have at most two decimal places."))
        if reduction <= 0 or threshold < reduction:
            raise ValidationError(_("Each tier needs 0 < reduction <= threshold."))


def applies_to_order_type(order_types: list[str], order_type: str) -> bool:
    """An empty list means every order type."""
    return not order_types or order_type in order_types


class PromotionKind(models.TextChoices):
    FULL_REDUCTION = "full_reduction", _("Full reduction (满减)")
    ITEM_DISCOUNT = "item_discount", _("Item discount")
    FLASH_SALE = "flash_sale", _("Flash sale")
    DELIVERY_FEE_WAIVER = "delivery_fee_waiver", _("Delivery fee waiver")


ITEM_LEVEL_KINDS = frozenset({PromotionKind.ITEM_DISCOUNT, PromotionKind.FLASH_SALE})


class Promotion(models.Model):
    """One promotion of a brand, for all its stores or the listed ones.

    Which fields matter depends on ``kind``:
    - full_reduction: ``tiers`` (best tier reached applies); targets optional
      (empty = the whole order);
    - item_discount: targets (SKUs and/or categories) and either
      ``discount_rate`` (0.80 = pay 80%) or ``fixed_price``;
    - flash_sale: target SKUs, ``flash_price``, optional ``purchase_limit`` per
      customer, ``force_deduct_on_order``;
    - delivery_fee_waiver: ``min_spend`` (goods after discounts), optional
      ``max_waiver`` (empty = the whole fee).
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="promotions", verbose_name=_("brand"))
    all_stores = models.BooleanField(_("all stores"), default=True,
                                     help_text=_("Off: only the stores listed below."))
    stores = models.ManyToManyField(Store, blank=True, related_name="promotions", verbose_name=_("stores"))
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=24, choices=PromotionKind.choices)

    tiers = models.JSONField(
        _("tiers"), default=list, blank=True, validators=[validate_tiers],
        help_text=_('Full reduction: [{"threshold": "50.00", "reduction": "10.00"}, ...]; '
                    "the best tier reached applies."),
    )
    target_skus = models.ManyToManyField(Sku, blank=True, related_name="promotions", verbose_name=_("target SKUs"))
    target_categories = models.ManyToManyField(
        Category, blank=True, related_name="promotions", verbose_name=_("target categories")
    )
    discount_rate = models.DecimalField(
        _("discount rate"), max_digits=4, decimal_places=3, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.000")), MaxValueValidator(Decimal("1.000"))],
        help_text=_("Item discount: share of the price paid, e.g. 0.80 = pay 80%."),
    )
    fixed_price = models.DecimalField(
        _("fixed price"), **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0.00"))],
        help_text=_("Item discount: the unit price charged instead of the list price."),
    )
    flash_price = models.DecimalField(
        _("flash-sale price"), **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0.00"))]
    )
    purchase_limit = models.PositiveIntegerField(
        _("purchase limit per customer"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Flash sale: units one customer may buy at the flash price. Empty: no limit."),
    )
    force_deduct_on_order = models.BooleanField(
        _("deduct stock on order"), default=True,
        help_text=_("Flash sale: stock is deducted when the order is placed (下单减库存), whatever the SKU says."),
    )
    min_spend = models.DecimalField(
        _("minimum spend"), **MONEY, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0.00"))],
        help_text=_("Delivery fee waiver: goods amount after discounts needed."),
    )
    max_waiver = models.DecimalField(
        _("maximum waiver"), **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Delivery fee waiver: most of the fee waived. Empty: the whole fee."),
    )
    order_types = models.JSONField(
        _("order types"), default=list, blank=True, validators=[validate_order_types],
        help_text=_('e.g. ["delivery", "pickup"]; empty means every order type.'),
    )
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    is_active = models.BooleanField(_("active"), default=True)
    priority = models.IntegerField(_("priority"), default=0, help_text=_("Higher applies first."))
    exclusive_group = models.CharField(
        _("exclusive group"), max_length=40, blank=True,
        help_text=_("Promotions sharing a non-empty group never combine: only the best one for the customer applies."),
    )
    stackable_with_coupons = models.BooleanField(_("stacks with coupons"), default=True)
    member_stackable = models.BooleanField(_("stacks with member rights"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        ordering = ["brand_id", "-priority", "id"]
        indexes = [
            models.Index(fields=["brand", "is_active", "starts_at", "ends_at"], name="promo_brand_active_window"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(starts_at__lt=models.F("ends_at")), name="promo_window_ordered"),
            models.CheckConstraint(
                condition=models.Q(discount_rate__isnull=True)
                | models.Q(discount_rate__gte=Decimal("0"), discount_rate__lte=Decimal("1")),
                name="promo_discount_rate_0_to_1",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="item_discount")
                | models.Q(discount_rate__isnull=False, fixed_price__isnull=True)
                | models.Q(discount_rate__isnull=True, fixed_price__isnull=False),
                name="promo_item_discount_rate_xor_price",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="flash_sale") | models.Q(flash_price__isnull=False),
                name="promo_flash_sale_has_price",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.starts_at and self.ends_at and self.starts_at >= self.ends_at:
            errors["ends_at"] = _("The end must be after the start.")
        if self.kind == PromotionKind.FULL_REDUCTION and not self.tiers:
            errors["tiers"] = _("A full reduction needs at least one tier.")
        if self.kind == PromotionKind.ITEM_DISCOUNT and (self.discount_rate is None) == (self.fixed_price is None):
            errors["discount_rate"] = _("An item discount needs either a discount rate or a fixed price.")
        if self.kind == PromotionKind.FLASH_SALE and self.flash_price is None:
            errors["flash_price"] = _("A flash sale needs a flash-sale price.")
        if errors:
            raise ValidationError(errors)

    def is_live(self, *, now) -> bool:
        return self.is_active and self.starts_at <= now < self.ends_at


class CouponKind(models.TextChoices):
    AMOUNT_OFF = "amount_off", _("Amount off")
    PERCENT_OFF = "percent_off", _("Percent off")


class CouponTemplate(models.Model):
    """What a coupon is worth and when it may be used; coupons are issued from it."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="coupon_templates",
                              verbose_name=_("brand"))
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=12, choices=CouponKind.choices)
    value = models.DecimalField(
        _("value"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Amount off: yuan. Percent off: percentage taken off, e.g. 15 = 15% off."),
    )
    max_discount = models.DecimalField(
        _("maximum discount"), **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Percent off: the most one coupon takes off. Empty: no cap."),
    )
    min_spend = models.DecimalField(
        _("minimum spend"), **MONEY, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0.00"))],
        help_text=_("Checked against the goods amount after promotions."),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(
        _("valid days after issue"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Set this or the fixed validity window."),
    )
    order_types = models.JSONField(
        _("order types"), default=list, blank=True, validators=[validate_order_types],
        help_text=_("Empty means every order type."),
    )
    stackable_with_promotions = models.BooleanField(_("stacks with promotions"), default=True)
    stackable_with_coupons = models.BooleanField(
        _("stacks with other coupons"), default=False,
        help_text=_("Off: the only coupon of its order (the usual case)."),
    )
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Off: no new coupons are issued."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        ordering = ["brand_id", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="percent_off") | models.Q(value__lte=Decimal("100")),
                name="coupon_template_percent_at_most_100",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_days__isnull=False)
                | models.Q(valid_from__isnull=False, valid_until__isnull=False, valid_from__lt=models.F("valid_until")),
                name="coupon_template_has_validity",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        window = self.valid_from is not None and self.valid_until is not None
        if self.valid_days is None and not window:
            raise ValidationError(_("Set either the validity window or the number of valid days after issue."))
        if window and self.valid_from >= self.valid_until:
            raise ValidationError({"valid_until": _("The end must be after the start.")})
        if self.kind == CouponKind.PERCENT_OFF and self.value is not None and self.value > 100:
            raise ValidationError({"value": _("A percentage is at most 100.")})


class CouponStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    RESERVED = "reserved", _("Reserved by an unpaid order")
    USED = "used", _("Used")
    EXPIRED = "expired", _("Expired")


class Coupon(models.Model):
    """One coupon issued to one customer; single use.

    ``status`` changes only through promotions.services, each change a
    conditional UPDATE (available -> reserved -> used, reserved -> available).
    """

    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons",
                                 verbose_name=_("template"))
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="coupons",
                                 verbose_name=_("customer"))
    code = models.CharField(_("code"), max_length=20, unique=True)
    status = models.CharField(_("status"), max_length=10, choices=CouponStatus.choices,
                              default=CouponStatus.AVAILABLE)
    order_ref = models.CharField(_("order reference"), max_length=64, blank=True, db_index=True)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    issued_at = models.DateTimeField(_("issued at"))
    reserved_at = models.DateTimeField(_("reserved at"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    tenant_brand_lookup = "template__brand_id"

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["customer", "status"], name="coupon_customer_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(valid_from__lt=models.F("valid_until")),
                                   name="coupon_window_ordered"),
            models.CheckConstraint(
                condition=~models.Q(status__in=["reserved", "used"]) | ~models.Q(order_ref=""),
                name="coupon_reserved_or_used_has_order_ref",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class FlashSaleUsage(models.Model):
    """How many flash-price units one customer holds in one flash sale.

    ``used`` moves only by conditional UPDATEs (``used + q <= limit``); the
    CHECK makes overshooting impossible whatever the code does.
    """

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="flash_usages",
                                  verbose_name=_("promotion"))
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="flash_usages",
                                 verbose_name=_("customer"))
    used = models.PositiveIntegerField(_("units held"), default=0)
    limit = models.PositiveIntegerField(_("limit"), help_text=_("The promotion's limit when last reserved."))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "promotion__brand_id"

    class Meta:
        verbose_name = _("flash-sale usage")
        verbose_name_plural = _("flash-sale usages")
        constraints = [
            models.UniqueConstraint(fields=["promotion", "customer"], name="flash_usage_unique_promotion_customer"),
            models.CheckConstraint(condition=models.Q(used__lte=models.F("limit")), name="flash_usage_within_limit"),
        ]

    def __str__(self) -> str:
        return f"{self.promotion} · {self.customer_id}: {self.used}/{self.limit}"


class FlashSaleReservation(models.Model):
    """Units of one flash sale held by one order (``order_ref``), released on cancel/expiry."""

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="flash_reservations",
                                  verbose_name=_("promotion"))
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="flash_reservations",
                                 verbose_name=_("customer"))
    order_ref = models.CharField(_("order reference"), max_length=64, db_index=True)
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    released = models.BooleanField(_("released"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    tenant_brand_lookup = "promotion__brand_id"

    class Meta:
        verbose_name = _("flash-sale reservation")
        verbose_name_plural = _("flash-sale reservations")
        constraints = [
            models.UniqueConstraint(fields=["promotion", "order_ref"], name="flash_reservation_unique_per_order"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="flash_reservation_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.promotion} · {self.order_ref} × {self.quantity}"
