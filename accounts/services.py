"""Writes for tenants and people: customer login and tokens."""

import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Brand, Customer, CustomerToken, LoginCode, LoginCodeAttempt
from core.errors import DomainError, InvalidInput, NotFound

logger = logging.getLogger(__name__)

# Login codes and their attempts are kept this long after they expire (who guessed what, from where).
LOGIN_CODE_KEEP = timedelta(days=1)


class LoginFailed(DomainError):
    code = "login_failed"
    status_code = 401
    default_message = _("The verification code is wrong or has expired.")


class LoginCodesLimited(DomainError):
    """Too many codes sent for this phone or from this address; ``retry_after`` seconds to wait."""

    code = "login_codes_limited"
    status_code = 429
    default_message = _("Too many verification codes requested. Try again later.")

    def __init__(self, message=None, *, retry_after: int, scope: str) -> None:
        super().__init__(message, detail={"scope": scope, "retry_after": retry_after})
        self.retry_after = retry_after


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def login_code_hash(code: str) -> str:
    """Keyed with SECRET_KEY: a copy of the table does not give the codes away by brute force."""
    return salted_hmac("accounts.LoginCode", code, algorithm="sha256").hexdigest()


def _check_phone(phone: str) -> str:
    phone = phone.strip()
    if not (phone.isdigit() and 6 <= len(phone) <= 20):
        raise InvalidInput(_("Enter a valid phone number."), code="invalid_phone")
    return phone


def _brand(code: str) -> Brand:
    brand = Brand.objects.filter(code=code).first()
    if brand is None:
        raise NotFound(_("Unknown brand."), code="brand_not_found")
    return brand


# --- limits on sending codes ----------------------------------------------------------
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int


def rate_parse(text: str) -> Rate:
    """ "10/day" -> Rate(10, 86400); the period is read by its first letter (s, m, h, d), as DRF does."""
    count, _slash, period = text.strip().partition("/")
    if not count.isdigit() or not period or period[0] not in _PERIODS:
        raise ValueError(f"not a rate: {text!r} (expected count/second, minute, hour or day)")
    return Rate(count=int(count), seconds=_PERIODS[period[0]])


def _window(rate: Rate, now: datetime) -> tuple[int, int]:
    """(index, seconds left) of the fixed window holding ``now``. Windows start on the
    minute, hour or day of local time (a day is a calendar day in TIME_ZONE)."""
    local = timezone.localtime(now)
    seconds = local.timestamp() + local.utcoffset().total_seconds()
    index = int(seconds // rate.seconds)
    return index, math.ceil((index + 1) * rate.seconds - seconds)


def _window_take(*, key: str, rate: Rate, now: datetime) -> tuple[str, int, int]:
    """Count one send in ``key``'s current window: (cache key, count including this one,
    seconds left). One atomic increment (Redis INCR); the window's index is part of the
    key, so a key is never used after its window and expires a window later."""
    index, left = _window(rate, now)
    cache_key = f"login-code-rate:{key}:{rate.seconds}:{index}"
    cache.add(cache_key, 0, timeout=2 * rate.seconds)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr
        cache.add(cache_key, 0, timeout=2 * rate.seconds)
        count = cache.incr(cache_key)
    return cache_key, count, left


def _give_back(cache_keys: list[str]) -> None:
    for cache_key in cache_keys:
        try:
            cache.decr(cache_key)
        except ValueError:
            pass  # expired meanwhile: nothing to give back


def login_code_limits_take(*, brand_id: int, phone: str, ip: str | None, now: datetime) -> None:
    """Count one code sent to ``phone`` of the brand and to ``ip`` against
    LOGIN_CODE_PHONE_RATES and LOGIN_CODE_IP_RATES; raises LoginCodesLimited (and
    counts nothing) when any window is full. ``ip`` None: no per-address limit (a
    server-side caller)."""
    limits = [(f"phone:{brand_id}:{phone}", "phone", rate_parse(r)) for r in settings.LOGIN_CODE_PHONE_RATES]
    if ip:
        limits += [(f"ip:{ip}", "ip", rate_parse(r)) for r in settings.LOGIN_CODE_IP_RATES]
    taken: list[str] = []
    for key, scope, rate in limits:
        cache_key, count, left = _window_take(key=key, rate=rate, now=now)
        taken.append(cache_key)
        if count > rate.count:
            _give_back(taken)
            if scope == "phone":
                message = ngettext(
                    "Too many verification codes for this phone number. Try again in %(seconds)d second.",
                    "Too many verification codes for this phone number. Try again in %(seconds)d seconds.",
                    left)
            else:
                message = ngettext(
                    "Too many verification codes requested from your network. Try again in %(seconds)d second.",
                    "Too many verification codes requested from your network. Try again in %(seconds)d seconds.",
                    left)
            raise LoginCodesLimited(message % {"seconds": left}, retry_after=left, scope=scope)


# --- login ----------------------------------------------------------------------------
def customer_login_start(*, brand_code: str, phone: str, ip: str | None = None,
                         now: datetime | None = None) -> str:
    """Send a one-time code by SMS. The SMS gateway is outside this project;
    the code is logged (and, with CUSTOMER_OTP_DEV_ECHO, returned) for the demo.

    Only the newest code of a phone counts. Raises LoginCodesLimited beyond the
    sending limits (per phone of the brand, per client address ``ip``)."""
    brand = _brand(brand_code)
    phone = _check_phone(phone)
    now = now or timezone.now()
    login_code_limits_take(brand_id=brand.pk, phone=phone, ip=ip, now=now)
    code = f"{secrets.randbelow(1_000_000):06d}"
    LoginCode.objects.create(brand=brand, phone=phone, code_hash=login_code_hash(code), sent_to_ip=ip or None,
                             created_at=now, expires_at=now + timedelta(seconds=settings.LOGIN_CODE_TTL_SECONDS))
    logger.info("customer login code issued", extra={"brand": brand.code, "phone_last4": phone[-4:]})
    return code


@dataclass(frozen=True)
class IssuedToken:
    token: str
    customer: Customer


def customer_login_verify(*, brand_code: str, phone: str, code: str, ip: str | None = None,
                          now: datetime | None = None) -> IssuedToken:
    """Check the one-time code; create the customer on first login; issue a token.

    A guess first takes an attempt slot of the phone's newest code with one
    conditional UPDATE (attempts < LOGIN_CODE_MAX_ATTEMPTS, not expired); only a
    guess that got a slot is compared, and it is recorded (LoginCodeAttempt, numbered
    by the slot). The UPDATE keeps the row locked until COMMIT, so concurrent guesses
    queue and no more than the limit are ever compared. A right guess consumes the
    code: a second right guess fails."""
    brand = _brand(brand_code)
    phone = _check_phone(phone)
    now = now or timezone.now()
    latest_id = LoginCode.objects.filter(brand=brand, phone=phone).order_by("-id").values_list("pk", flat=True).first()
    if latest_id is None:
        raise LoginFailed()
    with transaction.atomic():
        got_slot = LoginCode.objects.filter(
            pk=latest_id, attempts__lt=settings.LOGIN_CODE_MAX_ATTEMPTS, expires_at__gt=now,
        ).update(attempts=F("attempts") + 1)
        if got_slot:
            # Our UPDATE holds the row: this read sees our own count.
            row = LoginCode.objects.values("attempts", "code_hash", "used_at").get(pk=latest_id)
            correct = hmac.compare_digest(row["code_hash"], login_code_hash(code))
            LoginCodeAttempt.objects.create(login_code_id=latest_id, number=row["attempts"], correct=correct,
                                            ip=ip or None, created_at=now)
            if correct and row["used_at"] is None:
                LoginCode.objects.filter(pk=latest_id).update(used_at=now)
                customer, _created = Customer.objects.get_or_create(brand=brand, phone=phone)
                return customer_token_issue(customer=customer)
    raise LoginFailed()


def login_codes_purge(*, now: datetime | None = None) -> int:
    """Delete login codes (and their attempts) expired more than LOGIN_CODE_KEEP ago."""
    now = now or timezone.now()
    _total, by_model = LoginCode.objects.filter(expires_at__lt=now - LOGIN_CODE_KEEP).delete()
    return by_model.get(LoginCode._meta.label, 0)


def customer_token_issue(*, customer: Customer) -> IssuedToken:
    raw = secrets.token_urlsafe(32)
    CustomerToken.objects.create(customer=customer, key_hash=token_hash(raw), prefix=raw[:8])
    return IssuedToken(token=raw, customer=customer)


def customer_token_revoke(*, raw_token: str) -> int:
    return CustomerToken.objects.filter(key_hash=token_hash(raw_token), revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def otp_dev_echo_enabled() -> bool:
    return settings.CUSTOMER_OTP_DEV_ECHO
