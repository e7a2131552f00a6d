"""What a request gives back: computed from the order's apportioned lines.

Rules (docs/after-sales.md has worked examples; each is a test in
tests/aftersales/test_amounts.py):

1. A line's paid amount is its line total after its share of the order's
   discounts (``OrderLine.line_total``, apportioned to the fen at ordering) plus
   its box fee (``OrderLine.packaging_fee``).
2. Refunding ``q`` of a line's ``Q`` units gives back the cumulative share:
   ``round(paid * (r + q) / Q) - already`` where ``r`` units of the line were
   refunded before for ``already``. Rounding is half up to the fen; the parts of a
   line always add up to exactly its paid amount.
3. The delivery fee and the order-level fees (what was paid beyond the lines) go
   back only with a whole-order refund, or, when the brand sets
   ``after_sales_fees_with_last_lines``, with the line refund that takes the last
   units of the order.
4. A whole-order refund gives back everything not yet given back (or asked for by
   an open request). For an e-voucher order, codes already redeemed are not
   refundable: each is one unit of its line.
5. Nothing gives back more than was paid: the sum of every committed request
   (open, refunding, refunded, failed) never exceeds the order's paid amount.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _

from aftersales.models import COMMITTED_STATUSES, AfterSalesLine, AfterSalesRequest, AfterSalesScope
from core.errors import Conflict, InvalidInput
from orders.models import Order, OrderLine, OrderType, VoucherCode, VoucherCodeState

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def fen_round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_paid(line: OrderLine) -> Decimal:
    """What the customer paid for the line: after its discount share, box fee included."""
    return line.line_total + line.packaging_fee


@dataclass
class Committed:
    """What the order's committed requests already hold."""

    amount: Decimal = ZERO
    whole: bool = False  # a committed whole-order request: nothing is left
    units: Counter = field(default_factory=Counter)  # order line id -> units
    line_amounts: dict = field(default_factory=dict)  # order line id -> amount


@dataclass(frozen=True)
class QuoteLine:
    line: OrderLine
    quantity: int
    amount: Decimal


@dataclass(frozen=True)
class Quote:
    amount: Decimal
    lines: tuple[QuoteLine, ...]
    fees_included: bool
    full: bool  # everything refundable goes back with it: the order is refunded


def committed_for(*, order: Order, exclude_id: int | None = None) -> Committed:
    """What the order's committed requests hold (``exclude_id``: leave one out)."""
    requests = AfterSalesRequest.objects.filter(order_id=order.pk, status__in=COMMITTED_STATUSES)
    if exclude_id is not None:
        requests = requests.exclude(pk=exclude_id)
    result = Committed()
    for amount, scope in requests.values_list("amount", "scope"):
        result.amount += amount
        result.whole = result.whole or scope == AfterSalesScope.ORDER
    lines = AfterSalesLine.objects.filter(request__order_id=order.pk, request__status__in=COMMITTED_STATUSES)
    if exclude_id is not None:
        lines = lines.exclude(request_id=exclude_id)
    for line_id, quantity, amount in lines.values_list("order_line_id", "quantity", "amount"):
        result.units[line_id] += quantity
        result.line_amounts[line_id] = result.line_amounts.get(line_id, ZERO) + amount
    return result


def redeemed_units(order: Order) -> Counter:
    """E-voucher orders: line no -> codes already redeemed (not refundable)."""
    if order.order_type != OrderType.VOUCHER:
        return Counter()
    return Counter(VoucherCode.objects.filter(order_id=order.pk, state=VoucherCodeState.REDEEMED)
                   .values_list("line_no", flat=True))


def refundable_total(*, order: Order, lines: list[OrderLine], redeemed: Counter) -> Decimal:
    """What the order may give back at most: what was paid, less redeemed codes' share."""
    used = sum((fen_round(line_paid(line) * redeemed[line.line_no] / line.quantity)
                for line in lines if redeemed[line.line_no]), ZERO)
    return max(order.paid_amount - used, ZERO)


def quote(*, order: Order, asked: list[tuple[int, int]] | None, fees_with_last_lines: bool,
          exclude_id: int | None = None) -> Quote:
    """The amount of a request for ``order``: ``asked`` (order line id, units) or None
    for the whole order. Raises 400 for a line of another order or a bad quantity,
    409 when more is asked than is left (or nothing is left)."""
    lines = list(order.lines.all().order_by("line_no"))
    by_id = {line.pk: line for line in lines}
    redeemed = redeemed_units(order)
    committed = committed_for(order=order, exclude_id=exclude_id)
    refundable = refundable_total(order=order, lines=lines, redeemed=redeemed)
    left = refundable - committed.amount
    if committed.whole or left <= 0:
        raise Conflict(_("Everything paid for this order has already been refunded or asked back."),
                       code="nothing_left_to_refund", detail={"order_no": order.order_no,
                                                               "refundable": str(max(left, ZERO))})
    units_left = {line.pk: line.quantity - redeemed[line.line_no] - committed.units[line.pk] for line in lines}
    if asked is None:
        return Quote(amount=left, lines=tuple(QuoteLine(line=line, quantity=units_left[line.pk],
                                                        amount=_line_share(line, committed, units_left[line.pk]))
                                              for line in lines if units_left[line.pk] > 0),
                     fees_included=True, full=True)
    wanted = Counter()
    for line_id, quantity in asked:
        if line_id not in by_id:
            raise InvalidInput(_("This line is not a line of the order."), code="line_not_in_order",
                               detail={"line_id": str(line_id)})
        if quantity < 1:
            raise InvalidInput(_("Quantities must be at least 1."), code="invalid_quantity",
                               detail={"line_id": str(line_id)})
        wanted[line_id] += quantity
    if not wanted:
        raise InvalidInput(_("Name at least one line, or none for the whole order."), code="no_lines")
    quote_lines = []
    for line_id, quantity in sorted(wanted.items()):
        if quantity > units_left[line_id]:
            raise Conflict(_("More units are asked back than are left to refund on this line."),
                           code="quantity_exceeds_refundable",
                           detail={"line_id": str(line_id), "asked": quantity, "left": max(units_left[line_id], 0)})
        quote_lines.append(QuoteLine(line=by_id[line_id], quantity=quantity,
                                     amount=_line_share(by_id[line_id], committed, quantity)))
    amount = sum((item.amount for item in quote_lines), ZERO)
    takes_all = all(units_left[line.pk] - wanted[line.pk] <= 0 for line in lines)
    fees_included = takes_all and fees_with_last_lines
    if fees_included:
        amount = left
    if amount > left:
        raise Conflict(_("More is asked back than is left to refund."), code="amount_exceeds_refundable",
                       detail={"asked": str(amount), "left": str(left)})
    return Quote(amount=amount, lines=tuple(quote_lines), fees_included=fees_included, full=amount == left)


def _line_share(line: OrderLine, committed: Committed, quantity: int) -> Decimal:
    """Rule 2: the cumulative share of ``quantity`` more units of ``line``."""
    before_units = committed.units[line.pk]
    before_amount = committed.line_amounts.get(line.pk, ZERO)
    paid = line_paid(line)
    return fen_round(paid * (before_units + quantity) / line.quantity) - before_amount
