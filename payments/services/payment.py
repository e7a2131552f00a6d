"""Payments: start a payment, close it, record the provider's payment notify,
reconcile a lost one. Keyword-only, ``<entity>_<verb>``; see the package docstring.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidInput
from payments.errors import (
    NotifyMalformed,
    PaymentAlreadySucceeded,
    PaymentClosed,
    PaymentMismatch,
    PaymentNotFound,
)
from payments.accounts import client_for_brand, client_for_notify, client_for_payment, notify_account_check
from payments.models import PAID_STATUSES, PAYABLE_STATUSES, PaymentAccount, PaymentStatus, PaymentTransaction
from payments.provider import PAYMENT_SUCCEEDED, NotifyEvent, WxPayClient, fen_to_yuan, yuan_to_fen

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


def _payment_result(payment: PaymentTransaction, *, first_time: bool) -> PaymentResult:
    return PaymentResult(
        out_trade_no=payment.out_trade_no, order_ref=payment.order_ref, provider=payment.provider,
        brand_id=payment.brand_id, amount=payment.amount, transaction_id=payment.transaction_id,
        paid_at=payment.paid_at, first_time=first_time,
    )


def _new_out_trade_no() -> str:
    return uuid.uuid4().hex  # 32 characters, the provider's maximum


def positive_fen(amount: Decimal) -> int:
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
    client = client_for_brand(provider=provider, brand_id=brand_id)
    amount_fen = positive_fen(amount)
    description = description[:127]
    with transaction.atomic():
        payment, created = PaymentTransaction.objects.get_or_create(
            order_ref=order_ref,
            defaults={"provider": provider, "out_trade_no": _new_out_trade_no(), "brand_id": brand_id,
                      "store_id": store_id, "description": description, "amount": fen_to_yuan(amount_fen),
                      "amount_fen": amount_fen, "mchid": client.mchid},
        )
    if not created and (payment.provider, payment.amount_fen, payment.brand_id) != (provider, amount_fen, brand_id):
        raise PaymentMismatch(detail={"order_ref": order_ref, "amount": str(payment.amount),
                                      "provider": payment.provider})
    if payment.status in PAID_STATUSES:
        raise PaymentAlreadySucceeded(detail={"order_ref": order_ref, "status": payment.status})
    if payment.status == PaymentStatus.CLOSED:
        raise PaymentClosed(detail={"order_ref": order_ref, "status": payment.status})

    if not created:  # resumed: the account it was made to, even if the brand's changed since
        client = client_for_payment(payment)
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


@dataclass(frozen=True)
class VerifiedNotify:
    """A notify whose signature and timestamp checked out with the key of ``client``'s
    account (``account``: the brand's, None for the environment's)."""

    event: NotifyEvent
    client: WxPayClient
    account: PaymentAccount | None

    def check(self, payment: PaymentTransaction) -> None:
        """It may only speak of a payment made to that account (payments.accounts)."""
        notify_account_check(client=self.client, account=self.account, payment=payment)


def notify_verify(*, provider: str, headers: Mapping[str, str], body: bytes, now: datetime,
                  brand_code: str | None = None) -> VerifiedNotify:
    """Verify a notify with the key of the account its URL names (``brand_code``, None for
    the environment's). Raises PaymentAccountUnknown, NotifyBadSignature, NotifyStaleTimestamp,
    NotifyMalformed."""
    client, account = client_for_notify(provider=provider, brand_code=brand_code)
    return VerifiedNotify(event=client.notify_verify(headers=headers, body=body, now=now), client=client,
                          account=account)


def payment_record_event(*, provider: str, event: NotifyEvent, now: datetime,
                         verified: VerifiedNotify | None = None) -> PaymentResult:
    """Record a payment notify (``verified``: its account is checked against the payment
    before anything changes) or a query's answer."""
    payment = _payment_for_event(provider=provider, out_trade_no=event.out_trade_no)
    if verified is not None:
        verified.check(payment)
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
    verified = notify_verify(provider=provider, headers=headers, body=body, now=now)
    event = verified.event
    if event.kind != PAYMENT_SUCCEEDED:
        raise NotifyMalformed(_("This is not a payment notification."), detail={"event_type": event.event_type})
    return payment_record_event(provider=provider, event=event, now=now, verified=verified)


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
    answer = client_for_payment(payment).query(out_trade_no=out_trade_no)
    if not answer.paid:
        return None
    return _payment_mark_succeeded(payment=payment, transaction_id=answer.transaction_id,
                                   amount_fen=answer.amount_fen, paid_at=answer.paid_at,
                                   payload={"source": "query", "answer": answer.raw}, now=now)
