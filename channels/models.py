"""A store's binding to a delivery platform: credentials, base URL and pull state."""

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Store
from core.urlguard import OutboundUrlValidator


class PlatformCode(models.TextChoices):
    MEITUAN = "meituan", _("Meituan Waimai")
    ELEME = "eleme", _("Ele.me")


class StoreBinding(models.Model):
    """One store on one platform. Orders are pulled every ``pull_interval_seconds``
    (and may also be pushed); status changes go back through the outbox."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="platform_bindings",
                              verbose_name=_("store"))
    platform = models.CharField(_("platform"), max_length=20, choices=PlatformCode.choices)
    shop_code = models.CharField(_("platform shop code"), max_length=64,
                                 help_text=_("Meituan app_poi_code / Ele.me shopId."))
    app_id = models.CharField(_("app id / app key"), max_length=64,
                              help_text=_("Meituan app_id / Ele.me app_key."))
    secret = models.CharField(_("app secret"), max_length=128)
    token = models.CharField(_("access token"), max_length=255, blank=True, help_text=_("Ele.me only."))
    base_url = models.URLField(_("base URL"), max_length=255, validators=[OutboundUrlValidator()],
                               help_text=_("The platform's API root, e.g. the local simulator in the demo. "
                                           "Only the hosts in OUTBOUND_URL_ALLOWED_HOSTS are allowed."))
    enabled = models.BooleanField(_("enabled"), default=True)
    pull_interval_seconds = models.PositiveIntegerField(_("pull interval (seconds)"), default=30,
                                                        validators=[MinValueValidator(5)])
    next_pull_at = models.DateTimeField(_("next pull at"), default=timezone.now, db_index=True)
    pull_state = models.JSONField(_("pull state"), default=dict, blank=True,
                                  help_text=_('Where pulling resumes, e.g. {"20261122": 41}: the last Meituan '
                                              'day sequence ingested per date.'))
    last_pull_at = models.DateTimeField(_("last pull at"), null=True, blank=True)
    # Set while a pull runs (channels.services.pull): another pull of the binding before
    # then is skipped. A pull that dies leaves it to expire.
    pull_lease_until = models.DateTimeField(_("pulling until"), null=True, blank=True, editable=False)
    # Whose lease it is: a pull renews and clears only a lease holding its own token, so a
    # pull that outlived its lease never clears (or extends) the next pull's.
    pull_lease_token = models.CharField(_("pull lease token"), max_length=32, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("platform binding")
        verbose_name_plural = _("platform bindings")
        ordering = ["store_id", "platform"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "shop_code"], name="binding_unique_platform_shop"),
            models.UniqueConstraint(fields=["store", "platform"], name="binding_unique_store_platform"),
        ]

    def __str__(self) -> str:
        return f"{self.store} · {self.get_platform_display()} {self.shop_code}"


class PlatformOrderCheck(models.Model):
    """When the reconciliation job last asked the platform about a platform order
    (channels.services.reconcile), so each run asks about the longest-unchecked first."""

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="platform_check",
                                 verbose_name=_("order"))
    checked_at = models.DateTimeField(_("checked at"), db_index=True)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)

    tenant_brand_lookup = "order__brand_id"
    tenant_store_lookup = "order__store_id"

    class Meta:
        verbose_name = _("platform order check")
        verbose_name_plural = _("platform order checks")

    def __str__(self) -> str:
        return f"{self.order_id} @ {self.checked_at:%Y-%m-%d %H:%M:%S}"


class UnreadablePlatformOrder(models.Model):
    """A platform order a pull could not ingest after every attempt (Meituan: a day
    sequence that stayed missing ``CHANNELS_PULL_MISSING_MAX_ATTEMPTS`` pulls, or a
    week): handed to a person instead of being dropped. The person looks it up on the
    platform's merchant back-office, enters it or fixes its cause, and marks it resolved."""

    binding = models.ForeignKey(StoreBinding, on_delete=models.CASCADE, related_name="unreadable_orders",
                                verbose_name=_("platform binding"))
    reference = models.CharField(_("platform reference"), max_length=64,
                                 help_text=_("Meituan: the date and the day sequence number, e.g. 20261205/41."))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("handed over at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.CharField(_("resolved by"), max_length=150, blank=True)

    tenant_brand_lookup = "binding__store__brand_id"
    tenant_store_lookup = "binding__store_id"

    class Meta:
        verbose_name = _("platform order we could not read")
        verbose_name_plural = _("platform orders we could not read")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["binding", "reference"], name="unreadable_order_once_per_binding"),
        ]

    def __str__(self) -> str:
        return f"{self.binding} {self.reference}"
