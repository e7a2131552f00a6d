"""Platform sync, the orders side: what a delivery platform must hear about, and
what it told us that needs a person.

orders sits below channels and never imports it. Outbound, ``order_transition``
calls ``order_sync_enqueue`` inside its transaction; it writes a core outbox
message (topic ``platform.order_action``) that channels delivers to the
platform. Inbound, channels flags platform orders for a person through
``order_flag`` (unknown SKU, stock shortfall, refund requested).
"""

from django.db import transaction

from core.actors import Actor, ActorKind
from core.models import OutboxMessage
from core.outbox import outbox_enqueue
from orders.locks import order_lock
from orders.models import Order, OrderAction, OrderEvent, OrderFlagKind
from orders.services.feed import feed_record

ORDER_ACTION_TOPIC = "platform.order_action"

# Actions a platform must hear about. ``refund_reject`` is not a transition: the
# after-sales workflow that refuses a platform refund calls order_sync_enqueue itself.
REFUND_REJECT = "refund_reject"
# ``pick_up`` is not among them: the platforms' status calls (PLATFORMS.md) have none for
# a customer collecting a pickup order (``order/arrived`` / ``receivedOrderLite`` mean
# "delivered by our own riders", which Meituan refuses for a pickup order).
SYNCED_ACTIONS = frozenset({
    OrderAction.ACCEPT.value, OrderAction.REJECT.value, OrderAction.CANCEL.value, OrderAction.MARK_READY.value,
    OrderAction.DISPATCH.value, OrderAction.DELIVER.value, OrderAction.REFUND.value,
    REFUND_REJECT,
})


def order_sync_enqueue(*, order: Order, action: str, actor: Actor, reason_code: str = "",
                       reason: str = "") -> OutboxMessage | None:
    """Write the outbox message telling the order's platform about ``action``.

    Call inside the transaction that made the change (order_transition does).
    Nothing is written for own-channel orders, for actions the platform does
    not need, or when the platform itself is the actor (it already knows).
    """
    if not order.is_platform_order or actor.kind == ActorKind.PLATFORM or action not in SYNCED_ACTIONS:
        return None
    payload = {
        "platform": order.channel,
        "channel_order_id": order.channel_order_id,
        "order_no": order.order_no,
        "store_id": order.store_id,
        "order_type": order.order_type,
        "action": str(action),
        "reason_code": reason_code,
        "reason": str(reason),
        "courier_name": order.courier_name,
        "courier_phone": order.courier_phone,
        "actor_kind": str(actor.kind),
        "actor_id": actor.id,
    }
    return outbox_enqueue(topic=ORDER_ACTION_TOPIC, key=order.order_no, payload=payload, brand_id=order.brand_id)


def order_flag(*, order_id: int, actor: Actor, reason: str, kind: str, data: dict | None = None,
               attention: bool = True, resolves: str = "") -> Order:
    """Flag an order for a person: ``needs_attention`` on, an append-only ``flag``
    event with ``kind`` (e.g. "unknown_sku", "stock_shortfall", "refund_requested")
    and ``data``. Takes the order's row lock; the status does not change.

    With ``attention=False`` only the event is written (e.g. "refund rejected");
    ``resolves`` removes that reason from ``attention_reason`` (and clears
    ``needs_attention`` when no reason is left)."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        reasons = [part.strip() for part in order.attention_reason.split(";") if part.strip()]
        if resolves:
            reasons = [part for part in reasons if part != str(resolves)]
        if attention:
            reasons.append(str(reason))
        order.attention_reason = "; ".join(dict.fromkeys(reasons))[:255]
        order.needs_attention = bool(reasons) if (attention or resolves) else order.needs_attention
        order.save(update_fields=["needs_attention", "attention_reason", "updated_at"])
        OrderEvent.objects.create(
            order=order, action=OrderAction.FLAG, from_status=order.status, to_status=order.status,
            actor_kind=actor.kind, actor_id=actor.id, actor_name=actor.name, reason_code=kind[:30],
            reason=str(reason)[:255], data={"kind": kind, **(data or {})},
        )
    return order


def order_refund_requested_flag(*, order_id: int, actor: Actor, reason: str, data: dict | None = None) -> Order:
    """A customer applied for a refund on the platform: flag the order for a person
    (``refund_requested``) and, in the same transaction, tell the store's POS
    (``order.refund_requested``, only when the POS has seen the order). Call inside
    the transaction that records the application."""
    with transaction.atomic():
        order = order_flag(order_id=order_id, actor=actor, reason=reason, kind=OrderFlagKind.REFUND_REQUESTED,
                           data=data)
        feed_record(order=order, action=OrderFlagKind.REFUND_REQUESTED, from_status=order.status)
    return order


def order_last_flag(*, order_id: int, kinds: list[str]) -> OrderEvent | None:
    """The latest flag event of one of ``kinds`` (a read helper for de-duplicating flags)."""
    return (OrderEvent.objects.filter(order_id=order_id, action=OrderAction.FLAG, reason_code__in=kinds)
            .order_by("-id").first())

