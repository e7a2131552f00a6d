"""The provider's notify URLs: a payment or a refund notify, verified once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.utils import timezone

from payments.provider import PAYMENT_SUCCEEDED
from payments.services.payment import PaymentResult, notify_verify, payment_record_event
from payments.services.refund import RefundResult, refund_record_event


def provider_notify_record(*, provider: str, headers: Mapping[str, str], body: bytes,
                           now: datetime | None = None, brand_code: str | None = None) -> PaymentResult | RefundResult:
    """One entry point for a provider's notify URLs (the environment's account, or a
    brand's: ``brand_code``): payment or refund, verified once with that account's key,
    and only about a payment made to that account (payments.accounts)."""
    now = now or timezone.now()
    verified = notify_verify(provider=provider, headers=headers, body=body, now=now, brand_code=brand_code)
    if verified.event.kind == PAYMENT_SUCCEEDED:
        return payment_record_event(provider=provider, event=verified.event, now=now, verified=verified)
    return refund_record_event(provider=provider, event=verified.event, now=now, verified=verified)
