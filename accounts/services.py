"""Writes for tenants and people: customer login and tokens."""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Brand, Customer, CustomerToken
from core.errors import DomainError, InvalidInput, NotFound

logger = logging.getLogger(__name__)

OTP_TTL_SECONDS = 300
OTP_MAX_ATTEMPTS = 5


class LoginFailed(DomainError):
    code = "login_failed"
    status_code = 401
    default_message = _("The verification code is wrong or has expired.")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _otp_key(brand_id: int, phone: str) -> str:
    return f"customer-otp:{brand_id}:{phone}"


def _check_phone(phone: str) -> str:
    phone = phone.strip()
    if not (phone.isdigit() and 6 <= len(phone) <= 20):
        raise InvalidInput(_("Enter a valid phone number."), code="invalid_phone")
    return phone


def customer_login_start(*, brand_code: str, phone: str) -> str:
    """Send a one-time code by SMS. The SMS gateway is outside this project;
    the code is logged (and, with CUSTOMER_OTP_DEV_ECHO, returned) for the demo."""
    brand = Brand.objects.filter(code=brand_code).first()
    if brand is None:
        raise NotFound(_("Unknown brand."), code="brand_not_found")
    phone = _check_phone(phone)
    code = f"{secrets.randbelow(1_000_000):06d}"
    cache.set(_otp_key(brand.pk, phone), {"hash": token_hash(code), "attempts": 0}, OTP_TTL_SECONDS)
    logger.info("customer login code issued", extra={"brand": brand.code, "phone_last4": phone[-4:]})
    return code


@dataclass(frozen=True)
class IssuedToken:
    token: str
    customer: Customer


def customer_login_verify(*, brand_code: str, phone: str, code: str) -> IssuedToken:
    """Check the one-time code; create the customer on first login; issue a token."""
    brand = Brand.objects.filter(code=brand_code).first()
    if brand is None:
        raise NotFound(_("Unknown brand."), code="brand_not_found")
    phone = _check_phone(phone)
    key = _otp_key(brand.pk, phone)
    entry = cache.get(key)
    if entry is None or entry["attempts"] >= OTP_MAX_ATTEMPTS:
        raise LoginFailed()
    if not hmac.compare_digest(entry["hash"], token_hash(code)):
        entry["attempts"] += 1
        cache.set(key, entry, OTP_TTL_SECONDS)
        raise LoginFailed()
    cache.delete(key)
    with transaction.atomic():
        customer, _created = Customer.objects.get_or_create(brand=brand, phone=phone)
        issued = customer_token_issue(customer=customer)
    return issued


def customer_token_issue(*, customer: Customer) -> IssuedToken:
    raw = secrets.token_urlsafe(32)
    CustomerToken.objects.create(customer=customer, key_hash=token_hash(raw), prefix=raw[:8])
    return IssuedToken(token=raw, customer=customer)


def customer_token_revoke(*, raw_token: str) -> int:
    return CustomerToken.objects.filter(key_hash=token_hash(raw_token), revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def otp_dev_echo_enabled() -> bool:
    return bool(getattr(settings, "CUSTOMER_OTP_DEV_ECHO", False))
