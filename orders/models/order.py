"""The one order model of every channel, its lines, discounts and audit trail.

The status field is protected: it changes only through the transitions of the
order type's machine (orders.models.machines), called by orders.services.
"""

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField

from accounts.models import Brand, Customer, Store, mask_phone
from catalog.models import Sku
from core.actors import ActorKind
from core.fields import DocumentJSONField

MONEY = {"max_digits": 10, "decimal_places": 2}
ZERO = Decimal("0.00")


class OrderType(models.TextChoices):
    DELIVERY = "delivery", _("Delivery")
    PICKUP = "pickup", _("Pickup")
    DINE_IN = "dine_in", _("Dine-in")
    VOUCHER = "voucher", _("E-voucher")


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Pending payment")
    PAID = "paid", _("Paid")
    ACCEPTED = "accepted", _("Accepted")
    READY = "ready", _("Ready")
    DISPATCHED = "dispatched", _("Dispatched")
    DELIVERED = "delivered", _("Delivered")
    PICKED_UP = "picked_up", _("Picked up")
    SERVED = "served", _("Served")
    ISSUED = "issued", _("Issued")
    REDEEMED = "redeemed", _("Redeemed")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


class OrderAction(models.TextChoices):
    """Transition names (the methods of the machines) plus non-transition events."""

    CREATE = "create", _("Create")
    PAY = "pay", _("Pay")
    ACCEPT = "accept", _("Accept")
    REJECT = "reject", _("Reject")
    MARK_READY = "mark_ready", _("Mark ready")
    DISPATCH = "dispatch", _("Dispatch")
    DELIVER = "deliver", _("Deliver")
    PICK_UP = "pick_up", _("Pick up")
    SERVE = "serve", _("Serve")
    ISSUE = "issue", _("Issue vouchers")
    REDEEM = "redeem", _("Redeem")
    COMPLETE = "complete", _("Complete")
    CANCEL = "cancel", _("Cancel")
    REFUND = "refund", _("Refund")
    MODIFY = "modify", _("Modify contact")
    FLAG = "flag", _("Flag for attention")
    PAYMENT_REFUND = "payment_refund", _("Payment refunded automatically")


class OrderFlagKind(models.TextChoices):
    """Why an order was put before a person, or what ended that: the ``reason_code``
    (and ``data["kind"]``) of its ``flag`` events (orders.services.sync.order_flag)."""

    UNKNOWN_SKU = "unknown_sku", _("Unknown SKU")
    STOCK_SHORTFALL = "stock_shortfall", _("Stock shortfall")
    AMOUNT_MISMATCH = "amount_mismatch", _("Amount mismatch")
    PLATFORM_CONFLICT = "platform_conflict", _("Platform status conflict")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    REFUND_AGREED = "refund_agreed", _("Refund agreed")
    REFUND_REJECTED = "refund_rejected", _("Refund rejected")
    REFUND_WITHDRAWN = "refund_withdrawn", _("Refund withdrawn")
    REFUND_ATTENTION = "refund_attention", _("Refund not completed")
    REFUND_SETTLED = "refund_settled", _("Refund settled")
    REFUND_OVERDUE = "refund_overdue", _("Refund request overdue")
    REFUND_DEADLINE_NEAR = "refund_deadline_near", _("Refund request deadline near")
    ACCEPT_TIMEOUT = "accept_timeout", _("Not accepted in time")
    VOUCHERS_AFTER_CANCEL = "vouchers_after_cancel", _("Vouchers issued after cancel")
    VOUCHER_REDEEMED_TWICE = "voucher_redeemed_twice", _("Voucher redeemed twice")
    VOUCHER_REDEEMED_AFTER_VOID = "voucher_redeemed_after_void", _("Voided voucher redeemed")


class OrderReasonCode(models.TextChoices):
    """The reason codes the order center itself writes when it ends an order or
    refunds it (``cancel_reason_code``, the ``reason_code`` of events); a person's or
    a POS's codes (CONTRACTS.md) are taken as given."""

    PAYMENT_TIMEOUT = "payment_timeout", _("Not paid in time")
    OUT_OF_STOCK_AT_PAYMENT = "out_of_stock_at_payment", _("Sold out before the payment arrived")
    CANCELLED_BEFORE_PAYMENT = "order_cancelled_before_payment", _("Paid after the order was cancelled")
    ORDER_CANCELLED = "order_cancelled", _("Order cancelled")
    ORDER_REFUNDED = "order_refunded", _("Order refunded")
    CUSTOMER_CANCELLED = "customer_cancelled", _("Cancelled by the customer")
    PLATFORM_CANCELLED = "platform_cancelled", _("Cancelled on the platform")
    PLATFORM_REFUND = "platform_refund", _("Refunded on the platform")
    STORE_TIMEOUT = "store_timeout", _("Not accepted by the store in time")
    STAFF = "staff", _("By staff")  # a person in the admin gave the reason in words


class OrderRefundState(models.TextChoices):
    """How much of the order went back through after-sales (``refunded_amount``)."""

    NONE = "none", _("Not refunded")
    PARTIAL = "partial", _("Partly refunded")
    FULL = "full", _("Fully refunded")


class Channel(models.TextChoices):
    MEITUAN = "meituan", _("Meituan Waimai")
    ELEME = "eleme", _("Ele.me")
    MINIAPP = "miniapp", _("Mini-program")
    APP = "app", _("App")
    POS = "pos", _("POS")

    @classmethod
    def platforms(cls) -> tuple[str, ...]:
        return (cls.MEITUAN.value, cls.ELEME.value)


class Order(ConcurrentTransitionMixin, models.Model):
    order_no = models.CharField(_("order number"), max_length=24, unique=True)
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="orders", verbose_name=_("brand"))
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="orders", verbose_name=_("store"))
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    channel_order_id = models.CharField(
        _("channel order id"), max_length=64, null=True, blank=True,
        help_text=_("The channel's own order id; ingestion is idempotent on (channel, channel order id)."),
    )
    channel_order_no = models.CharField(
        _("channel order number"), max_length=64, blank=True, help_text=_("What the platform shows the courier.")
    )
    order_type = models.CharField(_("order type"), max_length=20, choices=OrderType.choices)
    status = FSMField(_("status"), choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT, protected=True)

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="orders", verbose_name=_("customer")
    )
    contact_name = models.CharField(_("contact name"), max_length=50, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=30, blank=True)
    phone_last4 = models.CharField(_("phone last 4"), max_length=4, blank=True, db_index=True)
    address = models.JSONField(_("address"), default=dict, blank=True)
    customer_note = models.CharField(_("customer note"), max_length=500, blank=True)

    subtotal = models.DecimalField(_("subtotal"), **MONEY, default=ZERO)
    discount_total = models.DecimalField(_("discount"), **MONEY, default=ZERO)
    merchant_discount = models.DecimalField(_("discount paid by merchant"), **MONEY, default=ZERO)
    platform_discount = models.DecimalField(_("discount paid by platform"), **MONEY, default=ZERO)
    delivery_fee = models.DecimalField(_("delivery fee"), **MONEY, default=ZERO)
    packaging_fee = models.DecimalField(_("packaging fee"), **MONEY, default=ZERO)
    total = models.DecimalField(_("total"), **MONEY, default=ZERO)
    paid_amount = models.DecimalField(_("paid"), **MONEY, default=ZERO)
    # Written by after-sales (orders.services.core.order_refund_commit) when a refund of
    # the order is decided; a full refund also moves the order to ``refunded``.
    refunded_amount = models.DecimalField(_("refunded"), **MONEY, default=ZERO)
    refund_state = models.CharField(_("refund state"), max_length=10, choices=OrderRefundState.choices,
                                    default=OrderRefundState.NONE)
    after_sales_open = models.BooleanField(
        _("after-sales open"), default=False,
        help_text=_("An after-sales request of the order awaits a decision or the goods; the after-sales "
                    "window does not close meanwhile."))

    payment_provider = models.CharField(_("payment provider"), max_length=20, blank=True)
    payment_txn_no = models.CharField(_("payment transaction no."), max_length=64, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    business_date = models.DateField(_("business date"))
    day_seq = models.PositiveIntegerField(_("day sequence no."))
    channel_day_seq = models.PositiveIntegerField(_("platform day sequence no."), null=True, blank=True)
    pickup_code = models.CharField(_("pickup code"), max_length=12, blank=True)
    prep_minutes = models.PositiveIntegerField(_("prep minutes"), null=True, blank=True)

    placed_at = models.DateTimeField(_("placed at"))
    expected_at = models.DateTimeField(_("expected at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("payment expires at"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    ready_at = models.DateTimeField(_("ready at"), null=True, blank=True)
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    confirmed_at = models.DateTimeField(
        _("confirmed at"), null=True, blank=True, help_text=_("Picked up, delivered, served or redeemed.")
    )
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason_code = models.CharField(_("cancel reason code"), max_length=30, blank=True)
    cancel_reason = models.CharField(_("cancel reason"), max_length=255, blank=True)

    courier_name = models.CharField(_("courier name"), max_length=50, blank=True)
    courier_phone = models.CharField(_("courier phone"), max_length=30, blank=True)

    needs_attention = models.BooleanField(_("needs attention"), default=False, db_index=True)
    attention_reason = models.CharField(_("attention reason"), max_length=255, blank=True)
    raw_payload = DocumentJSONField(_("raw channel payload"), default=dict, blank=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "channel_order_id"], name="order_unique_channel_order_id",
                condition=models.Q(channel_order_id__isnull=False),
            ),
            models.UniqueConstraint(fields=["store", "business_date", "day_seq"], name="order_unique_day_seq"),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(condition=models.Q(refunded_amount__gte=0)
                                   & models.Q(refunded_amount__lte=models.F("paid_amount")),
                                   name="order_refunded_within_paid"),
        ]
        indexes = [
            models.Index(fields=["store", "status", "-placed_at"], name="order_store_status_idx"),
            models.Index(fields=["store", "-placed_at"], name="order_store_placed_idx"),
            models.Index(fields=["status", "expires_at"], name="order_status_expiry_idx"),
            # What changed lately: the dashboard's rollups recompute those days (backoffice.rollups).
            models.Index(fields=["updated_at"], name="order_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.order_no

    # --- vocabulary and predicates (no side effects) ------------------------
    @property
    def is_platform_order(self) -> bool:
        return self.channel in Channel.platforms()

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.contact_phone)

    @property
    def address_text(self) -> str:
        """The delivery address in words: own channels send ``detail``, the platforms ``text``;
        the receiver's name after it when it is not the contact's."""
        address = self.address if isinstance(self.address, dict) else {}
        text = str(address.get("detail") or address.get("text") or "").strip()
        name = str(address.get("name") or "").strip()
        return f"{text} ({name})" if text and name and name != self.contact_name else text

    def as_machine(self) -> "Order":
        """This same row as the proxy class that carries its type's transitions
        (orders.models.machines registers one per order type)."""
        machine_class = ORDER_MACHINES[self.order_type]
        if self.__class__ is not machine_class:
            self.__class__ = machine_class
        return self

    def available_actions(self, *, actor_kind: str | None = None) -> list[str]:
        """Transition names allowed now (optionally only those this kind of actor may trigger)."""
        machine = self.as_machine()
        names = []
        for transition in machine.get_available_status_transitions():
            actors = transition.custom.get("actors")
            if actor_kind is None or actors is None or actor_kind in actors:
                names.append(transition.name)
        return sorted(set(names), key=_ACTION_ORDER.index)

    # --- helpers the transitions call (in-memory field changes only) --------
    def _stamp(self, field: str, now) -> None:
        setattr(self, field, now)

    def _set_cancelled(self, *, now, reason_code: str, reason: str) -> None:
        self.cancelled_at = now
        self.cancel_reason_code = reason_code
        self.cancel_reason = reason

    def _set_accepted(self, *, now, prep_minutes: int | None) -> None:
        self.accepted_at = now
        if prep_minutes is not None:
            self.prep_minutes = prep_minutes
        if self.prep_minutes and self.order_type != OrderType.DELIVERY:
            ready_by = now + timedelta(minutes=self.prep_minutes)
            # A time the customer booked (a platform pickup order) stays when it is later.
            self.expected_at = max(self.expected_at, ready_by) if self.expected_at else ready_by

    def _set_ready(self, *, now, pickup_code: str) -> None:
        self.ready_at = now
        if pickup_code:
            self.pickup_code = pickup_code

    def _set_paid(self, *, now, provider: str, txn_no: str, amount: Decimal) -> None:
        self.paid_at = now
        self.payment_provider = provider
        self.payment_txn_no = txn_no
        self.paid_amount = amount
        self.expires_at = None


_ACTION_ORDER = [a.value for a in OrderAction]

# Order type -> the proxy class carrying its state machine; filled by
# orders.models.machines (imported with the models), read by ``Order.as_machine``.
ORDER_MACHINES: dict[str, type[Order]] = {}


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    line_no = models.PositiveSmallIntegerField(_("line no."))
    sku = models.ForeignKey(
        Sku, on_delete=models.PROTECT, null=True, blank=True, related_name="order_lines", verbose_name=_("SKU"),
        help_text=_("Empty when a platform line could not be mapped to a SKU."),
    )
    sku_code = models.CharField(_("SKU code"), max_length=64, blank=True)
    name = models.CharField(_("name"), max_length=120)
    spec = models.CharField(_("specification"), max_length=100, blank=True)
    unit_price = models.DecimalField(_("unit price"), **MONEY)
    quantity = models.PositiveIntegerField(_("quantity"))
    discount = models.DecimalField(_("apportioned discount"), **MONEY, default=ZERO)
    line_total = models.DecimalField(_("line total"), **MONEY)
    packaging_fee = models.DecimalField(_("packaging fee"), **MONEY, default=ZERO)
    options = models.JSONField(_("options"), default=list, blank=True)
    stock_mode = models.CharField(
        _("stock deduction"), max_length=12, blank=True,
        help_text=_("Snapshot: when this line takes stock (on_order / on_payment); empty for platform lines."),
    )
    platform_food_code = models.CharField(_("platform food code"), max_length=64, blank=True)
    platform_sku_id = models.CharField(_("platform SKU id"), max_length=64, blank=True)

    tenant_brand_lookup = "order__brand_id"
    tenant_store_lookup = "order__store_id"

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order_id", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="order_line_unique_no"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(condition=models.Q(discount__gte=0), name="order_line_discount_not_negative"),
            models.CheckConstraint(condition=models.Q(line_total__gte=0), name="order_line_total_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} × {self.quantity}"

    @property
    def gross(self) -> Decimal:
        return self.unit_price * self.quantity


class DiscountPayer(models.TextChoices):
    MERCHANT = "merchant", _("Merchant")
    PLATFORM = "platform", _("Platform")
    SHARED = "shared", _("Shared")


class OrderDiscount(models.Model):
    """A promotion, coupon or member right applied to an order, with who pays it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="discounts", verbose_name=_("order"))
    kind = models.CharField(_("kind"), max_length=30)
    name = models.CharField(_("name"), max_length=120)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    amount = models.DecimalField(_("amount"), **MONEY)
    merchant_part = models.DecimalField(_("merchant part"), **MONEY, default=ZERO)
    platform_part = models.DecimalField(_("platform part"), **MONEY, default=ZERO)

    tenant_brand_lookup = "order__brand_id"
    tenant_store_lookup = "order__store_id"

    class Meta:
        verbose_name = _("order discount")
        verbose_name_plural = _("order discounts")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount=models.F("merchant_part") + models.F("platform_part")),
                name="order_discount_parts_sum_to_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} -{self.amount}"

    @property
    def payer(self) -> str:
        if self.platform_part and self.merchant_part:
            return DiscountPayer.SHARED
        return DiscountPayer.PLATFORM if self.platform_part else DiscountPayer.MERCHANT


class OrderEvent(models.Model):
    """Append-only audit trail: one row for every change of an order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events", verbose_name=_("order"))
    action = models.CharField(_("action"), max_length=20, choices=OrderAction.choices)
    from_status = models.CharField(_("from"), max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=20, choices=OrderStatus.choices)
    actor_kind = models.CharField(_("actor kind"), max_length=20, choices=ActorKind.choices)
    actor_id = models.CharField(_("actor id"), max_length=64, blank=True)
    actor_name = models.CharField(_("actor name"), max_length=100, blank=True)
    reason_code = models.CharField(_("reason code"), max_length=30, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    tenant_brand_lookup = "order__brand_id"
    tenant_store_lookup = "order__store_id"

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["order_id", "id"]

    def __str__(self) -> str:
        """The event in the reader's language ("接单 · 新订单 → 制作中" style, as the timeline shows it)."""
        moved = f" · {self.get_from_status_display()} → {self.get_to_status_display()}" if self.from_status else ""
        return f"{self.get_action_display()}{moved}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValidationError(_("Order events are append-only."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Order events are append-only."))


class DaySequence(models.Model):
    """The last day sequence number (日流水号) used per store per business day."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    business_date = models.DateField(_("business date"))
    last_value = models.PositiveIntegerField(_("last value"), default=0)

    class Meta:
        verbose_name = _("day sequence")
        verbose_name_plural = _("day sequences")
        constraints = [models.UniqueConstraint(fields=["store", "business_date"], name="day_sequence_unique")]
