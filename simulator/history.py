"""Orders the platforms already have when the simulator starts (``--orders FILE``).

A real platform remembers every order it ever sent; a freshly started simulator knows
none. The demo's order center, though, has platform orders from before the start: the
ones ``manage.py seed_demo`` made up and the live ones of an earlier run. Asked about
one (``order/getOrderDetail``, ``eleme.order.getOrder``) or told to move one
(``order/confirm``, ...), the simulator would answer "no such order". So ``seed_demo``
writes those orders, as the order center has them, to a file the simulator loads at
start and again after ``POST /_sim/reset`` (``SimConfig.meituan_orders`` and
``eleme_orders``). Each becomes an order of its shop exactly as if the platform had
made it, with the given id and status (and a day sequence number, below); nothing is pushed.

A Meituan order (amounts in yuan)::

    {"order_id": 27900000000012, "shop": "mt-store-1", "status": 4, "created_at": 1764300000,
     "day_seq": 3, "lines": [{"app_food_code": "mt_gbjd", "sku_id": "1001001", "food_name": "宫保鸡丁",
     "price": 38, "box_price": 2, "quantity": 1}], "pickup": false, "delivery_time": 0,
     "shipping_fee": 4, "promotions": [{"name": "满50减6", "platform": 2, "merchant": 4}],
     "recipient_name": "王女士", "recipient_phone": "18400000012", "recipient_address": "...",
     "caution": "", "meal_ready": false, "courier_name": "", "courier_phone": "", "refund_status": 0}

An Ele.me order: ``id``, ``shop`` (the shop id), ``status`` ("unprocessed", "valid",
"invalid", "settled"), ``created_at``, ``day_seq``, ``lines`` ([{"extend_code" | "sku_id" |
"item_id", "name", "price", "package_fee", "quantity"}]), ``pickup``, ``delivery_time``,
``deliver_fee``, ``promotions``, ``consignee``, ``phone``, ``address``, ``description``,
``prepared``, ``delivering``, ``refund_status`` ("noRefund", "applied", "rejected",
"successful"). Only the id, shop, status, created_at and lines are required; an order
given no ``promotions`` has none (not the generator's 满减 tiers).

Orders are loaded per shop and day in the order of their ``day_seq`` (then of
``created_at``) and numbered 1, 2, ... per shop and day as they load, like the
platform numbers its orders: a day's numbers never have a gap (the order center's
Meituan pull walks them one by one), and a shop's next new order of that day takes the
next number. Numbered densely by their writer (``seed_demo``), the orders keep
their ``day_seq``.
"""

from __future__ import annotations

import logging
from typing import Any

from simulator.orders_gen import Promotion, SpecError, china_day, fen_from

logger = logging.getLogger("simulator")

MEITUAN_STATUSES = {1, 2, 3, 4, 6, 8, 9}
MEITUAN_REFUND_STATUSES = {0, 1, 2, 3}
ELEME_STATUSES = {"unprocessed", "valid", "invalid", "settled"}
ELEME_REFUND_STATUSES = {"noRefund", "applied", "rejected", "successful"}
HISTORY_ACT_ID = 700000  # activity ids of loaded promotions: 700001, 700002, ...


class OrderHistoryError(ValueError):
    """An order of the orders file the simulator cannot take."""


def history_load(server) -> int:
    """Give each platform the orders of ``server.config``; returns how many were loaded."""
    loaded = 0
    for name, specs, add in (("meituan", server.config.meituan_orders, _meituan_add),
                             ("eleme", server.config.eleme_orders, _eleme_add)):
        counterpart = server.counterpart(name)
        for spec in sorted(specs, key=_load_order):
            try:
                add(counterpart, spec)
            except (SpecError, KeyError, TypeError, ValueError) as exc:
                ident = spec.get("order_id", spec.get("id", "?")) if isinstance(spec, dict) else "?"
                detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                raise OrderHistoryError(f"{name} order {ident}: {detail}") from exc
            loaded += 1
    if loaded:
        logger.info("simulator: %d platform order(s) loaded from the orders file", loaded)
    return loaded


def _load_order(spec: Any) -> tuple:
    """Per shop and day: the orders with a day sequence number in its order, then the others."""
    if not isinstance(spec, dict):
        return ("", "", 1, 0, 0)
    created_at = spec.get("created_at") if isinstance(spec.get("created_at"), int) else 0
    day_seq = spec.get("day_seq") if isinstance(spec.get("day_seq"), int) else None
    return (str(spec.get("shop", "")), china_day(created_at), day_seq is None, day_seq or 0, created_at)


def _int(spec: dict, key: str, *, minimum: int = 0) -> int:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{key} must be an integer of at least {minimum}")
    return value


def _text(spec: dict, key: str) -> str | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{key} must be a string")
    return value


def _flag(spec: dict, key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"{key} must be true or false")
    return value


def _promotions(spec: dict) -> list[Promotion]:
    """The order's discounts as given (none when not given: not the generator's tiers)."""
    entries = spec.get("promotions", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise SpecError("promotions must be a list of objects")
    return [Promotion(act_id=HISTORY_ACT_ID + index, name=str(entry.get("name") or "满减"), kind=2,
                      platform=fen_from(entry.get("platform", 0), name="platform"),
                      merchant=fen_from(entry.get("merchant", 0), name="merchant"))
            for index, entry in enumerate(entries, start=1)]


def _place(platform, *, shop_key: str, spec: dict, lines, note: str | None, order_id: Any,
           id_field: str) -> dict:
    """Make the order through the platform's own ``create_orders`` (no push), then give it
    the id and day sequence number it has. Call with the platform's lock held."""
    if order_id in platform._orders:
        raise SpecError("the id is already taken")
    created_at = _int(spec, "created_at", minimum=1)
    delivery_time = _int(spec, "delivery_time") if "delivery_time" in spec else 0
    shop = platform._shops[shop_key]
    if "day_seq" in spec:
        _int(spec, "day_seq", minimum=1)
    [made] = platform.create_orders(shop, count=1, push=False, lines=lines, new_customer=False, note=note,
                                    pickup=_flag(spec, "pickup"), delivery_time=delivery_time, created_at=created_at)
    record = platform._orders.pop(made[id_field])
    record[id_field] = order_id
    platform._orders[order_id] = record
    record["draft"].promotions = _promotions(spec)
    return record


def _customer(draft, *, name: str | None, phone: str | None, address: str | None) -> None:
    draft.customer_name = name if name is not None else draft.customer_name
    draft.phone = phone if phone is not None else draft.phone
    draft.address = address if address is not None else draft.address


def _meituan_add(meituan, spec: dict) -> None:
    order_id = int(str(spec["order_id"]))
    shop_key = str(spec["shop"])
    status = _int(spec, "status")
    if status not in MEITUAN_STATUSES:
        raise SpecError(f"status must be one of {sorted(MEITUAN_STATUSES)}")
    refund_status = _int(spec, "refund_status") if "refund_status" in spec else 0
    if refund_status not in MEITUAN_REFUND_STATUSES:
        raise SpecError(f"refund_status must be one of {sorted(MEITUAN_REFUND_STATUSES)}")
    with meituan._lock:
        shop = meituan._shops.get(shop_key)
        if shop is None:
            raise SpecError(f"no Meituan shop {shop_key}")
        record = _place(meituan, shop_key=shop_key, spec=spec, lines=meituan._lines(shop, spec["lines"]),
                        note=_text(spec, "caution") or "", order_id=order_id, id_field="order_id")
        draft = record["draft"]
        if "shipping_fee" in spec:
            draft.shipping = fen_from(spec["shipping_fee"], name="shipping_fee")
        _customer(draft, name=_text(spec, "recipient_name"), phone=_text(spec, "recipient_phone"),
                  address=_text(spec, "recipient_address"))
        record.update(status=status, refund_status=refund_status, utime=draft.created_at)
        record["sim"].update(meal_ready=_flag(spec, "meal_ready"), courier_name=_text(spec, "courier_name") or "",
                             courier_phone=_text(spec, "courier_phone") or "")


def _eleme_add(eleme, spec: dict) -> None:
    order_id = str(spec["id"])
    shop_key = str(spec["shop"])
    status = spec["status"]
    if status not in ELEME_STATUSES:
        raise SpecError(f"status must be one of {sorted(ELEME_STATUSES)}")
    refund_status = spec.get("refund_status", "noRefund")
    if refund_status not in ELEME_REFUND_STATUSES:
        raise SpecError(f"refund_status must be one of {sorted(ELEME_REFUND_STATUSES)}")
    with eleme._lock:
        shop = eleme._shops.get(shop_key)
        if shop is None:
            raise SpecError(f"no Ele.me shop {shop_key}")
        record = _place(eleme, shop_key=shop_key, spec=spec, lines=eleme._lines(shop, spec["lines"]),
                        note=_text(spec, "description") or "", order_id=order_id, id_field="id")
        draft = record["draft"]
        if "deliver_fee" in spec:
            draft.shipping = fen_from(spec["deliver_fee"], name="deliver_fee")
        _customer(draft, name=_text(spec, "consignee"), phone=_text(spec, "phone"), address=_text(spec, "address"))
        record.update(status=status, refundStatus=refund_status)
        record["sim"].update(prepared=_flag(spec, "prepared"), delivering=_flag(spec, "delivering"))
