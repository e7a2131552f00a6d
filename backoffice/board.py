"""Reads of the live order board: one store's open orders in four columns, each card with
what a person at the pass needs, in a fixed number of queries whatever the number of orders
(the orders, their lines, the platform calls that failed for good).

Columns: new (paid, waiting for acceptance), preparing (accepted), ready (ready for pickup,
the rider or the table), out for delivery (own riders on the way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import hashlib

from django.conf import settings
from django.db import connection
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _

from accounts.models import Store
from core.actors import ActorKind
from core.models import OutboxMessage, OutboxStatus
from orders.models import Order, OrderAction, OrderLine, OrderStatus
from orders.permissions import staff_may

BOARD_LIMIT = 200  # cards per board; a store with more open orders sees the oldest first
COLUMNS = (
    ("new", _("New"), (OrderStatus.PAID,)),
    ("preparing", _("Preparing"), (OrderStatus.ACCEPTED,)),
    ("ready", _("Ready"), (OrderStatus.READY,)),
    ("delivering", _("Out for delivery"), (OrderStatus.DISPATCHED,)),
)
STATUS_COLUMN = {status: key for key, _label, statuses in COLUMNS for status in statuses}
# The actions a card offers, in this order (the machine decides which apply now).
CARD_ACTIONS = ("accept", "reject", "mark_ready", "dispatch", "deliver", "pick_up", "serve")


@dataclass
class FailedCall:
    """A platform call about the order that failed for good (a dead letter), with the action's label."""

    message: OutboxMessage
    label: str


@dataclass
class Card:
    order: Order
    lines: list[OrderLine]
    actions: list[str]
    accept_deadline: datetime | None
    failed_calls: list[FailedCall] = field(default_factory=list)

    @property
    def number(self) -> str:
        """The number the store calls out: the platform's day number, else ours."""
        return f"#{self.order.channel_day_seq or self.order.day_seq}"


@dataclass
class Column:
    key: str
    label: str
    cards: list[Card]


@dataclass
class Board:
    store: Store
    columns: list[Column]
    now: datetime

    @property
    def new_count(self) -> int:
        return len(self.columns[0].cards)


def _accept_deadline(order: Order) -> datetime | None:
    seconds = settings.ACCEPT_TIMEOUTS.get(order.channel)
    if order.status != OrderStatus.PAID or seconds is None or order.paid_at is None:
        return None
    return order.paid_at + timedelta(seconds=seconds)


def board_for_store(*, store: Store, roles: frozenset[str], now: datetime) -> Board:
    """The board of ``store`` as a person with ``roles`` there sees it (the actions their role
    allows). Three queries."""
    statuses = [status for _key, _label, group in COLUMNS for status in group]
    orders = list(
        Order.objects.filter(store_id=store.pk, status__in=statuses)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")))
        .order_by("placed_at", "id")[:BOARD_LIMIT])
    failed: dict[str, list[FailedCall]] = {}
    if orders:
        for message in (OutboxMessage.objects.filter(status=OutboxStatus.DEAD, key__in=[o.order_no for o in orders])
                        .order_by("id")):
            action = str(message.payload.get("action", ""))
            label = str(OrderAction(action).label) if action in OrderAction.values else action
            failed.setdefault(message.key, []).append(FailedCall(message=message, label=label))
    columns = {key: Column(key=key, label=str(label), cards=[]) for key, label, _group in COLUMNS}
    for order in orders:
        available = set(order.available_actions(actor_kind=ActorKind.STAFF))
        actions = [a for a in CARD_ACTIONS if a in available and staff_may(roles=roles, action=a)]
        columns[STATUS_COLUMN[order.status]].cards.append(Card(
            order=order, lines=list(order.lines.all()), actions=actions, accept_deadline=_accept_deadline(order),
            failed_calls=failed.get(order.order_no, [])))
    return Board(store=store, columns=list(columns.values()), now=now)


def board_version(*, store: Store) -> str:
    """A fingerprint of everything the board shows that can change on the server: the open
    orders (how many, the latest change), the failed platform calls about them, the store's
    mode and hours. The page's poll sends it back; an unchanged board is answered with no
    content (htmx keeps what it shows). One statement."""
    statuses = [status for _key, _label, group in COLUMNS for status in group]
    orders, outbox = Order._meta.db_table, OutboxMessage._meta.db_table
    marks = ", ".join(["%s"] * len(statuses))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(o.id), MAX(o.updated_at), "
            f"(SELECT COUNT(m.id) || ':' || COALESCE(MAX(m.id), 0) FROM {outbox} m WHERE m.status = %s AND m.key IN "
            f"  (SELECT o2.order_no FROM {orders} o2 WHERE o2.store_id = %s AND o2.status IN ({marks}))) "
            f"FROM {orders} o WHERE o.store_id = %s AND o.status IN ({marks})",
            [OutboxStatus.DEAD, store.pk, *statuses, store.pk, *statuses])
        count, changed, failed = cursor.fetchone()
    parts = (count, str(changed or ""), failed, store.mode, store.busy_extra_minutes, store.business_hours)
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()
