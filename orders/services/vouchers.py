"""E-voucher codes: recording what the OMS issued, redeeming, voiding.

Lock discipline: the order's row lock first (orders.locks), then its code rows.
A voucher order becomes ``issued`` when its codes are recorded (one per unit
bought) and ``redeemed`` when its LAST code is redeemed; a partly redeemed order
stays ``issued``. See docs/fulfilment.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.actors import Actor
from core.errors import Conflict, InvalidInput, NotFound
from core.outbox import outbox_enqueue
from orders.locks import order_lock, order_lock_by_no
from orders.models import Order, OrderAction, OrderFlagKind, OrderStatus, OrderType, VoucherCode, VoucherCodeState
from orders.services.core import order_transition
from orders.services.sync import order_flag

logger = logging.getLogger(__name__)

# The outbox topic telling the OMS of a code redeemed at one of our stores (delivered
# by the ``oms`` fulfilment route, orders.fulfilment.oms).
VOUCHER_REDEEMED_TOPIC = "fulfilment.voucher_redeemed"


@dataclass(frozen=True)
class IssuedCode:
    code: str
    line_no: int
    sku_code: str = ""


@dataclass(frozen=True)
class VoucherRedemption:
    order: Order
    voucher: VoucherCode
    codes_left: int  # codes of the order still to redeem (0: the order is now redeemed)
    first_time: bool  # False: a replayed report of a redemption already recorded


class VoucherAlreadyRedeemed(Conflict):
    code = "voucher_already_redeemed"
    default_message = _("This voucher code has already been redeemed.")


class VoucherNotRedeemable(Conflict):
    code = "voucher_not_redeemable"
    default_message = _("This voucher code cannot be redeemed.")


class VoucherCodesMismatch(Conflict):
    code = "voucher_codes_mismatch"
    default_message = _("The voucher system answered other codes than those recorded.")


def voucher_units(order: Order) -> dict[int, int]:
    """Codes an order needs per line number: one per unit bought."""
    return {line.line_no: line.quantity for line in order.lines.all()}


def voucher_codes_record_issued(*, order_no: str, codes: list[IssuedCode], actor: Actor,
                                now: datetime | None = None) -> Order:
    """Record the codes the OMS issued for a paid voucher order and run ``issue``.

    Idempotent: the same codes again change nothing (a repeated delivery of the
    outbox message); other codes for an order that has some are a 409. An order
    cancelled meanwhile keeps its status and is flagged for a person (its codes
    exist at the OMS and must be voided there). Takes the order's row lock.
    """
    now = now or timezone.now()
    with transaction.atomic():
        order = order_lock_by_no(order_no=order_no)
        if order.order_type != OrderType.VOUCHER:
            raise InvalidInput(_("Only voucher orders have voucher codes."), code="not_a_voucher_order")
        existing = {row.code: row for row in VoucherCode.objects.filter(order=order)}
        if existing:
            if set(existing) != {c.code for c in codes}:
                raise VoucherCodesMismatch(detail={"order_no": order.order_no, "status": order.status})
            return order
        if order.status != OrderStatus.PAID:
            logger.warning("vouchers issued for an order no longer paid",
                           extra={"order_no": order.order_no, "status": order.status})
            order_flag(order_id=order.pk, actor=actor, kind=OrderFlagKind.VOUCHERS_AFTER_CANCEL,
                       reason=str(_("The OMS issued voucher codes after the order was cancelled; void them there.")),
                       data={"codes": sorted(c.code for c in codes)})
            return order
        wanted = voucher_units(order)
        got: dict[int, int] = {}
        for code in codes:
            got[code.line_no] = got.get(code.line_no, 0) + 1
        if got != wanted or len({c.code for c in codes}) != len(codes):
            raise VoucherCodesMismatch(_("The voucher system answered the wrong number of codes."),
                                       detail={"order_no": order.order_no, "status": order.status,
                                               "wanted": {str(k): v for k, v in wanted.items()},
                                               "got": {str(k): v for k, v in got.items()}})
        sku_by_line = {line.line_no: line.sku_code for line in order.lines.all()}
        try:
            with transaction.atomic():
                VoucherCode.objects.bulk_create([
                    VoucherCode(code=c.code, order=order, line_no=c.line_no,
                                sku_code=c.sku_code or sku_by_line.get(c.line_no, ""), issued_at=now)
                    for c in codes
                ])
        except IntegrityError:
            raise VoucherCodesMismatch(_("A voucher code is already used by another order."),
                                       detail={"order_no": order.order_no, "status": order.status}) from None
        return order_transition(order_id=order.pk, action=OrderAction.ISSUE, actor=actor, now=now)


def voucher_code_redeem(*, code: str, actor: Actor, store_id: int | None = None, order_no: str = "",
                        store_ref: str = "", redeemed_at: datetime | None = None,
                        replay_ok: bool = False, report_to_oms: bool = True) -> VoucherRedemption:
    """Redeem one code. With ``store_id`` (the POS) a code of another store is
    not found; with ``order_no`` (the OMS) a code of another order is not found.
    The order moves to ``redeemed`` with its last code. Unless ``report_to_oms``
    is off (the OMS itself reported it), an outbox message tells the OMS, in the
    same transaction.

    A code already redeemed is a 409 ``voucher_already_redeemed`` (``detail``:
    the order's status, when and by whom), unless ``replay_ok`` (a repeated OMS
    report), which answers the recorded redemption and changes nothing. A code
    of an order not ``issued`` (refunded: its codes are void) is a 409
    ``voucher_not_redeemable``. Takes the order's row lock, then the code's.
    """
    queryset = VoucherCode.objects.filter(code=code)
    if store_id is not None:
        queryset = queryset.filter(order__store_id=store_id)
    if order_no:
        queryset = queryset.filter(order__order_no=order_no)
    found = queryset.values_list("pk", "order_id").first()
    if found is None:
        raise NotFound(_("Voucher not found."), code="voucher_not_found")
    voucher_id, order_id = found
    redeemed_at = redeemed_at or timezone.now()
    with transaction.atomic():
        order = order_lock(order_id=order_id, store_id=store_id)
        voucher = VoucherCode.objects.select_for_update().get(pk=voucher_id)
        if voucher.state == VoucherCodeState.REDEEMED:
            if replay_ok:
                left = VoucherCode.objects.filter(order_id=order.pk, state=VoucherCodeState.ISSUED).count()
                return VoucherRedemption(order=order, voucher=voucher, codes_left=left, first_time=False)
            raise VoucherAlreadyRedeemed(detail={
                "code": voucher.code, "order_no": order.order_no, "status": order.status,
                "redeemed_at": voucher.redeemed_at.isoformat(), "redeemed_by": voucher.redeemed_by_kind,
            })
        if voucher.state != VoucherCodeState.ISSUED or order.status != OrderStatus.ISSUED:
            raise VoucherNotRedeemable(detail={"code": voucher.code, "order_no": order.order_no,
                                               "status": order.status, "voucher_state": voucher.state})
        voucher.state = VoucherCodeState.REDEEMED
        voucher.redeemed_at = redeemed_at
        voucher.redeemed_by_kind, voucher.redeemed_by_id, voucher.redeemed_by_name = actor.kind, actor.id, actor.name
        voucher.redeemed_store_ref = store_ref[:64]
        voucher.save(update_fields=["state", "redeemed_at", "redeemed_by_kind", "redeemed_by_id",
                                    "redeemed_by_name", "redeemed_store_ref"])
        if report_to_oms:
            voucher_redeemed_enqueue(order=order, code=voucher.code, store_id=order.store_id,
                                     redeemed_at=redeemed_at)
        left = VoucherCode.objects.filter(order_id=order.pk, state=VoucherCodeState.ISSUED).count()
        if left == 0:
            order = order_transition(order_id=order.pk, action=OrderAction.REDEEM, actor=actor,
                                     expected_store_id=store_id, now=redeemed_at)
    return VoucherRedemption(order=order, voucher=voucher, codes_left=left, first_time=True)


def voucher_redeemed_enqueue(*, order: Order, code: str, store_id: int, redeemed_at: datetime) -> None:
    """A code redeemed at one of our stores: the OMS must hear of it, so the code
    cannot be used again at a shop it serves. Call inside the redeeming
    transaction (same key as the issue message: delivered after it)."""
    outbox_enqueue(topic=VOUCHER_REDEEMED_TOPIC, key=order.order_no, brand_id=order.brand_id,
                   payload={"order_no": order.order_no, "code": code, "store_ref": str(store_id),
                            "redeemed_at": redeemed_at.isoformat()})


def voucher_codes_void(*, order: Order) -> int:
    """The order's codes not yet redeemed become void (the order is refunded).
    Precondition: inside the transaction of the change, with the order's row lock."""
    return VoucherCode.objects.filter(order_id=order.pk, state=VoucherCodeState.ISSUED).update(
        state=VoucherCodeState.VOID)
