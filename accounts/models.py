"""Tenants and people: brands, stores, staff memberships, customers, member tiers."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.store_hours import business_hours_validate, hours_next_opening, hours_open_at


class Brand(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    unpaid_timeout_minutes = models.PositiveIntegerField(
        _("unpaid order timeout (minutes)"), default=15, validators=[MinValueValidator(1)]
    )
    after_sales_days = models.PositiveIntegerField(
        _("after-sales window (days)"), default=7,
        help_text=_("Confirmed orders complete when this window closes."),
    )
    after_sales_response_hours = models.PositiveIntegerField(
        _("after-sales response time (hours)"), default=24, validators=[MinValueValidator(1)],
        help_text=_("An own-channel refund or return request not decided within this time is handled "
                    "automatically (see the next setting)."),
    )
    after_sales_overdue_action = models.CharField(
        _("when a request is not decided in time"), max_length=10, default="approve",
        choices=[("approve", _("Approve it automatically")), ("escalate", _("Escalate it to the brand"))],
    )
    after_sales_warn_hours = models.PositiveIntegerField(
        _("warn before the deadline (hours)"), default=2,
        help_text=_("Requests this close to their deadline are flagged for the store."),
    )
    after_sales_fees_with_last_lines = models.BooleanField(
        _("fees go back with the last lines"), default=False,
        help_text=_("A line refund that takes the last lines of an order also gives back the delivery fee "
                    "and the order-level fees. Off: those go back only with a whole-order refund."),
    )
    clerks_see_money = models.BooleanField(
        _("clerks see money figures"), default=True, db_default=True,  # rows written by older code get it too
        help_text=_("Off: on the dashboard a store's clerks see order counts and times, but not takings, "
                    "refund amounts or the exports."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "id"

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


MAX_BUSY_MINUTES = 120


class StoreMode(models.TextChoices):
    OPEN = "open", _("Open")
    BUSY = "busy", _("Busy")
    PAUSED = "paused", _("Paused")
    CLOSED = "closed", _("Closed")


class Store(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="stores", verbose_name=_("brand"))
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    address = models.CharField(_("address"), max_length=255, blank=True)
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6, null=True, blank=True)
    business_hours = models.JSONField(
        _("business hours"), default=list, blank=True, validators=[business_hours_validate],
        help_text=_('List of {"weekdays": [1..7], "open": "HH:MM", "close": "HH:MM"} in local time, 1 = Monday; '
                    'a period closing before it opens runs past midnight; empty means always open.'),
    )
    mode = models.CharField(_("mode"), max_length=10, choices=StoreMode.choices, default=StoreMode.OPEN)
    channels_open = models.BooleanField(
        _("open on the platforms"), null=True, blank=True, editable=False,
        help_text=_("What the order center last told the platforms: open or closed (empty: never told)."))
    auto_accept = models.BooleanField(_("auto-accept orders"), default=False)
    default_prep_minutes = models.PositiveIntegerField(
        _("default prep minutes"), default=15, validators=[MaxValueValidator(240)]
    )
    busy_extra_minutes = models.PositiveIntegerField(
        _("extra minutes when busy"), default=15, validators=[MaxValueValidator(MAX_BUSY_MINUTES)])
    delivery_fee = models.DecimalField(
        _("delivery fee"), max_digits=10, decimal_places=2, default=Decimal("5.00"),
        validators=[MinValueValidator(Decimal("0.00"))],
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "brand_id"
    tenant_store_lookup = "id"

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["brand_id", "code"]
        constraints = [models.UniqueConstraint(fields=["brand", "code"], name="store_unique_code_per_brand")]

    def __str__(self) -> str:
        return self.name

    @property
    def accepts_new_orders(self) -> bool:
        """Mode open or busy (not paused or closed by a person); what auto-accept follows. A
        booked platform order arriving at night is still the store's to accept; whether
        the store is open *now* (mode and business hours) is ``open_at``."""
        return self.mode in (StoreMode.OPEN, StoreMode.BUSY)

    def open_at(self, at: datetime) -> bool:
        """Open for new orders at ``at``: mode open or busy, and within the business hours."""
        return self.accepts_new_orders and hours_open_at(self.business_hours or [], at)

    def next_opening_at(self, after: datetime) -> datetime | None:
        """When a store closed by its hours opens next (None when open now, paused or
        closed by a person, or with no hours)."""
        if self.mode not in (StoreMode.OPEN, StoreMode.BUSY) or self.open_at(after):
            return None
        return hours_next_opening(self.business_hours or [], after)

    @property
    def busy_minutes(self) -> int:
        """Extra minutes promised while busy (0 otherwise)."""
        return self.busy_extra_minutes if self.mode == StoreMode.BUSY else 0


class StaffRole(models.TextChoices):
    BRAND_ADMIN = "brand_admin", _("Brand admin")
    STORE_MANAGER = "store_manager", _("Store manager")
    CLERK = "clerk", _("Clerk")


class StaffMembership(models.Model):
    """A user's role in a brand (brand admin) or in one store (manager, clerk)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("brand"))
    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships", verbose_name=_("store")
    )
    role = models.CharField(_("role"), max_length=20, choices=StaffRole.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "brand", "store"], name="membership_unique_user_brand_store"),
            models.UniqueConstraint(
                fields=["user", "brand"], condition=models.Q(store__isnull=True),
                name="membership_unique_user_brand_wide",
            ),
            models.CheckConstraint(
                condition=(models.Q(role="brand_admin", store__isnull=True)
                           | (~models.Q(role="brand_admin") & models.Q(store__isnull=False))),
                name="membership_brand_admin_has_no_store_others_have_one",
            ),
        ]

    def __str__(self) -> str:
        where = self.store or self.brand
        return f"{self.user} · {self.get_role_display()} · {where}"


class MemberTier(models.Model):
    """Member rights tied to the account, not the item (e.g. SUPER pays 98%)."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="member_tiers", verbose_name=_("brand"))
    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=50)
    price_rate = models.DecimalField(
        _("price rate"), max_digits=4, decimal_places=3, default=Decimal("1.000"),
        validators=[MinValueValidator(Decimal("0.500")), MaxValueValidator(Decimal("1.000"))],
        help_text=_("Share of the price a member pays, e.g. 0.98 for 2% off."),
    )
    free_delivery = models.BooleanField(_("free delivery"), default=False)
    rank = models.PositiveSmallIntegerField(_("rank"), default=0)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("member tier")
        verbose_name_plural = _("member tiers")
        ordering = ["brand_id", "rank"]
        constraints = [models.UniqueConstraint(fields=["brand", "code"], name="tier_unique_code_per_brand")]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="customers", verbose_name=_("brand"))
    phone = models.CharField(_("phone"), max_length=20)
    name = models.CharField(_("name"), max_length=50, blank=True)
    tier = models.ForeignKey(
        MemberTier, on_delete=models.SET_NULL, null=True, blank=True, related_name="customers",
        verbose_name=_("member tier"),
    )
    wechat_openid = models.CharField(_("WeChat openid"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [models.UniqueConstraint(fields=["brand", "phone"], name="customer_unique_phone_per_brand")]

    def __str__(self) -> str:
        return f"{self.name or _('Customer')} ({mask_phone(self.phone)})"


def mask_phone(phone: str) -> str:
    """Everything but the last 4 digits hidden: 138****5678 style."""
    if len(phone) <= 4:
        return phone
    if len(phone) >= 11:
        return f"{phone[:3]}****{phone[-4:]}"
    return "*" * (len(phone) - 4) + phone[-4:]


class CustomerToken(models.Model):
    """A customer's API token for the mini-program / App. Only a SHA-256 of the
    token is stored; the token itself is shown once, at login."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tokens", verbose_name=_("customer"))
    key_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    prefix = models.CharField(_("token prefix"), max_length=8)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    tenant_brand_lookup = "customer__brand_id"

    class Meta:
        verbose_name = _("customer token")
        verbose_name_plural = _("customer tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.customer})"


class LoginCode(models.Model):
    """A one-time code sent to a customer's phone (accounts.services). Only an HMAC of
    the code is kept. ``attempts`` counts the guesses that got a slot; a guess takes a
    slot with one conditional UPDATE (attempts < the limit), so concurrent guesses can
    never get more than the limit between them. ``used_at`` is set once, by the guess
    that was right; a newer code for the same phone expires the older ones."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", verbose_name=_("brand"))
    phone = models.CharField(_("phone"), max_length=20)
    code_hash = models.CharField(_("code hash"), max_length=64)
    sent_to_ip = models.GenericIPAddressField(_("requested from"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("login code")
        verbose_name_plural = _("login codes")
        indexes = [models.Index(fields=["brand", "phone", "-id"], name="logincode_latest_per_phone")]

    def __str__(self) -> str:
        return f"{mask_phone(self.phone)} · {self.created_at:%Y-%m-%d %H:%M}"


class LoginCodeAttempt(models.Model):
    """One guess of a login code that got a slot, numbered in the order the database
    gave the slots (append-only; who guessed, and whether it was right)."""

    login_code = models.ForeignKey(LoginCode, on_delete=models.CASCADE, related_name="attempt_rows",
                                   verbose_name=_("login code"))
    number = models.PositiveSmallIntegerField(_("number"))
    correct = models.BooleanField(_("correct"))
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))

    tenant_brand_lookup = "login_code__brand_id"

    class Meta:
        verbose_name = _("login code attempt")
        verbose_name_plural = _("login code attempts")
        constraints = [models.UniqueConstraint(fields=["login_code", "number"], name="logincodeattempt_unique_number")]

