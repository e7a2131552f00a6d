"""The store feed (orders side): which changes the store's POS must hear about,
and the wake-up signal long-polling readers wait on.

``feed_record`` is the ``pos`` fulfilment route's (orders.fulfilment.pos): it
runs inside the transaction of the change (order_create, order_transition,
order_contact_update call ``fulfilment_record``), so a feed row exists if and
only if the change committed. Only order types routed to ``pos`` get rows. Rules:

- ``order.created`` when an order becomes the store's to handle: an own-channel
  order is paid (``pay``), or an order is created already paid (platform
  orders). Never for vouchers (the OMS fulfils them, not the POS) and never for
  an order still waiting for payment.
- ``order.cancelled`` (cancel, reject), ``order.updated`` (contact change),
  ``order.refund_requested`` and ``order.refunded`` only for orders the POS has
  already seen, i.e. that have an ``order.created`` row.

The caller that made an order the store's (the payment confirmation, the platform
intake) then takes the auto-accept step (orders.services.acceptance): a store with
auto-accept on accepts the order at once; the POS still receives the event, to print.

Wake-ups: on commit of a feed row, the store's channel is notified: always the
process-local condition, and with ``REDIS_URL`` also a Redis pub/sub message so
readers in other processes wake up. ``FeedWaiter`` is the reading side; it
subscribes before the caller's first read, so a commit between the read and the
wait is never missed. Readers also re-check the database every few seconds, in
case a notification was lost (another process without Redis, Redis down).
When the web process shuts down (``feed_waits_stop``, called on SIGTERM by the
gunicorn hook in config/gunicorn.py), every wait ends at once and none starts
again, so long polls answer before the worker's graceful timeout instead of
being cut off. See docs/pos-api.md.
"""

import logging
import threading
import time
from collections import defaultdict
from functools import lru_cache

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.fulfilment.registry import POS_ROUTE, fulfilment_route_name_for
from orders.models import Order, OrderAction, OrderFlagKind, OrderStatus, StoreFeedEvent
from orders.models import StoreFeedEventType as T

logger = logging.getLogger(__name__)

# Not a transition: the refund-requested flag (orders.services.sync.order_refund_requested_flag) calls
# feed_record(action=OrderFlagKind.REFUND_REQUESTED, ...).

_FOLLOW_UP_TYPES = {
    OrderAction.CANCEL.value: T.ORDER_CANCELLED,
    OrderAction.REJECT.value: T.ORDER_CANCELLED,
    OrderAction.MODIFY.value: T.ORDER_UPDATED,
    OrderAction.REFUND.value: T.ORDER_REFUNDED,
    OrderFlagKind.REFUND_REQUESTED: T.ORDER_REFUND_REQUESTED,
}

# Seconds between database re-checks of a long poll (lost notifications).
RECHECK_SECONDS_LOCAL = 2.0
RECHECK_SECONDS_REDIS = 10.0
# A Redis wait checks this often whether the process is shutting down.
STOP_CHECK_SECONDS = 0.5


def _feed_type_for(*, order: Order, action: str, from_status: str) -> str | None:
    if fulfilment_route_name_for(order.order_type) != POS_ROUTE:
        return None  # fulfilled elsewhere (vouchers: the OMS); see orders.fulfilment
    if action == OrderAction.CREATE:
        return T.ORDER_CREATED if order.status == OrderStatus.PAID else None
    if action == OrderAction.PAY:
        return T.ORDER_CREATED
    return _FOLLOW_UP_TYPES.get(str(action))


def feed_record(*, order: Order, action: str, from_status: str) -> StoreFeedEvent | None:
    """Write the store feed row ``action`` calls for (or nothing).

    Precondition: inside the transaction that made the change, with the
    order's row lock held (or the order just inserted). Auto-accept is not done
    here: the caller that made the order the store's takes that step after the
    change (``orders.services.acceptance.order_auto_accept_if_enabled``).
    """
    event_type = _feed_type_for(order=order, action=str(action), from_status=from_status)
    if event_type is None:
        return None
    if event_type != T.ORDER_CREATED and not StoreFeedEvent.objects.filter(
        order_id=order.pk, type=T.ORDER_CREATED
    ).exists():
        return None  # the POS never saw this order: nothing to take back or update
    row = StoreFeedEvent.objects.create(store_id=order.store_id, order=order, type=event_type)
    store_id = order.store_id
    transaction.on_commit(lambda: feed_notify(store_id=store_id), robust=True)
    return row


def feed_records_created(*, orders: list[Order]) -> list[StoreFeedEvent]:
    """``feed_record`` of the ``create`` of orders inserted together: one INSERT for
    their ``order.created`` rows (paid ones only), one wake-up per store after COMMIT."""
    rows = [StoreFeedEvent(store_id=order.store_id, order=order, type=T.ORDER_CREATED) for order in orders
            if _feed_type_for(order=order, action=OrderAction.CREATE, from_status="") == T.ORDER_CREATED]
    if not rows:
        return []
    StoreFeedEvent.objects.bulk_create(rows)
    for store_id in dict.fromkeys(row.store_id for row in rows):
        transaction.on_commit(lambda store_id=store_id: feed_notify(store_id=store_id), robust=True)
    return rows


AFTER_SALES_TYPES = frozenset({T.AFTERSALES_REQUESTED, T.AFTERSALES_DECIDED, T.AFTERSALES_REFUNDED})


def feed_record_after_sales(*, order: Order, event_type: str, after_sales_id: int) -> StoreFeedEvent | None:
    """Tell the store's POS about an after-sales request of ``order`` (``aftersales.*``,
    the request's id on the row). As for the order's own follow-up events: only for
    orders routed to the POS that the POS has seen. Precondition: inside the
    transaction of the change, with the order's row lock held."""
    if event_type not in AFTER_SALES_TYPES:
        raise ValueError(f"not an after-sales feed event type: {event_type!r}")
    if fulfilment_route_name_for(order.order_type) != POS_ROUTE:
        return None
    if not StoreFeedEvent.objects.filter(order_id=order.pk, type=T.ORDER_CREATED).exists():
        return None
    row = StoreFeedEvent.objects.create(store_id=order.store_id, order=order, type=event_type,
                                        after_sales_id=after_sales_id)
    store_id = order.store_id
    transaction.on_commit(lambda: feed_notify(store_id=store_id), robust=True)
    return row


# --- wake-ups ---------------------------------------------------------------------


_stopping = threading.Event()


def feed_waits_stop() -> None:
    """The process is shutting down: end every long-poll wait now, and let none start."""
    _stopping.set()
    local_signal.wake_all()


class _LocalSignal:
    """Per-store version counters under one condition: a waiter remembers the
    version it saw and wakes when it changes (no lost wake-ups)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._versions: dict[int, int] = defaultdict(int)

    def wake_all(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def version(self, store_id: int) -> int:
        with self._condition:
            return self._versions[store_id]

    def notify(self, store_id: int) -> None:
        with self._condition:
            self._versions[store_id] += 1
            self._condition.notify_all()

    def wait(self, store_id: int, *, seen: int, timeout: float) -> bool:
        """True when the store was notified (not when the wait ended for a shutdown or the timeout)."""
        with self._condition:
            self._condition.wait_for(lambda: self._versions[store_id] != seen or _stopping.is_set(), timeout=timeout)
            return self._versions[store_id] != seen


local_signal = _LocalSignal()


def feed_channel(store_id: int) -> str:
    return f"ordercenter:store-feed:{store_id}"


@lru_cache(maxsize=4)
def _redis_client(url: str):
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=30, health_check_interval=30)


def feed_notify(*, store_id: int) -> None:
    """Wake the store's long-polling readers: this process, and via Redis every
    process. Runs on commit; a failing publish only delays readers until their
    next database re-check."""
    local_signal.notify(store_id)
    url = settings.REDIS_URL
    if url:
        try:
            _redis_client(url).publish(feed_channel(store_id), "1")
        except Exception:  # the re-check fallback delivers it a few seconds later
            logger.warning("store feed publish failed", extra={"store_id": store_id}, exc_info=True)


class FeedWaiter:
    """The reading side of one long poll. Use as a context manager, enter it
    before the first read, then ``wait(timeout)`` between reads::

        with FeedWaiter(store_id=...) as waiter:
            while not (events := read()) and time_left():
                waiter.wait(min(time_left(), waiter.recheck_seconds))
    """

    def __init__(self, *, store_id: int) -> None:
        self.store_id = store_id
        self._pubsub = None
        self._seen = 0
        self.recheck_seconds = RECHECK_SECONDS_LOCAL

    def __enter__(self) -> "FeedWaiter":
        url = settings.REDIS_URL
        if url:
            try:
                pubsub = _redis_client(url).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(feed_channel(self.store_id))
                self._pubsub = pubsub
                self.recheck_seconds = RECHECK_SECONDS_REDIS
            except Exception:  # Redis down: fall back to the local signal and frequent re-checks
                logger.warning("store feed subscribe failed", extra={"store_id": self.store_id}, exc_info=True)
                self._pubsub = None
        self._seen = local_signal.version(self.store_id)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:
                logger.debug("store feed pubsub close failed", exc_info=True)
            self._pubsub = None

    @property
    def stopped(self) -> bool:
        """The process is shutting down (``feed_waits_stop``): answer now, wait no more."""
        return _stopping.is_set()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when the store was notified."""
        if timeout <= 0 or _stopping.is_set():
            return False
        if self._pubsub is None:
            woke = local_signal.wait(self.store_id, seen=self._seen, timeout=timeout)
            self._seen = local_signal.version(self.store_id)
            return woke
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or _stopping.is_set():
                return False
            try:
                # In slices, so a shutdown is noticed within STOP_CHECK_SECONDS.
                message = self._pubsub.get_message(timeout=min(remaining, STOP_CHECK_SECONDS))
            except Exception:
                logger.warning("store feed pubsub failed", extra={"store_id": self.store_id}, exc_info=True)
                self._pubsub = None
                return False  # the caller re-reads now; later waits use the local signal
            if message is not None and message.get("type") == "message":
                return True


# --- acknowledgements ---------------------------------------------------------------


def feed_ack(*, store_id: int, event_ids: list[int], acked_by: str) -> int:
    """Acknowledge events of one store; returns how many were newly acknowledged.
    Ids of another store and events acknowledged before are ignored, so acking
    twice is harmless. ``acked_by`` is the terminal's opaque id."""
    if not event_ids:
        return 0
    return StoreFeedEvent.objects.filter(store_id=store_id, pk__in=event_ids, acked_at__isnull=True).update(
        acked_at=timezone.now(), acked_by=str(acked_by)[:64]
    )
