"""Meituan Waimai (classic open platform), per PLATFORMS.md.

Calls go to ``{base}/api/v1/{path}`` with ``app_id``, ``timestamp`` and ``sig`` in
the query string; writes are POST with a form body. ``sig`` is the lowercase
md5 of the URL without query + "?" + every non-empty parameter except ``sig``
(query and body alike) sorted by name as raw ``k=v`` joined by "&" + the secret.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from collections.abc import Iterator
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone

from channels.adapters.base import (
    http_session,
    CENT,
    ZERO,
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
    from_unix,
    http_timeout,
    md5_hex,
    money,
    platform_int,
    platform_json_loads,
    push_body,
    push_text,
    read_with_retries,
)
from core.jsonparse import JsonInvalid, json_strip_nul

logger = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 600
CANCELLED_STATUS = 9
# Our reject / cancel reason codes (CONTRACTS.md) -> Meituan merchant reason codes 2001-2004.
# Meituan error code: no such food / sku at the shop.
UNKNOWN_FOOD = "803"
# poi/mget open_level: 1 open, 3 closed (休息).
OPEN_LEVEL_OPEN = "1"
REASON_CODES = {"sold_out": 2001, "store_closed": 2002, "store_busy": 2003, "other": 2004}
REFUND_STATES = {0: RefundState.NONE, 1: RefundState.APPLIED, 2: RefundState.AGREED, 3: RefundState.REJECTED}
# "part": a partial refund application (``money`` and ``food`` say what is asked back).
REFUND_NOTIFY_KINDS = {"apply": PushKind.REFUND_APPLIED, "part": PushKind.REFUND_APPLIED,
                       "agree": PushKind.REFUND_AGREED,
                       "reject": PushKind.REFUND_REJECTED, "cancelRefund": PushKind.REFUND_CANCELLED}
PUSH_PATHS = {"create_order", "cancel_order", "refund_order"}
SIGNATURE_PATTERN = re.compile(r"[0-9A-Fa-f]{32}")
PICKUP_PICK_TYPE = 1  # ``pick_type`` 1: the customer collects the order at the shop (到店自取)
MISSING = "missing"  # pull state: day sequences walked past whose order is not ingested yet
ATTEMPTS = "attempts"  # pull state: "date/day_seq" -> failed tries of a missing day sequence
GIVEN_UP = "given_up"  # handed to a person by the pull (channels.services.pull), then removed
WALK_FAILURES_IN_A_ROW = 2  # day sequences in a row that cannot be fetched end a pull's walk


def sign(url: str, params: dict[str, Any], secret: str) -> str:
    """Meituan ``sig`` over ``url`` (no query) and ``params`` (``sig`` itself ignored)."""
    pairs = sorted((str(k), str(v)) for k, v in params.items() if k != "sig" and v is not None and str(v) != "")
    return md5_hex(f"{url}?{'&'.join(f'{k}={v}' for k, v in pairs)}{secret}")


def _json_list(value: Any, *, name: str) -> list[dict]:
    """A list of objects sent as a JSON string inside the form (``detail``, ``extras``,
    ``food``): parsed bounded (depth, numbers) and NUL-free."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            value = platform_json_loads(value)
        except JsonInvalid as exc:
            raise PlatformPayloadError(f"{name} is not valid JSON: {exc}"[:200]) from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PlatformPayloadError(f"{name} is not a list of objects")
    return value


def _missing(state: dict) -> list[tuple[str, int]]:
    """(date, day_seq) of the pull state's missing day sequences, oldest first."""
    missing = state.get(MISSING) or {}
    return sorted((date, int(day_seq)) for date, seqs in missing.items() for day_seq in seqs)


def _box_count(value: Any) -> Decimal:
    """A line's ``box_num`` (how many boxes the line takes); not a count: malformed."""
    count = _int(value, 0)
    if count < 0:
        raise PlatformPayloadError(f"box_num must not be negative: {value!r}")
    return Decimal(count)


def _int(value: Any, default: int | None = None) -> int | None:
    return platform_int(value, default)


class MeituanAdapter(PlatformAdapter):
    platform = "meituan"

    # --- transport -------------------------------------------------------------------

    def url(self, binding, path: str) -> str:
        return f"{binding.base_url.rstrip('/')}/api/v1/{path.lstrip('/')}"

    def call(self, binding, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """Send one signed call; returns ``data`` of the answer or raises PlatformError."""
        url = self.url(binding, path)
        business = {k: v for k, v in (params or {}).items() if v is not None}
        system = {"app_id": binding.app_id, "timestamp": int(time.time())}
        sig = sign(url, {**system, **business}, binding.secret)
        try:
            if method == "GET":
                response = http_session().get(url, params={**system, **business, "sig": sig}, timeout=http_timeout())
            else:
                response = http_session().post(url, params={**system, "sig": sig}, data=business, timeout=http_timeout())
        except requests.Timeout as exc:
            raise PlatformUnavailable(f"meituan {path}: timeout") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"meituan {path}: {exc}") from exc
        if response.status_code >= 500:
            raise PlatformUnavailable(f"meituan {path}: HTTP {response.status_code}", status=response.status_code)
        try:
            body = platform_json_loads(response.content)
        except ValueError:
            raise PlatformUnavailable(f"meituan {path}: HTTP {response.status_code}, not JSON",
                                      status=response.status_code) from None
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code >= 400 or error or body.get("data") == "ng":
            error = error or {}
            raise PlatformRejected(f"meituan {path}: {error.get('msg') or response.status_code}",
                                   code=str(error.get("code", "")), status=response.status_code)
        return body.get("data")

    # --- pulling -----------------------------------------------------------------------

    def pull_new_orders(self, binding, *, now: datetime | None = None, known=None) -> Iterator[PulledOrder]:
        """Day sequences walked past before and not ingested yet (``missing`` in the pull
        state, oldest first), then every day sequence above the last one walked today.

        In the first ``CHANNELS_MEITUAN_MIDNIGHT_GRACE_MINUTES`` of a day, yesterday is
        finished before today: its day sequences above the one remembered for it are walked
        until ``CHANNELS_MEITUAN_PAST_DAY_MISSES`` in a row have no order (getOrderDaySeq
        only knows today). Only a day the binding was pulling (its date is in the pull
        state) is finished. At most ``CHANNELS_PULL_MISSING_PER_PULL`` missing ones and
        ``CHANNELS_PULL_MAX_ORDERS`` new day sequences a pull."""
        now = timezone.localtime(now or timezone.now())
        state = binding.pull_state or {}
        budget = [settings.CHANNELS_PULL_MAX_ORDERS]
        # The retries have their own budget: orders that never ingest cannot starve the new ones.
        for date, day_seq in _missing(state)[:settings.CHANNELS_PULL_MISSING_PER_PULL]:
            yield self._pull_day_seq(binding, date=date, day_seq=day_seq)
        grace = timedelta(minutes=settings.CHANNELS_MEITUAN_MIDNIGHT_GRACE_MINUTES)
        yesterday = (now.date() - timedelta(days=1)).strftime("%Y%m%d")
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if now - midnight < grace and yesterday in state:
            yield from self._walk_day(binding, date=yesterday, after=int(state[yesterday]), newest=None,
                                      budget=budget)
        date = now.strftime("%Y%m%d")
        data = read_with_retries(lambda: self.call(binding, "GET", "order/getOrderDaySeq",
                                                   {"app_poi_code": binding.shop_code})) or {}
        if not isinstance(data, dict):
            raise PlatformPayloadError("getOrderDaySeq: no day_seq in the answer")
        newest = _int(data.get("day_seq"), 0)
        yield from self._walk_day(binding, date=date, after=int(state.get(date, 0)), newest=newest, budget=budget)

    def _walk_day(self, binding, *, date: str, after: int, newest: int | None,
                  budget: list[int]) -> Iterator[PulledOrder]:
        """The orders of ``date`` with day sequences after ``after``: up to ``newest``, or,
        when the newest is not known (a past day), until ``CHANNELS_MEITUAN_PAST_DAY_MISSES``
        sequences in a row have no order (a gap in the day's numbers does not end the walk).
        One that cannot be fetched is yielded with its error (the pull state keeps it as
        missing, to be tried again); ``WALK_FAILURES_IN_A_ROW`` such failures in a row end
        the walk (the platform is down: the next pull goes on from there)."""
        day_seq = after
        misses, allowed_misses = 0, settings.CHANNELS_MEITUAN_PAST_DAY_MISSES
        failures = 0
        while budget[0] > 0 and (newest is None or day_seq < newest):
            day_seq += 1
            pulled = self._pull_day_seq(binding, date=date, day_seq=day_seq)
            if pulled.payload is None and not pulled.error:
                if newest is None:
                    misses += 1
                    if misses >= allowed_misses:
                        return  # past the last order of that day
                    continue
                logger.warning("meituan day_seq has no order", extra={"binding": binding.pk, "day_seq": day_seq})
            misses = 0
            budget[0] -= 1
            failures = failures + 1 if pulled.error else 0
            yield pulled
            if failures >= WALK_FAILURES_IN_A_ROW:
                return

    def _pull_day_seq(self, binding, *, date: str, day_seq: int) -> PulledOrder:
        """The order at ``day_seq`` of ``date``; no payload and no error: the platform has none."""
        key = (date, day_seq)
        try:
            found = read_with_retries(lambda: self.call(
                binding, "GET", "order/getOrderIdByDaySeq",
                {"app_poi_code": binding.shop_code, "date_time": date, "day_seq": day_seq}))
        except PlatformRejected:
            return PulledOrder(key=key)
        except PlatformError as exc:
            return PulledOrder(key=key, error=str(exc))
        try:
            if not isinstance(found, dict) or found.get("order_id") in (None, ""):
                raise PlatformPayloadError("getOrderIdByDaySeq: no order_id in the answer")
            order_id = str(found["order_id"])
            return PulledOrder(key=key, payload=read_with_retries(lambda: self.fetch_order(binding, order_id)))
        except (PlatformError, PlatformPayloadError) as exc:
            return PulledOrder(key=key, error=str(exc))

    def pull_state_after(self, binding, *, state: dict, pulled: PulledOrder, done: bool) -> dict:
        """``{date: the highest day_seq walked, "missing": {date: [day_seq, ...]},
        "attempts": {"date/day_seq": n}}``: every day sequence up to a date's number is
        ingested, has no order, or is missing. A missing one that failed
        ``CHANNELS_PULL_MISSING_MAX_ATTEMPTS`` times, or whose date leaves the week kept,
        is moved to ``given_up`` (with its last error) for the pull to hand to a person."""
        date, day_seq = pulled.key
        state = dict(state)
        state[date] = max(int(state.get(date, 0)), day_seq)
        missing = {day: set(seqs) for day, seqs in (state.get(MISSING) or {}).items()}
        attempts = dict(state.get(ATTEMPTS) or {})
        given_up = list(state.get(GIVEN_UP) or [])
        seqs = missing.setdefault(date, set())
        place = f"{date}/{day_seq}"
        if done:
            seqs.discard(day_seq)
            attempts.pop(place, None)
        else:
            attempts[place] = int(attempts.get(place, 0)) + 1
            if attempts[place] >= settings.CHANNELS_PULL_MISSING_MAX_ATTEMPTS:
                seqs.discard(day_seq)
                given_up.append({"reference": place, "attempts": attempts.pop(place), "error": pulled.error})
            else:
                seqs.add(day_seq)
        # Keep a week of dates: the state must not grow forever.
        dates = sorted(key for key in state if key.isdigit())
        for old in dates[:-7]:
            state.pop(old)
            for old_seq in sorted(missing.get(old) or ()):
                reference = f"{old}/{old_seq}"
                given_up.append({"reference": reference, "attempts": attempts.pop(reference, 0),
                                 "error": "not ingested within a week"})
        kept = {day: sorted(seqs) for day, seqs in sorted(missing.items()) if seqs and day in state}
        for name, value in ((MISSING, kept), (ATTEMPTS, attempts), (GIVEN_UP, given_up)):
            if value:
                state[name] = value
            else:
                state.pop(name, None)
        return state

    def fetch_order(self, binding, order_id: str) -> dict:
        data = self.call(binding, "GET", "order/getOrderDetail", {"order_id": order_id})
        if not isinstance(data, dict):
            raise PlatformPayloadError("getOrderDetail: no order in the answer")
        return data

    def order_status(self, binding, order_id: str) -> int:
        return _int((self.call(binding, "GET", "order/viewstatus", {"order_id": order_id}) or {}).get("status"))

    # --- parsing -----------------------------------------------------------------------------

    def parse_order(self, binding, payload: dict) -> ParsedOrder:
        try:
            order_id = str(payload["order_id"]).strip()
        except KeyError:
            raise PlatformPayloadError("order_id is missing") from None
        items = _json_list(payload.get("detail"), name="detail")
        discounts = []
        for extra in _json_list(payload.get("extras"), name="extras"):
            amount = money(extra.get("reduce_fee"))
            if amount <= 0:
                continue
            platform_part = min(money(extra.get("mt_charge")), amount)
            discounts.append(ParsedDiscount(
                reference=str(extra.get("act_detail_id") or ""), name=str(extra.get("remark") or "")[:120],
                amount=amount, merchant_part=amount - platform_part, platform_part=platform_part,
            ))
        # PLATFORMS.md: original_price = goods + the lines' box fees (box_price * box_num,
        # box_num being the line's box count) + package_bag_money (one bag fee for the
        # order) + shipping_fee; total = original_price - the reduce_fees. Each line
        # carries its boxes; the bag stays at order level.
        boxes = [(_box_count(item.get("box_num")) * money(item.get("box_price"))).quantize(CENT) for item in items]
        order_packaging = money(payload.get("package_bag_money"))
        lines = []
        for item, box_fee in zip(items, boxes, strict=True):
            food_code = str(item.get("app_food_code") or "")
            lines.append(ParsedLine(
                name=str(item.get("food_name") or food_code)[:120], unit_price=money(item.get("price")),
                quantity=_int(item.get("quantity"), 0), merchant_code=food_code, platform_food_code=food_code,
                platform_sku_id=str(item.get("sku_id") or ""), spec=str(item.get("spec") or "")[:100],
                packaging_fee=box_fee,
            ))
        delivery_fee = money(payload.get("shipping_fee"))
        total = money(payload.get("total"))
        status = _int(payload.get("status"))
        latitude, longitude = payload.get("latitude"), payload.get("longitude")
        pickup = _int(payload.get("pick_type"), 0) == PICKUP_PICK_TYPE
        address = {"text": str(payload.get("recipient_address") or ""),
                   "latitude": "" if latitude in (None, "") else str(latitude),
                   "longitude": "" if longitude in (None, "") else str(longitude)}
        return ParsedOrder(
            platform=self.platform, order_id=order_id, view_no=str(payload.get("wm_order_id_view") or ""),
            shop_code=str(payload.get("app_poi_code") or ""), day_seq=_int(payload.get("day_seq")),
            status_code=status, placed_at=from_unix(payload.get("ctime")),
            expected_at=from_unix(_int(payload.get("delivery_time"), 0)),
            contact_name=str(payload.get("recipient_name") or "")[:50],
            contact_phone=str(payload.get("recipient_phone") or "")[:30],
            address={} if pickup else address, order_type="pickup" if pickup else "delivery",
            note=str(payload.get("caution") or "")[:500], lines=lines, discounts=discounts,
            delivery_fee=delivery_fee, packaging_fee=order_packaging, total=total,
            refund_state=REFUND_STATES.get(_int(payload.get("refund_status"), 0), RefundState.NONE),
            refund_reason=str(payload.get("refund_reason") or ""),
            cancelled=status == CANCELLED_STATUS,
        )

    # --- status back ----------------------------------------------------------------------------

    def accept(self, binding, order_id: str) -> None:
        self.call(binding, "POST", "order/confirm", {"order_id": order_id})

    def reject(self, binding, order_id: str, *, reason_code: str, reason: str) -> None:
        self.call(binding, "POST", "order/cancel", {
            "order_id": order_id, "reason_code": REASON_CODES.get(reason_code, REASON_CODES["other"]),
            "reason": reason or reason_code or "other",
        })

    def meal_ready(self, binding, order_id: str) -> None:
        self.call(binding, "POST", "order/preparationMealComplete", {"order_id": order_id})

    def dispatch(self, binding, order_id: str, *, courier_name: str = "", courier_phone: str = "") -> None:
        self.call(binding, "POST", "order/delivering",
                  {"order_id": order_id, "courier_name": courier_name, "courier_phone": courier_phone})

    def delivered(self, binding, order_id: str) -> None:
        self.call(binding, "POST", "order/arrived", {"order_id": order_id})

    def refund_agree(self, binding, order_id: str, *, reason: str = "") -> None:
        self.call(binding, "POST", "order/refund/agree", {"order_id": order_id, "reason": reason or "agree"})

    def refund_reject(self, binding, order_id: str, *, reason: str) -> None:
        self.call(binding, "POST", "order/refund/reject", {"order_id": order_id, "reason": reason})

    def set_item_availability(self, binding, items: list[dict], *, available: bool) -> None:
        """Mapped SKUs in one call. A SKU without a mapping is sent by our merchant code (Meituan's
        ``app_food_code`` is usually the merchant's code), one call each: when Meituan answers
        803 (no such food at this shop) the SKU is not on its menu there, which is logged and
        skipped rather than dead-lettered. A mapped SKU refused is a wrong mapping: raised."""
        mapped = [item for item in items if item.get("platform_food_code") or item.get("platform_sku_id")]
        if mapped:
            self._sell_status(binding, mapped, available=available)
        for item in items:
            if item in mapped:
                continue
            try:
                self._sell_status(binding, [item], available=available)
            except PlatformRejected as exc:
                if exc.code != UNKNOWN_FOOD:
                    raise
                logger.info("SKU not on the Meituan menu of this shop; availability not synced",
                            extra={"merchant_code": item.get("merchant_code"), "shop_code": binding.shop_code})

    def _sell_status(self, binding, items: list[dict], *, available: bool) -> None:
        food_data = []
        for item in items:
            food_code = item.get("platform_food_code") or item.get("merchant_code")
            sku_id = item.get("platform_sku_id") or item.get("merchant_code")
            food_data.append({"app_food_code": food_code, "skus": [{"sku_id": sku_id}]})
        self.call(binding, "POST", "food/sku/sellStatus", {
            "app_poi_code": binding.shop_code,
            "food_data": json.dumps(food_data, ensure_ascii=False, separators=(",", ":")),
            "sell_status": 0 if available else 1,
        })

    def set_store_state(self, binding, *, open: bool, busy_minutes: int, prep_minutes: int) -> None:
        # Meituan has no busy call in the classic API: busy is open.
        self.call(binding, "POST", "poi/open" if open else "poi/close", {"app_poi_code": binding.shop_code})

    def shops_open(self, binding, shop_codes: list[str]) -> dict[str, bool]:
        data = self.call(binding, "GET", "poi/mget", {"app_poi_codes": ",".join(shop_codes)})
        if not isinstance(data, list):
            raise PlatformPayloadError("poi/mget: data is not a list")
        answer = {}
        for row in data:
            if not isinstance(row, dict) or "app_poi_code" not in row:
                raise PlatformPayloadError("poi/mget: a row without app_poi_code")
            answer[str(row["app_poi_code"])] = str(row.get("open_level")) == OPEN_LEVEL_OPEN
        return answer

    # --- pushes ----------------------------------------------------------------------------------

    def verify_push(self, request, *, bindings_for) -> tuple[list, PushEvent]:
        """Meituan pushes a form body signed over the receiving URL (values decoded).
        Shape first (size, app id, timestamp, sig), then the signature, then the values
        (NUL-free; the JSON strings inside are parsed bounded where they are read)."""
        path = request.resolver_match.kwargs.get("path", "") if request.resolver_match else ""
        if path not in PUSH_PATHS:
            raise PushRejected(f"unknown push {path!r}"[:100], status=404)
        push_body(request)
        # Query and form alike, values decoded (Django parses urlencoded and multipart bodies).
        try:
            params = {**request.GET.dict(), **(request.POST.dict() if request.method == "POST" else {})}
        except (SuspiciousOperation, MultiPartParserError) as exc:
            raise PushRejected(f"malformed form: {exc}"[:200], status=400) from None
        app_id, sig, timestamp = params.get("app_id", ""), params.get("sig", ""), params.get("timestamp", "")
        if not app_id or not sig or not timestamp:
            raise PushRejected("app_id, timestamp and sig are required", status=400)
        push_text(app_id, name="app_id")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise PushRejected("bad timestamp", status=400)
        if abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
            raise PushRejected("stale timestamp", status=400)
        shop_code = push_text(params.get("app_poi_code", ""), name="app_poi_code", required=False)
        if not SIGNATURE_PATTERN.fullmatch(sig):
            raise PushRejected("bad signature", status=401)
        url = push_receiving_url(request)
        bindings = [binding for binding in bindings_for(app_id, shop_code)
                    if hmac.compare_digest(sign(url, params, binding.secret), sig.lower())]
        if not bindings:
            raise PushRejected("bad signature", status=401)
        params = json_strip_nul(params)
        order_id = push_text(params.get("order_id", ""), name="order_id")
        business = {k: v for k, v in params.items() if k not in ("app_id", "timestamp", "sig")}
        if path == "create_order":
            event = PushEvent(kind=PushKind.ORDER_CREATED, order_id=order_id, shop_code=shop_code,
                              order_payload=business, raw=business)
        elif path == "cancel_order":
            event = PushEvent(kind=PushKind.ORDER_CANCELLED, order_id=order_id, shop_code=shop_code,
                              reason_code=params.get("reason_code", "")[:30], reason=params.get("reason", "")[:255],
                              raw=business)
        else:
            kind = REFUND_NOTIFY_KINDS.get(params.get("notify_type", ""), PushKind.IGNORED)
            try:
                refund = refund_detail(params)
            except PlatformPayloadError as exc:
                raise PushRejected(str(exc), status=400) from None
            event = PushEvent(kind=kind, order_id=order_id, shop_code=shop_code,
                              reason=params.get("reason", "")[:255], refund_id=params.get("refund_id", "")[:64],
                              refund=refund, raw=business)
        return bindings, event

    def push_answer(self, *, ok: bool, message: str = "", status: int = 200) -> tuple[int, dict]:
        if ok:
            return 200, {"data": "ok"}
        return status, {"data": "ng", "error": {"code": 703 if status == 401 else 700, "msg": message}}


def refund_detail(params: dict) -> ParsedRefund:
    """A refund push's detail: ``notify_type=part`` (or a ``food`` list) is partial, with
    ``money`` (yuan, the amount asked back) and ``food`` (a JSON string: list of
    ``{app_food_code, food_name, sku_id, count, refund_price}``, refund_price per unit)."""
    lines = []
    for food in _json_list(params.get("food"), name="food"):
        if not isinstance(food, dict):
            raise PlatformPayloadError("food entries must be objects")
        quantity = _int(food.get("count"), 1)
        if quantity is None or quantity <= 0:
            raise PlatformPayloadError(f"food count must be positive: {food.get('count')!r}")
        lines.append({
            "name": str(food.get("food_name") or food.get("app_food_code") or "")[:120],
            "merchant_code": str(food.get("app_food_code") or ""), "platform_sku_id": str(food.get("sku_id") or ""),
            "quantity": quantity, "amount": str((money(food.get("refund_price")) * quantity).quantize(CENT)),
        })
    partial = params.get("notify_type") == "part" or bool(lines)
    amount = None
    if params.get("money") not in (None, ""):
        amount = money(params.get("money"))
    elif lines:
        amount = sum((Decimal(line["amount"]) for line in lines), ZERO)
    if amount is not None and amount < 0:
        raise PlatformPayloadError("money must not be negative")
    if partial and amount is None:
        raise PlatformPayloadError("a partial refund needs money or food")
    return ParsedRefund(partial=partial, amount=amount, lines=tuple(lines))


def push_receiving_url(request) -> str:
    """The URL the platform signed: our public push base (when behind a proxy) + path."""
    base = settings.CHANNELS_PUSH_BASE_URL
    if base:
        return f"{base.rstrip('/')}{request.path}"
    return request.build_absolute_uri(request.path)
