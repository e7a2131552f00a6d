"""Creating orders: day numbers, order numbers, and the order with its lines,
discounts and ``create`` event, for every source (own channels, POS, platform
intake, seeding). Changes after creation go through ``orders.services.core``.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Store
from core.actors import Actor
from core.errors import InvalidInput
from core.nativesql import native_cursor
from core.sqlinsert import insert_rows, insert_statement
from orders.fulfilment.registry import fulfilment_record_created
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

ZERO = Decimal("0.00")
# Django builds ``Choices.values`` (with every label) on each access: checked once here.
ORDER_TYPES = frozenset(OrderType.values)
CHANNELS = frozenset(Channel.values)


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
    if order_type not in ORDER_TYPES:
        raise InvalidInput(_("Unknown order type."), code="unknown_order_type")
    if channel not in CHANNELS:
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
    per table whatever the number of orders (one statement in all for a single order
    on PostgreSQL); then each order's fulfilment route hears of its creation. Joins
    the caller's transaction without a savepoint."""
    if not drafts:
        return []
    with transaction.atomic(savepoint=False):
        if len(drafts) == 1 and connection.vendor == "postgresql":
            _draft_insert_one_statement(drafts[0])
        else:
            _drafts_bulk_insert(drafts)
        for draft in drafts:
            _as_written(draft)
        orders = [draft.order for draft in drafts]
        fulfilment_record_created(orders=orders)
    return orders


def _drafts_bulk_insert(drafts: list[OrderDraft]) -> None:
    """The orders in one INSERT, then their lines, discounts and events one INSERT per table
    (each compiled once per shape on PostgreSQL: core.sqlinsert)."""
    orders = [draft.order for draft in drafts]
    if connection.features.can_return_rows_from_bulk_insert:
        insert_rows(Order, orders)
    else:  # SQLite before 3.35 gives no ids back from a multi-row INSERT
        for order in orders:
            order.save(force_insert=True)
    lines, discounts, events = [], [], []
    for draft in drafts:  # the orders have their ids: give them to the children
        for child in (*draft.lines, *draft.discounts, draft.event):
            child.order = draft.order
        lines += draft.lines
        discounts += draft.discounts
        events.append(draft.event)
    insert_rows(OrderLine, lines)
    insert_rows(OrderDiscount, discounts)
    insert_rows(OrderEvent, events)


# The order's id inside the one statement: the rows of its children refer to it so.
_NEW_ORDER_ID = RawSQL("SELECT id FROM new_order", ())


def _draft_insert_one_statement(draft: OrderDraft) -> None:
    """PostgreSQL: the order, its lines, discounts and ``create`` event in one statement
    (data-modifying WITH queries), so a new order costs one round trip, not three or
    four. Each INSERT is the one bulk_create would send; the children's ``order_id`` is
    the order's new id, read inside the statement. Ids are set on the objects as
    bulk_create sets them (the children's in the order given: the ids of a multi-row
    INSERT rise in its VALUES order)."""
    children = [*draft.lines, *draft.discounts, draft.event]
    for child in children:
        child.order_id = _NEW_ORDER_ID
    parts, params = [], []
    for name, model, objs in (("new_order", Order, [draft.order]), ("new_lines", OrderLine, draft.lines),
                              ("new_discounts", OrderDiscount, draft.discounts),
                              ("new_event", OrderEvent, [draft.event])):
        if objs:
            sql, values = insert_statement(model, objs)
            parts.append(f"{name} AS ({sql})")
            params += values
    with native_cursor() as cursor:
        cursor.execute(
            f"WITH {', '.join(parts)} SELECT (SELECT id FROM new_order), "
            f"ARRAY(SELECT id FROM new_lines ORDER BY id), "
            + ("ARRAY(SELECT id FROM new_discounts ORDER BY id), " if draft.discounts else "ARRAY[]::bigint[], ")
            + "(SELECT id FROM new_event)", params)
        order_id, line_ids, discount_ids, event_id = cursor.fetchone()
    written = [(draft.order, order_id), *zip(draft.lines, line_ids, strict=True),
               *zip(draft.discounts, discount_ids, strict=True), (draft.event, event_id)]
    for obj, pk in written:
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias
    for child in children:
        child.order = draft.order


def _jsonb_key_order(value):
    """``value`` with its objects' keys in the order PostgreSQL's jsonb gives them back
    (shorter keys first, then by bytes), so an answer built from the written object reads
    exactly as one built from the row read back."""
    if isinstance(value, dict):
        return {key: _jsonb_key_order(value[key]) for key in sorted(value, key=lambda k: (len(k.encode()), k.encode()))}
    if isinstance(value, list):
        return [_jsonb_key_order(item) for item in value]
    return value


def _as_written(draft: OrderDraft) -> None:
    """The saved order carries its lines and discounts as written (Django's prefetch cache:
    ``order.lines.all()`` and ``order.discounts.all()`` need no query), and reads as the row
    does: an answer about a new order is built without reading it back."""
    order = draft.order
    if connection.vendor == "postgresql":
        order.address = _jsonb_key_order(order.address)
    cache = {}
    for name, rows in (("lines", draft.lines), ("discounts", draft.discounts)):
        written = getattr(order, name).get_queryset()  # no cache yet: the plain filtered queryset, unevaluated
        written._result_cache, written._prefetch_done = list(rows), True  # as prefetch_related leaves it
        cache[name] = written
    order._prefetched_objects_cache = cache


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
