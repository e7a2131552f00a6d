"""After-sales: one record for every refund and return of every channel.

An ``AfterSalesRequest`` is what a customer (own channels), a platform (a
customer's application on Meituan / Ele.me) or a member of staff asks back for
one order: money only (``refund``) or goods back, then money (``return``), for
the whole order or for some lines with quantities. Its status changes only
through the transitions declared here (django-fsm-2, protected field), called
by aftersales.services under the request's row lock; every transition writes an
``AfterSalesEvent`` (the audit row) in the same transaction.

``custom["actors"]`` names the kinds of actor (core.actors.ActorKind) that may
trigger a transition; ``allowed_actions`` in the APIs is read from it.
docs/after-sales.md is generated from this machine (``manage.py order_docs``).
"""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from accounts.models import Brand, Store
from core.actors import ActorKind

MONEY = {"max_digits": 10, "decimal_places": 2}
ZERO = Decimal("0.00")


class AfterSalesKind(models.TextChoices):
    REFUND = "refund", _("Refund (money only)")
    RETURN = "return", _("Return (goods back, then money)")


class AfterSalesScope(models.TextChoices):
    ORDER = "order", _("Whole order")
    LINES = "lines", _("Some lines")


class AfterSalesStatus(models.TextChoices):
    REQUESTED = "requested", _("Awaiting decision")
    APPROVED = "approved", _("Approved")
    AWAITING_GOODS = "awaiting_goods", _("Awaiting returned goods")
    REFUNDING = "refunding", _("Refunding")
    REFUNDED = "refunded", _("Refunded")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    FAILED = "failed", _("Refund failed")


# A request in one of these holds its lines and amount: no second request may take
# them, the order's after-sales window does not close.
OPEN_STATUSES = (AfterSalesStatus.REQUESTED, AfterSalesStatus.APPROVED, AfterSalesStatus.AWAITING_GOODS)
# A request in one of these counts against what is left to refund.
COMMITTED_STATUSES = (*OPEN_STATUSES, AfterSalesStatus.REFUNDING, AfterSalesStatus.REFUNDED,
                      AfterSalesStatus.FAILED)
DECIDED_STATUSES = (AfterSalesStatus.APPROVED, AfterSalesStatus.AWAITING_GOODS, AfterSalesStatus.REFUNDING,
                    AfterSalesStatus.REFUNDED, AfterSalesStatus.REJECTED, AfterSalesStatus.FAILED)


class RequestedBy(models.TextChoices):
    CUSTOMER = ActorKind.CUSTOMER.value, _("Customer")
    PLATFORM = ActorKind.PLATFORM.value, _("Platform")
    STAFF = ActorKind.STAFF.value, _("Staff")


class AfterSalesReasonCode(models.TextChoices):
    """Why the customer (or staff) asks; a platform's own reason is kept as text."""

    QUALITY = "quality", _("Quality problem")
    WRONG_ITEM = "wrong_item", _("Wrong or missing item")
    LATE = "late", _("Arrived too late")
    CHANGED_MIND = "changed_mind", _("Changed my mind")
    STORE_ERROR = "store_error", _("Store error")
    PLATFORM = "platform", _("Applied on the platform")
    OTHER = "other", _("Other")


class OverdueAction(models.TextChoices):
    """What the deadline job does with an own-channel request nobody decided in time
    (``Brand.after_sales_overdue_action``)."""

    APPROVE = "approve", _("Approve it automatically")
    ESCALATE = "escalate", _("Escalate it to the brand")


S = AfterSalesStatus
STAFF, POS, SYSTEM = ActorKind.STAFF.value, ActorKind.POS.value, ActorKind.SYSTEM.value
CUSTOMER, PLATFORM, PAYMENT = ActorKind.CUSTOMER.value, ActorKind.PLATFORM.value, ActorKind.PAYMENT.value


def _custom(label, *actors: str) -> dict:
    return {"label": label, "actors": list(actors)}


class AfterSalesRequest(ConcurrentTransitionMixin, models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="+", verbose_name=_("brand"))
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+", verbose_name=_("store"))
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="after_sales",
                              verbose_name=_("order"))
    kind = models.CharField(_("kind"), max_length=10, choices=AfterSalesKind.choices, default=AfterSalesKind.REFUND)
    scope = models.CharField(_("scope"), max_length=10, choices=AfterSalesScope.choices,
                             default=AfterSalesScope.ORDER)
    status = FSMField(_("status"), choices=AfterSalesStatus.choices, default=S.REQUESTED, protected=True)
    amount = models.DecimalField(_("amount"), **MONEY,
                                 help_text=_("What goes back to the customer, from the apportioned line amounts."))
    fees_included = models.BooleanField(
        _("fees included"), default=False,
        help_text=_("The delivery fee and the order-level fees go back with this request."))
    reason_code = models.CharField(_("reason code"), max_length=30, choices=AfterSalesReasonCode.choices,
                                   default=AfterSalesReasonCode.OTHER)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    requested_by = models.CharField(_("requested by"), max_length=10, choices=RequestedBy.choices)
    requester_id = models.CharField(_("requester id"), max_length=64, blank=True)
    requester_name = models.CharField(_("requester"), max_length=100, blank=True)
    # Platform applications: the platform's refund id and the lines as the platform sent them.
    platform_refund_id = models.CharField(_("platform refund id"), max_length=64, blank=True)
    platform_lines = models.JSONField(_("platform's lines"), default=list, blank=True,
                                      help_text=_("The lines as the platform described them (name, codes, "
                                                  "quantity, amount)."))
    deadline = models.DateTimeField(_("decide by"), null=True, blank=True, db_index=True,
                                    help_text=_("When it is decided automatically (own channels), or the "
                                                "platform's deadline where known."))
    nearing_flagged_at = models.DateTimeField(_("deadline warning at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    decided_by = models.CharField(_("decided by"), max_length=150, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_reason = models.CharField(_("decision reason"), max_length=255, blank=True)
    restock = models.BooleanField(_("restocked"), null=True, blank=True,
                                  help_text=_("Returns: the goods went back on the shelf (yes) or were "
                                              "written off (no)."))
    goods_received_at = models.DateTimeField(_("goods received at"), null=True, blank=True)
    refund_ref = models.CharField(_("refund reference"), max_length=64, blank=True,
                                  help_text=_("The payment refund this request started (own channels)."))
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("after-sales request")
        verbose_name_plural = _("after-sales requests")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="aftersales_amount_not_negative"),
            # The platforms hold one open application per order at a time.
            models.UniqueConstraint(fields=["order"], condition=models.Q(requested_by="platform", status="requested"),
                                    name="aftersales_one_open_platform_request"),
        ]
        indexes = [
            models.Index(fields=["store", "status", "-id"], name="aftersales_store_status_idx"),
            models.Index(fields=["status", "deadline"], name="aftersales_status_deadline_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.order_id} {self.get_kind_display()} {self.amount}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def available_actions(self, *, actor_kind: str | None = None) -> list[str]:
        """Transition names allowed now (optionally only those this kind of actor may trigger)."""
        names = []
        for item in self.get_available_status_transitions():
            actors = item.custom.get("actors")
            if actor_kind is None or actors is None or actor_kind in actors:
                names.append(item.name)
        return [name for name in ACTION_ORDER if name in names]

    # --- the machine: in-memory changes only; aftersales.services saves and audits ---------
    @transition(field="status", source=S.REQUESTED, target=S.APPROVED,
                custom=_custom(_("Approve"), STAFF, POS, SYSTEM))
    def approve(self, *, now, decided_by="", reason=""):
        self._decided(now=now, decided_by=decided_by, reason=reason)

    @transition(field="status", source=S.REQUESTED, target=S.REJECTED,
                custom=_custom(_("Reject"), STAFF, POS, PLATFORM))
    def reject(self, *, now, decided_by="", reason=""):
        self._decided(now=now, decided_by=decided_by, reason=reason)

    @transition(field="status", source=S.REQUESTED, target=S.WITHDRAWN,
                custom=_custom(_("Withdraw"), CUSTOMER, PLATFORM))
    def withdraw(self, *, now, decided_by="", reason=""):
        self._decided(now=now, decided_by=decided_by, reason=reason)

    @transition(field="status", source=S.APPROVED, target=S.AWAITING_GOODS,
                custom=_custom(_("Wait for the goods"), SYSTEM))
    def await_goods(self, *, now):
        pass

    @transition(field="status", source=S.AWAITING_GOODS, target=S.REFUNDING,
                custom=_custom(_("Goods received"), STAFF, POS))
    def receive_goods(self, *, now, restock=True):
        self.goods_received_at = now
        self.restock = bool(restock)

    @transition(field="status", source=S.APPROVED, target=S.REFUNDING, custom=_custom(_("Start the refund"), SYSTEM))
    def start_refund(self, *, now, refund_ref=""):
        if refund_ref:
            self.refund_ref = refund_ref

    @transition(field="status", source=S.REFUNDING, target=S.REFUNDED,
                custom=_custom(_("Refunded"), PAYMENT, PLATFORM, SYSTEM))
    def complete(self, *, now):
        self.refunded_at = now

    @transition(field="status", source=S.REFUNDING, target=S.FAILED, custom=_custom(_("Refund failed"), SYSTEM))
    def fail(self, *, now):
        pass

    @transition(field="status", source=S.FAILED, target=S.REFUNDED,
                custom=_custom(_("Refunded after all"), PAYMENT, STAFF, SYSTEM))
    def settle(self, *, now):
        self.refunded_at = now

    # The platform's own outcome: it agreed the refund itself (the merchant did not answer
    # in time) or its arbitration overruled a rejection.
    @transition(field="status", source=[S.REQUESTED, S.APPROVED, S.REFUNDING, S.REJECTED], target=S.REFUNDED,
                custom=_custom(_("Refunded by the platform"), PLATFORM))
    def platform_refund(self, *, now, decided_by="", reason=""):
        if not self.decided_at:
            self._decided(now=now, decided_by=decided_by, reason=reason)
        self.refunded_at = now

    def _decided(self, *, now, decided_by: str, reason: str) -> None:
        self.decided_at = now
        self.decided_by = decided_by[:150]
        self.decision_reason = str(reason)[:255]


ACTION_ORDER = ["approve", "reject", "withdraw", "await_goods", "receive_goods", "start_refund", "complete", "fail",
                "settle", "platform_refund"]


class AfterSalesLine(models.Model):
    """One order line (some of its units) a request asks back, with its amount."""

    request = models.ForeignKey(AfterSalesRequest, on_delete=models.CASCADE, related_name="lines",
                                verbose_name=_("after-sales request"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("order line"))
    quantity = models.PositiveIntegerField(_("quantity"))
    amount = models.DecimalField(_("amount"), **MONEY)

    tenant_brand_lookup = "request__brand_id"
    tenant_store_lookup = "request__store_id"

    class Meta:
        verbose_name = _("after-sales line")
        verbose_name_plural = _("after-sales lines")
        ordering = ["request_id", "order_line_id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "order_line"], name="aftersales_line_once_per_request"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="aftersales_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.order_line_id} x{self.quantity} {self.amount}"


class AfterSalesEvent(models.Model):
    """The audit trail of a request: one row per transition (and its creation)."""

    request = models.ForeignKey(AfterSalesRequest, on_delete=models.CASCADE, related_name="events",
                                verbose_name=_("after-sales request"))
    action = models.CharField(_("action"), max_length=20)
    from_status = models.CharField(_("from"), max_length=20, choices=AfterSalesStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=20, choices=AfterSalesStatus.choices)
    actor_kind = models.CharField(_("actor kind"), max_length=20, choices=ActorKind.choices)
    actor_id = models.CharField(_("actor id"), max_length=64, blank=True)
    actor_name = models.CharField(_("actor name"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    tenant_brand_lookup = "request__brand_id"
    tenant_store_lookup = "request__store_id"

    class Meta:
        verbose_name = _("after-sales event")
        verbose_name_plural = _("after-sales events")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.request_id} {self.action} {self.from_status}->{self.to_status}"
