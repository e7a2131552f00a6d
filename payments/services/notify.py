"""The provider's one notify URL: a payment or a refund notify, verified once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.utils import timezone

from payments.provider import PAYMENT_SUCCEEDED
from payments.services.payment import PaymentResult, notify_verify, payment_record_event
from payments.services.refund import RefundResult, refund_record_event


def provider_notify_record(*, provider: str, headers: Mapping[str, str], body: bytes,
                           now: datetime | None = None) -> PaymentResult | RefundResult:
    """One entry point for a provider's single notify URL: payment or refund, verified once."""
    now = now or timezone.now()
    event = notify_verify(provider=provider, headers=headers, body=body, now=now)
    if event.kind == PAYMENT_SUCCEEDED:
        return payment_record_event(provider=provider, event=event, now=now)
    return refund_record_event(provider=provider, event=event, now=now)
