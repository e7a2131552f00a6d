"""Platform refund applications: recorded from the platform, answered by a person.

A customer's application (push or pull) becomes a ``PlatformRefundRequest`` in the
same transaction as the order's ``refund_requested`` flag and the POS feed event
``order.refund_requested``. A person with the right (brand admin, store manager:
admin *Platform refund applications*) agrees or rejects it; the answer goes to the
platform through the outbox (``refund`` -> refund agree, ``refund_reject`` ->
refund reject, with the reason).

- **Whole order, agreed**: the order is refunded at once when it can be (dispatched,
  delivered, picked up: ``order_transition(refund)``, which also sends the agree);
  before that (accepted, ready) only the agree is sent, and the order follows the
  platform's answer (its cancellation comes by push, pull or the reconciliation job).
- **Partial, agreed**: only the agree is sent; the order keeps its status and
  amounts, the refunded amount and lines stay on the application.
- **Rejected**: the reject with its reason is sent; the order's flag is resolved.

Lock order: the application row, then the order row (intake closes an application
before it moves the order), so a person and the platform never deadlock.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels.adapters.base import ParsedRefund, PlatformPayloadError
from channels.models import PlatformRefundRequest, RefundRequestKind, RefundRequestStatus
from core.actors import Actor, ActorKind
from core.errors import Conflict, InvalidInput, NotFound
from orders.models import Order, OrderAction, OrderFlagKind, OrderReasonCode
from orders.services import order_transition
from orders.services.sync import REFUND_REJECT, order_flag, order_sync_enqueue



def refund_request_label() -> str:
    """The attention reason a refund application sets (and its answer resolves)."""
    return _("refund requested")


def refund_request_data(request: PlatformRefundRequest) -> dict:
    """The application as flag / event data."""
    return {"refund_id": request.refund_id, "refund_request_id": request.pk, "refund_kind": request.kind,
            "amount": str(request.amount), "lines": request.lines, "platform_reason": request.reason}


def refund_request_record(*, order: Order, refund_id: str, reason: str,
                          refund: ParsedRefund | None) -> tuple[PlatformRefundRequest, bool]:
    """Record the platform's application for ``order`` (the open one is updated, not
    duplicated); returns (application, created). Runs in the caller's transaction."""
    refund = refund or ParsedRefund()
    if refund.partial and refund.amount is not None and refund.amount > order.total:
        raise PlatformPayloadError(f"partial refund of {refund.amount} exceeds the order total {order.total}")
    partial = refund.partial and refund.amount is not None and refund.amount < order.total
    amount = refund.amount if partial else order.total
    fields = {"kind": RefundRequestKind.PARTIAL if partial else RefundRequestKind.FULL, "amount": amount,
              "lines": list(refund.lines) if partial else [], "reason": str(reason)[:255]}
    with transaction.atomic():
        open_request = (PlatformRefundRequest.objects.select_for_update()
                        .filter(order=order, status=RefundRequestStatus.APPLIED).first())
        if open_request is not None:
            if refund_id and not open_request.refund_id:
                open_request.refund_id = refund_id[:64]
            if refund.partial or open_request.kind == RefundRequestKind.FULL:
                for name, value in fields.items():
                    setattr(open_request, name, value if name != "reason" or value else open_request.reason)
            open_request.save()
            return open_request, False
        return PlatformRefundRequest.objects.create(order=order, platform=order.channel, refund_id=refund_id[:64],
                                                    **fields), True


def refund_request_latest(*, order_id: int) -> PlatformRefundRequest | None:
    return PlatformRefundRequest.objects.filter(order_id=order_id).order_by("-id").first()


def refund_request_close(*, order_id: int, status: str, actor: Actor, reason: str = "") -> PlatformRefundRequest | None:
    """The platform ended the open application of the order (agreed, rejected or withdrawn
    there). Returns it, or None when none was open."""
    with transaction.atomic():
        request = (PlatformRefundRequest.objects.select_for_update()
                   .filter(order_id=order_id, status=RefundRequestStatus.APPLIED).first())
        if request is None:
            return None
        request.status = status
        request.decided_by = f"{actor.kind}:{actor.id}"[:150]
        request.decision_reason = str(reason)[:255]
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_by", "decision_reason", "decided_at", "updated_at"])
    return request


def _lock_open(request_id: int) -> PlatformRefundRequest:
    try:
        request = PlatformRefundRequest.objects.select_for_update(of=("self",)).select_related("order").get(
            pk=request_id)
    except PlatformRefundRequest.DoesNotExist:
        raise NotFound(code="refund_request_not_found") from None
    if request.status != RefundRequestStatus.APPLIED:
        raise Conflict(_("This refund application is already answered."), code="refund_request_closed",
                       detail={"status": request.status})
    return request


def _decide(request: PlatformRefundRequest, *, status: str, actor: Actor, reason: str) -> None:
    request.status = status
    request.decided_by = f"{actor.kind}:{actor.id} {actor.name}".strip()[:150]
    request.decision_reason = str(reason)[:255]
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_by", "decision_reason", "decided_at", "updated_at"])


def refund_request_agree(*, request_id: int, actor: Actor, reason: str = "") -> PlatformRefundRequest:
    """A person agrees to the application: see the module docstring for what happens to
    the order. Refused (409) when it is already answered."""
    if actor.kind != ActorKind.STAFF:
        raise InvalidInput(_("Only staff answer refund applications."), code="actor_not_allowed")
    with transaction.atomic():
        request = _lock_open(request_id)
        order = request.order
        data = refund_request_data(request)
        refund_now = (request.kind == RefundRequestKind.FULL
                      and OrderAction.REFUND.value in order.available_actions(actor_kind=ActorKind.STAFF))
        order = order_flag(order_id=order.pk, actor=actor, kind=OrderFlagKind.REFUND_AGREED,
                           reason=_("refund agreed"),
                           data=data, attention=False, resolves=refund_request_label())
        if refund_now:
            # Sends the platform the agree (``refund`` is a synced action).
            order_transition(order_id=order.pk, action=OrderAction.REFUND, actor=actor,
                             reason_code=OrderReasonCode.PLATFORM_REFUND, reason=(reason or request.reason)[:255])
        else:
            order_sync_enqueue(order=order, action=OrderAction.REFUND.value, actor=actor,
                               reason_code=OrderReasonCode.PLATFORM_REFUND, reason=reason or request.reason)
        _decide(request, status=RefundRequestStatus.AGREED, actor=actor, reason=reason)
    return request


def refund_request_reject(*, request_id: int, actor: Actor, reason: str) -> PlatformRefundRequest:
    """A person rejects the application; ``reason`` is required (the platform shows it
    to the customer). Refused (409) when it is already answered."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("A reason is required to reject a refund application."), code="reason_required")
    if actor.kind != ActorKind.STAFF:
        raise InvalidInput(_("Only staff answer refund applications."), code="actor_not_allowed")
    with transaction.atomic():
        request = _lock_open(request_id)
        order = order_flag(order_id=request.order_id, actor=actor, kind=OrderFlagKind.REFUND_REJECTED,
                           reason=_("refund rejected"),
                           data={**refund_request_data(request), "merchant_reason": reason[:255]},
                           attention=False, resolves=refund_request_label())
        order_sync_enqueue(order=order, action=REFUND_REJECT, actor=actor, reason=reason[:255])
        _decide(request, status=RefundRequestStatus.REJECTED, actor=actor, reason=reason)
    return request

