"""Payments: one provider transaction per order, and its refunds.

This app sits below orders: it knows an order only by its opaque ``order_no``
(``order_ref``), never by a foreign key or an import.
"""

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class PaymentProvider(models.TextChoices):
    WXPAY = "wxpay", _("WeChat Pay")


class PaymentStatus(models.TextChoices):
    CREATED = "created", _("Created")
    SUCCEEDED = "succeeded", _("Succeeded")
    REFUNDED = "refunded", _("Refunded")
    CLOSED = "closed", _("Closed")


# A provider notify or query may still turn these into SUCCEEDED (money arrived).
PAYABLE_STATUSES = (PaymentStatus.CREATED, PaymentStatus.CLOSED)
PAID_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED)


class PaymentAccount(models.Model):
    """A brand's own merchant account at a provider. A brand without one uses the
    environment's account (settings.PAYMENT_PROVIDERS). The API key is a secret: the
    admin never shows it back (write-only)."""

    brand = models.ForeignKey("accounts.Brand", on_delete=models.CASCADE, related_name="payment_accounts",
                              verbose_name=_("brand"))
    provider = models.CharField(_("provider"), max_length=20, choices=PaymentProvider.choices,
                                default=PaymentProvider.WXPAY)
    mchid = models.CharField(_("merchant id"), max_length=32, validators=[RegexValidator(r"^\d{6,32}$")],
                             help_text=_("The provider's merchant number (商户号)."))
    appid = models.CharField(_("app id"), max_length=32, help_text=_("The mini-program's app id paying into it."))
    api_key = models.CharField(_("API key"), max_length=128)
    enabled = models.BooleanField(_("enabled"), default=True,
                                  help_text=_("Off: new payments use the environment's account again."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("payment account")
        verbose_name_plural = _("payment accounts")
        ordering = ["brand_id", "provider"]
        constraints = [models.UniqueConstraint(fields=["brand", "provider"], name="payment_account_one_per_brand")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.mchid}"


class PaymentTransaction(models.Model):
    provider = models.CharField(_("provider"), max_length=20, choices=PaymentProvider.choices)
    mchid = models.CharField(
        _("merchant id"), max_length=32, blank=True, default="", db_default="",
        help_text=_("The merchant account the payment was made to (empty: the environment's account)."))
    out_trade_no = models.CharField(_("merchant trade no."), max_length=32, unique=True)
    order_ref = models.CharField(
        _("order no."), max_length=64, unique=True, help_text=_("The order this payment is for (one per order).")
    )
    brand = models.ForeignKey(
        "accounts.Brand", on_delete=models.PROTECT, related_name="payment_transactions", verbose_name=_("brand")
    )
    store = models.ForeignKey(
        "accounts.Store", on_delete=models.PROTECT, null=True, blank=True,
        related_name="payment_transactions", verbose_name=_("store"),
    )
    description = models.CharField(_("description"), max_length=127)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    amount_fen = models.PositiveBigIntegerField(_("amount (fen)"))
    status = models.CharField(_("status"), max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.CREATED)
    prepay_id = models.CharField(_("prepay id"), max_length=64, blank=True)
    transaction_id = models.CharField(_("provider transaction no."), max_length=64, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    notify_payload = models.JSONField(_("payment notify"), null=True, blank=True,
                                      help_text=_("The provider's notify (or query answer) that marked it paid."))
    checked_at = models.DateTimeField(_("last asked the provider"), null=True, blank=True,
                                      help_text=_("When the lost-notify job last queried the provider."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="payment_status_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="payment_amount_fen_positive"),
            models.CheckConstraint(
                condition=~models.Q(status__in=PAID_STATUSES) | ~models.Q(transaction_id=""),
                name="payment_paid_has_transaction_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.out_trade_no} · {self.order_ref} · {self.get_status_display()}"


class RefundStatus(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    # The provider could not send the money back (e.g. the card is closed): a person
    # finishes it at the provider, which then reports SUCCESS or CLOSED.
    ABNORMAL = "abnormal", _("Abnormal")
    FAILED = "failed", _("Failed")


# The provider may still change these (the refund query asks about them).
REFUND_OPEN_STATUSES = (RefundStatus.PROCESSING, RefundStatus.ABNORMAL)


class PaymentRefund(models.Model):
    transaction = models.ForeignKey(
        PaymentTransaction, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    refund_ref = models.CharField(
        _("refund reference"), max_length=64, help_text=_("The caller's key for this refund (e.g. its refund no.).")
    )
    out_refund_no = models.CharField(_("merchant refund no."), max_length=64, unique=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    amount_fen = models.PositiveBigIntegerField(_("amount (fen)"))
    reason = models.CharField(_("reason"), max_length=80, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=RefundStatus.choices,
                              default=RefundStatus.PROCESSING)
    refund_id = models.CharField(_("provider refund no."), max_length=64, blank=True)
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)
    notify_payload = models.JSONField(_("refund notify"), null=True, blank=True)
    provider_status = models.CharField(
        _("provider status"), max_length=20, blank=True,
        help_text=_("The provider's last word on this refund: PROCESSING, SUCCESS, ABNORMAL, CLOSED, "
                    "NOT_FOUND or REJECTED."),
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    retry_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="retried_by",
        verbose_name=_("retry of"), help_text=_("The closed or refused refund this one starts again."),
    )
    checks = models.PositiveIntegerField(_("times asked"), default=0)
    checked_at = models.DateTimeField(_("last asked the provider"), null=True, blank=True)
    next_check_at = models.DateTimeField(
        _("next question to the provider"), null=True, blank=True,
        help_text=_("While processing or abnormal, the refund query asks about it at this time (with backoff)."),
    )
    escalated_at = models.DateTimeField(
        _("handed to a person at"), null=True, blank=True,
        help_text=_("When the order was flagged for a person: abnormal, failed for good, or processing too long."),
    )
    needs_person = models.BooleanField(
        _("needs a person"), default=False,
        help_text=_("Flagged and not yet settled; cleared when the refund (or its retry) succeeds."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "transaction__brand_id"

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="refund_status_created"),
            models.Index(fields=["status", "next_check_at"], name="refund_status_next_check"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["transaction", "refund_ref"], name="refund_unique_ref_per_payment"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="refund_amount_fen_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.out_refund_no} · {self.amount} · {self.get_status_display()}"
