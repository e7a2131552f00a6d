"""The one interface every delivery-platform adapter implements.

An adapter is the only code that speaks a platform's HTTP dialect (PLATFORMS.md):
it signs and sends calls, verifies pushes, and turns the platform's order into
a ``ParsedOrder``. Money crosses this edge as ``Decimal`` yuan with two places,
converted from the platform's JSON numbers through ``str`` (never float
arithmetic). Adapters hold no state: credentials, base URL and pull state come
from the ``StoreBinding``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import requests
from django.conf import settings
from django.utils import timezone

from core.jsonparse import json_loads_bounded, json_strip_nul
from core.urlguard import OutboundUrlRefused, outbound_url_check

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# Our money columns hold 10 digits with 2 places; a platform amount beyond is malformed.
MAX_AMOUNT = Decimal("99999999.99")
# Integers a platform sends (quantities, day sequences, statuses) fit a 32-bit column.
MAX_PLATFORM_INT = 2**31 - 1


def money(value: Any) -> Decimal:
    """A platform amount (yuan, a JSON number or string) as Decimal with two places."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PlatformPayloadError(f"not an amount: {value!r}"[:100])
    try:
        amount = Decimal(str(value)).quantize(CENT)
    except InvalidOperation:
        raise PlatformPayloadError(f"not an amount: {value!r}"[:100]) from None
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT:
        raise PlatformPayloadError(f"amount out of range: {value!r}"[:100])
    return amount


def platform_int(value: Any, default: int | None = None, *, name: str = "value") -> int | None:
    """A platform integer (a JSON number or a decimal string) within MAX_PLATFORM_INT."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PlatformPayloadError(f"{name} is not an integer: {value!r}"[:100])
    try:
        number = int(Decimal(str(value)))
    except (InvalidOperation, ValueError, OverflowError):
        raise PlatformPayloadError(f"{name} is not an integer: {value!r}"[:100]) from None
    if abs(number) > MAX_PLATFORM_INT:
        raise PlatformPayloadError(f"{name} out of range: {value!r}"[:100])
    return number



def platform_json_loads(data: bytes | str) -> Any:
    """JSON from a platform (an answer, a push, a JSON string inside one): parsed with
    ``json_loads_bounded`` (raises ``JsonInvalid``, a ValueError) and NUL-free."""
    return json_strip_nul(json_loads_bounded(data))


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 (the platforms' signature scheme)


def from_unix(seconds: Any) -> datetime | None:
    if seconds in (None, "", 0, "0"):
        return None
    try:
        return datetime.fromtimestamp(platform_int(seconds, name="time"), tz=dt_timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise PlatformPayloadError(f"not a time: {seconds!r}"[:100]) from None


def from_local_iso(text: Any) -> datetime | None:
    """An ISO time; without an offset it is the platform's local (Asia/Shanghai) time."""
    if text in (None, ""):
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        return from_unix(text)
    if not isinstance(text, str) or len(text) > 40:
        raise PlatformPayloadError(f"not a time: {text!r}"[:100])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, timezone.get_default_timezone())
    except (ValueError, OverflowError):
        raise PlatformPayloadError(f"not a time: {text!r}"[:100]) from None
    return moment


_local = threading.local()


class AllowedHostsSession(requests.Session):
    """Sends a request (and each redirect) only to a host of OUTBOUND_URL_ALLOWED_HOSTS.

    A binding's base URL is typed by a tenant; the admin form validates it, but a
    row can be changed without the form, so the check is repeated here, before
    anything leaves the machine."""

    def send(self, request, **kwargs):
        try:
            outbound_url_check(request.url)
        except OutboundUrlRefused as exc:
            logger.warning("platform call refused: URL not allowed", extra={"reason": str(exc)})
            raise PlatformUrlRefused(f"{exc}; no call was made", code="url_not_allowed") from None
        return super().send(request, **kwargs)


def http_session() -> requests.Session:
    """One keep-alive HTTP session per thread (a worker relays many calls to the
    same platform host; a new TCP connection per call would dominate)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = AllowedHostsSession()
    return session


def http_timeout() -> tuple[float, float]:
    """(connect, read) seconds for every platform call."""
    return (float(settings.CHANNELS_HTTP_CONNECT_TIMEOUT),
            float(settings.CHANNELS_HTTP_READ_TIMEOUT))


T = TypeVar("T")


def read_with_retries(read: Callable[[], T]) -> T:
    """Run one platform read (a pull's), again while the platform answers HTTP 5xx, up
    to ``CHANNELS_PULL_CALL_ATTEMPTS`` times in all, ``CHANNELS_PULL_RETRY_DELAY_SECONDS``
    x the attempt apart. A timeout or a refused connection is not retried here (the
    platform is slow or down: the next pull tries again), nor is a refusal."""
    attempts = max(1, settings.CHANNELS_PULL_CALL_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        try:
            return read()
        except PlatformUnavailable as exc:
            if exc.status is None or attempt == attempts:
                raise
        time.sleep(settings.CHANNELS_PULL_RETRY_DELAY_SECONDS * attempt)
    raise AssertionError("unreachable")


# --- Errors ---------------------------------------------------------------------------


class PlatformError(Exception):
    """A platform call failed. ``transient``: worth retrying (5xx, timeout, network)."""

    transient = True

    def __init__(self, message: str, *, code: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.status = status


class PlatformUnavailable(PlatformError):
    """HTTP 5xx, a timeout or a connection failure."""


class PlatformRejected(PlatformError):
    """The platform answered with an error (bad parameters, wrong status...): retrying will not help."""

    transient = False


class PlatformUrlRefused(PlatformRejected):
    """The binding's base URL is not allowed (core.urlguard): no call was made."""


class PlatformPayloadError(ValueError):
    """A payload from the platform does not have the documented shape."""


class BindingMismatch(PlatformPayloadError):
    """A payload names a shop, or an order, that is not the acting binding's: nothing
    changes (a push is refused with a 403, a pulled or reconciled order is skipped)."""

    def __init__(self, message: str, *, binding_id: int, platform: str, shop_code: str, order_id: str) -> None:
        super().__init__(message)
        self.binding_id = binding_id
        self.platform = platform
        self.shop_code = shop_code
        self.order_id = order_id


class PushRejected(Exception):
    """A push failed verification. ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def push_body(request) -> bytes:
    """The raw body of a push, refused (413) past ``CHANNELS_PUSH_MAX_BYTES`` before it is read."""
    limit = settings.CHANNELS_PUSH_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise PushRejected("bad Content-Length", status=400) from None
    if length > limit:
        raise PushRejected(f"the body is larger than {limit} bytes", status=413)
    body = request.body
    if len(body) > limit:
        raise PushRejected(f"the body is larger than {limit} bytes", status=413)
    return body


def push_text(value: Any, *, name: str, max_length: int = 64, required: bool = True) -> str:
    """A short identifier of a push (app id, shop id, request id...) as text: a string
    or an integer, at most ``max_length`` printable characters (no NUL: it is looked up
    in the database); anything else is refused (400)."""
    if value is None or value == "":
        if required:
            raise PushRejected(f"{name} is required", status=400)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PushRejected(f"{name} must be a string", status=400)
    text = str(value)  # integers come from json_loads_bounded: 40 digits at most
    if len(text) > max_length:
        raise PushRejected(f"{name} is longer than {max_length} characters", status=400)
    if not text.isprintable():
        raise PushRejected(f"{name} has control characters", status=400)
    return text


# --- Normalized shapes ----------------------------------------------------------------


class RefundState:
    NONE = "none"
    APPLIED = "applied"
    AGREED = "agreed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # the customer withdrew the application


@dataclass(frozen=True)
class ParsedLine:
    name: str
    unit_price: Decimal
    quantity: int
    merchant_code: str = ""
    platform_sku_id: str = ""
    platform_food_code: str = ""
    spec: str = ""
    packaging_fee: Decimal = ZERO


@dataclass(frozen=True)
class ParsedDiscount:
    reference: str
    name: str
    amount: Decimal
    merchant_part: Decimal
    platform_part: Decimal


@dataclass(frozen=True)
class ParsedOrder:
    platform: str
    order_id: str
    view_no: str
    shop_code: str
    day_seq: int | None
    status_code: Any
    placed_at: datetime | None
    expected_at: datetime | None  # None: as soon as possible
    contact_name: str
    contact_phone: str
    address: dict
    note: str
    lines: list[ParsedLine]
    discounts: list[ParsedDiscount]
    delivery_fee: Decimal
    packaging_fee: Decimal  # order-level fees (bags, boxes) not carried by a line
    total: Decimal
    refund_state: str = RefundState.NONE
    refund_reason: str = ""
    order_type: str = "delivery"
    cancelled: bool = False

    @property
    def discount_total(self) -> Decimal:
        return sum((d.amount for d in self.discounts), ZERO)


@dataclass(frozen=True)
class PulledOrder:
    """One order a pull reached: its ``payload``, or why it could not be fetched
    (``error``). ``key`` is its place in the adapter's pull state (Meituan: (date,
    day_seq)). Neither payload nor error: the platform has no order there."""

    key: Any = None
    payload: dict | None = None
    error: str = ""


@dataclass(frozen=True)
class ParsedRefund:
    """What a refund application (or its agreement) asks back. ``partial``: some lines
    or an amount, not the whole order; ``amount`` None: the whole order. ``lines``:
    ``{"name", "merchant_code", "platform_sku_id", "quantity", "amount"}`` with the
    amount a string of yuan."""

    partial: bool = False
    amount: Decimal | None = None
    lines: tuple[dict, ...] = ()


@dataclass(frozen=True)
class PushEvent:
    """A verified push, normalized. ``kind`` is one of the PushKind values. ``shop_code``:
    the shop the push names (Ele.me ``shopId``, Meituan ``app_poi_code``), empty when it
    names none; ``message_shop_code``: the shop its message names (Ele.me), if another field."""

    kind: str
    order_id: str
    shop_code: str = ""
    message_shop_code: str = ""
    order_payload: dict | None = None  # the full order, for new-order pushes
    reason_code: str = ""
    reason: str = ""
    refund_id: str = ""
    refund: ParsedRefund | None = None  # refund pushes: partial or whole, amount and lines
    raw: dict = field(default_factory=dict)


class PushKind:
    ORDER_CREATED = "order_created"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_COMPLETED = "order_completed"
    REFUND_APPLIED = "refund_applied"
    REFUND_AGREED = "refund_agreed"
    REFUND_REJECTED = "refund_rejected"
    REFUND_CANCELLED = "refund_cancelled"
    IGNORED = "ignored"


# --- The interface ------------------------------------------------------------------------


class PlatformAdapter:
    """Base class; a platform is one subclass plus one line in channels.adapters."""

    platform: str = ""

    # Pulling
    def pull_new_orders(self, binding, *, now: datetime | None = None,
                        known: Callable[[list[str]], set[str]] | None = None) -> Iterator[PulledOrder]:
        """The orders the store has not ingested yet (by ``binding.pull_state``), one at a
        time, so that what was fetched is kept when a later call fails. ``now`` (default:
        the clock) decides which business days are pulled; ``known(ids)``, when given,
        says which platform order ids are ingested already (they need no fetch). A
        failure that ends the walk is raised; the orders yielded before it stand."""
        raise NotImplementedError

    def pull_state_after(self, binding, *, state: dict, pulled: PulledOrder, done: bool) -> dict:
        """The pull state once ``pulled`` is ingested or found to need nothing more
        (``done``), or once it failed and must be tried again (default: unchanged)."""
        return state

    def reconcile_orders(self, binding) -> Iterator[dict]:
        """Recent orders to re-check for cancellations and refunds, one at a time (default: none)."""
        return iter(())

    def fetch_order(self, binding, order_id: str) -> dict:
        raise NotImplementedError

    def fetch_orders(self, binding, order_ids: list[str]) -> dict[str, dict | Exception]:
        """Several orders by id: each id -> its payload, or the error that stopped it
        (default: ``fetch_order`` one by one)."""
        found: dict[str, dict | Exception] = {}
        for order_id in order_ids:
            try:
                found[order_id] = self.fetch_order(binding, order_id)
            except (PlatformError, PlatformPayloadError) as exc:
                found[order_id] = exc
        return found

    def parse_order(self, binding, payload: dict) -> ParsedOrder:
        raise NotImplementedError

    # Telling the platform what the store did
    def accept(self, binding, order_id: str) -> None:
        raise NotImplementedError

    def reject(self, binding, order_id: str, *, reason_code: str, reason: str) -> None:
        raise NotImplementedError

    def meal_ready(self, binding, order_id: str) -> None:
        raise NotImplementedError

    def dispatch(self, binding, order_id: str, *, courier_name: str = "", courier_phone: str = "") -> None:
        raise NotImplementedError

    def delivered(self, binding, order_id: str) -> None:
        raise NotImplementedError

    def refund_agree(self, binding, order_id: str, *, reason: str = "") -> None:
        raise NotImplementedError

    def refund_reject(self, binding, order_id: str, *, reason: str) -> None:
        raise NotImplementedError

    def set_item_availability(self, binding, items: list[dict], *, available: bool) -> None:
        """``items``: [{"merchant_code", "platform_food_code", "platform_sku_id"}]."""
        raise NotImplementedError

    # Store status
    def set_store_state(self, binding, *, open: bool, busy_minutes: int, prep_minutes: int) -> None:
        """Open or close the shop for orders; while open, promise ``busy_minutes`` more
        (platforms without such a call ignore it)."""
        raise NotImplementedError

    def shops_open(self, binding, shop_codes: list[str]) -> dict[str, bool]:
        """The platform's own view, shop code -> open, for shops of ``binding``'s credentials
        (one call; a code the platform does not return is left out)."""
        raise NotImplementedError

    # Pushes
    def verify_push(self, request, *, bindings_for) -> tuple[list, PushEvent]:
        """Check the shape and signature of a push (a Django request) before trusting any
        field; returns (the bindings that verify it, event).

        ``bindings_for(app_id, shop_code)``: the enabled bindings of the push's app id (of
        that shop when the push names one). Those whose secret produces the signature
        verified it: one, or several when one platform app and secret serve several of
        our shops. Texts come back without NUL characters. Raises PushRejected."""
        raise NotImplementedError

    def push_answer(self, *, ok: bool, message: str = "", status: int = 200) -> tuple[int, dict]:
        """(HTTP status, body) in the platform's own answer shape."""
        raise NotImplementedError
