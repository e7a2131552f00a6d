"""Meituan Waimai (classic open platform), exactly as docs PLATFORMS.md says.

Platform API (all under ``/api/v1/``; ``app_id``, ``timestamp``, ``sig`` in the
query string; reads GET, writes POST with a form body)::

    GET  order/getOrderDaySeq?app_poi_code=S                         -> {"data": {"day_seq": N}}
    GET  order/getOrderIdByDaySeq?app_poi_code=S&date_time=YYYYMMDD&day_seq=K
                                                                      -> {"data": {"order_id": N}}
    GET  order/getOrderDetail?order_id=N                             -> {"data": {order}}
    GET  order/viewstatus?order_id=N                                 -> {"data": {"status": 4}}
    POST order/confirm (order_id)                                    status 2|3 -> 4
    POST order/cancel (order_id, reason_code 2001-2004, reason)      status 1|2|3|4 -> 9
    POST order/preparationMealComplete (order_id)                    status 4 (meal ready recorded)
    POST order/delivering (order_id, courier_name, courier_phone)    status 4 -> 6
    POST order/arrived (order_id)                                    status 6 -> 8
    POST order/refund/agree (order_id, reason)                       refund_status 1 -> 2, status -> 9
    POST order/refund/reject (order_id, reason)                      refund_status 1 -> 3
    POST food/sku/sellStatus (app_poi_code, food_data, sell_status)  0 on sale, 1 sold out
    POST poi/open (app_poi_code)                                     the shop takes orders (open_level 1)
    POST poi/close (app_poi_code)                                    the shop rests, 休息 (open_level 3)
    GET  poi/mget?app_poi_codes=S1,S2                                -> {"data": [{"app_poi_code", "open_level"}]}
                                                                      (unknown codes left out; another app's: 705)

A new shop is open. A closed shop takes no orders: the control API answers 409
SHOP_CLOSED to ``POST /_sim/meituan/orders`` and the order rate makes none.

``sig`` = lowercase hex md5 of ``http://{Host}{path}?`` + every non-empty param but
``sig`` (query and form alike, decoded) sorted by name as ``k=v`` joined with ``&``,
then the app secret. A call repeated after it took effect (the order is already
where it would move it) answers ``{"data": "ok"}`` again, so a sender that retries
after a timeout is safe. Every answer is HTTP 200; errors are
``{"data": "ng", "error": {"code": C, "msg": "..."}}`` with C:

    700 missing or invalid parameter      701 unknown app_id
    703 signature error                   704 timestamp more than 600 s off
    705 store or order of another app     801 no such order
    802 status does not allow the call    803 no such food/sku at the store

Amounts (yuan numbers; held in fen, so they add up exactly), as PLATFORMS.md says::

    original_price    = sum(detail price * quantity) + sum(detail box_price * box_num)
                        + package_bag_money + shipping_fee
    total             = original_price - sum(extras reduce_fee)
    reduce_fee        = mt_charge + poi_charge                 (per extras entry)

``box_num`` is the line's box count (quantity * the menu item's boxes per unit),
``box_price`` the price of one box; ``package_bag_money`` is the shop's bag fee, once
per order (0 unless the shop sets one).

``detail`` and ``extras`` are JSON strings. New orders are in status 2. Beyond
PLATFORMS.md, as the real platform has them: ``pick_type`` (0 delivered, 1 the
customer collects it at the shop, 到店自取; no shipping fee) and ``delivery_time``
(0 as soon as possible, else the booked time in unix seconds).

Pushes (when the shop has a ``push_url``): a form POST to ``{push_url}/create_order``
(every order field), ``/cancel_order`` (order_id, reason_code, reason) and
``/refund_order`` (order_id, notify_type, reason, refund_id), with ``app_id``,
``timestamp`` and ``sig`` signed as above over the receiving URL; retried until HTTP
200; pushes of one order go out in order (unless a ``shuffle`` fault holds them).

Control API (tests and the demo; never signed, never faulted)::

    POST /_sim/meituan/shops          {"app_poi_code", "app_id", "secret", "push_url"?, "menu"?,
                                       "rate_per_minute"?: 0, "shipping_fee"?: 5,
                                       "package_bag_money"?: 0}
        registers (or replaces) a shop; menu items {"app_food_code", "food_name", "sku_id",
        "price", "box_price"?, "box_num"?: 1 (boxes per unit), "spec"?, "unit"?}; no menu -> a
        default Chinese-dish menu.
    GET  /_sim/meituan/shops          shops with their menu and sell status
    POST /_sim/meituan/shops/{app_poi_code}/rate  {"rate_per_minute"}
    POST /_sim/meituan/shops/{app_poi_code}/status  {"open": true|false}  open or close it as the platform
        itself would (drift for our reconcile job); the shop list shows open_level and status_calls
    POST /_sim/meituan/orders         {"shop", "count"?: 1, "push"?: (true if push_url), "lines"?:
                                       [{"app_food_code", "sku_id"?, "quantity"?, "food_name"?,
                                       "price"?, "box_price"?}], "new_customer"?, "caution"?,
                                       "pickup"?: false, "delivery_time"?: 0, "created_at"?: now}
        (created_at, unix seconds, back-dates the orders: their day and day_seq are that day's)
        creates orders now; a line whose app_food_code/sku_id is not on the menu makes an
        order with an unknown item (food_name and price from the line, or defaults).
    GET  /_sim/meituan/orders?shop=S  every order (as pulled) plus "sim" (meal_ready, courier, ...)
    GET  /_sim/meituan/orders/{id}
    POST /_sim/meituan/orders/{id}/cancel        {"by"?: "customer"|"platform", "reason_code"?, "reason"?}
        status -> 9, pushes cancel_order (customer 1102 用户取消, platform 1001 系统取消)
    POST /_sim/meituan/orders/{id}/refund_apply  {"reason"?, "lines"?: [{"app_food_code", "sku_id"?,
                                                  "count"?}], "money"?}  refund_status -> 1, pushes
        refund_order notify_type=apply; with lines or money a partial application: notify_type=part
        with money (yuan) and food (JSON: [{app_food_code, food_name, sku_id, count, refund_price}]),
        and agreeing it leaves the order's status alone
    POST /_sim/meituan/orders/{id}/complete      status 4|6 -> 8 (no push: Meituan has none)

Faults (``POST /_sim/faults``, see simulator.faults): ``error500`` / ``slow`` with
``path_prefix`` "/api/v1/order/confirm" etc.; ``bad_signature`` / ``duplicate`` /
``shuffle`` with the path of the push URL (e.g. "/hooks/meituan/create_order", or
the push base path for all three).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from simulator.control import PlatformControl
from simulator.delivery import PushDispatcher
from simulator.orders_gen import (
    DEFAULT_MEITUAN_MENU, TIMESTAMP_TOLERANCE, DaySequence, MenuItem, OrderDraft, OrderGenerator, SpecError,
    boxes_field, build_draft, china_day, fen_from, push_url_field, quantity_field, rate_field,
    text_field, yuan,
)
from simulator.routing import Router, SimConfig, SimHttpError, SimRequest, SimResponse

API_PREFIX = "/api/v1/"
MERCHANT_CANCEL_CODES = {2001, 2002, 2003, 2004}
STATUS_SUBMITTED, STATUS_PUSHABLE, STATUS_RECEIVED, STATUS_CONFIRMED = 1, 2, 3, 4
STATUS_DELIVERING, STATUS_COMPLETED, STATUS_CANCELLED = 6, 8, 9
REFUND_NONE, REFUND_APPLIED, REFUND_AGREED, REFUND_REJECTED = 0, 1, 2, 3
OPEN_LEVEL_OPEN, OPEN_LEVEL_CLOSED = 1, 3
PLATFORM_CANCEL = {"customer": (1102, "用户取消"), "platform": (1001, "系统取消，超时未确认")}


def meituan_sig(url: str, params: dict[str, Any], secret: str) -> str:
    """Lowercase hex md5 of url + "?" + sorted non-empty k=v (sig excluded) joined with "&" + secret."""
    pairs = sorted((k, str(v)) for k, v in params.items() if k != "sig" and v is not None and str(v) != "")
    return hashlib.md5((url + "?" + "&".join(f"{k}={v}" for k, v in pairs) + secret).encode("utf-8")).hexdigest()


class MeituanError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg



class MeituanShop:
    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise SpecError("body must be a JSON object")
        self.app_poi_code = text_field(data, "app_poi_code")
        self.app_id = str(data.get("app_id")) if isinstance(data.get("app_id"), int | str) else ""
        if not self.app_id or isinstance(data.get("app_id"), bool):
            raise SpecError("app_id must be a non-empty string or an integer")
        self.secret = text_field(data, "secret", max_length=200)
        self.push_url = push_url_field(data).rstrip("/")
        self.rate = rate_field(data)
        self.shipping = fen_from(data.get("shipping_fee", 5), name="shipping_fee")
        self.bag = fen_from(data.get("package_bag_money", 0), name="package_bag_money")
        menu = data.get("menu") or DEFAULT_MEITUAN_MENU
        if not isinstance(menu, list) or not all(isinstance(entry, dict) for entry in menu):
            raise SpecError("menu must be a list of objects")
        self.menu: list[MenuItem] = []
        for entry in menu:
            item = MenuItem(
                code=text_field(entry, "app_food_code"), sku_id=str(entry.get("sku_id") or entry["app_food_code"]),
                name=text_field(entry, "food_name"), price=fen_from(entry.get("price"), name="price"),
                box_price=fen_from(entry.get("box_price", 0), name="box_price"), boxes=boxes_field(entry),
                spec=str(entry.get("spec") or ""), unit=str(entry.get("unit") or "份"),
            )
            if any((m.code, m.sku_id) == (item.code, item.sku_id) for m in self.menu):
                raise SpecError(f"menu repeats app_food_code {item.code} sku_id {item.sku_id}")
            self.menu.append(item)
        self.sold_out: set[tuple[str, str]] = set()  # (app_food_code, sku_id)
        self.sell_status_calls: list[dict] = []
        self.open_level = OPEN_LEVEL_OPEN  # a new shop is open
        self.status_calls: list[dict] = []

    @property
    def is_open(self) -> bool:
        return self.open_level == OPEN_LEVEL_OPEN

    def find(self, code: str, sku_id: str | None) -> MenuItem | None:
        for item in self.menu:
            if item.code == code and (sku_id is None or item.sku_id == sku_id):
                return item
        return None

    def summary(self) -> dict:
        return {
            "app_poi_code": self.app_poi_code, "app_id": self.app_id, "push_url": self.push_url,
            "rate_per_minute": self.rate, "shipping_fee": yuan(self.shipping),
            "package_bag_money": yuan(self.bag),
            "menu": [{"app_food_code": m.code, "sku_id": m.sku_id, "food_name": m.name, "spec": m.spec,
                      "price": yuan(m.price), "box_price": yuan(m.box_price), "box_num": m.boxes,
                      "sell_status": 1 if (m.code, m.sku_id) in self.sold_out else 0} for m in self.menu],
            "sell_status_calls": list(self.sell_status_calls),
            "open_level": self.open_level, "status_calls": list(self.status_calls),
        }


class MeituanSimulator(PlatformControl):
    name = "meituan"
    platform_label = "Meituan"
    shop_param = "code"
    note_field = "caution"

    @staticmethod
    def shop_key(shop) -> str:
        return shop.app_poi_code

    def __init__(self, *, config: SimConfig, dispatcher: PushDispatcher) -> None:
        self._config = config
        self._dispatcher = dispatcher
        self._lock = threading.RLock()
        self._rng = random.Random()
        self._shops: dict[str, MeituanShop] = {}
        self._orders: dict[int, dict[str, Any]] = {}
        self._days = DaySequence()
        self._ids = iter(range(int(f"27{int(time.time()) % 10**8:08d}000001"), 10**17))
        self._refund_ids = iter(range(int(f"9{int(time.time()) % 10**8:08d}00001"), 10**16))
        self._generator = OrderGenerator(name="meituan", tick=config.generator_tick)
        self._register_configured_shops()

    def _register_configured_shops(self) -> None:
        for data in self._config.meituan_shops:
            self.register_shop(data)

    def register(self, router: Router) -> None:
        reads = ["order/getOrderDaySeq", "order/getOrderIdByDaySeq", "order/getOrderDetail", "order/viewstatus",
                 "poi/mget"]
        writes = ["order/confirm", "order/cancel", "order/preparationMealComplete", "order/delivering",
                  "order/arrived", "order/refund/agree", "order/refund/reject", "food/sku/sellStatus",
                  "poi/open", "poi/close"]
        for path in reads:
            router.add("GET", API_PREFIX + path, self._api(path))
        for path in writes:
            router.add("POST", API_PREFIX + path, self._api(path))
        router.add("POST", "/_sim/meituan/shops", self.control_shop_register)
        router.add("GET", "/_sim/meituan/shops", self.control_shops)
        router.add("POST", "/_sim/meituan/shops/{code}/rate", self.control_shop_rate)
        router.add("POST", "/_sim/meituan/shops/{code}/status", self.control_shop_status)
        router.add("POST", "/_sim/meituan/orders", self.control_orders_create)
        router.add("GET", "/_sim/meituan/orders", self.control_orders)
        router.add("GET", "/_sim/meituan/orders/{order_id}", self.control_order)
        router.add("POST", "/_sim/meituan/orders/{order_id}/cancel", self.control_cancel)
        router.add("POST", "/_sim/meituan/orders/{order_id}/refund_apply", self.control_refund_apply)
        router.add("POST", "/_sim/meituan/orders/{order_id}/complete", self.control_complete)

    def reset(self) -> None:
        self._generator.clear()
        with self._lock:
            self._shops.clear()
            self._orders.clear()
            self._days.clear()
        self._register_configured_shops()

    def close(self) -> None:
        self._generator.close()

    def shop_codes(self) -> list[str]:
        with self._lock:
            return list(self._shops)

    # -- shops

    def register_shop(self, data: Any) -> MeituanShop:
        shop = MeituanShop(data)
        with self._lock:
            for other in self._shops.values():
                if other.app_id == shop.app_id and other.secret != shop.secret \
                        and other.app_poi_code != shop.app_poi_code:
                    raise SpecError(f"app_id {shop.app_id} is already registered with another secret")
            self._shops[shop.app_poi_code] = shop
        self._generator.set_rate(shop.app_poi_code, shop.rate, lambda: self._generate(shop.app_poi_code))
        return shop

    def _generate(self, code: str) -> None:
        with self._lock:
            shop = self._shops.get(code)
        if shop is not None and shop.is_open:  # a closed shop (休息) takes no orders
            self.create_orders(shop, count=1, push=bool(shop.push_url), lines=None)

    # -- orders

    def create_orders(self, shop: MeituanShop, *, count: int, push: bool, lines: list[tuple[MenuItem, int]] | None,
                      new_customer: bool | None = None, note: str | None = None,
                      pickup: bool | None = None, delivery_time: int | None = None,
                      created_at: int | None = None) -> list[dict]:
        created = []
        with self._lock:
            on_sale = [m for m in shop.menu if (m.code, m.sku_id) not in shop.sold_out]
            for _ in range(count):
                draft = build_draft(self._rng, menu=on_sale, lines=lines, shipping=shop.shipping,
                                    new_customer=new_customer, note=note, pickup=pickup,
                                    delivery_time=delivery_time, created_at=created_at, bag=shop.bag)
                draft.day_seq = self._days.next(shop.app_poi_code, draft.day)
                record = {"order_id": next(self._ids), "shop": shop.app_poi_code, "draft": draft,
                          "status": STATUS_PUSHABLE, "utime": draft.created_at, "refund_status": REFUND_NONE,
                          "refund_reason": "", "sim": {"meal_ready": False, "courier_name": "", "courier_phone": "",
                                                       "cancel_reason_code": 0, "cancel_reason": "",
                                                       "refund_reject_reason": "", "refund_id": 0}}
                self._orders[record["order_id"]] = record
                created.append(self._render(record))
        if push and shop.push_url:
            for order in created:
                self._push(shop, "create_order", order, key=str(order["order_id"]))
        return created

    @staticmethod
    def _render(record: dict) -> dict:
        draft: OrderDraft = record["draft"]
        detail = [{"app_food_code": item.code, "food_name": item.name, "sku_id": item.sku_id, "quantity": quantity,
                   "price": yuan(item.price), "box_num": quantity * item.boxes, "box_price": yuan(item.box_price),
                   "unit": item.unit, "food_property": "", "spec": item.spec} for item, quantity in draft.lines]
        extras = [{"act_detail_id": p.act_id, "reduce_fee": yuan(p.total), "mt_charge": yuan(p.platform),
                   "poi_charge": yuan(p.merchant), "remark": p.name, "type": p.kind} for p in draft.promotions]
        return {
            "order_id": record["order_id"], "wm_order_id_view": str(record["order_id"]),
            "app_poi_code": record["shop"], "day_seq": draft.day_seq, "status": record["status"],
            "ctime": draft.created_at, "utime": record["utime"], "delivery_time": draft.delivery_time,
            "pick_type": 1 if draft.pickup else 0,
            "recipient_name": draft.customer_name, "recipient_phone": draft.phone,
            "recipient_address": draft.address, "latitude": draft.latitude, "longitude": draft.longitude,
            "caution": draft.note, "shipping_fee": yuan(draft.shipping), "total": yuan(draft.paid),
            "original_price": yuan(draft.goods + draft.package + draft.bag + draft.shipping),
            "package_bag_money": yuan(draft.bag),
            "pay_type": 2, "detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
            "extras": json.dumps(extras, ensure_ascii=False, separators=(",", ":")),
            "refund_status": record["refund_status"], "refund_reason": record["refund_reason"],
        }

    # -- pushes

    def _push(self, shop: MeituanShop, kind: str, fields: dict[str, Any], *, key: str) -> None:
        url = f"{shop.push_url}/{kind}"
        app_id, secret = shop.app_id, shop.secret
        values = {k: str(v) for k, v in fields.items()}

        def render(bad_signature: bool) -> tuple[dict[str, str], bytes]:
            params = {**values, "app_id": app_id, "timestamp": str(int(time.time()))}
            params["sig"] = meituan_sig(url, params, secret + ("-wrong" if bad_signature else ""))
            return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(params).encode()

        self._dispatcher.push_rendered(url=url, render=render, label=f"meituan.{kind}", key=f"meituan:{key}")

    # -- platform API

    def _api(self, path: str):
        handler = getattr(self, "api_" + path.replace("/", "_"))

        def answer(request: SimRequest) -> SimResponse:
            try:
                app_id, params = self._authenticate(request)
                with self._lock:
                    data = handler(app_id, params)
            except MeituanError as exc:
                return SimResponse(200, {"data": "ng", "error": {"code": exc.code, "msg": exc.msg}})
            return SimResponse(200, {"data": data})

        return answer

    def _authenticate(self, request: SimRequest) -> tuple[str, dict[str, str]]:
        missing = [name for name in ("app_id", "timestamp", "sig") if not request.query.get(name)]
        if missing:
            raise MeituanError(700, f"system parameter(s) missing from the query string: {', '.join(missing)}")
        params = {k: v for k, v in request.query.items()}
        if request.method == "POST" and request.body:
            content_type = request.headers.get("content-type", "")
            if not content_type.startswith("application/x-www-form-urlencoded"):
                raise MeituanError(700, "writes take a form body (application/x-www-form-urlencoded)")
            try:
                form = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            except (UnicodeDecodeError, ValueError) as exc:
                raise MeituanError(700, f"malformed form body: {exc}") from exc
            for name, value in form:
                if name in params and params[name] != value:
                    raise MeituanError(700, f"parameter {name} given twice with different values")
                params[name] = value
        app_id = params["app_id"]
        with self._lock:
            secrets = {shop.secret for shop in self._shops.values() if shop.app_id == app_id}
        if not secrets:
            raise MeituanError(701, f"unknown app_id {app_id}")
        try:
            timestamp = int(params["timestamp"])
        except ValueError as exc:
            raise MeituanError(700, "timestamp must be unix seconds") from exc
        if abs(time.time() - timestamp) > TIMESTAMP_TOLERANCE:
            raise MeituanError(704, f"timestamp is more than {TIMESTAMP_TOLERANCE} s off the platform clock")
        scheme = request.headers.get("x-forwarded-proto", "http")
        url = f"{scheme}://{request.headers.get('host', '')}{request.path}"
        if not any(hmac.compare_digest(meituan_sig(url, params, secret), params["sig"]) for secret in secrets):
            raise MeituanError(703, "signature error (sig does not match)")
        params.pop("sig")
        return app_id, params

    @staticmethod
    def _require(params: dict[str, str], *names: str) -> list[str]:
        missing = [name for name in names if not params.get(name)]
        if missing:
            raise MeituanError(700, f"missing parameter(s): {', '.join(missing)}")
        return [params[name] for name in names]

    def _shop_for(self, app_id: str, params: dict[str, str]) -> MeituanShop:
        (code,) = self._require(params, "app_poi_code")
        shop = self._shops.get(code)
        if shop is None:
            raise MeituanError(700, f"unknown app_poi_code {code}")
        if shop.app_id != app_id:
            raise MeituanError(705, f"app_poi_code {code} is not bound to app_id {app_id}")
        return shop

    def _order_for(self, app_id: str, params: dict[str, str]) -> dict:
        (raw,) = self._require(params, "order_id")
        try:
            record = self._orders.get(int(raw))
        except ValueError:
            record = None
        if record is None:
            raise MeituanError(801, f"order {raw} does not exist")
        if self._shops[record["shop"]].app_id != app_id:
            raise MeituanError(705, f"order {raw} belongs to another app")
        return record

    def _move(self, record: dict, *, allowed: set[int], target: int, action: str) -> bool:
        """Move the order to ``target``; False when it is already there (a repeated call)."""
        if record["status"] == target:
            return False
        if record["status"] not in allowed:
            raise MeituanError(802, f"order {record['order_id']} is in status {record['status']}; "
                                    f"{action} is not allowed")
        record["status"] = target
        record["utime"] = int(time.time())
        return True

    def api_order_getOrderDaySeq(self, app_id: str, params: dict) -> dict:  # noqa: N802 (platform names)
        shop = self._shop_for(app_id, params)
        return {"day_seq": self._days.last(shop.app_poi_code, china_day(time.time()))}

    def api_order_getOrderIdByDaySeq(self, app_id: str, params: dict) -> dict:  # noqa: N802
        shop = self._shop_for(app_id, params)
        date_time, day_seq = self._require(params, "date_time", "day_seq")
        if not (len(date_time) == 8 and date_time.isdigit() and day_seq.isdigit()):
            raise MeituanError(700, "date_time must be YYYYMMDD and day_seq a number")
        for record in self._orders.values():
            draft = record["draft"]
            if record["shop"] == shop.app_poi_code and draft.day == date_time and draft.day_seq == int(day_seq):
                return {"order_id": record["order_id"]}
        raise MeituanError(801, f"no order {day_seq} on {date_time} at {shop.app_poi_code}")

    def api_order_getOrderDetail(self, app_id: str, params: dict) -> dict:  # noqa: N802
        return self._render(self._order_for(app_id, params))

    def api_order_viewstatus(self, app_id: str, params: dict) -> dict:
        return {"status": self._order_for(app_id, params)["status"]}

    def api_order_confirm(self, app_id: str, params: dict) -> str:
        record = self._order_for(app_id, params)
        self._move(record, allowed={STATUS_PUSHABLE, STATUS_RECEIVED}, target=STATUS_CONFIRMED, action="confirm")
        return "ok"

    def api_order_cancel(self, app_id: str, params: dict) -> str:
        record = self._order_for(app_id, params)
        reason_code, reason = self._require(params, "reason_code", "reason")
        if not reason_code.isdigit() or int(reason_code) not in MERCHANT_CANCEL_CODES:
            raise MeituanError(700, "reason_code must be one of 2001, 2002, 2003, 2004")
        if self._move(record, allowed={STATUS_SUBMITTED, STATUS_PUSHABLE, STATUS_RECEIVED, STATUS_CONFIRMED},
                      target=STATUS_CANCELLED, action="cancel"):
            record["sim"].update(cancel_reason_code=int(reason_code), cancel_reason=reason)
        return "ok"

    def api_order_preparationMealComplete(self, app_id: str, params: dict) -> str:  # noqa: N802
        record = self._order_for(app_id, params)
        if record["status"] != STATUS_CONFIRMED and not record["sim"]["meal_ready"]:
            raise MeituanError(802, f"order {record['order_id']} is in status {record['status']}; "
                                    "preparationMealComplete needs a confirmed order")
        record["sim"]["meal_ready"] = True
        return "ok"

    def api_order_delivering(self, app_id: str, params: dict) -> str:
        record = self._order_for(app_id, params)
        courier_name, courier_phone = self._require(params, "courier_name", "courier_phone")
        if self._move(record, allowed={STATUS_CONFIRMED}, target=STATUS_DELIVERING, action="delivering"):
            record["sim"].update(courier_name=courier_name, courier_phone=courier_phone)
        return "ok"

    def api_order_arrived(self, app_id: str, params: dict) -> str:
        record = self._order_for(app_id, params)
        self._move(record, allowed={STATUS_DELIVERING}, target=STATUS_COMPLETED, action="arrived")
        return "ok"

    def _refund_answer(self, app_id: str, params: dict, *, target: int) -> dict:
        record = self._order_for(app_id, params)
        if record["refund_status"] == target:
            return record
        if record["refund_status"] != REFUND_APPLIED:
            raise MeituanError(802, f"order {record['order_id']} has refund_status {record['refund_status']}; "
                                    "there is no refund application to answer")
        record["refund_status"] = target
        record["utime"] = int(time.time())
        return record

    def api_order_refund_agree(self, app_id: str, params: dict) -> str:
        record = self._refund_answer(app_id, params, target=REFUND_AGREED)
        if not record["sim"].get("refund_partial"):
            record["status"] = STATUS_CANCELLED  # a full refund cancels the order; a partial one does not
        return "ok"

    def api_order_refund_reject(self, app_id: str, params: dict) -> str:
        (reason,) = self._require(params, "reason")
        record = self._refund_answer(app_id, params, target=REFUND_REJECTED)
        record["sim"]["refund_reject_reason"] = reason
        return "ok"

    def api_food_sku_sellStatus(self, app_id: str, params: dict) -> str:  # noqa: N802
        shop = self._shop_for(app_id, params)
        food_data, sell_status = self._require(params, "food_data", "sell_status")
        if sell_status not in ("0", "1"):
            raise MeituanError(700, "sell_status must be 0 (on sale) or 1 (sold out)")
        try:
            foods = json.loads(food_data)
        except json.JSONDecodeError as exc:
            raise MeituanError(700, f"food_data is not JSON: {exc}") from exc
        if not isinstance(foods, list) or not foods or not all(
                isinstance(f, dict) and isinstance(f.get("app_food_code"), str) for f in foods):
            raise MeituanError(700, "food_data must be a JSON list of {app_food_code, skus: [{sku_id}]}")
        targets: list[tuple[str, str]] = []
        for food in foods:
            skus = food.get("skus")
            if skus is None:  # the whole food, every sku
                matched = [(m.code, m.sku_id) for m in shop.menu if m.code == food["app_food_code"]]
            elif isinstance(skus, list) and all(isinstance(s, dict) and "sku_id" in s for s in skus):
                matched = [(food["app_food_code"], str(s["sku_id"])) for s in skus
                           if shop.find(food["app_food_code"], str(s["sku_id"])) is not None]
                if len(matched) != len(skus):
                    matched = []
            else:
                raise MeituanError(700, "skus must be a list of {sku_id}")
            if not matched:
                raise MeituanError(803, f"no such food/sku at {shop.app_poi_code}: "
                                        f"{json.dumps(food, ensure_ascii=False)}")
            targets.extend(matched)
        for target in targets:
            (shop.sold_out.add if sell_status == "1" else shop.sold_out.discard)(target)
        shop.sell_status_calls.append({"sell_status": int(sell_status),
                                       "skus": [{"app_food_code": c, "sku_id": s} for c, s in targets]})
        return "ok"

    def _poi_status(self, app_id: str, params: dict, *, level: int, action: str) -> str:
        shop = self._shop_for(app_id, params)
        shop.open_level = level
        shop.status_calls.append({"action": action})
        return "ok"

    def api_poi_open(self, app_id: str, params: dict) -> str:
        return self._poi_status(app_id, params, level=OPEN_LEVEL_OPEN, action="open")

    def api_poi_close(self, app_id: str, params: dict) -> str:
        return self._poi_status(app_id, params, level=OPEN_LEVEL_CLOSED, action="close")

    def api_poi_mget(self, app_id: str, params: dict) -> list[dict]:
        (raw,) = self._require(params, "app_poi_codes")
        codes = [code.strip() for code in raw.split(",") if code.strip()]
        if not codes or len(codes) > 200:
            raise MeituanError(700, "app_poi_codes must name 1 to 200 shops, comma separated")
        answer = []
        for code in codes:
            shop = self._shops.get(code)
            if shop is None:
                continue  # unknown codes are left out
            if shop.app_id != app_id:
                raise MeituanError(705, f"app_poi_code {code} is not bound to app_id {app_id}")
            answer.append({"app_poi_code": code, "open_level": shop.open_level})
        return answer

    # -- control API

    @staticmethod
    def _shop_set_status(shop: MeituanShop, opened: bool, data: dict) -> None:
        shop.open_level = OPEN_LEVEL_OPEN if opened else OPEN_LEVEL_CLOSED

    def _control_order(self, raw: str) -> dict:
        record = self._orders.get(int(raw)) if raw.isdigit() else None
        if record is None:
            raise SimHttpError(404, {"code": "NOT_FOUND", "message": f"no Meituan order {raw}"})
        return record

    def _lines(self, shop: MeituanShop, lines: Any) -> list[tuple[MenuItem, int]] | None:
        if lines is None:
            return None
        if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
            raise SpecError("lines must be a non-empty list of objects")
        resolved = []
        for line in lines:
            code = text_field(line, "app_food_code")
            sku_id = str(line["sku_id"]) if line.get("sku_id") is not None else None
            item = shop.find(code, sku_id)
            if item is None:
                item = MenuItem(code=code, sku_id=sku_id or code, name=str(line.get("food_name") or f"未知商品{code}"),
                                price=fen_from(line.get("price", 10), name="price"),
                                box_price=fen_from(line.get("box_price", 0), name="box_price"),
                                boxes=boxes_field(line), known=False)
            resolved.append((item, quantity_field(line)))
        return resolved

    def _platform_event(self, request: SimRequest, event) -> SimResponse:
        data = self._body(request)
        with self._lock:
            record = self._control_order(request.params["order_id"])
            shop = self._shops[record["shop"]]
            try:
                push = event(record, data)
            except SpecError as exc:
                raise SimHttpError(409, {"code": "CONFLICT", "message": str(exc)}) from exc
            answer = {**self._render(record), "sim": dict(record["sim"])}
        if push is not None and shop.push_url:
            self._push(shop, push[0], push[1], key=str(record["order_id"]))
        return SimResponse(200, answer)

    def control_cancel(self, request: SimRequest) -> SimResponse:
        def cancel(record: dict, data: dict):
            if record["status"] in (STATUS_COMPLETED, STATUS_CANCELLED):
                raise SpecError(f"order is in status {record['status']}; it cannot be cancelled")
            by = data.get("by", "customer")
            if by not in PLATFORM_CANCEL:
                raise SpecError('by must be "customer" or "platform"')
            code, reason = PLATFORM_CANCEL[by]
            code, reason = data.get("reason_code", code), data.get("reason", reason)
            if isinstance(code, bool) or not isinstance(code, int) or not isinstance(reason, str):
                raise SpecError("reason_code must be an integer and reason a string")
            record["status"] = STATUS_CANCELLED
            record["utime"] = int(time.time())
            record["sim"].update(cancel_reason_code=code, cancel_reason=reason)
            return "cancel_order", {"order_id": record["order_id"], "reason_code": code, "reason": reason}

        return self._platform_event(request, cancel)

    def control_refund_apply(self, request: SimRequest) -> SimResponse:
        def refund_apply(record: dict, data: dict):
            if record["status"] not in (STATUS_CONFIRMED, STATUS_DELIVERING, STATUS_COMPLETED) \
                    or record["refund_status"] in (REFUND_APPLIED, REFUND_AGREED):
                raise SpecError(f"order in status {record['status']} with refund_status {record['refund_status']} "
                                "cannot apply for a refund")
            reason = str(data.get("reason") or "商品有问题")
            food, money = self._refund_lines(record, data)
            record["refund_status"] = REFUND_APPLIED
            record["refund_reason"] = reason
            record["utime"] = int(time.time())
            record["sim"]["refund_id"] = next(self._refund_ids)
            record["sim"]["refund_partial"] = money is not None
            push = {"order_id": record["order_id"], "notify_type": "apply", "reason": reason,
                    "refund_id": record["sim"]["refund_id"]}
            if money is not None:
                push.update(notify_type="part", money=yuan(money),
                            food=json.dumps(food, ensure_ascii=False, separators=(",", ":")))
            return "refund_order", push

        return self._platform_event(request, refund_apply)

    @staticmethod
    def _refund_lines(record: dict, data: dict) -> tuple[list[dict], int | None]:
        """A partial application's ``food`` entries and amount (fen), from ``lines``
        ([{"app_food_code", "sku_id"?, "count"?}], items of the order) and / or ``money``;
        (``[]``, None) for the whole order."""
        lines, money = data.get("lines"), data.get("money")
        if lines is None and money is None:
            return [], None
        draft: OrderDraft = record["draft"]
        food = []
        if lines is not None:
            if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
                raise SpecError("lines must be a non-empty list of objects")
            for line in lines:
                code, sku_id = line.get("app_food_code"), line.get("sku_id")
                match = next(((item, quantity) for item, quantity in draft.lines
                              if item.code == code and (sku_id is None or item.sku_id == str(sku_id))), None)
                if match is None:
                    raise SpecError(f"the order has no line {code}")
                count = line.get("count", 1)
                if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= match[1]:
                    raise SpecError(f"count must be 1..{match[1]}")
                food.append({"app_food_code": match[0].code, "food_name": match[0].name, "sku_id": match[0].sku_id,
                             "count": count, "refund_price": yuan(match[0].price)})
        fen = fen_from(money, name="money") if money is not None else sum(
            int(round(entry["refund_price"] * 100)) * entry["count"] for entry in food)
        if fen > draft.paid:
            raise SpecError("money is more than the order paid")
        return food, fen

    def control_complete(self, request: SimRequest) -> SimResponse:
        def complete(record: dict, data: dict):
            if record["status"] not in (STATUS_CONFIRMED, STATUS_DELIVERING):
                raise SpecError(f"order is in status {record['status']}; it cannot complete")
            record["status"] = STATUS_COMPLETED
            record["utime"] = int(time.time())
            return None

        return self._platform_event(request, complete)
