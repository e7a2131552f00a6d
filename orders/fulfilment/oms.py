"""The ``oms`` route: e-voucher orders are fulfilled by the OMS, never by the POS.

- Paid (``pay``, or created already paid): an outbox message
  ``fulfilment.voucher_issue`` (key = the order number) is written in the same
  transaction as the payment. Its handler, ``voucher_issue_deliver``, asks the OMS
  for the codes over HTTP (orders.fulfilment.oms_client) and records them with
  ``orders.services.vouchers.voucher_codes_record_issued``, which runs ``issue``.
  A failing OMS is retried by the outbox with backoff, then dead-lettered.
- Refunded: the codes not yet redeemed become void.
- Redeemed: at the POS (``POST /api/pos/v1/vouchers/redeem``) or reported by the
  OMS (``POST /api/v1/fulfilment/oms/callback``), both through
  ``orders.services.vouchers.voucher_code_redeem``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.utils import timezone

from core.actors import Actor
from core.models import OutboxMessage
from core.outbox import OutboxPermanentError, outbox_enqueue
from orders.fulfilment.base import FulfilmentRoute
from orders.fulfilment.registry import OMS_ROUTE
from orders.models import Order, OrderAction, OrderLine, OrderStatus

logger = logging.getLogger(__name__)

VOUCHER_ISSUE_TOPIC = "fulfilment.voucher_issue"
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
        elif action == OrderAction.REFUND:
            from orders.services.vouchers import voucher_codes_void

            voucher_codes_void(order=order)

    def outbox_handlers(self):
        return {VOUCHER_ISSUE_TOPIC: voucher_issue_deliver}


def voucher_issue_deliver(message: OutboxMessage) -> None:
    """Outbox handler of ``fulfilment.voucher_issue``: one OMS call, then the codes
    are recorded. Safe to run twice: an order no longer ``paid`` is skipped, the OMS
    answers the same codes for the same order number, and recording them again
    changes nothing."""
    from orders.fulfilment.oms_client import IssueItem, OmsRejected, oms_client
    from orders.services.vouchers import IssuedCode, VoucherCodesMismatch, voucher_codes_record_issued

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


def oms_callback_record(*, headers: Mapping[str, str], body: bytes, now: datetime | None = None):
    """A signed ``voucher.redeemed`` report from the OMS: verified (bad signature
    401, stale timestamp or malformed 400), then the code is redeemed. A replay
    (or a report of a code already redeemed at the POS) changes nothing. Returns
    the ``VoucherRedemption``."""
    from orders.fulfilment.oms_client import oms_client
    from orders.services.vouchers import voucher_code_redeem

    report = oms_client().callback_verify(headers=headers, body=body, now=now or timezone.now())
    return voucher_code_redeem(code=report.code, order_no=report.order_no, actor=oms_actor(),
                               store_ref=report.store_ref, redeemed_at=report.redeemed_at, replay_ok=True)
