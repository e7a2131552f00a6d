from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        # The fulfilment routes (the routing table is orders.fulfilment.registry):
        # one registration each, with the outbox topics the route delivers.
        from orders.fulfilment import fulfilment_route_register
        from orders.fulfilment.oms import OmsRoute
        from orders.fulfilment.pos import PosRoute

        fulfilment_route_register(PosRoute())
        fulfilment_route_register(OmsRoute())
