"""Writes to after-sales requests. Every status change goes through ``_move``.

Who may do what (the machine's ``custom["actors"]`` plus the checks here):

- customers ask (own channels: their own paid orders, within the brand's
  after-sales window) and withdraw while the request awaits a decision;
- staff decide for the stores where they are store manager, or for every store of
  a brand where they are brand admin (a clerk sees requests but cannot decide),
  confirm returned goods, and ask on a customer's behalf (the admin's "refund");
- a POS with a manager terminal decides and confirms goods (pos checks the terminal);
- the platform records its customer's application and its own outcome;
- the deadline job approves (or escalates) own-channel requests nobody decided.

Locks: the request row, then the order row (``order_lock``, taken by the orders
services called here). A new request takes the order row only: asking and
deciding serialize on the order, so two requests never take the same units or
together more than was paid.

Money: an approved own-channel refund (or a return whose goods came back) becomes
one provider refund of exactly its amount, ``refund_ref`` ``as-<id>``
(orders.services.core.order_refund_commit); its outcome comes back through
``aftersales_refund_outcome`` (the notify) and ``aftersales_refunds_sync`` (the
job). A platform request's decision goes to the platform through the outbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_fsm import ConcurrentTransition, can_proceed

from accounts.models import StaffRole
from accounts.selectors import roles_for_store
from aftersales import amounts
from aftersales.models import (
    OPEN_STATUSES,
    AfterSalesEvent,
    AfterSalesKind,
    AfterSalesLine,
    AfterSalesReasonCode,
    AfterSalesRequest,
    AfterSalesScope,
    AfterSalesStatus,
    OverdueAction,
    RequestedBy,
)
from core.actors import Actor, ActorKind
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TransitionNotAllowed
from inventory.services import stock_restock, stock_write_off
from orders.locks import order_lock
from orders.models import Order, OrderAction, OrderFlagKind, OrderReasonCode, OrderStatus
from orders.models import StoreFeedEventType as FeedType
from orders.services.core import REFUNDABLE_STATUSES, order_after_sales_mark, order_refund_commit
from orders.services.feed import feed_record_after_sales
from orders.services.sync import REFUND_REJECT, order_flag, order_refund_requested_flag, order_sync_enqueue
from payments.models import RefundStatus
from payments.selectors import payment_get_for_order, refunds_for_ref

logger = logging.getLogger(__name__)

S = AfterSalesStatus
DECIDING_ROLES = frozenset({StaffRole.BRAND_ADMIN.value, StaffRole.STORE_MANAGER.value, "superuser"})
REFUND_REF_PREFIX = "as-"
CONFIRMED = frozenset({OrderStatus.DELIVERED, OrderStatus.PICKED_UP, OrderStatus.SERVED, OrderStatus.REDEEMED})


def after_sales_label() -> str:
    """The attention reason an open request puts on its order (and its end resolves)."""
    return _("refund requested")


def refund_ref_for(request_id: int) -> str:
    return f"{REFUND_REF_PREFIX}{request_id}"


# --- asking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineAsk:
    line_id: int
    quantity: int


def aftersales_request_create(*, order_id: int, actor: Actor, kind: str = AfterSalesKind.REFUND,
                              lines: list[LineAsk] | None = None, reason_code: str = AfterSalesReasonCode.OTHER,
                              reason: str = "", customer_id: int | None = None,
                              now: datetime | None = None) -> AfterSalesRequest:
    """A customer (``customer_id``: the order must be theirs) or staff asks back the
    whole order (``lines`` None or empty) or some units of some lines. Refused, with
    nothing changed: an order not paid, cancelled, refunded or completed (409
    ``order_not_refundable``); after the brand's window (409
    ``after_sales_window_closed``); an open request on the same lines (409
    ``after_sales_already_open``); more than is left (409); a line of another order
    (400). The deadline is the brand's response time from now."""
    now = now or timezone.now()
    if kind not in AfterSalesKind.values:
        raise InvalidInput(_("Unknown after-sales kind."), code="invalid_kind", detail={"kind": str(kind)})
    if reason_code not in AfterSalesReasonCode.values:
        raise InvalidInput(_("Unknown reason code."), code="invalid_reason_code", detail={"reason_code": str(reason_code)})
    if actor.kind not in (ActorKind.CUSTOMER, ActorKind.STAFF):
        raise InvalidInput(_("Only customers and staff ask for refunds here."), code="actor_not_allowed")
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if actor.kind == ActorKind.CUSTOMER and (customer_id is None or order.customer_id != customer_id):
            raise NotFound(_("Order not found."), code="order_not_found")
        if actor.kind == ActorKind.STAFF:
            _staff_check(actor=actor, store_id=order.store_id, brand_id=order.brand_id)
        _check_refundable(order=order, now=now)
        if kind == AfterSalesKind.RETURN and order.status not in CONFIRMED:
            raise Conflict(_("Goods can be returned only once the customer has them."), code="return_not_applicable",
                           detail={"order_no": order.order_no, "status": order.status})
        asked = [(item.line_id, item.quantity) for item in lines] if lines else None
        _check_no_overlap(order=order, asked=asked)
        brand = order.brand
        priced = amounts.quote(order=order, asked=asked, fees_with_last_lines=brand.after_sales_fees_with_last_lines)
        request = AfterSalesRequest.objects.create(
            brand_id=order.brand_id, store_id=order.store_id, order=order, kind=kind,
            scope=AfterSalesScope.ORDER if asked is None else AfterSalesScope.LINES,
            amount=priced.amount, fees_included=priced.fees_included, reason_code=reason_code,
            reason=str(reason).strip()[:255], requested_by=actor.kind, requester_id=str(actor.id)[:64],
            requester_name=str(actor.name)[:100],
            deadline=now + timedelta(hours=brand.after_sales_response_hours),
        )
        AfterSalesLine.objects.bulk_create([
            AfterSalesLine(request=request, order_line=item.line, quantity=item.quantity, amount=item.amount)
            for item in priced.lines
        ])
        _opened(request=request, order=order, actor=actor)
    return request


def _check_refundable(*, order: Order, now: datetime) -> None:
    if order.is_platform_order:
        raise Conflict(_("Platform orders are refunded through their platform."), code="platform_order",
                       detail={"order_no": order.order_no, "channel": order.channel})
    if order.status == OrderStatus.COMPLETED:
        raise Conflict(_("The after-sales window of this order has closed."), code="after_sales_window_closed",
                       detail={"order_no": order.order_no, "status": order.status})
    if order.status not in REFUNDABLE_STATUSES or order.paid_amount <= 0:
        raise Conflict(_("This order cannot be refunded in its status."), code="order_not_refundable",
                       detail={"order_no": order.order_no, "status": order.status})
    if order.status in CONFIRMED and order.confirmed_at is not None:
        closes = order.confirmed_at + timedelta(days=order.brand.after_sales_days)
        if now >= closes:
            raise Conflict(_("The after-sales window of this order has closed."), code="after_sales_window_closed",
                           detail={"order_no": order.order_no, "closed_at": closes.isoformat()})


def _check_no_overlap(*, order: Order, asked: list[tuple[int, int]] | None) -> None:
    open_requests = AfterSalesRequest.objects.filter(order_id=order.pk, status__in=OPEN_STATUSES)
    if asked is None:
        taken = open_requests.values_list("pk", flat=True)[:1]
    else:
        line_ids = [line_id for line_id, _qty in asked]
        taken = open_requests.filter(Q(scope=AfterSalesScope.ORDER) | Q(lines__order_line_id__in=line_ids)
                                     ).values_list("pk", flat=True)[:1]
    taken = list(taken)
    if taken:
        raise Conflict(_("An open request already asks back these lines."), code="after_sales_already_open",
                       detail={"order_no": order.order_no, "after_sales_id": str(taken[0])})


def _opened(*, request: AfterSalesRequest, order: Order, actor: Actor) -> None:
    """A new request: its audit row, the order flagged and held open, the POS told."""
    _audit(request=request, action="create", from_status="", actor=actor, reason=request.reason,
           data={"amount": str(request.amount), "kind": request.kind, "scope": request.scope})
    order_after_sales_mark(order_id=order.pk, open_=True)
    order = order_refund_requested_flag(order_id=order.pk, actor=actor, reason=after_sales_label(),
                                        data=_flag_data(request))
    feed_record_after_sales(order=order, event_type=FeedType.AFTERSALES_REQUESTED, after_sales_id=request.pk)


def _flag_data(request: AfterSalesRequest) -> dict:
    return {"after_sales_id": request.pk, "refund_id": request.platform_refund_id, "refund_kind": request.scope,
            "kind": request.kind, "amount": str(request.amount), "lines": request.platform_lines,
            "platform_reason": request.reason if request.requested_by == RequestedBy.PLATFORM else ""}


# --- deciding -----------------------------------------------------------------------------------


def aftersales_approve(*, request_id: int, actor: Actor, store_id: int | None = None, reason: str = "",
                       now: datetime | None = None) -> AfterSalesRequest:
    """Approve: a refund's money starts at once (own channel) or the agree goes to the
    platform; a return waits for the goods. ``store_id``: the caller's store (a POS):
    a request of another store is not found. Approving twice, or after a withdrawal,
    is refused (409) and refunds nothing more."""
    now = now or timezone.now()
    with transaction.atomic():
        request = _lock(request_id=request_id, store_id=store_id)
        _decider_check(actor=actor, request=request)
        if (request.requested_by != RequestedBy.PLATFORM and request.status == S.REQUESTED
                and request.order.status in (OrderStatus.CANCELLED, OrderStatus.REFUNDED)):
            # Cancelled (and refunded in full) since it was asked: nothing is left to give.
            raise Conflict(_("The order was cancelled or refunded meanwhile; reject the request."),
                           code="order_not_refundable",
                           detail={"order_no": request.order.order_no, "status": request.order.status})
        _move(request, "approve", actor=actor, now=now, decided_by=_who(actor), reason=reason)
        _closed(request=request, actor=actor, kind=OrderFlagKind.REFUND_AGREED, label=_("refund agreed"))
        if request.kind == AfterSalesKind.RETURN and request.requested_by != RequestedBy.PLATFORM:
            _move(request, "await_goods", actor=Actor.system("aftersales"), now=now)
        else:
            _start_refund(request=request, actor=actor, now=now)
        _sync_open(order_id=request.order_id)
    return request


def aftersales_reject(*, request_id: int, actor: Actor, reason: str, store_id: int | None = None,
                      now: datetime | None = None) -> AfterSalesRequest:
    """Reject with a reason (required: the customer reads it). A platform request's
    rejection goes to the platform with the reason."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("A reason is required to reject a request."), code="reason_required")
    now = now or timezone.now()
    with transaction.atomic():
        request = _lock(request_id=request_id, store_id=store_id)
        _decider_check(actor=actor, request=request)
        _move(request, "reject", actor=actor, now=now, decided_by=_who(actor), reason=reason)
        order = _closed(request=request, actor=actor, kind=OrderFlagKind.REFUND_REJECTED, label=_("refund rejected"),
                        data={"merchant_reason": reason[:255]})
        _sync_open(order_id=request.order_id)
        if request.requested_by == RequestedBy.PLATFORM:
            order_sync_enqueue(order=order, action=REFUND_REJECT, actor=actor, reason=reason[:255])
    return request


def aftersales_withdraw(*, request_id: int, actor: Actor, customer_id: int | None = None,
                        now: datetime | None = None) -> AfterSalesRequest:
    """The customer takes the request back, while it awaits a decision (409 after)."""
    now = now or timezone.now()
    with transaction.atomic():
        request = _lock(request_id=request_id)
        if actor.kind == ActorKind.CUSTOMER and (customer_id is None or request.order.customer_id != customer_id):
            raise NotFound(_("After-sales request not found."), code="after_sales_not_found")
        _move(request, "withdraw", actor=actor, now=now, decided_by=_who(actor))
        _closed(request=request, actor=actor, kind=OrderFlagKind.REFUND_WITHDRAWN, label=_("refund withdrawn"))
        _sync_open(order_id=request.order_id)
    return request


def aftersales_goods_received(*, request_id: int, actor: Actor, restock: bool, store_id: int | None = None,
                              now: datetime | None = None) -> AfterSalesRequest:
    """The store has the returned goods: back on the shelf (``restock``) or written
    off, a ledger row either way; then the money goes out."""
    now = now or timezone.now()
    with transaction.atomic():
        request = _lock(request_id=request_id, store_id=store_id)
        _decider_check(actor=actor, request=request)
        _move(request, "receive_goods", actor=actor, now=now, restock=bool(restock))
        quantities = _sku_units(request)
        reference = refund_ref_for(request.pk)
        if restock:
            stock_restock(store_id=request.store_id, quantities=quantities, reference=reference)
        else:
            stock_write_off(store_id=request.store_id, quantities=quantities, reference=reference,
                            note=f"after-sales #{request.pk}")
        _start_refund(request=request, actor=actor, now=now)
        _sync_open(order_id=request.order_id)
    return request


def _start_refund(*, request: AfterSalesRequest, actor: Actor, now: datetime) -> None:
    """The decision is final: the order's refunded amount grows (a whole refund refunds
    the order), the money starts (own channel) or the agree goes to the platform."""
    platform = request.requested_by == RequestedBy.PLATFORM
    if request.status == S.APPROVED:
        _move(request, "start_refund", actor=Actor.system("aftersales"), now=now,
              refund_ref="" if platform else refund_ref_for(request.pk))
    current = Order.objects.only("paid_amount", "refunded_amount", "status", "order_type").get(pk=request.order_id)
    full = request.scope == AfterSalesScope.ORDER or current.refunded_amount + request.amount >= current.paid_amount
    system = Actor.system("aftersales")
    # A platform's whole refund of an order its machine can no longer refund (completed,
    # already cancelled there): only the agree goes out, the platform settles the rest.
    move_order = full and OrderAction.REFUND.value in current.available_actions(actor_kind=system.kind)
    order = order_refund_commit(
        order_id=request.order_id, amount=request.amount, full=full, actor=system, after_sales_id=request.pk,
        release=_sku_units(request), money=not platform, decided_by=actor, move_order=move_order,
        reason=request.decision_reason or request.reason or _("after-sales #%(id)s") % {"id": request.pk},
        reason_code=OrderReasonCode.PLATFORM_REFUND if platform else OrderReasonCode.ORDER_REFUNDED)
    if platform:
        if not move_order:
            # A whole refund's agree was sent by the order's refund itself (a synced action).
            order_sync_enqueue(order=order, action=OrderAction.REFUND, actor=actor,
                               reason=request.decision_reason or request.reason)
        return
    if not request.refund_ref:
        request.refund_ref = refund_ref_for(request.pk)
        request.save(update_fields=["refund_ref", "updated_at"])
    if request.amount <= 0 or payment_get_for_order(order_ref=order.order_no) is None:
        # Paid outside the payment provider (imported or demo orders): nothing to wait for.
        _move(request, "complete", actor=system, now=now)
        _refunded(request=request, order=order)


def _takes_everything(request: AfterSalesRequest) -> bool:
    order = Order.objects.only("refunded_amount", "paid_amount").get(pk=request.order_id)
    return order.refunded_amount + request.amount >= order.paid_amount


def _sku_units(request: AfterSalesRequest) -> dict[int, int]:
    units: dict[int, int] = {}
    for sku_id, quantity in request.lines.values_list("order_line__sku_id", "quantity"):
        if sku_id:
            units[sku_id] = units.get(sku_id, 0) + quantity
    return units


def _closed(*, request: AfterSalesRequest, actor: Actor, kind: str, label: str, data: dict | None = None) -> Order:
    """A request left "requested": flag event on the order, the attention reason kept
    while another request is open, the POS told. The caller then says whether the
    order still has an open request (``_sync_open``), once its own moves are done."""
    still_open = AfterSalesRequest.objects.filter(order_id=request.order_id, status=S.REQUESTED).exclude(
        pk=request.pk).exists()
    order = order_flag(order_id=request.order_id, actor=actor, kind=kind, reason=label,
                       data={**_flag_data(request), **(data or {})}, attention=False,
                       resolves="" if still_open else after_sales_label())
    feed_record_after_sales(order=order, event_type=FeedType.AFTERSALES_DECIDED, after_sales_id=request.pk)
    return order


def _sync_open(*, order_id: int) -> None:
    order_after_sales_mark(order_id=order_id, open_=AfterSalesRequest.objects.filter(
        order_id=order_id, status__in=OPEN_STATUSES).exists())


def _refunded(*, request: AfterSalesRequest, order: Order | None = None) -> None:
    order = order or Order.objects.get(pk=request.order_id)
    feed_record_after_sales(order=order, event_type=FeedType.AFTERSALES_REFUNDED, after_sales_id=request.pk)


# --- money outcome ------------------------------------------------------------------------------


def aftersales_refund_outcome(*, refund_ref: str, status: str, for_good: bool = False,
                              now: datetime | None = None) -> bool:
    """The provider's word on a refund (the notify, the refund query): a request's
    refund that succeeded completes it (once). A failed refund marks the request
    failed only ``for_good`` (a person has it: the follow-up job gave up retrying);
    before that the follow-up job starts it again. ``refund_ref`` of a retry
    ("as-12#2") counts for its request. Returns True for the call that moved it."""
    root = refund_ref.split("#", 1)[0]
    if not root.startswith(REFUND_REF_PREFIX) or not root[len(REFUND_REF_PREFIX):].isdigit():
        return False
    request_id = int(root[len(REFUND_REF_PREFIX):])
    now = now or timezone.now()
    with transaction.atomic():
        request = AfterSalesRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            return False
        system = Actor(kind=ActorKind.PAYMENT, id=refund_ref[:64], name="payment")
        if status == RefundStatus.SUCCEEDED and request.status in (S.REFUNDING, S.FAILED):
            _move(request, "complete" if request.status == S.REFUNDING else "settle", actor=system, now=now)
            _refunded(request=request)
            return True
        if status == RefundStatus.FAILED and for_good and request.status == S.REFUNDING:
            _move(request, "fail", actor=Actor.system("aftersales"), now=now)
            return True
    return False


def aftersales_refunds_sync(*, now: datetime | None = None, limit: int = 500) -> int:
    """The job that closes what the notify did not: requests still refunding whose
    refund succeeded (a lost notify, found by the refund follow-up's query) are
    completed; those whose refund a person now has (failed on every attempt,
    abnormal) are marked failed; failed ones whose refund succeeded after all are
    settled. Returns how many moved."""
    now = now or timezone.now()
    moved = 0
    for request_id, refund_ref in (AfterSalesRequest.objects.filter(status__in=(S.REFUNDING, S.FAILED))
                                   .exclude(refund_ref="").order_by("id").values_list("id", "refund_ref")[:limit]):
        refunds = refunds_for_ref(refund_ref_root=refund_ref)
        if any(r.status == RefundStatus.SUCCEEDED for r in refunds):
            moved += aftersales_refund_outcome(refund_ref=refund_ref, status=RefundStatus.SUCCEEDED, now=now)
        elif refunds and refunds[-1].needs_person:
            moved += aftersales_refund_outcome(refund_ref=refund_ref, status=RefundStatus.FAILED, for_good=True,
                                               now=now)
    return moved


# --- platform applications (channels calls these) -----------------------------------------------


@dataclass(frozen=True)
class PlatformAsk:
    """A platform's application: ``partial`` with its amount and lines (as the platform
    described them), or the whole order."""

    refund_id: str = ""
    reason: str = ""
    partial: bool = False
    amount: Decimal | None = None
    lines: tuple[dict, ...] = ()
    deadline: datetime | None = None


def aftersales_platform_latest(*, order_id: int) -> AfterSalesRequest | None:
    return (AfterSalesRequest.objects.filter(order_id=order_id, requested_by=RequestedBy.PLATFORM)
            .order_by("-id").first())


def aftersales_platform_record(*, order: Order, ask: PlatformAsk, actor: Actor) -> tuple[AfterSalesRequest, bool]:
    """Record the platform's application for ``order``: the open one is updated (more
    detail), not duplicated; returns (request, created). A new one flags the order and
    tells the POS in the same transaction."""
    with transaction.atomic():
        order = order_lock(order_id=order.pk)
        fields = _platform_fields(order=order, ask=ask)
        open_request = (AfterSalesRequest.objects.select_for_update()
                        .filter(order=order, requested_by=RequestedBy.PLATFORM, status=S.REQUESTED).first())
        if open_request is not None:
            if ask.refund_id and not open_request.platform_refund_id:
                open_request.platform_refund_id = ask.refund_id[:64]
            if ask.partial or open_request.scope == AfterSalesScope.ORDER:
                for name, value in fields.items():
                    if name != "reason" or value:
                        setattr(open_request, name, value)
            open_request.save()
            _platform_lines_match(request=open_request, order=order)
            return open_request, False
        request = AfterSalesRequest.objects.create(
            brand_id=order.brand_id, store_id=order.store_id, order=order, kind=AfterSalesKind.REFUND,
            requested_by=RequestedBy.PLATFORM, requester_id=order.channel, requester_name=order.channel,
            reason_code=AfterSalesReasonCode.PLATFORM, platform_refund_id=ask.refund_id[:64],
            deadline=ask.deadline, **fields)
        _platform_lines_match(request=request, order=order)
        _opened(request=request, order=order, actor=actor)
    return request, True


def _platform_lines_match(*, request: AfterSalesRequest, order: Order) -> None:
    """A partial application's lines, as the platform described them, matched to the
    order's lines (our merchant code, or the platform's sku id): the request's lines with
    the platform's quantities and amounts, so the store reads them and units not yet
    prepared go back to stock. A line the order does not have stays in ``platform_lines``
    only."""
    request.lines.all().delete()
    if request.scope != AfterSalesScope.LINES:
        return
    order_lines = list(order.lines.all())
    matched: dict[int, list] = {}
    for item in request.platform_lines:
        if not isinstance(item, dict):
            continue
        code, sku_id = str(item.get("merchant_code") or ""), str(item.get("platform_sku_id") or "")
        line = next((candidate for candidate in order_lines
                     if (code and candidate.sku_code == code) or (sku_id and candidate.platform_sku_id == sku_id)),
                    None)
        try:
            quantity, amount = int(item.get("quantity") or 0), Decimal(str(item.get("amount") or "0"))
        except (TypeError, ValueError, ArithmeticError):
            continue
        if line is None or quantity < 1 or not amount.is_finite() or amount < 0:
            continue
        entry = matched.setdefault(line.pk, [line, 0, amounts.ZERO])
        entry[1], entry[2] = min(entry[1] + quantity, line.quantity), entry[2] + amounts.fen_round(amount)
    AfterSalesLine.objects.bulk_create([
        AfterSalesLine(request=request, order_line=line, quantity=quantity, amount=amount)
        for line, quantity, amount in matched.values()])


def _platform_fields(*, order: Order, ask: PlatformAsk) -> dict:
    left = max(order.paid_amount - order.refunded_amount, amounts.ZERO)
    partial = ask.partial and ask.amount is not None and ask.amount < left
    amount = min(ask.amount, left) if partial else left
    return {"scope": AfterSalesScope.LINES if partial else AfterSalesScope.ORDER, "amount": amount,
            "platform_lines": list(ask.lines) if partial else [], "reason": str(ask.reason)[:255]}


def aftersales_platform_closed(*, order_id: int, status: str, actor: Actor, reason: str = "",
                               now: datetime | None = None) -> AfterSalesRequest | None:
    """The platform ended the open application of the order: rejected there
    (``rejected``) or withdrawn by the customer (``withdrawn``). Returns it, or None
    when none was open."""
    now = now or timezone.now()
    action, kind, label = {
        S.REJECTED: ("reject", OrderFlagKind.REFUND_REJECTED, _("refund rejected")),
        S.WITHDRAWN: ("withdraw", OrderFlagKind.REFUND_WITHDRAWN, _("refund withdrawn")),
    }[status]
    with transaction.atomic():
        request = (AfterSalesRequest.objects.select_for_update()
                   .filter(order_id=order_id, requested_by=RequestedBy.PLATFORM, status=S.REQUESTED).first())
        if request is None:
            return None
        _move(request, action, actor=actor, now=now, decided_by=_who(actor), reason=reason)
        _closed(request=request, actor=actor, kind=kind, label=label)
        _sync_open(order_id=order_id)
    return request


def aftersales_platform_refunded(*, order: Order, ask: PlatformAsk, actor: Actor,
                                 now: datetime | None = None) -> tuple[AfterSalesRequest | None, bool]:
    """The platform says the refund was made (it agreed it itself, its arbitration
    overruled a rejection, or it confirms the merchant's agree). Applied once: the
    application (the open one, the one approved, or the latest rejected one with this
    refund id; recorded now when we never heard of it) becomes refunded and the order's
    refunded amount grows (when the merchant's approval had not already done that).
    Returns (request, moved). The order's own cancel or refund is the caller's (channels)."""
    now = now or timezone.now()
    with transaction.atomic():
        candidates = (AfterSalesRequest.objects.select_for_update()
                      .filter(order_id=order.pk, requested_by=RequestedBy.PLATFORM)
                      .filter(Q(status__in=(S.REQUESTED, S.APPROVED, S.REFUNDING))
                              | Q(status=S.REJECTED, platform_refund_id=ask.refund_id or "-"))
                      .order_by("-id"))
        request = candidates.first()
        if request is None:
            latest = aftersales_platform_latest(order_id=order.pk)
            if latest is not None and latest.status == S.REFUNDED and (
                    not ask.refund_id or latest.platform_refund_id in ("", ask.refund_id)):
                return latest, False  # applied already
            request, _created = aftersales_platform_record(order=order, ask=ask, actor=actor)
            request = AfterSalesRequest.objects.select_for_update().get(pk=request.pk)
        committed = request.status == S.REFUNDING
        was_open = request.status == S.REQUESTED
        _move(request, "platform_refund", actor=actor, now=now, decided_by=_who(actor), reason=ask.reason)
        if was_open:
            _closed(request=request, actor=actor, kind=OrderFlagKind.REFUND_AGREED,
                    label=_("refund agreed on the platform"))
        if not committed:
            full = request.scope == AfterSalesScope.ORDER or _takes_everything(request)
            order_refund_commit(order_id=order.pk, amount=request.amount, full=full, actor=actor,
                                after_sales_id=request.pk, money=False, move_order=False,
                                release=_sku_units(request))
        _sync_open(order_id=order.pk)
        _refunded(request=request)
    return request, True


def aftersales_platform_confirmed(*, order_no: str, now: datetime | None = None) -> int:
    """The platform took the merchant's agree for the order (the outbox call succeeded):
    the platform refunds its customer, so the order's platform requests that were
    refunding are refunded. Once; returns how many moved."""
    now = now or timezone.now()
    moved = 0
    with transaction.atomic():
        for request in (AfterSalesRequest.objects.select_for_update().select_related("order")
                        .filter(order__order_no=order_no, requested_by=RequestedBy.PLATFORM, status=S.REFUNDING)
                        .order_by("id")):
            _move(request, "complete", actor=Actor.platform(request.order.channel), now=now)
            _refunded(request=request, order=request.order)
            moved += 1
    return moved


# --- deadlines ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineRun:
    approved: int = 0
    escalated: int = 0
    warned: int = 0


def aftersales_deadlines_run(*, now: datetime | None = None, limit: int = 200) -> DeadlineRun:
    """The deadline job. Own-channel requests past their deadline are approved, or
    escalated (the order flagged for the brand) when the brand says so; requests
    within the brand's warning time of their deadline are flagged once (platform ones
    too, when the platform's deadline is known). A request a person decides at the same
    moment wins or loses on its row lock: exactly one decision. Idempotent."""
    now = now or timezone.now()
    approved = escalated = warned = 0
    overdue = (AfterSalesRequest.objects.filter(status=S.REQUESTED, deadline__lte=now, escalated_at__isnull=True)
               .exclude(requested_by=RequestedBy.PLATFORM).select_related("brand").order_by("deadline", "id")[:limit])
    system = Actor.system("aftersales_deadline")
    for request in overdue:
        try:
            if request.brand.after_sales_overdue_action == OverdueAction.ESCALATE:
                escalated += _escalate(request_id=request.pk, now=now)
            else:
                aftersales_approve(request_id=request.pk, actor=system, reason=_("not decided in time"), now=now)
                approved += 1
        except TransitionNotAllowed:
            continue  # a person decided it meanwhile
        except Conflict:  # the order ended meanwhile: a person rejects it
            escalated += _escalate(request_id=request.pk, now=now)
        except Exception:  # logged; the next run tries again
            logger.exception("overdue after-sales request", extra={"after_sales_id": request.pk})
    nearing = (AfterSalesRequest.objects.filter(status=S.REQUESTED, deadline__gt=now, nearing_flagged_at__isnull=True)
               .select_related("brand").order_by("deadline", "id")[:limit])
    for request in nearing:
        if request.deadline - now <= timedelta(hours=request.brand.after_sales_warn_hours):
            warned += _warn(request_id=request.pk, now=now)
    return DeadlineRun(approved=approved, escalated=escalated, warned=warned)


def _escalate(*, request_id: int, now: datetime) -> int:
    with transaction.atomic():
        request = AfterSalesRequest.objects.select_for_update().get(pk=request_id)
        if request.status != S.REQUESTED or request.escalated_at:
            return 0
        request.escalated_at = now
        request.save(update_fields=["escalated_at", "updated_at"])
        _audit(request=request, action="escalate", from_status=request.status,
               actor=Actor.system("aftersales_deadline"), reason=_("not decided in time"))
        order_flag(order_id=request.order_id, actor=Actor.system("aftersales_deadline"),
                   kind=OrderFlagKind.REFUND_OVERDUE, reason=_("refund request overdue"),
                   data={"after_sales_id": request.pk})
    return 1


def _warn(*, request_id: int, now: datetime) -> int:
    with transaction.atomic():
        request = AfterSalesRequest.objects.select_for_update().get(pk=request_id)
        if request.status != S.REQUESTED or request.nearing_flagged_at:
            return 0
        request.nearing_flagged_at = now
        request.save(update_fields=["nearing_flagged_at", "updated_at"])
        order_flag(order_id=request.order_id, actor=Actor.system("aftersales_deadline"),
                   kind=OrderFlagKind.REFUND_DEADLINE_NEAR, reason=_("refund request deadline near"),
                   data={"after_sales_id": request.pk, "deadline": request.deadline.isoformat()})
    return 1


# --- the machine, audited -----------------------------------------------------------------------


def _lock(*, request_id: int, store_id: int | None = None) -> AfterSalesRequest:
    queryset = AfterSalesRequest.objects.select_for_update(of=("self",)).select_related("order")
    if store_id is not None:
        queryset = queryset.filter(store_id=store_id)
    try:
        return queryset.get(pk=request_id)
    except AfterSalesRequest.DoesNotExist:
        raise NotFound(_("After-sales request not found."), code="after_sales_not_found") from None


def _who(actor: Actor) -> str:
    return f"{actor.kind}:{actor.id} {actor.name}".strip()


def _staff_check(*, actor: Actor, store_id: int, brand_id: int, deciding: bool = False) -> None:
    """Staff act only where they hold a role at the request's store (deciding: store
    manager there, or brand admin of its brand)."""
    user = get_user_model().objects.filter(pk=actor.id).first() if str(actor.id).isdigit() else None
    roles = roles_for_store(user=user, store_id=store_id, brand_id=brand_id)
    if not roles or (deciding and not roles & DECIDING_ROLES):
        raise PermissionDenied(_("You may not decide after-sales requests of this store."),
                               code="not_allowed_for_store")


def _decider_check(*, actor: Actor, request: AfterSalesRequest) -> None:
    if actor.kind == ActorKind.STAFF:
        _staff_check(actor=actor, store_id=request.store_id, brand_id=request.brand_id, deciding=True)


def _move(request: AfterSalesRequest, action: str, *, actor: Actor, now: datetime, **params) -> None:
    """One transition of the machine: allowed for this actor kind, saved, audited."""
    method = getattr(request, action)
    if not can_proceed(method) or actor.kind not in _actors(request, action):
        raise TransitionNotAllowed(
            gettext_lazy("The request cannot do “%(action)s” in status “%(status)s”.")
            % {"action": action, "status": request.status},
            detail={"after_sales_id": str(request.pk), "status": request.status, "action": action,
                    "allowed_actions": request.available_actions(actor_kind=actor.kind)})
    from_status = request.status
    before = {name: getattr(request, name) for name in _MOVE_FIELDS}
    method(now=now, **params)
    changed = [name for name in _MOVE_FIELDS if getattr(request, name) != before[name]]
    # The row is locked (``_lock`` or select_for_update by every caller): the
    # concurrent-transition guard of the UPDATE (WHERE status = the old one) cannot
    # fail, so no savepoint is spent on it; if it ever did, the whole change rolls back.
    try:
        request.save(update_fields=["status", "updated_at", *changed])
    except ConcurrentTransition:
        raise TransitionNotAllowed(detail={"after_sales_id": str(request.pk), "action": action}) from None
    _audit(request=request, action=action, from_status=from_status, actor=actor,
           reason=str(params.get("reason", "")), data={k: str(v) for k, v in params.items()
                                                       if k not in ("reason", "decided_by") and v != ""})


# Fields a transition method may change besides the status (the rest are saved by name).
_MOVE_FIELDS = ("decided_at", "decided_by", "decision_reason", "goods_received_at", "restock", "refunded_at",
                "refund_ref")


def _actors(request: AfterSalesRequest, action: str) -> list[str]:
    transition = getattr(request, action)._django_fsm.get_transition(request.status)
    return [] if transition is None else transition.custom.get("actors", [])


def _audit(*, request: AfterSalesRequest, action: str, from_status: str, actor: Actor, reason: str = "",
           data: dict | None = None) -> AfterSalesEvent:
    return AfterSalesEvent.objects.create(
        request=request, action=action, from_status=from_status, to_status=request.status, actor_kind=actor.kind,
        actor_id=str(actor.id)[:64], actor_name=str(actor.name)[:100], reason=str(reason)[:255], data=data or {})
