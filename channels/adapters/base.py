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
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

from core.urlguard import OutboundUrlRefused, outbound_url_check

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Any) -> Decimal:
    """A platform amount (yuan, a JSON number or string) as Decimal with two places."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, bool):
        raise PlatformPayloadError(f"not an amount: {value!r}")
    try:
        return Decimal(str(value)).quantize(CENT)
    except InvalidOperation:
        raise PlatformPayloadError(f"not an amount: {value!r}") from None


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 (the platforms' signature scheme)


def from_unix(seconds: Any) -> datetime | None:
    if seconds in (None, "", 0, "0"):
        return None
    return datetime.fromtimestamp(int(seconds), tz=dt_timezone.utc)


def from_local_iso(text: Any) -> datetime | None:
    """An ISO time; without an offset it is the platform's local (Asia/Shanghai) time."""
    if text in (None, ""):
        return None
    if isinstance(text, int | float):
        return from_unix(text)
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
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
    return (float(getattr(settings, "CHANNELS_HTTP_CONNECT_TIMEOUT", 3.0)),
            float(getattr(settings, "CHANNELS_HTTP_READ_TIMEOUT", 10.0)))


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


class PushRejected(Exception):
    """A push failed verification. ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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
    """A verified push, normalized. ``kind`` is one of the PushKind values."""

    kind: str
    order_id: str
    shop_code: str = ""
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
    def pull_new_orders(self, binding, *, now: datetime | None = None) -> list[dict]:
        """Raw order payloads the store has not ingested yet (by binding.pull_state);
        ``now`` (default: the clock) decides which business days are pulled."""
        raise NotImplementedError

    def pull_state_after(self, binding, *, state: dict, payload: dict) -> dict:
        """The pull state once ``payload`` is ingested (default: unchanged)."""
        return state

    def reconcile_orders(self, binding) -> list[dict]:
        """Recent orders to re-check for cancellations and refunds (default: none)."""
        return []

    def fetch_order(self, binding, order_id: str) -> dict:
        raise NotImplementedError

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

    # Pushes
    def verify_push(self, request, *, bindings_by_app_id) -> tuple[Any, PushEvent]:
        """Check the signature of a push (a Django request); returns (binding, event).

        ``bindings_by_app_id(app_id, shop_code)`` finds the binding whose secret signs it.
        Raises PushRejected."""
        raise NotImplementedError

    def push_answer(self, *, ok: bool, message: str = "", status: int = 200) -> tuple[int, dict]:
        """(HTTP status, body) in the platform's own answer shape."""
        raise NotImplementedError
