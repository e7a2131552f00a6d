"""Ele.me open platform, per PLATFORMS.md.

Every call is ``POST {base}/api/v1/`` with a JSON envelope whose ``signature`` is
the UPPERCASE md5 of action + token + (params plus app_key and timestamp, sorted
by key, each ``key=`` + compact JSON of the value, no separator) + the secret.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

from channels.adapters.base import (
    http_session,
    ParsedDiscount,
    ParsedLine,
    ParsedOrder,
    ParsedRefund,
    PlatformAdapter,
    PlatformError,
    PlatformPayloadError,
    PlatformRejected,
    PlatformUnavailable,
    PulledOrder,
    PushEvent,
    PushKind,
    PushRejected,
    RefundState,
    ZERO,
    from_local_iso,
    http_timeout,
    md5_hex,
    money,
    platform_int,
    platform_json_loads,
    push_body,
    push_text,
    read_with_retries,
)
from core.jsonparse import JsonInvalid, json_loads_bounded, json_strip_nul

logger = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 600
CANCELLED_STATUS = "invalid"
# Our reject / cancel reason codes (CONTRACTS.md) -> Ele.me cancel types.
CANCEL_TYPES = {"sold_out": "foodSoldOut", "store_closed": "restaurantClosed", "store_busy": "restaurantTooBusy",
                "other": "others"}
REFUND_STATES = {"noRefund": RefundState.NONE, "applied": RefundState.APPLIED, "rejected": RefundState.REJECTED,
                 "successful": RefundState.AGREED}
PUSH_KINDS = {10: PushKind.ORDER_CREATED, 14: PushKind.ORDER_CANCELLED, 15: PushKind.ORDER_CANCELLED,
              20: PushKind.REFUND_APPLIED, 30: PushKind.REFUND_APPLIED, 18: PushKind.ORDER_COMPLETED}
PUSH_SIGNED_FIELDS = ("appId", "message", "requestId", "shopId", "timestamp", "type", "userId")
SIGNATURE_PATTERN = re.compile(r"[0-9A-Fa-f]{32}")
NOT_ITEM_GROUPS = {"extra", "discount"}
PICKUP_BUSINESS_TYPE = 1  # ``orderBusinessType`` 1: the customer collects the order at the shop (到店自取)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sign(*, action: str, token: str, params: dict[str, Any], app_key: str, timestamp: int, secret: str) -> str:
    """The UPPERCASE md5 envelope signature."""
    pairs = {**params, "app_key": app_key, "timestamp": timestamp}
    text = "".join(f"{key}={_json(pairs[key])}" for key in sorted(pairs))
    return md5_hex(f"{action}{token}{text}{secret}").upper()


def push_sign(fields: dict[str, Any], secret: str) -> str:
    """The UPPERCASE md5 of a push's seven fields (all but ``signature``) sorted by name as k=v."""
    text = "".join(f"{key}={'' if fields.get(key) is None else fields.get(key)}" for key in sorted(PUSH_SIGNED_FIELDS))
    return md5_hex(f"{text}{secret}").upper()


class ElemeAdapter(PlatformAdapter):
    platform = "eleme"

    # --- transport -------------------------------------------------------------------

    def envelope(self, binding, action: str, params: dict[str, Any], *, timestamp: int | None = None,
                 request_id: str | None = None) -> dict:
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {
            "nop": "1.0.0", "id": request_id or str(uuid.uuid4()), "action": action, "token": binding.token,
            "metas": {"app_key": binding.app_id, "timestamp": timestamp}, "params": params,
            "signature": sign(action=action, token=binding.token, params=params, app_key=binding.app_id,
                              timestamp=timestamp, secret=binding.secret),
        }

    def call(self, binding, action: str, params: dict[str, Any]) -> Any:
        url = f"{binding.base_url.rstrip('/')}/api/v1/"
        body = self.envelope(binding, action, params)
        try:
            response = http_session().post(url, data=_json(body).encode("utf-8"), timeout=http_timeout(),
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        except requests.Timeout as exc:
            raise PlatformUnavailable(f"eleme {action}: timeout") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"eleme {action}: {exc}") from exc
        if response.status_code >= 500:
            raise PlatformUnavailable(f"eleme {action}: HTTP {response.status_code}", status=response.status_code)
        try:
            answer = platform_json_loads(response.content)
        except ValueError:
            raise PlatformUnavailable(f"eleme {action}: HTTP {response.status_code}, not JSON",
                                      status=response.status_code) from None
        error = answer.get("error") if isinstance(answer, dict) else None
        if error or response.status_code >= 400:
            error = error or {}
            raise PlatformRejected(f"eleme {action}: {error.get('message') or response.status_code}",
                                   code=str(error.get("code", "")), status=response.status_code)
        return answer.get("result")

    # --- pulling -----------------------------------------------------------------------

    def pull_new_orders(self, binding, *, now=None, known=None) -> Iterator[PulledOrder]:
        """Unprocessed orders not ingested yet (``known`` says which are), oldest first: their
        ids from ``eleme.order.getUnprocessOrders``, the orders from ``eleme.order.mgetOrders``
        (at most ``CHANNELS_PULL_MAX_ORDERS`` a pull). An order that fails is still
        unprocessed at the next pull, which takes it again: no state is kept."""
        ids = read_with_retries(lambda: self.call(binding, "eleme.order.getUnprocessOrders",
                                                  {"shopId": _shop_id(binding)})) or []
        if not isinstance(ids, list):
            raise PlatformPayloadError("getUnprocessOrders: not a list of ids")
        ids = [str(order_id) for order_id in ids]
        if known is not None and ids:
            ingested = known(ids)
            ids = [order_id for order_id in ids if order_id not in ingested]
        ids = ids[:settings.CHANNELS_PULL_MAX_ORDERS]
        if not ids:
            return
        found = read_with_retries(lambda: self.call(binding, "eleme.order.mgetOrders", {"orderIds": ids})) or {}
        if not isinstance(found, dict):
            raise PlatformPayloadError("mgetOrders: not a map of orders")
        orders = [found[order_id] for order_id in ids if isinstance(found.get(order_id), dict)]
        for order in sorted(orders, key=lambda o: (str(o.get("createdAt") or ""), str(o.get("id")))):
            yield PulledOrder(key=str(order.get("id")), payload=order)

    def reconcile_orders(self, binding) -> Iterator[dict]:
        """Today's orders, page by page, to catch cancellations and refunds a push missed."""
        page_size, max_pages = settings.CHANNELS_ELEME_PAGE_SIZE, settings.CHANNELS_ELEME_MAX_PAGES
        date = timezone.localdate().isoformat()
        for page in range(1, max_pages + 1):
            result = read_with_retries(lambda page=page: self.call(
                binding, "eleme.order.getAllOrders",
                {"shopId": _shop_id(binding), "pageNo": page, "pageSize": page_size, "date": date}))
            batch = result.get("list", []) if isinstance(result, dict) else (result or [])
            yield from (order for order in batch if isinstance(order, dict))
            if len(batch) < page_size:
                return

    def fetch_order(self, binding, order_id: str) -> dict:
        order = self.call(binding, "eleme.order.getOrder", {"orderId": str(order_id)})
        if not isinstance(order, dict):
            raise PlatformPayloadError("getOrder: no order in the answer")
        return order

    def fetch_orders(self, binding, order_ids: list[str]) -> dict[str, dict | Exception]:
        """One ``eleme.order.mgetOrders`` per ``CHANNELS_PULL_MAX_ORDERS`` ids; a failed call
        is every one of its ids' error."""
        found: dict[str, dict | Exception] = {}
        size = settings.CHANNELS_PULL_MAX_ORDERS
        for start in range(0, len(order_ids), size):
            chunk = [str(order_id) for order_id in order_ids[start:start + size]]
            try:
                orders = self.call(binding, "eleme.order.mgetOrders", {"orderIds": chunk}) or {}
                if not isinstance(orders, dict):
                    raise PlatformPayloadError("mgetOrders: not a map of orders")
            except (PlatformError, PlatformPayloadError) as exc:
                found.update(dict.fromkeys(chunk, exc))
                continue
            for order_id in chunk:
                order = orders.get(order_id)
                found[order_id] = order if isinstance(order, dict) else PlatformRejected(
                    f"eleme mgetOrders: order {order_id} not in the answer")
        return found

    # --- parsing -----------------------------------------------------------------------------

    def parse_order(self, binding, payload: dict) -> ParsedOrder:
        if not isinstance(payload, dict):
            raise PlatformPayloadError("the order is not an object")
        order_id = payload.get("id")
        if order_id in (None, "") or isinstance(order_id, bool) or not isinstance(order_id, str | int):
            raise PlatformPayloadError("id is missing")
        lines = []
        for group in _objects(payload.get("groups"), name="groups"):
            if str(group.get("type") or "normal") in NOT_ITEM_GROUPS:
                continue
            for item in _objects(group.get("items"), name="items"):
                lines.append(ParsedLine(
                    name=str(item.get("name") or "")[:120], unit_price=money(item.get("price")),
                    quantity=platform_int(item.get("quantity"), 0, name="quantity"),
                    merchant_code=str(item.get("extendCode") or "")[:64],
                    platform_sku_id=str(item.get("skuId") or "")[:64],
                    platform_food_code=str(item.get("id") or "")[:64],
                ))
        discounts = []
        for activity in _objects(payload.get("orderActivities"), name="orderActivities"):
            amount = abs(money(activity.get("amount")))
            if amount == 0:
                continue
            platform_part = min(abs(money(activity.get("elemePart"))), amount)
            discounts.append(ParsedDiscount(
                reference=str(activity.get("id") or "")[:64], name=str(activity.get("name") or "")[:120],
                amount=amount, merchant_part=amount - platform_part, platform_part=platform_part,
            ))
        phones = payload.get("phoneList") or []
        if not isinstance(phones, list):
            raise PlatformPayloadError("phoneList is not a list")
        lng, _sep, lat = str(payload.get("deliveryGeo") or "").partition(",")
        status = str(payload.get("status") or "")
        pickup = platform_int(payload.get("orderBusinessType"), 0, name="orderBusinessType") == PICKUP_BUSINESS_TYPE
        address = {"text": str(payload.get("address") or "")[:500], "latitude": lat.strip()[:32],
                   "longitude": lng.strip()[:32]}
        return ParsedOrder(
            platform=self.platform, order_id=str(order_id), view_no=str(order_id)[:64],
            shop_code=str(payload.get("shopId") or ""),
            day_seq=platform_int(payload.get("daySn"), name="daySn"),
            status_code=status, placed_at=from_local_iso(payload.get("createdAt")),
            expected_at=from_local_iso(payload.get("deliverTime")), order_type="pickup" if pickup else "delivery",
            contact_name=str(payload.get("consignee") or "")[:50],
            contact_phone=str(phones[0] if phones else "")[:30],
            address={} if pickup else address,
            note=str(payload.get("description") or "")[:500], lines=lines, discounts=discounts,
            delivery_fee=money(payload.get("deliverFee")), packaging_fee=money(payload.get("packageFee")),
            total=money(payload.get("totalPrice")),
            refund_state=REFUND_STATES.get(str(payload.get("refundStatus") or "noRefund"), RefundState.NONE),
            refund_reason="", cancelled=status == CANCELLED_STATUS,
        )

    # --- status back ----------------------------------------------------------------------------

    def accept(self, binding, order_id: str) -> None:
        self.call(binding, "eleme.order.confirmOrderLite", {"orderId": order_id})

    def reject(self, binding, order_id: str, *, reason_code: str, reason: str) -> None:
        self.call(binding, "eleme.order.cancelOrderLite", {
            "orderId": order_id, "type": CANCEL_TYPES.get(reason_code, "others"),
            "remark": reason or reason_code or "others",
        })

    def meal_ready(self, binding, order_id: str) -> None:
        self.call(binding, "eleme.order.setOrderPrepared", {"orderId": order_id})

    def dispatch(self, binding, order_id: str, *, courier_name: str = "", courier_phone: str = "") -> None:
        self.call(binding, "eleme.order.deliveryBySelfLite", {"orderId": order_id})

    def delivered(self, binding, order_id: str) -> None:
        self.call(binding, "eleme.order.receivedOrderLite", {"orderId": order_id})

    def refund_agree(self, binding, order_id: str, *, reason: str = "") -> None:
        self.call(binding, "eleme.order.agreeRefundLite", {"orderId": order_id})

    def refund_reject(self, binding, order_id: str, *, reason: str) -> None:
        self.call(binding, "eleme.order.disagreeRefundLite", {"orderId": order_id, "reason": reason})

    def set_item_availability(self, binding, items: list[dict], *, available: bool) -> None:
        spec_ids = []
        for item in items:
            if item.get("platform_sku_id"):
                spec_ids.append(_spec_id(item["platform_sku_id"]))
            else:
                logger.warning("no Ele.me spec id for a SKU; not synced", extra={"item": item})
        if not spec_ids:
            return
        action = "eleme.product.item.batchFillStock" if available else "eleme.product.item.batchClearStock"
        self.call(binding, action, {"specIds": spec_ids})

    def set_store_state(self, binding, *, open: bool, busy_minutes: int, prep_minutes: int) -> None:
        if open:  # the promised time first, so the shop never opens with a stale busy delay
            self.call(binding, "eleme.shop.setDeliveryTime", {
                "shopId": _shop_id(binding), "deliveryBasicMins": prep_minutes, "deliveryAdjustMins": busy_minutes})
        self.call(binding, "eleme.shop.updateShop", {"shopId": _shop_id(binding),
                                                     "properties": {"isOpen": 1 if open else 0}})

    def shops_open(self, binding, shop_codes: list[str]) -> dict[str, bool]:
        result = self.call(binding, "eleme.shop.mgetShopStatus", {"shopIds": [_spec_id(code) for code in shop_codes]})
        if not isinstance(result, dict):
            raise PlatformPayloadError("mgetShopStatus: result is not an object")
        answer = {}
        for shop_id, status in result.items():
            if not isinstance(status, dict) or "isOpen" not in status:
                raise PlatformPayloadError("mgetShopStatus: a shop without isOpen")
            answer[str(shop_id)] = str(status["isOpen"]) == "1"
        return answer

    # --- pushes ----------------------------------------------------------------------------------

    def verify_push(self, request, *, bindings_for) -> tuple[list, PushEvent]:
        """Shape first (a bounded JSON object, every signed field of its documented type
        and a sane size), then the signature, then the message (bounded JSON, NUL-free)."""
        try:
            body = json_loads_bounded(push_body(request))
        except JsonInvalid as exc:
            raise PushRejected(f"body is not valid JSON: {exc}"[:200], status=400) from None
        if not isinstance(body, dict):
            raise PushRejected("the body must be a JSON object", status=400)
        if not body.get("signature") or body.get("type") in (None, ""):
            raise PushRejected("signature and type are required", status=400)
        push_type = _push_int(body["type"], name="type", digits=6)
        timestamp = _push_int(body.get("timestamp"), name="timestamp", digits=13)
        seconds = timestamp / (1000 if timestamp > 10**11 else 1)
        if abs(time.time() - seconds) > MAX_SKEW_SECONDS:
            raise PushRejected("stale timestamp", status=400)
        app_id = push_text(body.get("appId"), name="appId")
        shop_id = push_text(body.get("shopId"), name="shopId")
        push_text(body.get("requestId"), name="requestId", max_length=128, required=False)
        push_text(body.get("userId"), name="userId", required=False)
        raw_message = body.get("message")
        if raw_message is not None and not isinstance(raw_message, str | dict):
            raise PushRejected("message must be a JSON string", status=400)
        signature = body["signature"]
        if not isinstance(signature, str) or not SIGNATURE_PATTERN.fullmatch(signature):
            raise PushRejected("bad signature", status=401)
        bindings = [binding for binding in bindings_for(app_id, shop_id)
                    if hmac.compare_digest(push_sign(body, binding.secret), signature.upper())]
        if not bindings:
            raise PushRejected("bad signature", status=401)
        try:
            message = platform_json_loads(raw_message) if isinstance(raw_message, str) and raw_message \
                else json_strip_nul(raw_message or {})
        except JsonInvalid as exc:
            raise PushRejected(f"message is not valid JSON: {exc}"[:200], status=400) from None
        if not isinstance(message, dict):
            raise PushRejected("message must be a JSON object", status=400)
        kind = PUSH_KINDS.get(push_type, PushKind.IGNORED)
        order_id = message.get("id") or message.get("orderId") or ""
        if kind != PushKind.IGNORED:
            order_id = push_text(order_id, name="the message's order id")
        refund = None
        if kind == PushKind.REFUND_APPLIED:
            try:
                refund = refund_detail(message)
            except PlatformPayloadError as exc:
                raise PushRejected(str(exc), status=400) from None
        event = PushEvent(
            kind=kind, order_id=str(order_id)[:64], shop_code=shop_id, refund=refund,
            message_shop_code=str(message.get("shopId") or "")[:64],
            order_payload=message if kind == PushKind.ORDER_CREATED else None,
            reason_code=str(message.get("reasonCode") or push_type)[:30],
            reason=str(message.get("reason") or message.get("remark") or "")[:255],
            refund_id=str(message.get("refundId") or "")[:64], raw=json_strip_nul(body),
        )
        return bindings, event

    def push_answer(self, *, ok: bool, message: str = "", status: int = 200) -> tuple[int, dict]:
        return (200, {"message": "ok"}) if ok else (status, {"message": message or "error"})


def refund_detail(message: dict) -> ParsedRefund:
    """A refund message's detail: ``refundType`` "part" is partial, with ``totalPrice``
    (yuan asked back) and ``goodsList`` (``{name, quantity, price, skuId?, extendCode?}``,
    price per unit); "normal" (or none) is the whole order."""
    goods = message.get("goodsList") or []
    if not isinstance(goods, list) or not all(isinstance(item, dict) for item in goods):
        raise PlatformPayloadError("goodsList must be a list of objects")
    lines = []
    for item in goods:
        quantity = platform_int(item.get("quantity") or 1, name="quantity")
        if quantity <= 0:
            raise PlatformPayloadError(f"quantity must be positive: {quantity}")
        lines.append({"name": str(item.get("name") or "")[:120], "merchant_code": str(item.get("extendCode") or ""),
                      "platform_sku_id": str(item.get("skuId") or ""), "quantity": quantity,
                      "amount": str(money(item.get("price")) * quantity)})
    partial = str(message.get("refundType") or "normal") == "part"
    if not partial:
        return ParsedRefund()
    if message.get("totalPrice") in (None, "") and not lines:
        raise PlatformPayloadError("a partial refund needs totalPrice or goodsList")
    amount = money(message.get("totalPrice")) if message.get("totalPrice") not in (None, "") \
        else sum((Decimal(line["amount"]) for line in lines), ZERO)
    if amount < 0:
        raise PlatformPayloadError("totalPrice must not be negative")
    return ParsedRefund(partial=True, amount=amount, lines=tuple(lines))


def _objects(value: Any, *, name: str) -> list[dict]:
    """A list of objects of an order (``groups``, ``items``...); absent is empty."""
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PlatformPayloadError(f"{name} must be a list of objects")
    return value


def _push_int(value: Any, *, name: str, digits: int) -> int:
    """A push's integer field: a JSON integer (or a string of digits) of at most ``digits`` digits."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value) if len(value) <= digits else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**digits:
        raise PushRejected(f"bad {name}", status=400)
    return value


def _shop_id(binding) -> Any:
    """Ele.me shop ids are numbers; keep a numeric code a number so it signs as one."""
    return int(binding.shop_code) if str(binding.shop_code).isdigit() else binding.shop_code


def _spec_id(value: str) -> Any:
    return int(value) if str(value).isdigit() else value
