"""The routing table by order type and the registry of route objects.

Routing is declared here and only here. To add a route: write one module with a
``FulfilmentRoute`` subclass, register it in ``OrdersConfig.ready`` and point
the order types it fulfils at its name below (docs/fulfilment.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.outbox import outbox_handler_register
from orders.models.order import OrderType

if TYPE_CHECKING:
    from orders.fulfilment.base import FulfilmentRoute
    from orders.models import Order

POS_ROUTE = "pos"
OMS_ROUTE = "oms"

# Order type -> the name of the route that fulfils it.
FULFILMENT_ROUTING: dict[str, str] = {
    OrderType.DELIVERY.value: POS_ROUTE,
    OrderType.PICKUP.value: POS_ROUTE,
    OrderType.DINE_IN.value: POS_ROUTE,
    OrderType.VOUCHER.value: OMS_ROUTE,
}

_ROUTES: dict[str, FulfilmentRoute] = {}


def fulfilment_route_register(route: FulfilmentRoute) -> None:
    """Make ``route`` available under its name, with the outbox topics it
    delivers. Registering the same kind of route twice is harmless; another
    route under a taken name is a programming error."""
    if not route.name:
        raise ValueError(f"{route!r} has no name")
    existing = _ROUTES.get(route.name)
    if existing is not None and type(existing) is not type(route):
        raise ValueError(f"fulfilment route {route.name!r} is already registered: {existing!r}")
    if existing is None:
        _ROUTES[route.name] = route
    for topic, handler in _ROUTES[route.name].outbox_handlers().items():
        outbox_handler_register(topic, handler)


def fulfilment_route_name_for(order_type: str) -> str:
    try:
        return FULFILMENT_ROUTING[str(order_type)]
    except KeyError:
        raise LookupError(f"no fulfilment route for order type {order_type!r}") from None


def fulfilment_route_for(order_type: str) -> FulfilmentRoute:
    name = fulfilment_route_name_for(order_type)
    try:
        return _ROUTES[name]
    except KeyError:
        raise LookupError(f"fulfilment route {name!r} (order type {order_type!r}) is not registered") from None


def order_types_routed_to(name: str) -> list[str]:
    """The order types the route ``name`` fulfils, in declaration order."""
    return [order_type for order_type, route in FULFILMENT_ROUTING.items() if route == name]


def fulfilment_routes_check() -> list[str]:
    """Problems with the table: order types without a route, routes not registered."""
    problems = [f"order type {t!r} has no fulfilment route" for t in OrderType.values if t not in FULFILMENT_ROUTING]
    problems += [f"order type {t!r} routes to unregistered {name!r}"
                 for t, name in FULFILMENT_ROUTING.items() if name not in _ROUTES]
    return problems


def fulfilment_record(*, order: Order, action: str, from_status: str) -> None:
    """Tell the order's route about a change. Precondition: inside the
    transaction of the change, with the order's row lock held (or the order
    just inserted). The route may update ``order`` in memory (auto-accept)."""
    fulfilment_route_for(order.order_type).order_changed(order=order, action=str(action), from_status=from_status)


def fulfilment_record_created(*, orders: list[Order]) -> None:
    """``fulfilment_record`` of the ``create`` of orders inserted together: each route
    hears of its orders at once, in their order."""
    by_route: dict[str, list[Order]] = {}
    for order in orders:
        by_route.setdefault(fulfilment_route_name_for(order.order_type), []).append(order)
    for orders_of_route in by_route.values():
        fulfilment_route_for(orders_of_route[0].order_type).orders_created(orders=orders_of_route)
