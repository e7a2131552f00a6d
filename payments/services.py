"""Payment workflows: start a payment, record the provider's notifies, reconcile,
refund. Keyword-only, ``<entity>_<verb>``.

Orders calls these with its opaque order_no (``order_ref``) and acts on the
results (``first_time`` says whether this call is the one that changed the
payment, so the caller marks the order paid exactly once). Preconditions common
to the functions that call the provider (payment_start, payment_reconcile,
refund_start, refund_reconcile): call them OUTSIDE any transaction; they commit
their own rows before the HTTP call and hold no lock during it.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidInput
from payments.errors import (
    NotifyMalformed,
    PaymentAlreadySucceeded,
    PaymentClosed,
    PaymentMismatch,
    PaymentNotFound,
    RefundExceedsPaid,
    RefundNotAllowed,
    RefundNotFound,
    RefundRefReused,
)
from payments.models import (
    PAID_STATUSES,
    PAYABLE_STATUSES,
    PaymentRefund,
    PaymentStatus,
    PaymentTransaction,
    RefundStatus,
)
from payments.provider import (
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    NotifyEvent,
    fen_to_yuan,
    provider_client,
    yuan_to_fen,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentResult:
    out_trade_no: str
    order_ref: str
    provider: str
    brand_id: int
    amount: Decimal
    transaction_id: str
    paid_at: datetime | None
    # True only for the one call that moved the payment to succeeded.
    first_time: bool


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    refund_ref: str
    order_ref: str
    amount: Decimal
    refund_id: str
    status: str  # RefundStatus value after this call
    succeeded_at: datetime | None
    # True only for the one call that moved the refund to succeeded (or failed).
    first_time: bool


def _payment_result(payment: PaymentTransaction, *, first_time: bool) -> PaymentResult:
    return PaymentResult(
        out_trade_no=payment.out_trade_no, order_ref=payment.order_ref, provider=payment.provider,
        brand_id=payment.brand_id, amount=payment.amount, transaction_id=payment.transaction_id,
        paid_at=payment.paid_at, first_time=first_time,
    )


def _refund_result(refund: PaymentRefund, *, first_time: bool) -> RefundResult:
    return RefundResult(
        out_refund_no=refund.out_refund_no, refund_ref=refund.refund_ref, order_ref=refund.transaction.order_ref,
        amount=refund.amount, refund_id=refund.refund_id, status=refund.status, succeeded_at=refund.succeeded_at,
        first_time=first_time,
    )


def _new_out_trade_no() -> str:
    return uuid.uuid4().hex  # 32 characters, the provider's maximum


def refund_out_no(*, order_ref: str, refund_ref: str) -> str:
    """The provider-side refund number: a pure function of (order_ref, refund_ref)."""
    digest = hashlib.sha256(f"{order_ref}\x1f{refund_ref}".encode()).hexdigest()
    return f"R{digest[:31]}"


def _positive_fen(amount: Decimal) -> int:
    fen = yuan_to_fen(amount)
    if fen < 1:
        raise InvalidInput(_("The amount must be at least 0.01."), code="invalid_amount",
                           detail={"amount": str(amount)})
    return fen


# --- Payments -----------------------------------------------------------------------


def payment_start(*, order_ref: str, brand_id: int, amount: Decimal, description: str, provider: str = "wxpay",
                  store_id: int | None = None) -> dict:
    """Start (or resume) paying for ``order_ref``; returns what the mini-program needs.

    Idempotent per order_ref: the first call creates the payment row (committed
    in its own transaction) and then asks the provider for a prepay_id; later
    calls reuse the row and its prepay_id. If the provider call fails the row
    stays ``created`` without a prepay_id and a later call retries it (the
    provider answers the same prepay_id for the same out_trade_no).

    Returns ``{"provider", "out_trade_no", "amount": "23.50", "params": {appId,
    timeStamp, nonceStr, package, signType, paySign}}``.
    Raises PaymentAlreadySucceeded, PaymentClosed, PaymentMismatch (another
    amount/provider/brand for the same order), InvalidInput, PaymentProvider*.
    Precondition: no open transaction (see the module docstring).
    """
    client = provider_client(provider)
    amount_fen = _positive_fen(amount)
    description = description[:127]
    with transaction.atomic():
        payment, created = PaymentTransaction.objects.get_or_create(
            order_ref=order_ref,
            defaults={"provider": provider, "out_trade_no": _new_out_trade_no(), "brand_id": brand_id,
                      "store_id": store_id, "description": description, "amount": fen_to_yuan(amount_fen),
                      "amount_fen": amount_fen},
        )
    if not created and (payment.provider, payment.amount_fen, payment.brand_id) != (provider, amount_fen, brand_id):
        raise PaymentMismatch(detail={"order_ref": order_ref, "amount": str(payment.amount),
                                      "provider": payment.provider})
    if payment.status in PAID_STATUSES:
        raise PaymentAlreadySucceeded(detail={"order_ref": order_ref, "status": payment.status})
    if payment.status == PaymentStatus.CLOSED:
        raise PaymentClosed(detail={"order_ref": order_ref, "status": payment.status})

    if not payment.prepay_id:
        prepay_id = client.prepay_create(out_trade_no=payment.out_trade_no, amount=payment.amount,
                                         description=payment.description, notify_url=client.notify_url)
        # A concurrent start for the same out_trade_no got the same prepay_id; first save wins.
        PaymentTransaction.objects.filter(pk=payment.pk, prepay_id="").update(
            prepay_id=prepay_id, updated_at=timezone.now()
        )
        payment.prepay_id = prepay_id
    return {
        "provider": payment.provider,
        "out_trade_no": payment.out_trade_no,
        "amount": str(payment.amount),
        "params": client.jsapi_params(prepay_id=payment.prepay_id),
    }


def payment_close(*, order_ref: str) -> bool:
    """Stop expecting a payment for ``order_ref`` (e.g. the order expired).

    Only a ``created`` payment closes; returns whether this call closed it. A
    SUCCESS notify that still arrives afterwards wins (money was taken) and is
    reported with first_time=True, so the caller can refund it.
    """
    updated = PaymentTransaction.objects.filter(order_ref=order_ref, status=PaymentStatus.CREATED).update(
        status=PaymentStatus.CLOSED, updated_at=timezone.now()
    )
    return updated == 1


def payments_close_for_orders(*, order_refs: list[str]) -> int:
    """``payment_close`` for many orders at once (the expiry sweep)."""
    if not order_refs:
        return 0
    return PaymentTransaction.objects.filter(order_ref__in=order_refs, status=PaymentStatus.CREATED).update(
        status=PaymentStatus.CLOSED, updated_at=timezone.now()
    )


def _payment_mark_succeeded(*, payment: PaymentTransaction, transaction_id: str, amount_fen: int | None,
                            paid_at: datetime | None, payload: dict, now: datetime) -> PaymentResult:
    if amount_fen is not None and amount_fen != payment.amount_fen:
        logger.error("payment %s: provider reports %s fen, expected %s", payment.out_trade_no, amount_fen,
                     payment.amount_fen)
        raise PaymentMismatch(detail={"out_trade_no": payment.out_trade_no, "expected_fen": payment.amount_fen,
                                      "reported_fen": amount_fen})
    # Conditional update: of any number of notifies, queries and replays, exactly one changes the row.
    updated = PaymentTransaction.objects.filter(pk=payment.pk, status__in=PAYABLE_STATUSES).update(
        status=PaymentStatus.SUCCEEDED, transaction_id=transaction_id, paid_at=paid_at or now,
        notify_payload=payload, updated_at=now,
    )
    payment.refresh_from_db()
    return _payment_result(payment, first_time=updated == 1)


def _payment_for_event(*, provider: str, out_trade_no: str) -> PaymentTransaction:
    payment = PaymentTransaction.objects.filter(provider=provider, out_trade_no=out_trade_no).first()
    if payment is None:
        raise PaymentNotFound(detail={"out_trade_no": out_trade_no})
    return payment


def _notify_verify(*, provider: str, headers: Mapping[str, str], body: bytes, now: datetime) -> NotifyEvent:
    return provider_client(provider).notify_verify(headers=headers, body=body, now=now)


def _payment_record_event(*, provider: str, event: NotifyEvent, now: datetime) -> PaymentResult:
    payment = _payment_for_event(provider=provider, out_trade_no=event.out_trade_no)
    return _payment_mark_succeeded(payment=payment, transaction_id=event.transaction_id, amount_fen=event.amount_fen,
                                   paid_at=event.paid_at, payload=event.payload, now=now)


def payment_notify_record(*, provider: str, headers: Mapping[str, str], body: bytes,
                          now: datetime | None = None) -> PaymentResult:
    """Verify a payment notify and mark the payment succeeded.

    A replay (or a notify after reconciliation already marked it) changes
    nothing and returns first_time=False. Raises NotifyBadSignature (401),
    NotifyStaleTimestamp, NotifyMalformed (also for a non-payment event),
    PaymentNotFound, PaymentMismatch (the notified amount differs).
    """
    now = now or timezone.now()
    event = _notify_verify(provider=provider, headers=headers, body=body, now=now)
    if event.kind != PAYMENT_SUCCEEDED:
        raise NotifyMalformed(_("This is not a payment notification."), detail={"event_type": event.event_type})
    return _payment_record_event(provider=provider, event=event, now=now)


def payment_reconcile(*, out_trade_no: str, now: datetime | None = None) -> PaymentResult | None:
    """Ask the provider about a payment we have no notify for (a lost notify).

    Returns None while the provider says it is not paid; a PaymentResult once it
    is (first_time=True only for the call that recorded it). A payment already
    recorded returns first_time=False without calling the provider.
    Precondition: no open transaction.
    """
    now = now or timezone.now()
    payment = PaymentTransaction.objects.filter(out_trade_no=out_trade_no).first()
    if payment is None:
        raise PaymentNotFound(detail={"out_trade_no": out_trade_no})
    if payment.status in PAID_STATUSES:
        return _payment_result(payment, first_time=False)
    # Recorded before asking, so a provider that fails for this payment does not keep
    # it at the head of the next run's list.
    PaymentTransaction.objects.filter(pk=payment.pk).update(checked_at=now)
    answer = provider_client(payment.provider).query(out_trade_no=out_trade_no)
    if not answer.paid:
        return None
    return _payment_mark_succeeded(payment=payment, transaction_id=answer.transaction_id,
                                   amount_fen=answer.amount_fen, paid_at=answer.paid_at,
                                   payload={"source": "query", "answer": answer.raw}, now=now)


# --- Refunds --------------------------------------------------------------------------


def refund_start(*, order_ref: str, refund_ref: str, amount: Decimal, reason: str) -> PaymentRefund:
    """Refund ``amount`` of the payment for ``order_ref``; idempotent per (order_ref, refund_ref).

    The refund row (status processing) commits first, under a lock on the
    payment row so concurrent refunds cannot exceed what was paid; then the
    provider is asked. A repeat with the same refund_ref returns the same refund
    (and re-sends it to the provider if the first call never got an answer);
    the same refund_ref with another amount raises RefundRefReused. A failed
    refund stays failed: retry with a new refund_ref.
    Raises PaymentNotFound, RefundNotAllowed (not paid), RefundExceedsPaid,
    InvalidInput, PaymentProvider*. Precondition: no open transaction.
    """
    amount_fen = _positive_fen(amount)
    out_refund_no = refund_out_no(order_ref=order_ref, refund_ref=refund_ref)
    with transaction.atomic():
        payment = PaymentTransaction.objects.select_for_update().filter(order_ref=order_ref).first()
        if payment is None:
            raise PaymentNotFound(detail={"order_ref": order_ref})
        refund = PaymentRefund.objects.filter(out_refund_no=out_refund_no).first()
        if refund is not None:
            if refund.amount_fen != amount_fen:
                raise RefundRefReused(detail={"refund_ref": refund_ref, "amount": str(refund.amount)})
        else:
            if payment.status not in PAID_STATUSES:
                raise RefundNotAllowed(detail={"order_ref": order_ref, "status": payment.status})
            committed = payment.refunds.exclude(status=RefundStatus.FAILED).aggregate(
                total=Sum("amount_fen"))["total"] or 0
            if committed + amount_fen > payment.amount_fen:
                raise RefundExceedsPaid(detail={"refundable": str(fen_to_yuan(payment.amount_fen - committed))})
            refund = PaymentRefund.objects.create(
                transaction=payment, refund_ref=refund_ref, out_refund_no=out_refund_no,
                amount=fen_to_yuan(amount_fen), amount_fen=amount_fen, reason=reason[:80],
            )
    if refund.status != RefundStatus.PROCESSING or refund.refund_id:
        return refund
    client = provider_client(payment.provider)
    answer = client.refund(out_trade_no=payment.out_trade_no, out_refund_no=out_refund_no, amount=refund.amount,
                           total=payment.amount, reason=refund.reason, notify_url=client.notify_url)
    PaymentRefund.objects.filter(pk=refund.pk, refund_id="").update(refund_id=answer.refund_id,
                                                                    updated_at=timezone.now())
    if answer.succeeded:
        _refund_mark_succeeded(refund=refund, refund_id=answer.refund_id, succeeded_at=answer.succeeded_at,
                               payload={"source": "refund", "answer": answer.raw}, now=timezone.now())
    refund.refresh_from_db()
    return refund


def _refund_mark_succeeded(*, refund: PaymentRefund, refund_id: str, succeeded_at: datetime | None, payload: dict,
                           now: datetime) -> bool:
    updated = PaymentRefund.objects.filter(pk=refund.pk, status=RefundStatus.PROCESSING).update(
        status=RefundStatus.SUCCEEDED, refund_id=refund_id, succeeded_at=succeeded_at or now,
        notify_payload=payload, updated_at=now,
    )
    if updated:
        _payment_mark_refunded_if_complete(payment_id=refund.transaction_id, now=now)
    return updated == 1


def _payment_mark_refunded_if_complete(*, payment_id: int, now: datetime) -> None:
    with transaction.atomic():
        payment = PaymentTransaction.objects.select_for_update().get(pk=payment_id)
        refunded = payment.refunds.filter(status=RefundStatus.SUCCEEDED).aggregate(
            total=Sum("amount_fen"))["total"] or 0
        if refunded >= payment.amount_fen and payment.status == PaymentStatus.SUCCEEDED:
            PaymentTransaction.objects.filter(pk=payment.pk).update(status=PaymentStatus.REFUNDED, updated_at=now)


def _refund_record_event(*, provider: str, event: NotifyEvent, now: datetime) -> RefundResult:
    refund = (PaymentRefund.objects.select_related("transaction")
              .filter(out_refund_no=event.out_refund_no, transaction__provider=provider).first())
    if refund is None:
        raise RefundNotFound(detail={"out_refund_no": event.out_refund_no})
    if event.kind == REFUND_SUCCEEDED:
        first_time = _refund_mark_succeeded(refund=refund, refund_id=event.refund_id,
                                            succeeded_at=event.refund_succeeded_at, payload=event.payload, now=now)
    else:
        first_time = PaymentRefund.objects.filter(pk=refund.pk, status=RefundStatus.PROCESSING).update(
            status=RefundStatus.FAILED, refund_id=event.refund_id, notify_payload=event.payload, updated_at=now,
        ) == 1
    refund.refresh_from_db()
    return _refund_result(refund, first_time=first_time)


def refund_notify_record(*, provider: str, headers: Mapping[str, str], body: bytes,
                         now: datetime | None = None) -> RefundResult:
    """Verify a refund notify (REFUND.SUCCESS, or REFUND.ABNORMAL/CLOSED = failed) and record it.

    A replay returns first_time=False and changes nothing. When the succeeded
    refunds reach the amount paid, the payment becomes ``refunded``.
    """
    now = now or timezone.now()
    event = _notify_verify(provider=provider, headers=headers, body=body, now=now)
    if event.kind not in (REFUND_SUCCEEDED, REFUND_FAILED):
        raise NotifyMalformed(_("This is not a refund notification."), detail={"event_type": event.event_type})
    return _refund_record_event(provider=provider, event=event, now=now)


def provider_notify_record(*, provider: str, headers: Mapping[str, str], body: bytes,
                           now: datetime | None = None) -> PaymentResult | RefundResult:
    """One entry point for a provider's single notify URL: payment or refund, verified once."""
    now = now or timezone.now()
    event = _notify_verify(provider=provider, headers=headers, body=body, now=now)
    if event.kind == PAYMENT_SUCCEEDED:
        return _payment_record_event(provider=provider, event=event, now=now)
    return _refund_record_event(provider=provider, event=event, now=now)


def refund_reconcile(*, out_refund_no: str, now: datetime | None = None) -> RefundResult | None:
    """Ask the provider about a refund still processing (a lost refund notify).

    Returns None while it is still processing at the provider. Precondition: no open transaction.
    """
    now = now or timezone.now()
    refund = PaymentRefund.objects.select_related("transaction").filter(out_refund_no=out_refund_no).first()
    if refund is None:
        raise RefundNotFound(detail={"out_refund_no": out_refund_no})
    if refund.status != RefundStatus.PROCESSING:
        return _refund_result(refund, first_time=False)
    answer = provider_client(refund.transaction.provider).refund_query(out_refund_no=out_refund_no)
    if answer is None or not (answer.succeeded or answer.failed):
        return None
    if answer.succeeded:
        first_time = _refund_mark_succeeded(refund=refund, refund_id=answer.refund_id,
                                            succeeded_at=answer.succeeded_at,
                                            payload={"source": "query", "answer": answer.raw}, now=now)
    else:
        first_time = PaymentRefund.objects.filter(pk=refund.pk, status=RefundStatus.PROCESSING).update(
            status=RefundStatus.FAILED, refund_id=answer.refund_id, updated_at=now,
            notify_payload={"source": "query", "answer": answer.raw},
        ) == 1
    refund.refresh_from_db()
    return _refund_result(refund, first_time=first_time)
