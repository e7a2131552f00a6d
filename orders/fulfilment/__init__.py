"""Fulfilment routing: who fulfils an order once it is the merchant's to fulfil.

The routing table (``registry.FULFILMENT_ROUTING``) says, per order type, which
route fulfils it: meals (delivery, pickup, dine-in) go to the store's POS
(``pos``, the store feed), e-vouchers to the OMS (``oms``). A route is one
module with one ``FulfilmentRoute`` subclass, registered once in
``OrdersConfig.ready`` with ``fulfilment_route_register``. orders.services
calls ``fulfilment_record`` inside the transaction of every order change, and
the order's route decides what that change means for its fulfiller (a feed row,
an outbox message, ...). See docs/fulfilment.md.
"""

from orders.fulfilment.base import FulfilmentRoute
from orders.fulfilment.registry import (
    FULFILMENT_ROUTING,
    fulfilment_record,
    fulfilment_route_for,
    fulfilment_route_name_for,
    fulfilment_route_register,
    fulfilment_routes_check,
    order_types_routed_to,
)

__all__ = [
    "FULFILMENT_ROUTING",
    "FulfilmentRoute",
    "fulfilment_record",
    "fulfilment_route_for",
    "fulfilment_route_name_for",
    "fulfilment_route_register",
    "fulfilment_routes_check",
    "order_types_routed_to",
]
