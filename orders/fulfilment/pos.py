"""The ``pos`` route: meals (delivery, pickup, dine-in) are fulfilled by the
store's POS through the store feed (orders.services.feed; docs/pos-api.md).
Auto-accept and the acceptance time limit (orders.services.acceptance) belong
to this route too."""

from orders.fulfilment.base import FulfilmentRoute
from orders.fulfilment.registry import POS_ROUTE
from orders.models import Order
from orders.services.feed import feed_record, feed_records_created


class PosRoute(FulfilmentRoute):
    name = POS_ROUTE

    def order_changed(self, *, order: Order, action: str, from_status: str) -> None:
        feed_record(order=order, action=action, from_status=from_status)

    def orders_created(self, *, orders: list[Order]) -> None:
        feed_records_created(orders=orders)
