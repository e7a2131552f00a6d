"""Writes to orders. Every state change goes through ``order_transition``.

Preconditions and guarantees of every service here:
- it opens (or joins) a transaction and takes the order's row lock through
  ``orders.locks.order_lock`` before reading the status;
- the transition method of the order type's machine is the only thing that
  changes ``status``; an ``OrderEvent`` row is written in the same transaction;
- a move the machine does not allow raises ``core.errors.TransitionNotAllowed``
  (409) with the current status and the allowed actions in ``detail``.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, can_proceed

from accounts.models import Brand, Store
from core.actors import Actor
from core.errors import InvalidInput, TransitionNotAllowed
from inventory.services import stock_release
from orders.locks import order_lock
from orders.models import (
    Channel,
    DaySequence,
    Order,
    OrderAction,
    OrderDiscount,
    OrderEvent,
    OrderLine,
    OrderStatus,
    OrderType,
)
from orders.fulfilment.registry import fulfilment_record
from orders.services.sync import order_sync_enqueue
from payments.services import payment_close
from promotions.services import coupon_release, flash_sale_limit_release

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def business_date_of(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def day_seq_next(*, store_id: int, business_date: date) -> int:
    """The next day sequence number of a store: one INSERT ... ON CONFLICT DO
    UPDATE ... RETURNING (PostgreSQL and SQLite alike). Numbers are never
    reused. Inside a transaction the counter row stays locked until COMMIT,
    which serialises order creation at one store; called outside one (autocommit,
    as order placement does) it is held for this one statement only, like a
    database sequence, and a placement that then fails leaves a gap in the
    day's numbers (see docs/benchmarks.md)."""
    table = DaySequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (store_id, business_date, last_value) VALUES (%s, %s, 1) "
            f"ON CONFLICT (store_id, business_date) DO UPDATE SET last_value = {table}.last_value + 1 "
            f"RETURNING last_value",
            [store_id, business_date],
        )
        return cursor.fetchone()[0]


def order_number_for(*, store_id: int, business_date: date, day_seq: int) -> str:
    """Readable and unique: yymmdd + 5-digit store id + 5-digit day sequence."""
    return f"{business_date:%y%m%d}{store_id:05d}{day_seq:05d}"


@dataclass
class LineInput:
    name: str
    unit_price: Decimal
    quantity: int
    sku_id: int | None = None
    sku_code: str = ""
    spec: str = ""
    discount: Decimal = ZERO
    packaging_fee: Decimal = ZERO
    options: list = field(default_factory=list)
    platform_food_code: str = ""
    platform_sku_id: str = ""
    stock_mode: str = ""


@dataclass
class DiscountInput:
    kind: str
    name: str
    amount: Decimal
    merchant_part: Decimal
    platform_part: Decimal = ZERO
    reference: str = ""


def event_write(*, order: Order, action: str, from_status: str, actor: Actor, reason_code: str = "",
                 reason: str = "", data: dict | None = None) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order, action=action, from_status=from_status, to_status=order.status,
        actor_kind=actor.kind, actor_id=actor.id, actor_name=actor.name,
        reason_code=reason_code, reason=str(reason)[:255], data=data or {},
    )


def day_seq_next_many(*, store_id: int, business_date: date, count: int) -> list[int]:
    """``count`` consecutive day numbers of a store in one statement (batched
    placement); same rules as ``day_seq_next``."""
    if count < 1:
        return []
    table = DaySequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (store_id, business_date, last_value) VALUES (%s, %s, %s) "
            f"ON CONFLICT (store_id, business_date) DO UPDATE SET last_value = {table}.last_value + %s "
            f"RETURNING last_value",
            [store_id, business_date, count, count],
        )
        last = cursor.fetchone()[0]
    return list(range(last - count + 1, last + 1))


@dataclass
class OrderDraft:
    """An order with its lines, discounts and ``create`` event, built in memory
    (``order_draft``) and written by ``order_drafts_save``."""

    order: Order
    lines: list[OrderLine]
    discounts: list[OrderDiscount]
    event: OrderEvent


def _order_amounts(*, lines: list[LineInput], discounts: list[DiscountInput], delivery_fee: Decimal) -> dict:
    subtotal = sum((line.unit_price * line.quantity for line in lines), ZERO)
    line_discounts = sum((line.discount for line in lines), ZERO)
    discount_total = sum((d.amount for d in discounts), ZERO)
    if discounts and line_discounts != discount_total:
        raise InvalidInput(_("Line discounts do not add up to the order discount."), code="discount_mismatch",
                           detail={"lines": str(line_discounts), "order": str(discount_total)})
    if not discounts:
        discount_total = line_discounts
    packaging_fee = sum((line.packaging_fee for line in lines), ZERO)
    total = subtotal - discount_total + delivery_fee + packaging_fee
    if total < 0:
        raise InvalidInput(_("The order total cannot be negative."), code="negative_total")
    return {"subtotal": subtotal, "discount_total": discount_total, "packaging_fee": packaging_fee,
            "total": total, "merchant_discount": sum((d.merchant_part for d in discounts), ZERO),
            "platform_discount": sum((d.platform_part for d in discounts), ZERO)}


def _order_input_check(*, order_type: str, channel: str, lines: list[LineInput]) -> None:
    if order_type not in OrderType.values:
        raise InvalidInput(_("Unknown order type."), code="unknown_order_type")
    if channel not in Channel.values:
        raise InvalidInput(_("Unknown channel."), code="unknown_channel")
    if not lines:
        raise InvalidInput(_("An order needs at least one line."), code="empty_order")


def order_draft(
    *,
    store: Store,
    channel: str,
    order_type: str,
    lines: list[LineInput],
    actor: Actor,
    day_seq: int,
    customer_id: int | None = None,
    channel_order_id: str | None = None,
    channel_order_no: str = "",
    channel_day_seq: int | None = None,
    contact_name: str = "",
    contact_phone: str = "",
    address: dict | None = None,
    customer_note: str = "",
    discounts: list[DiscountInput] | None = None,
    delivery_fee: Decimal = ZERO,
    paid: bool = False,
    payment_provider: str = "",
    payment_txn_no: str = "",
    placed_at: datetime | None = None,
    expires_at: datetime | None = None,
    expected_at: datetime | None = None,
    needs_attention: bool = False,
    attention_reason: str = "",
    raw_payload: dict | None = None,
) -> OrderDraft:
    """Check and build an order in memory (see ``order_create``); writes nothing.
    ``day_seq``: drawn by the caller for the store and the business day of
    ``placed_at``."""
    _order_input_check(order_type=order_type, channel=channel, lines=lines)
    discounts = discounts or []
    placed_at = placed_at or timezone.now()
    amounts = _order_amounts(lines=lines, discounts=discounts, delivery_fee=delivery_fee)
    business_date = business_date_of(placed_at)
    order = Order(
        order_no=order_number_for(store_id=store.pk, business_date=business_date, day_seq=day_seq),
        brand_id=store.brand_id, store=store, channel=channel, order_type=order_type,
        status=OrderStatus.PAID if paid else OrderStatus.PENDING_PAYMENT,
        channel_order_id=channel_order_id, channel_order_no=channel_order_no, channel_day_seq=channel_day_seq,
        customer_id=customer_id, contact_name=contact_name, contact_phone=contact_phone,
        phone_last4=contact_phone[-4:] if contact_phone else "", address=address or {},
        customer_note=customer_note, delivery_fee=delivery_fee, **amounts,
        paid_amount=amounts["total"] if paid else ZERO, paid_at=placed_at if paid else None,
        payment_provider=payment_provider, payment_txn_no=payment_txn_no,
        business_date=business_date, day_seq=day_seq, placed_at=placed_at,
        expires_at=None if paid else expires_at, expected_at=expected_at,
        prep_minutes=store.default_prep_minutes,
        needs_attention=needs_attention, attention_reason=attention_reason, raw_payload=raw_payload or {},
    )
    return OrderDraft(
        order=order,
        lines=[
            OrderLine(
                order=order, line_no=number, sku_id=line.sku_id, sku_code=line.sku_code, name=line.name,
                spec=line.spec, unit_price=line.unit_price, quantity=line.quantity, discount=line.discount,
                line_total=line.unit_price * line.quantity - line.discount, packaging_fee=line.packaging_fee,
                options=line.options, stock_mode=line.stock_mode, platform_food_code=line.platform_food_code,
                platform_sku_id=line.platform_sku_id,
            )
            for number, line in enumerate(lines, start=1)
        ],
        discounts=[
            OrderDiscount(order=order, kind=d.kind, name=d.name, reference=d.reference, amount=d.amount,
                          merchant_part=d.merchant_part, platform_part=d.platform_part)
            for d in discounts
        ],
        event=OrderEvent(
            order=order, action=OrderAction.CREATE, from_status="", to_status=order.status,
            actor_kind=actor.kind, actor_id=actor.id, actor_name=actor.name,
            data={"channel": channel, "total": str(amounts["total"])},
        ),
    )


def order_drafts_save(*, drafts: list[OrderDraft]) -> list[Order]:
    """Insert built orders with their lines, discounts and events: one INSERT
    per table whatever the number of orders; then each order's fulfilment route
    hears of its creation. Joins the caller's transaction without a savepoint."""
    if not drafts:
        return []
    with transaction.atomic(savepoint=False):
        if connection.features.can_return_rows_from_bulk_insert:
            orders = Order.objects.bulk_create([draft.order for draft in drafts])
        else:  # SQLite before 3.35 gives no ids back from a multi-row INSERT
            for draft in drafts:
                draft.order.save(force_insert=True)
            orders = [draft.order for draft in drafts]
        lines, discounts, events = [], [], []
        for draft in drafts:  # bulk_create set the ids: give them to the children
            for child in (*draft.lines, *draft.discounts, draft.event):
                child.order = draft.order
            lines += draft.lines
            discounts += draft.discounts
            events.append(draft.event)
        OrderLine.objects.bulk_create(lines)
        if discounts:
            OrderDiscount.objects.bulk_create(discounts)
        OrderEvent.objects.bulk_create(events)
        for order in orders:
            fulfilment_record(order=order, action=OrderAction.CREATE, from_status="")
    return orders


def order_create(*, store: Store, channel: str, order_type: str, lines: list[LineInput],
                 day_seq: int | None = None, **fields) -> Order:
    """Create an order with its lines, discounts and a ``create`` event.

    Amounts must already be final (priced by promotions or taken from the
    platform); this function adds them up and checks they are consistent. With
    ``paid=True`` (platform orders) the order starts in ``paid``. ``expected_at``:
    the time the customer booked (platform orders); None: as soon as possible.
    ``fields``: the keyword arguments of ``order_draft``.

    ``day_seq``: a number the caller already drew with ``day_seq_next`` for the
    store and the business day of ``placed_at`` (order placement draws it before
    its transaction, so the store's counter row is not held until COMMIT); when
    absent it is drawn here. Joins the caller's transaction without a savepoint:
    a caller that catches an error from here and goes on wraps the call in its
    own ``atomic()`` (the platform intake does).
    """
    # Checked before a number is drawn, so bad input leaves no gap.
    _order_input_check(order_type=order_type, channel=channel, lines=lines)
    _order_amounts(lines=lines, discounts=fields.get("discounts") or [],
                   delivery_fee=fields.get("delivery_fee", ZERO))
    fields["placed_at"] = fields.get("placed_at") or timezone.now()
    with transaction.atomic(savepoint=False):
        if day_seq is None:
            day_seq = day_seq_next(store_id=store.pk, business_date=business_date_of(fields["placed_at"]))
        draft = order_draft(store=store, channel=channel, order_type=order_type, lines=lines, day_seq=day_seq,
                            **fields)
        return order_drafts_save(drafts=[draft])[0]


def order_transition(
    *, order_id: int, action: str, actor: Actor, reason_code: str = "", reason: str = "",
    now: datetime | None = None, expected_store_id: int | None = None, **params,
) -> Order:
    """Apply one transition of the order type's machine and record it.

    Takes the order's row lock; two racing transitions serialize on it and the
    loser sees the winner's status, so exactly one of them happens. Actions
    the actor's kind may not trigger are refused like illegal moves.
    """
    now = now or timezone.now()
    with transaction.atomic():
        order = order_lock(order_id=order_id, store_id=expected_store_id).as_machine()
        method = getattr(order, action, None) if action in _TRANSITION_ACTIONS else None
        if method is None or not hasattr(method, "_django_fsm") or not can_proceed(method):
            raise _not_allowed(order, action, actor)
        actors = _transition_actors(order, action)
        if actors is not None and actor.kind not in actors:
            raise _not_allowed(order, action, actor)
        from_status = order.status
        if action in ("cancel", "reject", "refund"):
            params.setdefault("reason_code", reason_code)
            params.setdefault("reason", reason)
        before = {name: getattr(order, name) for name in _TRANSITION_FIELDS}
        method(now=now, **params)
        changed = [name for name in _TRANSITION_FIELDS if getattr(order, name) != before[name]]
        try:
            with transaction.atomic():  # a savepoint, so a refused save leaves the transaction usable
                order.save(update_fields=["status", "updated_at", *changed])
        except ConcurrentTransition:  # someone changed it without the lock: never both
            raise _not_allowed(order, action, actor, reread=True) from None
        event_write(order=order, action=action, from_status=from_status, actor=actor,
                     reason_code=reason_code, reason=reason,
                     data={k: str(v) for k, v in params.items() if k not in ("reason", "reason_code", "now")})
        order_sync_enqueue(order=order, action=action, actor=actor, reason_code=reason_code, reason=reason)
        fulfilment_record(order=order, action=action, from_status=from_status)
        if order.status == OrderStatus.CANCELLED:
            _order_release_resources(order=order, actor=actor, was_paid=from_status != OrderStatus.PENDING_PAYMENT)
    return order


def _order_release_resources(*, order: Order, actor: Actor, was_paid: bool) -> None:
    """A cancelled order gives back its stock, coupons and purchase limits; an
    own-channel order that was paid is refunded after commit. Every release is
    idempotent. Runs inside the cancelling transaction."""
    # In the order placement locks them (coupons, flash-sale counters, stock), so a
    # release never waits in a cycle with a placement or a batch of them.
    coupon_release(order_ref=order.order_no)
    flash_sale_limit_release(order_ref=order.order_no)
    stock_release(store_id=order.store_id, reference=order.order_no)
    if not was_paid:
        payment_close(order_ref=order.order_no)  # a late SUCCESS notify still arrives and is refunded
    if was_paid and not order.is_platform_order and order.paid_amount > 0:
        from orders.services.checkout import _refund_after_commit

        _refund_after_commit(order=order, amount=order.paid_amount, refund_ref=f"cancel-{order.order_no}",
                             reason=order.cancel_reason_code or "order_cancelled", actor=actor)


# Fields a transition method may change (besides status); only those are written.
_TRANSITION_FIELDS = (
    "paid_at", "payment_provider", "payment_txn_no", "paid_amount", "expires_at", "accepted_at", "prep_minutes",
    "expected_at", "ready_at", "pickup_code", "dispatched_at", "courier_name", "courier_phone", "confirmed_at",
    "completed_at", "cancelled_at", "cancel_reason_code", "cancel_reason",
)

_TRANSITION_ACTIONS = frozenset({
    OrderAction.PAY, OrderAction.ACCEPT, OrderAction.REJECT, OrderAction.MARK_READY, OrderAction.DISPATCH,
    OrderAction.DELIVER, OrderAction.PICK_UP, OrderAction.SERVE, OrderAction.ISSUE, OrderAction.REDEEM,
    OrderAction.COMPLETE, OrderAction.CANCEL, OrderAction.REFUND,
})


def _transition_actors(order: Order, action: str) -> list[str] | None:
    transition = getattr(order, action)._django_fsm.get_transition(order.status)
    return None if transition is None else transition.custom.get("actors")


def _not_allowed(order: Order, action: str, actor: Actor, *, reread: bool = False) -> TransitionNotAllowed:
    """The 409 with the current status. ``reread`` loads a fresh copy (never
    ``refresh_from_db``: django-fsm lifts the field protection for every thread
    while it runs, which breaks concurrent transitions in threaded workers)."""
    if reread:
        order = Order.objects.get(pk=order.pk).as_machine()
    return TransitionNotAllowed(
        _("The order cannot do “%(action)s” in status “%(status)s”.") % {"action": action, "status": order.status},
        detail={"order_no": order.order_no, "status": order.status, "action": action,
                "allowed_actions": order.available_actions(actor_kind=actor.kind)},
    )


def order_accept(*, order_id: int, actor: Actor, prep_minutes: int | None = None, **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.ACCEPT, actor=actor, prep_minutes=prep_minutes, **kw)


def order_reject(*, order_id: int, actor: Actor, reason_code: str, reason: str = "", **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.REJECT, actor=actor,
                            reason_code=reason_code, reason=reason, **kw)


def order_mark_ready(*, order_id: int, actor: Actor, pickup_code: str = "", **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.MARK_READY, actor=actor,
                            pickup_code=pickup_code, **kw)


def order_cancel(*, order_id: int, actor: Actor, reason_code: str = "", reason: str = "", **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.CANCEL, actor=actor,
                            reason_code=reason_code, reason=reason, **kw)


CONFIRM_ACTION = {
    OrderType.DELIVERY: OrderAction.DELIVER,
    OrderType.PICKUP: OrderAction.PICK_UP,
    OrderType.DINE_IN: OrderAction.SERVE,
    OrderType.VOUCHER: OrderAction.REDEEM,
}


def order_confirm(*, order_id: int, order_type: str, actor: Actor, **kw) -> Order:
    """Picked up, delivered, served or redeemed: the type's confirming move."""
    return order_transition(order_id=order_id, action=CONFIRM_ACTION[order_type], actor=actor, **kw)


def orders_complete_after_sales(*, now: datetime | None = None, batch_size: int = 200,
                                max_batches: int = 50) -> int:
    """Close the after-sales window: confirmed orders older than the brand's
    window become ``completed``. Brand by brand, so a brand with a short window
    never waits behind the oldest orders of one with a long window; only orders
    whose window has closed are read. Idempotent; safe to run twice at once."""
    now = now or timezone.now()
    confirmed = [OrderStatus.DELIVERED, OrderStatus.PICKED_UP, OrderStatus.SERVED, OrderStatus.REDEEMED]
    done = 0
    for brand_id, days in Brand.objects.order_by("id").values_list("id", "after_sales_days"):
        cutoff = now - timedelta(days=days)
        for _batch in range(max_batches):
            ids = list(
                Order.objects.filter(brand_id=brand_id, status__in=confirmed, confirmed_at__lte=cutoff)
                .order_by("confirmed_at", "id").values_list("id", flat=True)[:batch_size]
            )
            completed = 0
            for order_id in ids:
                try:
                    order_transition(order_id=order_id, action=OrderAction.COMPLETE,
                                     actor=Actor.system("after_sales_close"), now=now)
                    completed += 1
                except TransitionNotAllowed:
                    continue  # another run (or a refund) got there first
            done += completed
            if len(ids) < batch_size or not completed:
                break
    return done


CONTACT_EDITABLE = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.ACCEPTED, OrderStatus.READY})


def order_contact_update(*, order_id: int, actor: Actor, contact_name: str | None = None,
                         contact_phone: str | None = None, address: dict | None = None,
                         note: str | None = None) -> Order:
    """Change address / phone / note while the order is not yet dispatched
    (409 with the current status afterwards). Records a ``modify`` event."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.status not in CONTACT_EDITABLE:
            raise TransitionNotAllowed(
                _("The contact details cannot be changed any more."), code="contact_change_not_allowed",
                detail={"order_no": order.order_no, "status": order.status},
            )
        if address is not None and order.order_type != OrderType.DELIVERY:
            raise InvalidInput(_("Only delivery orders have an address."), code="address_not_applicable")
        changed = {}
        for name, value in (("contact_name", contact_name), ("contact_phone", contact_phone),
                            ("address", address), ("customer_note", note)):
            if value is not None and getattr(order, name) != value:
                changed[name] = value
                setattr(order, name, value)
        if "contact_phone" in changed:
            order.phone_last4 = order.contact_phone[-4:]
        if changed:
            order.save(update_fields=[*changed, *(["phone_last4"] if "contact_phone" in changed else []),
                                      "updated_at"])
            event_write(order=order, action=OrderAction.MODIFY, from_status=order.status, actor=actor,
                        data={"changed": sorted(changed)})
            fulfilment_record(order=order, action=OrderAction.MODIFY, from_status=order.status)
    return order
