"""What both delivery platforms share: menus, money, customers, day sequence
numbers, and the background order generator.

A generated order starts as a platform-neutral ``OrderDraft`` (lines, fees,
promotions with their platform/merchant split, customer, note); ``simulator.meituan``
and ``simulator.eleme`` render it in their own shapes. Money is held in integer
fen and rendered as yuan numbers (``2350`` -> ``23.5``), so the amounts of one
order always add up exactly:

    goods    = sum(unit price * quantity)
    package  = sum(box price * boxes per unit * quantity)   (box fees per line, 餐盒费)
    bag      = the shop's bag fee, once per order             (Meituan package_bag_money, 打包袋)
    discount = sum(promotion totals)                 (each = platform part + merchant part)
    paid     = goods + package + bag + shipping - discount

Promotions (deterministic, from the goods amount, so a test can predict them):
    满减 full reduction: goods >= 60 -> 12 off (platform 4, merchant 8);
                         goods >= 40 -> 8 off (platform 3, merchant 5);
                         goods >= 25 -> 4 off (platform 1, merchant 3)
    新客立减 new customer: 3 off, all paid by the platform (only when asked for,
                         or at random for orders generated without forced lines;
                         and only on goods of 15 or more, the platforms' minimum order
                         for it, so no promotion takes more than the goods)

The generator (``OrderGenerator``) runs ONE background thread per platform while
any shop has ``rate_per_minute > 0``; it emits orders evenly (rate 60 = one a
second), stops when the rate drops to 0 or the simulator resets or closes, and is
joined then.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

logger = logging.getLogger("simulator")

CHINA_TZ = timezone(timedelta(hours=8))
TIMESTAMP_TOLERANCE = 600  # seconds; both platforms refuse calls older (or further ahead) than this


class SpecError(ValueError):
    """A control-API body the simulator cannot use."""


# --- Money ------------------------------------------------------------------------


def yuan(fen: int) -> float:
    """2350 -> 23.5 (JSON numbers, as the platforms send them)."""
    return fen / 100


def fen_from(value: Any, *, name: str) -> int:
    """A yuan amount from a control-API body (23.5, "23.50") -> 2350 fen."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(f"{name} must be a yuan amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise SpecError(f"{name} must be a yuan amount") from exc
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise SpecError(f"{name} must be a non-negative yuan amount with at most 2 decimals")
    return int(amount * 100)


# --- Menus ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MenuItem:
    """One orderable SKU. ``code`` is the platform's item code (Meituan app_food_code,
    Ele.me item id); ``extend_code`` is the merchant's own SKU code (Ele.me)."""

    code: Any
    sku_id: Any
    name: str
    price: int  # fen
    box_price: int = 0  # fen per box
    boxes: int = 1  # boxes one unit takes (a line of quantity q takes q * boxes)
    spec: str = ""
    unit: str = "份"
    extend_code: str = ""
    known: bool = True  # False for an item forced into an order that is not on the menu


# Aligned with the demo seed (demo/data.py PLATFORM_MAPPINGS)
# where a mapping exists; 鱼香肉丝 on Meituan is deliberately unmapped there.
DEFAULT_MEITUAN_MENU = [
    {"app_food_code": "mt_gbjd", "food_name": "宫保鸡丁", "sku_id": "1001001", "spec": "大份", "price": 38,
     "box_price": 2},
    {"app_food_code": "mt_gbjd", "food_name": "宫保鸡丁", "sku_id": "1001002", "spec": "小份", "price": 26,
     "box_price": 1},
    {"app_food_code": "mt_yxrs", "food_name": "鱼香肉丝", "sku_id": "1001003", "spec": "大份", "price": 34,
     "box_price": 2},
    {"app_food_code": "mt_mpdf", "food_name": "麻婆豆腐", "sku_id": "1001005", "price": 22, "box_price": 1},
    {"app_food_code": "mt_yzcf", "food_name": "扬州炒饭", "sku_id": "1002001", "spec": "大份", "price": 28,
     "box_price": 1},
]
DEFAULT_ELEME_MENU = [
    {"item_id": "elm_gbjd", "sku_id": 200000101, "name": "宫保鸡丁(大份)", "price": 38, "package_fee": 2,
     "extend_code": "HC001"},
    {"item_id": "elm_yxrs", "sku_id": 200000103, "name": "鱼香肉丝(大份)", "price": 34, "package_fee": 2,
     "extend_code": "HC003"},
    {"item_id": "elm_mpdf", "sku_id": 200000105, "name": "麻婆豆腐", "price": 22, "package_fee": 1,
     "extend_code": "HC005"},
    {"item_id": "elm_yzcf", "sku_id": 200000401, "name": "扬州炒饭(大份)", "price": 28, "package_fee": 1,
     "extend_code": "ZS001"},
    {"item_id": "elm_slt", "sku_id": 200000201, "name": "酸辣汤", "price": 18, "package_fee": 1.5,
     "extend_code": "TG001"},
    {"item_id": "elm_zznc", "sku_id": 200000301, "name": "珍珠奶茶(大杯)", "price": 16, "package_fee": 0.5,
     "extend_code": "YP001"},
]


def text_field(data: dict, key: str, *, default: Any = None, max_length: int = 100) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise SpecError(f"{key} must be a non-empty string of at most {max_length} characters")
    return value


def id_field(data: dict, key: str, *, default: Any = None) -> Any:
    """A platform id: a non-empty string or a non-negative integer, kept as given."""
    value = data.get(key, default)
    if isinstance(value, bool) or not (isinstance(value, str) and value or isinstance(value, int) and value >= 0):
        raise SpecError(f"{key} must be a non-empty string or a non-negative integer")
    return value


def rate_field(data: dict) -> float:
    rate = data.get("rate_per_minute", 0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 6000:
        raise SpecError("rate_per_minute must be a number from 0 to 6000")
    return float(rate)


def push_url_field(data: dict) -> str:
    url = data.get("push_url") or ""
    if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
        raise SpecError("push_url must be an http(s) URL")
    return url


# --- Customers ---------------------------------------------------------------------------

CUSTOMERS = [
    ("王女士", "13812340001", "上海市徐汇区漕溪北路398号汇智大厦12楼1203", 31.19321, 121.43798),
    ("李先生", "13812340002", "上海市徐汇区天钥桥路580号3号楼502室", 31.18742, 121.43561),
    ("张先生", "13812340003", "上海市静安区南京西路1266号恒隆广场办公楼28楼", 31.22909, 121.45231),
    ("刘女士", "13812340004", "上海市静安区江宁路77号1706室", 31.23402, 121.45687),
    ("陈先生", "13912340005", "上海市浦东新区陆家嘴环路1000号国金中心二期33楼", 31.23687, 121.50176),
    ("杨女士", "13912340006", "上海市浦东新区世纪大道88号金茂大厦1801", 31.23496, 121.50554),
    ("赵先生", "15012340007", "上海市黄浦区淮海中路283号香港广场南座9楼", 31.22159, 121.47288),
    ("周女士", "18612340008", "上海市长宁区长宁路1018号龙之梦购物中心B1", 31.21936, 121.41697),
]
NOTES = ["", "", "", "少辣", "不要香菜", "多放醋", "请放门口，谢谢", "需要餐具2份", "不要葱姜蒜"]


@dataclass(frozen=True)
class Promotion:
    act_id: int
    name: str
    kind: int  # Meituan extras ``type``: 1 新客立减, 2 满减
    platform: int  # fen paid by the platform
    merchant: int  # fen paid by the merchant

    @property
    def total(self) -> int:
        return self.platform + self.merchant


# (goods threshold, total off, platform part) in fen, highest first
FULL_REDUCTION_TIERS = [(6000, 1200, 400), (4000, 800, 300), (2500, 400, 100)]
NEW_CUSTOMER_OFF = 300
NEW_CUSTOMER_MIN_GOODS = 1500


def promotions_for(goods: int, *, new_customer: bool) -> list[Promotion]:
    promotions = []
    for threshold, off, platform in FULL_REDUCTION_TIERS:
        if goods >= threshold:
            promotions.append(Promotion(act_id=900000 + threshold // 100, name=f"满{threshold // 100}减{off // 100}",
                                        kind=2, platform=platform, merchant=off - platform))
            break
    if new_customer and goods >= NEW_CUSTOMER_MIN_GOODS:
        promotions.append(Promotion(act_id=800003, name="新客立减3元", kind=1, platform=NEW_CUSTOMER_OFF, merchant=0))
    return promotions


@dataclass
class OrderDraft:
    lines: list[tuple[MenuItem, int]]
    shipping: int  # fen
    promotions: list[Promotion]
    customer_name: str
    phone: str
    address: str
    latitude: float
    longitude: float
    note: str
    created_at: int  # unix seconds
    delivery_time: int = 0  # 0 = as soon as possible; else the booked time (unix seconds)
    pickup: bool = False  # the customer collects it at the shop (no rider, no shipping fee)
    bag: int = 0  # fen, the shop's bag fee (one per order)
    day: str = ""  # YYYYMMDD (China time)
    day_seq: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def goods(self) -> int:
        return sum(item.price * quantity for item, quantity in self.lines)

    @property
    def package(self) -> int:
        """The lines' box fees (the bag not included)."""
        return sum(item.box_price * item.boxes * quantity for item, quantity in self.lines)

    @property
    def discount(self) -> int:
        return sum(p.total for p in self.promotions)

    @property
    def paid(self) -> int:
        return self.goods + self.package + self.bag + self.shipping - self.discount

    @property
    def has_unknown_item(self) -> bool:
        return any(not item.known for item, _ in self.lines)


def china_day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, CHINA_TZ).strftime("%Y%m%d")


def china_iso(timestamp: float) -> str:
    """Local China time without offset, as Ele.me writes it: 2026-11-22T12:30:05."""
    return datetime.fromtimestamp(timestamp, CHINA_TZ).strftime("%Y-%m-%dT%H:%M:%S")


class DaySequence:
    """Day sequence numbers (日流水号) per shop per China-time day, from 1. Not thread-safe:
    callers hold their own lock."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def next(self, shop: str, day: str) -> int:
        self._last[(shop, day)] = self._last.get((shop, day), 0) + 1
        return self._last[(shop, day)]

    def last(self, shop: str, day: str) -> int:
        return self._last.get((shop, day), 0)

    def clear(self) -> None:
        self._last.clear()


PICKUP_SHARE = 0.15  # generated orders the customer collects at the shop
BOOKED_SHARE = 0.2  # generated orders booked for a time (an hour ahead) instead of as soon as possible


def build_draft(rng: random.Random, *, menu: list[MenuItem], lines: list[tuple[MenuItem, int]] | None,
                shipping: int, new_customer: bool | None, note: str | None = None, pickup: bool | None = None,
                delivery_time: int | None = None, created_at: int | None = None, bag: int = 0) -> OrderDraft:
    """A new order: ``lines`` as given, or 1-3 random menu items; promotions per the tiers above.

    ``pickup`` / ``delivery_time`` as given; when not given, an order with forced lines is
    delivered as soon as possible and a random one is a pickup order (``PICKUP_SHARE``)
    or booked an hour ahead (``BOOKED_SHARE``) now and then. ``created_at`` (unix seconds,
    default now) back-dates the order, e.g. to 23:59 of the day before."""
    forced = lines is not None
    if not forced:
        if not menu:
            raise SpecError("the shop has nothing on sale to order")
        picks = rng.sample(menu, k=min(len(menu), rng.randint(1, 3)))
        lines = [(item, rng.choice((1, 1, 1, 2))) for item in picks]
    if new_customer is None:
        new_customer = (not forced) and rng.random() < 0.25
    name, phone, address, latitude, longitude = rng.choice(CUSTOMERS)
    now = int(time.time()) if created_at is None else created_at
    if pickup is None:
        pickup = (not forced) and rng.random() < PICKUP_SHARE
    if delivery_time is None:
        delivery_time = 0 if forced or rng.random() >= BOOKED_SHARE else now + 3600
    draft = OrderDraft(
        lines=lines, shipping=0 if pickup else shipping, promotions=[], customer_name=name, phone=phone,
        address=address, latitude=latitude, longitude=longitude, note=rng.choice(NOTES) if note is None else note,
        created_at=now, delivery_time=delivery_time, pickup=pickup, day=china_day(now), bag=bag,
    )
    draft.promotions = promotions_for(draft.goods, new_customer=new_customer)
    return draft


def boxes_field(data: dict) -> int:
    """Boxes one unit of a menu item takes (Meituan menu ``box_num``, default 1)."""
    boxes = data.get("box_num", 1)
    if isinstance(boxes, bool) or not isinstance(boxes, int) or not 0 <= boxes <= 10:
        raise SpecError("box_num must be an integer from 0 to 10")
    return boxes


def quantity_field(line: dict) -> int:
    quantity = line.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 99:
        raise SpecError("quantity must be an integer from 1 to 99")
    return quantity


def order_count_field(data: dict) -> int:
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 200:
        raise SpecError("count must be an integer from 1 to 200")
    return count


def delivery_time_field(data: dict) -> int | None:
    """``delivery_time`` of a control-API body: unix seconds of the booked time, 0 = as soon as possible."""
    value = data.get("delivery_time")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise SpecError("delivery_time must be unix seconds (0 = as soon as possible)")
    return value


def created_at_field(data: dict) -> int | None:
    """``created_at`` of a control-API body: unix seconds, not in the future (default: now)."""
    value = data.get("created_at")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 < value <= time.time() + 1):
        raise SpecError("created_at must be unix seconds, not in the future")
    return value


def optional_bool(data: dict, key: str, default: bool | None) -> bool | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise SpecError(f"{key} must be true or false")
    return value


# --- Background generator ------------------------------------------------------------------


@dataclass
class _Stream:
    rate: float
    emit: Callable[[], None]
    since: float
    emitted: int = 0


class OrderGenerator:
    """Emits orders per shop at ``rate_per_minute``, evenly spaced, from one background thread.

    The thread starts with the first non-zero rate and exits when every rate is 0,
    or on ``clear``/``close``, which join it.
    """

    def __init__(self, *, name: str, tick: float = 0.1) -> None:
        self._name = name
        self._tick = tick
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_rate(self, key: str, rate: float, emit: Callable[[], None]) -> None:
        with self._lock:
            if rate <= 0:
                self._streams.pop(key, None)
                return
            self._streams[key] = _Stream(rate=rate, emit=emit, since=time.monotonic())
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True,
                                                name="sim-generator")
                self._thread.start()

    def rates(self) -> dict[str, float]:
        with self._lock:
            return {key: stream.rate for key, stream in self._streams.items()}

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._tick):
            due: list[Callable[[], None]] = []
            with self._lock:
                if not self._streams:
                    self._thread = None
                    return
                now = time.monotonic()
                for stream in self._streams.values():
                    owed = int(stream.rate * (now - stream.since) / 60) - stream.emitted
                    stream.emitted += max(owed, 0)
                    due.extend([stream.emit] * max(owed, 0))
            for emit in due:
                if stop.is_set():
                    return
                try:
                    emit()
                except Exception:  # a simulator bug: log it, keep generating
                    logger.exception("order generator failed to emit an order")

    def clear(self) -> None:
        with self._lock:
            self._streams.clear()
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    close = clear
