"""The Ele.me open platform, exactly as docs PLATFORMS.md says.

Platform API: ``POST /api/v1/`` with the JSON envelope ``{nop: "1.0.0", id, action,
token, metas: {app_key, timestamp}, params, signature}``; ``signature`` = UPPERCASE
hex md5 of action + token + for every pair of (params + app_key + timestamp)
sorted by key, ``key=`` + the value as compact JSON (non-ASCII kept, strings keep
their quotes), then the app secret. Actions::

    eleme.order.getUnprocessOrders {shopId}              -> [order id, ...] (status unprocessed)
    eleme.order.mgetOrders {orderIds}                    -> {id: order} (unknown ids left out)
    eleme.order.getOrder {orderId}                       -> order
    eleme.order.getAllOrders {shopId, pageNo, pageSize, date "YYYY-MM-DD"}
                                                         -> {"total": N, "list": [order, ...]}
    eleme.order.confirmOrderLite {orderId}               unprocessed -> valid
    eleme.order.cancelOrderLite {orderId, type, remark}  unprocessed|valid -> invalid; type one of
                                                         foodSoldOut, restaurantClosed, restaurantTooBusy, others
    eleme.order.setOrderPrepared {orderId}               valid (prepared recorded)
    eleme.order.deliveryBySelfLite {orderId}             valid (own rider out, recorded)
    eleme.order.receivedOrderLite {orderId}              valid and out for delivery -> settled
    eleme.order.agreeRefundLite {orderId}                refundStatus applied -> successful, status -> invalid
    eleme.order.disagreeRefundLite {orderId, reason}     refundStatus applied -> rejected
    eleme.product.item.batchClearStock {specIds}         sold out (spec id = an item's skuId) at every
    eleme.product.item.batchFillStock {specIds}          shop the token covers; unknown ids refuse the call
    eleme.shop.updateShop {shopId, properties: {isOpen: 1|0}}    opens / closes the shop for orders
    eleme.shop.setDeliveryTime {shopId, deliveryBasicMins, deliveryAdjustMins}   minutes 0-600 (busy: adjust)
    eleme.shop.mgetShopStatus {shopIds}                  -> {"<shopId>": {"isOpen": 1|0}} (shops the token covers)

A new shop is open. A closed shop takes no orders: the control API answers 409
SHOP_CLOSED to ``POST /_sim/eleme/orders`` and the order rate makes none.

Status calls answer ``result: null``; a call repeated after it took effect answers
success again. Every answer is HTTP 200: ``{"id", "result", "error": null}`` or
``{"id", "result": null, "error": {"code", "message"}}`` with code one of
VALIDATION_FAILED (bad envelope or params), SIGNATURE_ERROR, INVALID_TIMESTAMP
(more than 600 s off), ACCESS_DENIED (unknown app_key), UNAUTHORIZED (token not
issued to that app), PERMISSION_DENIED (shop or order the token does not cover),
METHOD_NOT_ALLOWED (unknown action), ORDER_NOT_FOUND, ORDER_STATUS_ERROR (status
does not allow the call), ITEM_NOT_FOUND.

Order fields: id (string), shopId, daySn, status, refundStatus, createdAt (China
local time "2026-11-22T12:30:05"), deliverTime (null = ASAP), consignee, phoneList,
address, deliveryGeo "lng,lat", description, totalPrice, originalPrice, deliverFee,
packageFee, groups, orderActivities; beyond PLATFORMS.md, as the real platform has
them: ``orderBusinessType`` (0 delivered, 1 the customer collects it at the shop,
到店自取; no delivery fee) and ``book`` (true when deliverTime is a booked time). Amounts (yuan numbers, held in fen)::

    item total    = price * quantity
    originalPrice = sum(item totals) + packageFee + deliverFee
    totalPrice    = originalPrice + sum(orderActivities amount)      (amounts negative)
    amount        = elemePart + restaurantPart                       (both <= 0)

Pushes (when the shop has a ``push_url``): a JSON POST of ``{requestId, type, appId,
message (a JSON string), shopId, timestamp (unix s), signature, userId}`` with
``signature`` = UPPERCASE md5 of the other seven fields sorted by name as ``k=v``
(values as text) concatenated, then the secret. Types: 10 new order (message = the
order), 14 cancelled before acceptance / 15 invalidated after acceptance (message
{orderId, state: "invalid", shopId, updateTime, role, reason}), 30 refund applied
({orderId, refundStatus: "applied", reason, shopId, updateTime}), 18 completed
({orderId, state: "settled", shopId, updateTime}). Retried until HTTP 200; pushes
of one order go out in order unless a ``shuffle`` fault holds them.

Control API (never signed, never faulted)::

    POST /_sim/eleme/shops   {"shop_id", "app_key", "secret", "token", "push_url"?, "menu"?,
                              "rate_per_minute"?: 0, "deliver_fee"?: 4, "app_id"?: app_key, "user_id"?: 0}
        menu items {"item_id", "sku_id", "name", "price", "extend_code"?, "package_fee"?: 0};
        no menu -> a default Chinese-dish menu
    GET  /_sim/eleme/shops
    POST /_sim/eleme/shops/{shop_id}/rate   {"rate_per_minute"}
    POST /_sim/eleme/shops/{shop_id}/status {"open": true|false, "adjust_mins"?: n}  open or close it as the
        platform itself would (drift for our reconcile job); the shop list shows isOpen, the minutes, status_calls
    POST /_sim/eleme/orders  {"shop", "count"?, "push"?, "lines"?: [{"sku_id" | "item_id" | "extend_code",
                              "quantity"?, "name"?, "price"?}], "new_customer"?, "description"?,
                              "pickup"?: false, "delivery_time"?: 0 (unix s; 0 = ASAP), "created_at"?: now}
    GET  /_sim/eleme/orders?shop=S ; GET /_sim/eleme/orders/{id}
    POST /_sim/eleme/orders/{id}/cancel        {"by"?: "customer"|"platform", "reason"?}  -> invalid, push 14|15
    POST /_sim/eleme/orders/{id}/refund_apply  {"reason"?, "lines"?: [{"extend_code" | "sku_id", "quantity"?}],
                                                "amount"?}  -> refundStatus applied, push 30 with refundType
        "normal"; with lines or amount a partial application: refundType "part", totalPrice (yuan) and
        goodsList [{name, quantity, price, skuId, extendCode}], and agreeing it leaves the status alone
    POST /_sim/eleme/orders/{id}/complete      valid -> settled, push 18

Faults and the call log match an Ele.me call by its route "/api/v1/" + action
(e.g. ``{"path_prefix": "/api/v1/eleme.order.confirmOrderLite", "mode": "error500"}``;
"/api/v1/eleme." for every Ele.me call; note "/api/v1/" alone also matches
Meituan calls); ``bad_signature`` / ``duplicate`` / ``shuffle`` with the path of
the push URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from simulator.control import PlatformControl
from simulator.delivery import PushDispatcher
from simulator.orders_gen import (
    DEFAULT_ELEME_MENU, TIMESTAMP_TOLERANCE, DaySequence, MenuItem, OrderDraft, OrderGenerator, SpecError,
    build_draft, china_iso, fen_from, id_field, push_url_field,
    quantity_field, rate_field, text_field, yuan,
)
from simulator.routing import Router, SimConfig, SimHttpError, SimRequest, SimResponse

CANCEL_TYPES = {"foodSoldOut", "restaurantClosed", "restaurantTooBusy", "others"}
UNPROCESSED, VALID, INVALID, SETTLED = "unprocessed", "valid", "invalid", "settled"
NO_REFUND, APPLIED, REJECTED, SUCCESSFUL = "noRefund", "applied", "rejected", "successful"
PUSH_NEW, PUSH_CANCELLED, PUSH_INVALIDATED, PUSH_REFUND_APPLIED, PUSH_COMPLETED = 10, 14, 15, 30, 18


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def eleme_signature(*, action: str, token: str, params: dict, app_key: str, timestamp: int, secret: str) -> str:
    pairs = sorted({**params, "app_key": app_key, "timestamp": timestamp}.items())
    text = action + token + "".join(f"{key}={_json(value)}" for key, value in pairs) + secret
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def eleme_push_signature(fields: dict[str, Any], secret: str) -> str:
    text = "".join(f"{key}={value}" for key, value in sorted(fields.items()) if key != "signature") + secret
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


class ElemeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message



class ElemeShop:
    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise SpecError("body must be a JSON object")
        self.shop_id = id_field(data, "shop_id")
        self.key = str(self.shop_id)
        self.app_key = text_field(data, "app_key")
        self.secret = text_field(data, "secret", max_length=200)
        self.token = text_field(data, "token", max_length=200)
        self.app_id = id_field(data, "app_id", default=self.app_key)
        self.user_id = id_field(data, "user_id", default=0)
        self.push_url = push_url_field(data)
        self.rate = rate_field(data)
        self.shipping = fen_from(data.get("deliver_fee", 4), name="deliver_fee")
        menu = data.get("menu") or DEFAULT_ELEME_MENU
        if not isinstance(menu, list) or not all(isinstance(entry, dict) for entry in menu):
            raise SpecError("menu must be a list of objects")
        self.menu: list[MenuItem] = []
        for entry in menu:
            item = MenuItem(
                code=id_field(entry, "item_id"), sku_id=id_field(entry, "sku_id"), name=text_field(entry, "name"),
                price=fen_from(entry.get("price"), name="price"),
                box_price=fen_from(entry.get("package_fee", 0), name="package_fee"),
                extend_code=str(entry.get("extend_code") or ""),
            )
            if any(str(m.sku_id) == str(item.sku_id) for m in self.menu):
                raise SpecError(f"menu repeats sku_id {item.sku_id}")
            self.menu.append(item)
        self.cleared: set[str] = set()  # str(skuId) sold out
        self.stock_calls: list[dict] = []
        self.is_open = True  # a new shop is open
        self.delivery_basic_mins = 0
        self.delivery_adjust_mins = 0
        self.status_calls: list[dict] = []

    def find(self, line: dict) -> MenuItem | None:
        for key, attr in (("sku_id", "sku_id"), ("item_id", "code"), ("extend_code", "extend_code")):
            if line.get(key) is not None:
                return next((m for m in self.menu if str(getattr(m, attr)) == str(line[key])), None)
        raise SpecError("a line needs sku_id, item_id or extend_code")

    def summary(self) -> dict:
        return {
            "shop_id": self.shop_id, "app_key": self.app_key, "app_id": self.app_id, "user_id": self.user_id,
            "push_url": self.push_url, "rate_per_minute": self.rate, "deliver_fee": yuan(self.shipping),
            "menu": [{"item_id": m.code, "sku_id": m.sku_id, "name": m.name, "price": yuan(m.price),
                      "package_fee": yuan(m.box_price), "extend_code": m.extend_code,
                      "stock": "cleared" if str(m.sku_id) in self.cleared else "filled"} for m in self.menu],
            "stock_calls": list(self.stock_calls),
            "isOpen": 1 if self.is_open else 0, "deliveryBasicMins": self.delivery_basic_mins,
            "deliveryAdjustMins": self.delivery_adjust_mins, "status_calls": list(self.status_calls),
        }


class ElemeSimulator(PlatformControl):
    name = "eleme"
    platform_label = "Ele.me"
    shop_param = "shop_id"
    note_field = "description"

    @staticmethod
    def shop_key(shop) -> str:
        return shop.key

    def __init__(self, *, config: SimConfig, dispatcher: PushDispatcher) -> None:
        self._config = config
        self._dispatcher = dispatcher
        self._lock = threading.RLock()
        self._rng = random.Random()
        self._shops: dict[str, ElemeShop] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._days = DaySequence()
        self._ids = iter(range(int(f"30{int(time.time()) % 10**8:08d}000000001"), 10**20))
        self._generator = OrderGenerator(name="eleme", tick=config.generator_tick)
        self._register_configured_shops()

    def _register_configured_shops(self) -> None:
        for data in self._config.eleme_shops:
            self.register_shop(data)

    def register(self, router: Router) -> None:
        router.add("POST", "/api/v1/", self.api)
        router.add("POST", "/api/v1", self.api)
        router.add("POST", "/_sim/eleme/shops", self.control_shop_register)
        router.add("GET", "/_sim/eleme/shops", self.control_shops)
        router.add("POST", "/_sim/eleme/shops/{shop_id}/rate", self.control_shop_rate)
        router.add("POST", "/_sim/eleme/shops/{shop_id}/status", self.control_shop_status)
        router.add("POST", "/_sim/eleme/orders", self.control_orders_create)
        router.add("GET", "/_sim/eleme/orders", self.control_orders)
        router.add("GET", "/_sim/eleme/orders/{order_id}", self.control_order)
        router.add("POST", "/_sim/eleme/orders/{order_id}/cancel", self.control_cancel)
        router.add("POST", "/_sim/eleme/orders/{order_id}/refund_apply", self.control_refund_apply)
        router.add("POST", "/_sim/eleme/orders/{order_id}/complete", self.control_complete)

    def reset(self) -> None:
        self._generator.clear()
        with self._lock:
            self._shops.clear()
            self._orders.clear()
            self._days.clear()
        self._register_configured_shops()

    def close(self) -> None:
        self._generator.close()

    def shop_ids(self) -> list[str]:
        with self._lock:
            return list(self._shops)

    # -- shops

    def register_shop(self, data: Any) -> ElemeShop:
        shop = ElemeShop(data)
        with self._lock:
            for other in self._shops.values():
                if other.app_key == shop.app_key and other.secret != shop.secret and other.key != shop.key:
                    raise SpecError(f"app_key {shop.app_key} is already registered with another secret")
            self._shops[shop.key] = shop
        self._generator.set_rate(shop.key, shop.rate, lambda: self._generate(shop.key))
        return shop

    def _generate(self, key: str) -> None:
        with self._lock:
            shop = self._shops.get(key)
        if shop is not None and shop.is_open:  # a closed shop takes no orders
            self.create_orders(shop, count=1, push=bool(shop.push_url), lines=None)

    # -- orders

    def create_orders(self, shop: ElemeShop, *, count: int, push: bool, lines: list[tuple[MenuItem, int]] | None,
                      new_customer: bool | None = None, note: str | None = None,
                      pickup: bool | None = None, delivery_time: int | None = None,
                      created_at: int | None = None) -> list[dict]:
        created = []
        with self._lock:
            on_sale = [m for m in shop.menu if str(m.sku_id) not in shop.cleared]
            for _ in range(count):
                draft = build_draft(self._rng, menu=on_sale, lines=lines, shipping=shop.shipping,
                                    new_customer=new_customer, note=note, pickup=pickup,
                                    delivery_time=delivery_time, created_at=created_at)
                draft.day_seq = self._days.next(shop.key, draft.day)
                record = {"id": str(next(self._ids)), "shop": shop.key, "draft": draft, "status": UNPROCESSED,
                          "refundStatus": NO_REFUND,
                          "sim": {"prepared": False, "delivering": False, "cancel_type": "", "cancel_remark": "",
                                  "refund_reason": "", "refund_reject_reason": ""}}
                self._orders[record["id"]] = record
                created.append(self._render(record))
        if push and shop.push_url:
            for order in created:
                self._push(shop, PUSH_NEW, order, key=order["id"])
        return created

    def _render(self, record: dict) -> dict:
        draft: OrderDraft = record["draft"]
        shop = self._shops[record["shop"]]
        items = [{"id": item.code, "skuId": item.sku_id, "name": item.name, "price": yuan(item.price),
                  "quantity": quantity, "total": yuan(item.price * quantity), "extendCode": item.extend_code}
                 for item, quantity in draft.lines]
        activities = [{"id": p.act_id, "name": p.name, "amount": yuan(-p.total), "elemePart": yuan(-p.platform),
                       "restaurantPart": yuan(-p.merchant)} for p in draft.promotions]
        return {
            "id": record["id"], "shopId": shop.shop_id, "daySn": draft.day_seq, "status": record["status"],
            "refundStatus": record["refundStatus"], "createdAt": china_iso(draft.created_at),
            "deliverTime": china_iso(draft.delivery_time) if draft.delivery_time else None,
            "book": bool(draft.delivery_time), "orderBusinessType": 1 if draft.pickup else 0,
            "consignee": draft.customer_name, "phoneList": [draft.phone], "address": draft.address,
            "deliveryGeo": f"{draft.longitude},{draft.latitude}", "description": draft.note,
            "totalPrice": yuan(draft.paid),
            "originalPrice": yuan(draft.goods + draft.package + draft.bag + draft.shipping),
            "deliverFee": yuan(draft.shipping), "packageFee": yuan(draft.package + draft.bag),
            "groups": [{"name": "1号篮子", "type": "normal", "items": items}],
            "orderActivities": activities,
        }

    # -- pushes

    def _push(self, shop: ElemeShop, push_type: int, message: dict, *, key: str) -> None:
        fields = {"requestId": uuid.uuid4().hex, "type": push_type, "appId": shop.app_id, "message": _json(message),
                  "shopId": shop.shop_id, "userId": shop.user_id}
        secret = shop.secret

        def render(bad_signature: bool) -> tuple[dict[str, str], bytes]:
            body = {**fields, "timestamp": int(time.time())}
            body["signature"] = eleme_push_signature(body, secret + ("-wrong" if bad_signature else ""))
            return {"Content-Type": "application/json; charset=utf-8"}, _json(body).encode("utf-8")

        self._dispatcher.push_rendered(url=shop.push_url, render=render, label=f"eleme.{push_type}",
                                       key=f"eleme:{key}")

    # -- platform API

    @staticmethod
    def route_of(request: SimRequest) -> str | None:
        """"/api/v1/eleme.order.getOrder" for an envelope call, so faults and the call log can pick an action."""
        if request.method != "POST" or request.path not in ("/api/v1/", "/api/v1"):
            return None
        try:
            action = json.loads(request.body.decode("utf-8")).get("action")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            return None
        return f"/api/v1/{action}" if isinstance(action, str) and action else None

    def api(self, request: SimRequest) -> SimResponse:
        request_id = None
        try:
            try:
                envelope = json.loads(request.body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ElemeError("VALIDATION_FAILED", f"body is not valid JSON: {exc}") from exc
            if not isinstance(envelope, dict):
                raise ElemeError("VALIDATION_FAILED", "body must be a JSON object")
            request_id = envelope.get("id")
            action, token, params = self._authenticate(envelope)
            handler = getattr(self, "api_" + action.replace(".", "_"), None)
            if handler is None:
                raise ElemeError("METHOD_NOT_ALLOWED", f"unknown action {action}")
            with self._lock:
                result = handler(token, envelope["metas"]["app_key"], params)
        except ElemeError as exc:
            return SimResponse(200, {"id": request_id, "result": None,
                                     "error": {"code": exc.code, "message": exc.message}})
        return SimResponse(200, {"id": request_id, "result": result, "error": None})

    def _authenticate(self, envelope: dict) -> tuple[str, str, dict]:
        for key, kind in (("nop", str), ("id", str), ("action", str), ("token", str), ("metas", dict),
                          ("params", dict), ("signature", str)):
            if not isinstance(envelope.get(key), kind) or (kind is str and not envelope[key]):
                raise ElemeError("VALIDATION_FAILED", f"{key} is required")
        if envelope["nop"] != "1.0.0":
            raise ElemeError("VALIDATION_FAILED", 'nop must be "1.0.0"')
        metas = envelope["metas"]
        app_key, timestamp = metas.get("app_key"), metas.get("timestamp")
        if not isinstance(app_key, str) or not app_key:
            raise ElemeError("VALIDATION_FAILED", "metas.app_key is required")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise ElemeError("VALIDATION_FAILED", "metas.timestamp must be unix seconds (an integer)")
        with self._lock:
            shops = [shop for shop in self._shops.values() if shop.app_key == app_key]
        if not shops:
            raise ElemeError("ACCESS_DENIED", f"unknown app_key {app_key}")
        if abs(time.time() - timestamp) > TIMESTAMP_TOLERANCE:
            raise ElemeError("INVALID_TIMESTAMP", f"timestamp is more than {TIMESTAMP_TOLERANCE} s off")
        action, token, params = envelope["action"], envelope["token"], envelope["params"]
        expected = eleme_signature(action=action, token=token, params=params, app_key=app_key, timestamp=timestamp,
                                   secret=shops[0].secret)
        if not hmac.compare_digest(expected, envelope["signature"]):
            raise ElemeError("SIGNATURE_ERROR", "signature does not match")
        if token not in {shop.token for shop in shops}:
            raise ElemeError("UNAUTHORIZED", "the token was not issued to this app")
        return action, token, params

    def _shop_for(self, token: str, app_key: str, params: dict) -> ElemeShop:
        shop_id = params.get("shopId")
        if shop_id is None or isinstance(shop_id, bool | dict | list):
            raise ElemeError("VALIDATION_FAILED", "shopId is required")
        shop = self._shops.get(str(shop_id))
        if shop is None or shop.app_key != app_key or shop.token != token:
            raise ElemeError("PERMISSION_DENIED", f"the token does not cover shop {shop_id}")
        return shop

    def _covers(self, token: str, app_key: str, record: dict) -> bool:
        shop = self._shops[record["shop"]]
        return shop.app_key == app_key and shop.token == token

    def _order_for(self, token: str, app_key: str, params: dict) -> dict:
        order_id = params.get("orderId")
        if not isinstance(order_id, str | int) or isinstance(order_id, bool) or order_id == "":
            raise ElemeError("VALIDATION_FAILED", "orderId is required")
        record = self._orders.get(str(order_id))
        if record is None:
            raise ElemeError("ORDER_NOT_FOUND", f"order {order_id} does not exist")
        if not self._covers(token, app_key, record):
            raise ElemeError("PERMISSION_DENIED", f"the token does not cover order {order_id}")
        return record

    def api_eleme_order_getUnprocessOrders(self, token: str, app_key: str, params: dict) -> list:  # noqa: N802
        shop = self._shop_for(token, app_key, params)
        return [r["id"] for r in self._orders.values() if r["shop"] == shop.key and r["status"] == UNPROCESSED]

    def api_eleme_order_mgetOrders(self, token: str, app_key: str, params: dict) -> dict:  # noqa: N802
        ids = params.get("orderIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 50 or not all(isinstance(i, str | int) for i in ids):
            raise ElemeError("VALIDATION_FAILED", "orderIds must be a list of 1 to 50 order ids")
        found = {}
        for order_id in ids:
            record = self._orders.get(str(order_id))
            if record is not None and self._covers(token, app_key, record):
                found[record["id"]] = self._render(record)
        return found

    def api_eleme_order_getOrder(self, token: str, app_key: str, params: dict) -> dict:  # noqa: N802
        return self._render(self._order_for(token, app_key, params))

    def api_eleme_order_getAllOrders(self, token: str, app_key: str, params: dict) -> dict:  # noqa: N802
        shop = self._shop_for(token, app_key, params)
        page_no, page_size, date = params.get("pageNo"), params.get("pageSize"), params.get("date")
        if isinstance(page_no, bool) or not isinstance(page_no, int) or page_no < 1 \
                or isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 50:
            raise ElemeError("VALIDATION_FAILED", "pageNo must be >= 1 and pageSize 1..50")
        try:
            day = datetime.strptime(date, "%Y-%m-%d").strftime("%Y%m%d") if isinstance(date, str) else None
        except ValueError:
            day = None
        if day is None:
            raise ElemeError("VALIDATION_FAILED", "date must be YYYY-MM-DD")
        matching = [r for r in self._orders.values() if r["shop"] == shop.key and r["draft"].day == day]
        page = matching[(page_no - 1) * page_size: page_no * page_size]
        return {"total": len(matching), "list": [self._render(r) for r in page]}

    def _move(self, record: dict, *, allowed: set[str], target: str, action: str) -> bool:
        if record["status"] == target:
            return False
        if record["status"] not in allowed:
            raise ElemeError("ORDER_STATUS_ERROR",
                             f"order {record['id']} is {record['status']}; {action} is not allowed")
        record["status"] = target
        return True

    def api_eleme_order_confirmOrderLite(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        record = self._order_for(token, app_key, params)
        self._move(record, allowed={UNPROCESSED}, target=VALID, action="confirmOrderLite")

    def api_eleme_order_cancelOrderLite(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        record = self._order_for(token, app_key, params)
        cancel_type, remark = params.get("type"), params.get("remark", "")
        if cancel_type not in CANCEL_TYPES:
            raise ElemeError("VALIDATION_FAILED", f"type must be one of {', '.join(sorted(CANCEL_TYPES))}")
        if not isinstance(remark, str):
            raise ElemeError("VALIDATION_FAILED", "remark must be a string")
        if self._move(record, allowed={UNPROCESSED, VALID}, target=INVALID, action="cancelOrderLite"):
            record["sim"].update(cancel_type=cancel_type, cancel_remark=remark)

    def _flag(self, token: str, app_key: str, params: dict, flag: str, *, needs: str = "") -> None:
        record = self._order_for(token, app_key, params)
        if record["sim"][flag]:
            return
        if record["status"] != VALID or (needs and not record["sim"][needs]):
            raise ElemeError("ORDER_STATUS_ERROR", f"order {record['id']} is {record['status']}; not allowed")
        record["sim"][flag] = True

    def api_eleme_order_setOrderPrepared(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        self._flag(token, app_key, params, "prepared")

    def api_eleme_order_deliveryBySelfLite(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        self._flag(token, app_key, params, "delivering")

    def api_eleme_order_receivedOrderLite(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        record = self._order_for(token, app_key, params)
        if record["status"] == VALID and not record["sim"]["delivering"]:
            raise ElemeError("ORDER_STATUS_ERROR", f"order {record['id']} is not out for delivery")
        self._move(record, allowed={VALID}, target=SETTLED, action="receivedOrderLite")

    def _refund_answer(self, token: str, app_key: str, params: dict, target: str) -> dict:
        record = self._order_for(token, app_key, params)
        if record["refundStatus"] == target:
            return record
        if record["refundStatus"] != APPLIED:
            raise ElemeError("ORDER_STATUS_ERROR", f"order {record['id']} has no refund application to answer")
        record["refundStatus"] = target
        return record

    def api_eleme_order_agreeRefundLite(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        record = self._refund_answer(token, app_key, params, SUCCESSFUL)
        if not record["sim"].get("refund_partial"):
            record["status"] = INVALID  # a full refund invalidates the order; a partial one does not

    def api_eleme_order_disagreeRefundLite(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        reason = params.get("reason")
        if not isinstance(reason, str) or not reason:
            raise ElemeError("VALIDATION_FAILED", "reason is required")
        record = self._refund_answer(token, app_key, params, REJECTED)
        record["sim"]["refund_reject_reason"] = reason

    def _stock(self, token: str, app_key: str, params: dict, *, clear: bool) -> None:
        spec_ids = params.get("specIds")
        if not isinstance(spec_ids, list) or not 1 <= len(spec_ids) <= 100 \
                or not all(isinstance(s, str | int) and not isinstance(s, bool) for s in spec_ids):
            raise ElemeError("VALIDATION_FAILED", "specIds must be a list of 1 to 100 spec ids")
        shops = [s for s in self._shops.values() if s.app_key == app_key and s.token == token]
        wanted = {str(s) for s in spec_ids}
        known = {str(m.sku_id) for shop in shops for m in shop.menu}
        unknown = sorted(wanted - known)
        if unknown:
            raise ElemeError("ITEM_NOT_FOUND", f"no such spec id(s): {', '.join(unknown)}")
        for shop in shops:
            hits = wanted & {str(m.sku_id) for m in shop.menu}
            if hits:
                (shop.cleared.update if clear else shop.cleared.difference_update)(hits)
                shop.stock_calls.append({"action": "batchClearStock" if clear else "batchFillStock",
                                         "specIds": sorted(hits)})

    def api_eleme_product_item_batchClearStock(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        self._stock(token, app_key, params, clear=True)

    def api_eleme_product_item_batchFillStock(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        self._stock(token, app_key, params, clear=False)

    def api_eleme_shop_updateShop(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        shop = self._shop_for(token, app_key, params)
        properties = params.get("properties")
        if not isinstance(properties, dict) or not properties:
            raise ElemeError("VALIDATION_FAILED", "properties must be a non-empty object")
        if "isOpen" in properties:
            value = properties["isOpen"]
            if isinstance(value, bool) or value not in (0, 1):
                raise ElemeError("VALIDATION_FAILED", "properties.isOpen must be 1 (open) or 0 (closed)")
            shop.is_open = value == 1
        shop.status_calls.append({"action": "updateShop", **properties})

    def api_eleme_shop_setDeliveryTime(self, token: str, app_key: str, params: dict) -> None:  # noqa: N802
        shop = self._shop_for(token, app_key, params)
        minutes = {}
        for key in ("deliveryBasicMins", "deliveryAdjustMins"):
            value = params.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 600:
                raise ElemeError("VALIDATION_FAILED", f"{key} must be a whole number of minutes, 0 to 600")
            minutes[key] = value
        shop.delivery_basic_mins, shop.delivery_adjust_mins = minutes["deliveryBasicMins"], minutes["deliveryAdjustMins"]
        shop.status_calls.append({"action": "setDeliveryTime", **minutes})

    def api_eleme_shop_mgetShopStatus(self, token: str, app_key: str, params: dict) -> dict:  # noqa: N802
        shop_ids = params.get("shopIds")
        if not isinstance(shop_ids, list) or not 1 <= len(shop_ids) <= 200 \
                or not all(isinstance(s, str | int) and not isinstance(s, bool) for s in shop_ids):
            raise ElemeError("VALIDATION_FAILED", "shopIds must be a list of 1 to 200 shop ids")
        answer = {}
        for shop_id in shop_ids:
            shop = self._shops.get(str(shop_id))
            if shop is None or shop.app_key != app_key or shop.token != token:
                raise ElemeError("PERMISSION_DENIED", f"the token does not cover shop {shop_id}")
            answer[str(shop_id)] = {"isOpen": 1 if shop.is_open else 0}
        return answer

    # -- control API

    @staticmethod
    def _shop_set_status(shop: ElemeShop, opened: bool, data: dict) -> None:
        shop.is_open = opened
        if "adjust_mins" in data:
            value = data["adjust_mins"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SpecError("adjust_mins must be a whole number >= 0")
            shop.delivery_adjust_mins = value

    def _control_order(self, order_id: str) -> dict:
        record = self._orders.get(order_id)
        if record is None:
            raise SimHttpError(404, {"code": "NOT_FOUND", "message": f"no Ele.me order {order_id}"})
        return record

    @staticmethod
    def _lines(shop: ElemeShop, lines: Any) -> list[tuple[MenuItem, int]] | None:
        if lines is None:
            return None
        if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
            raise SpecError("lines must be a non-empty list of objects")
        resolved = []
        for line in lines:
            item = shop.find(line)
            if item is None:
                code = line.get("sku_id") or line.get("item_id") or line.get("extend_code")
                item = MenuItem(code=line.get("item_id", code), sku_id=line.get("sku_id", code),
                                name=str(line.get("name") or f"未知商品{code}"),
                                price=fen_from(line.get("price", 10), name="price"),
                                box_price=fen_from(line.get("package_fee", 0), name="package_fee"),
                                extend_code=str(line.get("extend_code") or ""), known=False)
            resolved.append((item, quantity_field(line)))
        return resolved

    def _platform_event(self, request: SimRequest, event) -> SimResponse:
        data = self._body(request)
        with self._lock:
            record = self._control_order(request.params["order_id"])
            shop = self._shops[record["shop"]]
            try:
                push_type, message = event(record, data)
            except SpecError as exc:
                raise SimHttpError(409, {"code": "CONFLICT", "message": str(exc)}) from exc
            answer = {**self._render(record), "sim": dict(record["sim"])}
        if shop.push_url:
            self._push(shop, push_type, message, key=record["id"])
        return SimResponse(200, answer)

    def control_cancel(self, request: SimRequest) -> SimResponse:
        def cancel(record: dict, data: dict):
            if record["status"] in (INVALID, SETTLED):
                raise SpecError(f"order is {record['status']}; it cannot be cancelled")
            by = data.get("by", "customer")
            if by not in ("customer", "platform"):
                raise SpecError('by must be "customer" or "platform"')
            reason = data.get("reason") or ("用户取消订单" if by == "customer" else "系统取消订单")
            push_type = PUSH_CANCELLED if record["status"] == UNPROCESSED else PUSH_INVALIDATED
            record["status"] = INVALID
            return push_type, {"orderId": record["id"], "state": INVALID, "shopId": self._shops[record["shop"]].shop_id,
                               "updateTime": int(time.time()), "role": 1 if by == "customer" else 3,
                               "reason": str(reason)}

        return self._platform_event(request, cancel)

    def control_refund_apply(self, request: SimRequest) -> SimResponse:
        def refund_apply(record: dict, data: dict):
            if record["status"] not in (VALID, SETTLED) or record["refundStatus"] in (APPLIED, SUCCESSFUL):
                raise SpecError(f"order is {record['status']} / {record['refundStatus']}; no refund can be applied")
            reason = str(data.get("reason") or "商品有问题")
            goods, amount = self._refund_lines(record, data)
            record["refundStatus"] = APPLIED
            record["sim"]["refund_reason"] = reason
            record["sim"]["refund_partial"] = amount is not None
            message = {"orderId": record["id"], "refundStatus": APPLIED, "reason": reason,
                       "shopId": self._shops[record["shop"]].shop_id, "updateTime": int(time.time()),
                       "refundType": "normal"}
            if amount is not None:
                message.update(refundType="part", totalPrice=yuan(amount), goodsList=goods)
            return PUSH_REFUND_APPLIED, message

        return self._platform_event(request, refund_apply)

    @staticmethod
    def _refund_lines(record: dict, data: dict) -> tuple[list[dict], int | None]:
        """A partial application's ``goodsList`` and amount (fen), from ``lines``
        ([{"extend_code" | "sku_id", "quantity"?}], items of the order) and / or ``amount``;
        (``[]``, None) for the whole order."""
        lines, amount = data.get("lines"), data.get("amount")
        if lines is None and amount is None:
            return [], None
        draft: OrderDraft = record["draft"]
        goods = []
        if lines is not None:
            if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
                raise SpecError("lines must be a non-empty list of objects")
            for line in lines:
                match = next(((item, quantity) for item, quantity in draft.lines
                              if (line.get("extend_code") and item.extend_code == line["extend_code"])
                              or (line.get("sku_id") is not None and str(item.sku_id) == str(line["sku_id"]))),
                             None)
                if match is None:
                    raise SpecError("the order has no such line")
                quantity = line.get("quantity", 1)
                if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= match[1]:
                    raise SpecError(f"quantity must be 1..{match[1]}")
                goods.append({"name": match[0].name, "quantity": quantity, "price": yuan(match[0].price),
                              "skuId": match[0].sku_id, "extendCode": match[0].extend_code})
        fen = fen_from(amount, name="amount") if amount is not None else sum(
            int(round(item["price"] * 100)) * item["quantity"] for item in goods)
        if fen > draft.paid:
            raise SpecError("amount is more than the order paid")
        return goods, fen

    def control_complete(self, request: SimRequest) -> SimResponse:
        def complete(record: dict, data: dict):
            if record["status"] != VALID:
                raise SpecError(f"order is {record['status']}; only a valid order completes")
            record["status"] = SETTLED
            return PUSH_COMPLETED, {"orderId": record["id"], "state": SETTLED,
                                    "shopId": self._shops[record["shop"]].shop_id, "updateTime": int(time.time())}

        return self._platform_event(request, complete)
