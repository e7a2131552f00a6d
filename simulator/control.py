"""The control endpoints (/_sim/{platform}/...) both platform simulators share.

A platform simulator mixes ``PlatformControl`` in and sets ``platform_label``
(for messages), ``shop_param`` (the route parameter naming a shop) and
``note_field`` (the order field carrying the customer's note); it provides
``_shops``, ``_orders``, ``_lock``, ``_generator``, ``register_shop``,
``create_orders``, ``_lines``, ``_render``, ``_generate``, ``_control_order``,
``_shop_set_status`` and ``shop_key``; its shops have ``is_open``.
"""

from __future__ import annotations

from simulator.orders_gen import (
    SpecError,
    created_at_field,
    delivery_time_field,
    optional_bool,
    order_count_field,
    rate_field,
)
from simulator.routing import SimHttpError, SimRequest, SimResponse


def control_error(exc: Exception, status: int = 400) -> SimHttpError:
    return SimHttpError(status, {"code": "BAD_REQUEST", "message": str(exc)})


class PlatformControl:
    platform_label = ""
    shop_param = ""
    note_field = ""

    def _control_shop(self, key: str):
        shop = self._shops.get(key)
        if shop is None:
            raise SimHttpError(404, {"code": "NOT_FOUND", "message": f"no {self.platform_label} shop {key}"})
        return shop

    @staticmethod
    def _body(request: SimRequest) -> dict:
        data = request.json() if request.body else {}
        if not isinstance(data, dict):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "body must be a JSON object"})
        return data

    def control_shop_register(self, request: SimRequest) -> SimResponse:
        try:
            shop = self.register_shop(request.json())
        except SpecError as exc:
            raise control_error(exc) from exc
        return SimResponse(201, {"shop": shop.summary()})

    def control_shops(self, request: SimRequest) -> SimResponse:
        with self._lock:
            return SimResponse(200, {"shops": [shop.summary() for shop in self._shops.values()]})

    def control_shop_rate(self, request: SimRequest) -> SimResponse:
        try:
            rate = rate_field(self._body(request))
        except SpecError as exc:
            raise control_error(exc) from exc
        with self._lock:
            shop = self._control_shop(request.params[self.shop_param])
            shop.rate = rate
        key = self.shop_key(shop)
        self._generator.set_rate(key, rate, lambda: self._generate(key))
        return SimResponse(200, {"shop": shop.summary()})

    def control_shop_status(self, request: SimRequest) -> SimResponse:
        """Open or close a shop as the platform itself would (a person on the platform's
        merchant app, the platform's own rules): the drift our reconcile job must find."""
        data = self._body(request)
        opened = data.get("open")
        if not isinstance(opened, bool):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "open must be true or false"})
        with self._lock:
            shop = self._control_shop(request.params[self.shop_param])
            try:
                self._shop_set_status(shop, opened, data)
            except SpecError as exc:
                raise control_error(exc) from exc
            return SimResponse(200, {"shop": shop.summary()})

    def control_orders_create(self, request: SimRequest) -> SimResponse:
        data = self._body(request)
        try:
            with self._lock:
                shop = self._control_shop(str(data.get("shop", "")))
                if not shop.is_open:
                    raise SimHttpError(409, {"code": "SHOP_CLOSED",
                                             "message": f"{self.platform_label} shop {self.shop_key(shop)} is "
                                                        f"closed and takes no orders"})
            count = order_count_field(data)
            push = optional_bool(data, "push", bool(shop.push_url))
            new_customer = optional_bool(data, "new_customer", None)
            note = data.get(self.note_field)
            if note is not None and not isinstance(note, str):
                raise SpecError(f"{self.note_field} must be a string")
            orders = self.create_orders(shop, count=count, push=push, lines=self._lines(shop, data.get("lines")),
                                        new_customer=new_customer, note=note,
                                        pickup=optional_bool(data, "pickup", None),
                                        delivery_time=delivery_time_field(data),
                                        created_at=created_at_field(data))
        except SpecError as exc:
            raise control_error(exc) from exc
        return SimResponse(201, {"orders": orders})

    def control_orders(self, request: SimRequest) -> SimResponse:
        shop = request.query.get("shop", "")
        with self._lock:
            orders = [{**self._render(r), "sim": dict(r["sim"])} for r in self._orders.values()
                      if not shop or r["shop"] == shop]
        return SimResponse(200, {"orders": orders})

    def control_order(self, request: SimRequest) -> SimResponse:
        with self._lock:
            record = self._control_order(request.params["order_id"])
            return SimResponse(200, {**self._render(record), "sim": dict(record["sim"])})
