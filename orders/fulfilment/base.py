"""The interface every fulfilment route implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.models import OutboxMessage
    from orders.models import Order


class FulfilmentRoute:
    """One way of fulfilling orders (the store's POS, the OMS, ...).

    ``name`` is what the routing table refers to. ``order_changed`` is called by
    orders.services inside the transaction of every change of an order routed
    here (create, each transition, contact changes) with the order's row lock
    held: it may write rows in that transaction (a feed row, an outbox message)
    but must never call out over the network. Work that leaves the process goes
    through the outbox: ``outbox_handlers`` lists the topics the route delivers
    itself, registered with core.outbox together with the route.
    """

    name: str = ""

    def order_changed(self, *, order: Order, action: str, from_status: str) -> None:
        raise NotImplementedError

    def orders_created(self, *, orders: list[Order]) -> None:
        """``order_changed`` for the ``create`` of each of ``orders`` (inserted together, in
        this transaction); a route may write their rows together."""
        for order in orders:
            self.order_changed(order=order, action="create", from_status="")

    def outbox_handlers(self) -> dict[str, Callable[[OutboxMessage], None]]:
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
