"""Store-side fulfilment rules: auto-accept, the preparation time estimate and
the acceptance time limit."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Store, StoreMode
from core.actors import Actor
from core.errors import TransitionNotAllowed
from orders.fulfilment.registry import POS_ROUTE, fulfilment_route_name_for, order_types_routed_to
from orders.models import Channel, Order, OrderAction, OrderEvent, OrderFlagKind, OrderReasonCode, OrderStatus
from orders.services.core import order_transition
from orders.services.sync import order_flag

logger = logging.getLogger(__name__)

AUTO_ACCEPT_ACTOR = "auto_accept"
ACCEPT_TIMEOUT_ACTOR = "accept_timeout"


def prep_minutes_for(*, store: Store, requested: int | None = None) -> int:
    """Minutes to prepare an order accepted now. An explicit ``requested`` value
    (the cashier's own estimate) is taken as is; otherwise the store's default,
    plus ``busy_extra_minutes`` while the store is in busy mode."""
    if requested is not None:
        return requested
    minutes = store.default_prep_minutes
    if store.mode == StoreMode.BUSY:
        minutes += store.busy_extra_minutes
    return minutes


def order_auto_accept_if_enabled(*, order: Order) -> Order:
    """Accept a just-delivered order for a store with auto-accept on.

    An explicit step: the caller that made the order the store's takes it right
    after that change (``pay`` in ``order_payment_confirm``, an order created already
    paid by the platform intake), inside the same transaction, with the order's row
    lock held. Only orders the store's POS fulfils and that are ``paid`` qualify
    (the ``order.created`` feed row is written). A store that is paused or closed
    does not auto-accept: a person decides. ``order`` is brought up to date in memory
    (status and the accept fields), since the caller goes on using it.
    """
    if not _may_auto_accept(order):
        return order
    return _auto_accept(order=order, store=_acceptance_store(order.store_id))


def orders_auto_accept_if_enabled(*, orders: list[Order]) -> list[Order]:
    """``order_auto_accept_if_enabled`` for orders of one store created together (a pulled
    page of platform orders): the store is read once."""
    waiting = [order for order in orders if _may_auto_accept(order)]
    if waiting:
        store = _acceptance_store(waiting[0].store_id)
        for order in waiting:
            if order.store_id != store.pk:
                raise ValueError("orders_auto_accept_if_enabled: orders of one store only")
            _auto_accept(order=order, store=store)
    return orders


def _may_auto_accept(order: Order) -> bool:
    return order.status == OrderStatus.PAID and fulfilment_route_name_for(order.order_type) == POS_ROUTE


def _acceptance_store(store_id: int) -> Store:
    return Store.objects.only("id", "auto_accept", "mode", "default_prep_minutes", "busy_extra_minutes").get(
        pk=store_id)


def _auto_accept(*, order: Order, store: Store) -> Order:
    if (not store.auto_accept or not store.accepts_new_orders or order.status != OrderStatus.PAID
            or order.needs_attention):
        return order  # an order flagged for a person (unknown SKU, wrong total) is a person's call
    accepted = order_transition(order_id=order.pk, action=OrderAction.ACCEPT,
                                actor=Actor.system(AUTO_ACCEPT_ACTOR), prep_minutes=prep_minutes_for(store=store))
    _adopt_state(order, accepted)
    return order


_ACCEPT_FIELDS = ("accepted_at", "prep_minutes", "expected_at", "updated_at")


def _adopt_state(order: Order, fresh: Order) -> None:
    """Copy a newer state of the same row into ``order`` (the status field is
    protected against assignment; the machine's own save saw the new state)."""
    for name in _ACCEPT_FIELDS:
        setattr(order, name, getattr(fresh, name))
    order.__dict__["status"] = fresh.status
    order._update_initial_state()


# --- acceptance time limit ------------------------------------------------------------


@dataclass(frozen=True)
class UnacceptedResult:
    rejected: int = 0  # own-channel orders rejected (and refunded)
    flagged: int = 0  # platform orders flagged for a person


def _unaccepted(*, now: datetime, channels: dict[str, int]):
    """Paid orders past their channel's acceptance limit; only the POS route's
    order types are accepted at all (vouchers are issued by the OMS)."""
    due = Q(pk__in=[])
    for channel, seconds in channels.items():
        due |= Q(channel=channel, paid_at__lte=now - timedelta(seconds=int(seconds)))
    return Order.objects.filter(due, status=OrderStatus.PAID, paid_at__isnull=False,
                                order_type__in=order_types_routed_to(POS_ROUTE))


def orders_handle_unaccepted(*, now: datetime | None = None, timeouts: dict[str, int] | None = None,
                             batch_size: int = 100, max_batches: int = 100) -> UnacceptedResult:
    """Paid orders the store did not accept within ``settings.ACCEPT_TIMEOUTS[channel]``
    seconds of payment (a channel not listed has no limit).

    - **Own channels** (mini-program, App): rejected by ``system/accept_timeout`` with
      reason code ``store_timeout``; the cancel path of ``order_transition`` gives back
      stock and coupons, refunds the payment after commit and tells the POS
      (``order.cancelled``).
    - **Platform orders** (Meituan, Ele.me): flagged ``accept_timeout`` for a person and
      otherwise left alone. The platform runs its own acceptance timer and cancels the
      order itself (the cancel then arrives by push or pull); rejecting it from here
      would race that cancel, could not be undone, and counts against the store's
      rating on the platform, while a person may still accept it in time.

    Idempotent: a rejected order is no longer paid; a flagged one carries an
    ``accept_timeout`` flag event and is not flagged again. Each batch locks its
    orders with ``FOR UPDATE SKIP LOCKED``, so an accept racing the job wins and two
    runs at once take disjoint batches.
    """
    now = now or timezone.now()
    limits = settings.ACCEPT_TIMEOUTS if timeouts is None else timeouts
    platforms = set(Channel.platforms())
    own = {channel: seconds for channel, seconds in limits.items() if channel not in platforms}
    platform = {channel: seconds for channel, seconds in limits.items() if channel in platforms}
    rejected = _reject_unaccepted(now=now, channels=own, batch_size=batch_size, max_batches=max_batches)
    flagged = _flag_unaccepted(now=now, channels=platform, batch_size=batch_size, max_batches=max_batches)
    if rejected or flagged:
        logger.info("unaccepted orders handled", extra={"rejected": rejected, "flagged": flagged})
    return UnacceptedResult(rejected=rejected, flagged=flagged)


def _locked_batch(queryset, *, batch_size: int, skip: set[int]) -> list[int]:
    return list(
        queryset.exclude(pk__in=skip).select_for_update(skip_locked=True, of=("self",))
        .order_by("paid_at", "id").values_list("pk", flat=True)[:batch_size]
    )


def _reject_unaccepted(*, now: datetime, channels: dict[str, int], batch_size: int, max_batches: int) -> int:
    if not channels:
        return 0
    actor = Actor.system(ACCEPT_TIMEOUT_ACTOR)
    reason = str(_("Not accepted by the store in time."))
    done, skipped = 0, set()
    for _batch in range(max_batches):
        with transaction.atomic():
            ids = _locked_batch(_unaccepted(now=now, channels=channels), batch_size=batch_size, skip=skipped)
            if not ids:
                break
            for order_id in ids:
                try:
                    order_transition(order_id=order_id, action=OrderAction.REJECT, actor=actor, now=now,
                                     reason_code=OrderReasonCode.STORE_TIMEOUT, reason=reason)
                    done += 1
                except TransitionNotAllowed:  # its machine has no reject by the system: a person's call
                    skipped.add(order_id)
                    logger.warning("unaccepted order cannot be rejected", extra={"order_id": order_id})
    return done


def _flag_unaccepted(*, now: datetime, channels: dict[str, int], batch_size: int, max_batches: int) -> int:
    if not channels:
        return 0
    actor = Actor.system(ACCEPT_TIMEOUT_ACTOR)
    already = OrderEvent.objects.filter(order_id=OuterRef("pk"), action=OrderAction.FLAG,
                                        reason_code=OrderFlagKind.ACCEPT_TIMEOUT)
    done = 0
    for _batch in range(max_batches):
        with transaction.atomic():
            queryset = _unaccepted(now=now, channels=channels).filter(~Exists(already))
            orders = {order.pk: order for order in Order.objects.filter(
                pk__in=_locked_batch(queryset, batch_size=batch_size, skip=set())).only("pk", "channel", "paid_at")}
            if not orders:
                break
            for order in orders.values():
                limit = int(channels[order.channel])
                order_flag(
                    order_id=order.pk, actor=actor, kind=OrderFlagKind.ACCEPT_TIMEOUT,
                    reason=str(_("Not accepted within %(seconds)s s; the platform will cancel it")
                               % {"seconds": limit}),
                    data={"limit_seconds": limit, "paid_at": order.paid_at.isoformat()},
                )
                done += 1
    return done
