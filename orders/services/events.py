"""The order's audit trail: one ``OrderEvent`` row per thing that happened to it."""

from core.actors import Actor
from orders.models import Order, OrderEvent


def event_write(*, order: Order, action: str, from_status: str, actor: Actor, reason_code: str = "",
                reason: str = "", data: dict | None = None) -> OrderEvent:
    """Record ``action`` on ``order`` (its status now is the event's ``to_status``).
    Call inside the transaction of the change."""
    return OrderEvent.objects.create(
        order=order, action=action, from_status=from_status, to_status=order.status,
        actor_kind=actor.kind, actor_id=actor.id, actor_name=actor.name,
        reason_code=reason_code, reason=str(reason)[:255], data=data or {},
    )
