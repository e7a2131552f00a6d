"""The ``oms`` route: e-voucher orders are fulfilled by the OMS, never by the POS.

- Paid (``pay``, or created already paid): an outbox message
  ``fulfilment.voucher_issue`` (key = the order number) is written in the same
  transaction as the payment. Its handler, ``voucher_issue_deliver``, asks the OMS
  for the codes over HTTP (orders.fulfilment.oms_client) and records them with
  ``orders.services.vouchers.voucher_codes_record_issued``, which runs ``issue``.
  A failing OMS is retried by the outbox with backoff, then dead-lettered.
- Refunded, or cancelled after payment: the codes not yet redeemed become void, here
  and (``fulfilment.voucher_void``, always sent, so codes whose issue answer was lost
  are voided too) at the OMS.
- Redeemed: at the POS (``POST /api/pos/v1/vouchers/redeem``; the OMS is told with
  ``fulfilment.voucher_redeemed``) or reported by the OMS
  (``POST /api/v1/fulfilment/oms/callback``), both through
  ``orders.services.vouchers.voucher_code_redeem``.

All three topics use the order number as the outbox key, so the OMS hears about one
order's issue, redemptions and void in that order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.actors import Actor
from core.models import OutboxMessage, OutboxStatus
from core.outbox import OutboxPermanentError, outbox_enqueue
from orders.fulfilment.base import FulfilmentRoute
from orders.fulfilment.registry import OMS_ROUTE
from orders.fulfilment.oms_client import IssueItem, OmsRejected, oms_client
from orders.models import Order, OrderAction, OrderEvent, OrderFlagKind, OrderLine, OrderStatus, VoucherCode
from orders.services.sync import order_flag
from orders.services.vouchers import (
    VOUCHER_REDEEMED_TOPIC,
    IssuedCode,
    VoucherCodesMismatch,
    VoucherNotRedeemable,
    VoucherRedemption,
    voucher_code_redeem,
    voucher_codes_record_issued,
    voucher_codes_void,
)

logger = logging.getLogger(__name__)

VOUCHER_ISSUE_TOPIC = "fulfilment.voucher_issue"
VOUCHER_VOID_TOPIC = "fulfilment.voucher_void"
OMS_ACTOR = "oms"


def oms_actor() -> Actor:
    return Actor.system(OMS_ACTOR)


class OmsRoute(FulfilmentRoute):
    name = OMS_ROUTE

    def order_changed(self, *, order: Order, action: str, from_status: str) -> None:
        became_paid = action == OrderAction.PAY or (action == OrderAction.CREATE and order.status == OrderStatus.PAID)
        if became_paid:
            outbox_enqueue(topic=VOUCHER_ISSUE_TOPIC, key=order.order_no, brand_id=order.brand_id,
                           payload={"order_no": order.order_no, "store_id": order.store_id})
        elif action == OrderAction.REFUND or (action == OrderAction.CANCEL
                                              and from_status != OrderStatus.PENDING_PAYMENT):
            # Refunded, or cancelled after payment: the issue message went out (or is
            # queued), and the OMS may hold codes we never heard of (an issue answer
            # lost on the way). Void them here and, always, there: same key, so the
            # void reaches the OMS after any issue call; no codes there is fine.
            voucher_codes_void(order=order)
            outbox_enqueue(topic=VOUCHER_VOID_TOPIC, key=order.order_no, brand_id=order.brand_id,
                           payload={"order_no": order.order_no})

    def outbox_handlers(self):
        return {VOUCHER_ISSUE_TOPIC: voucher_issue_deliver, VOUCHER_REDEEMED_TOPIC: voucher_redeemed_deliver,
                VOUCHER_VOID_TOPIC: voucher_void_deliver}


def voucher_issue_deliver(message: OutboxMessage) -> None:
    """Outbox handler of ``fulfilment.voucher_issue``: one OMS call, then the codes
    are recorded. Safe to run twice: an order no longer ``paid`` is skipped, the OMS
    answers the same codes for the same order number, and recording them again
    changes nothing."""
    order_no = message.payload["order_no"]
    order = Order.objects.filter(order_no=order_no).only("id", "order_no", "status", "store_id").first()
    if order is None:
        raise OutboxPermanentError(f"no order {order_no}")
    if order.status != OrderStatus.PAID:
        logger.info("voucher order not waiting for codes; nothing asked",
                    extra={"order_no": order_no, "status": order.status})
        return
    lines = OrderLine.objects.filter(order_id=order.pk).order_by("line_no")
    items = [IssueItem(line_no=line.line_no, sku=line.sku_code, name=line.name, qty=line.quantity,
                       face_value=line.unit_price) for line in lines]
    try:
        issued = oms_client().issue(order_no=order_no, store_ref=str(order.store_id), items=items)
    except OmsRejected as exc:
        raise OutboxPermanentError(f"{exc}: {exc.detail}") from exc
    try:
        voucher_codes_record_issued(
            order_no=order_no, actor=oms_actor(),
            codes=[IssuedCode(code=v.code, line_no=v.line_no, sku_code=v.sku) for v in issued],
        )
    except VoucherCodesMismatch as exc:  # the same answer would come back: a person's call
        raise OutboxPermanentError(f"{exc}: {exc.detail}") from exc


def voucher_redeemed_deliver(message: OutboxMessage) -> None:
    """Outbox handler of ``fulfilment.voucher_redeemed``: one OMS call. A code the
    OMS had already seen redeemed at one of its shops (used twice) flags the order
    for a person; retrying cannot help."""
    payload = message.payload
    try:
        oms_client().redeem(code=payload["code"], order_no=payload["order_no"], store_ref=payload["store_ref"],
                            redeemed_at=datetime.fromisoformat(payload["redeemed_at"]))
    except OmsRejected as exc:
        if exc.detail.get("oms_code") != "ALREADY_REDEEMED":
            raise OutboxPermanentError(f"{exc}: {exc.detail}") from exc
        order = Order.objects.filter(order_no=payload["order_no"]).only("id").first()
        if order is not None:
            _flag_redeemed_twice(order_id=order.pk, code=payload["code"])


def _flag_redeemed_twice(*, order_id: int, code: str) -> None:
    _flag_once(order_id=order_id, kind=OrderFlagKind.VOUCHER_REDEEMED_TWICE, code=code,
               reason=str(_("The voucher code was also redeemed at a shop of the OMS.")))


def _flag_once(*, order_id: int, kind: str, code: str, reason: str) -> None:
    """Once per code and kind: both sides of a double use, or a retried report, may notice it."""
    if OrderEvent.objects.filter(order_id=order_id, action=OrderAction.FLAG, data__kind=kind,
                                 data__code=code).exists():
        return
    order_flag(order_id=order_id, actor=oms_actor(), kind=kind, reason=reason, data={"code": code})


# A void that finds no order at the OMS while our issue message gave up (its last
# call may still be running there) is tried this many times before "nothing to void".
VOID_ABSENT_ATTEMPTS = 4


class VoidBeforeIssue(Exception):
    """The OMS knows no such order yet, but an issue call of ours may still be running there."""


def voucher_void_deliver(message: OutboxMessage) -> None:
    """Outbox handler of ``fulfilment.voucher_void``: the refunded or cancelled
    order's codes are voided at the OMS too (idempotent there). An OMS that never
    issued codes for the order has nothing to void: done.

    The void is behind the order's issue message (same key), so it never overtakes
    an issue call we are still retrying. But when the issue message gave up (a dead
    letter: its last call timed out, say), that call may still be running at the
    OMS and issue codes after our void: then "no such order" is retried, with the
    outbox's backoff, up to ``VOID_ABSENT_ATTEMPTS`` attempts."""
    order_no = message.payload["order_no"]
    try:
        oms_client().void(order_no=order_no)
    except OmsRejected as exc:
        if exc.detail.get("oms_code") == "ORDER_NOT_EXIST":
            if message.attempts < VOID_ABSENT_ATTEMPTS and _issue_gave_up(order_no=order_no):
                raise VoidBeforeIssue(f"no order {order_no} at the OMS yet; its issue message is dead") from exc
            return
        raise OutboxPermanentError(f"{exc}: {exc.detail}") from exc


def _issue_gave_up(*, order_no: str) -> bool:
    return OutboxMessage.objects.filter(topic=VOUCHER_ISSUE_TOPIC, key=order_no, status=OutboxStatus.DEAD).exists()


def oms_callback_record(*, headers: Mapping[str, str], body: bytes, now: datetime | None = None):
    """A signed ``voucher.redeemed`` report from the OMS: verified (bad signature
    401, stale timestamp or malformed 400), then the code is redeemed. A replay
    changes nothing; the report of a code already redeemed at our POS (used
    twice) changes nothing either but flags the order for a person. Returns the
    ``VoucherRedemption``."""
    report = oms_client().callback_verify(headers=headers, body=body, now=now or timezone.now())
    try:
        redemption = voucher_code_redeem(code=report.code, order_no=report.order_no, actor=oms_actor(),
                                         store_ref=report.store_ref, redeemed_at=report.redeemed_at,
                                         replay_ok=True, report_to_oms=False)
    except VoucherNotRedeemable:
        # The customer used a code at an OMS shop after we voided it (refund or cancel
        # raced the OMS): a fact we cannot undo. Acknowledged, and put before a person.
        order = Order.objects.get(order_no=report.order_no)
        _flag_once(order_id=order.pk, kind=OrderFlagKind.VOUCHER_REDEEMED_AFTER_VOID, code=report.code,
                   reason=str(_("A voided voucher code was used at a shop of the OMS.")))
        voucher = VoucherCode.objects.get(code=report.code, order=order)
        return VoucherRedemption(order=Order.objects.get(pk=order.pk), voucher=voucher, first_time=False,
                                 codes_left=0)
    if not redemption.first_time and redemption.voucher.redeemed_by_id != OMS_ACTOR:
        # Redeemed here (POS) before the OMS's report of a use at one of its shops arrived.
        _flag_redeemed_twice(order_id=redemption.order.pk, code=report.code)
    return redemption
