"""Output and input shapes of the POS API v1 (CONTRACTS.md ``PosOrder``, ``Event``)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aftersales.serializers import AfterSalesOutput
from core.api import datetime_text, money_text

from orders.models import Order, OrderLine, OrderType, StoreFeedEvent
from orders.status_map import status_view
from pos.services import pos_verbs_for

MONEY = {"max_digits": 10, "decimal_places": 2}


class PosLineOutput(serializers.ModelSerializer):
    sku = serializers.CharField(source="sku_code")
    qty = serializers.IntegerField(source="quantity")

    class Meta:
        model = OrderLine
        fields = ["sku", "name", "spec", "qty", "unit_price", "discount", "line_total", "options"]


class PosAmountsOutput(serializers.Serializer):
    subtotal = serializers.DecimalField(**MONEY)
    discount = serializers.DecimalField(**MONEY, source="discount_total")
    delivery_fee = serializers.DecimalField(**MONEY)
    packaging_fee = serializers.DecimalField(**MONEY)
    total = serializers.DecimalField(**MONEY)
    paid = serializers.DecimalField(**MONEY, source="paid_amount")
    refunded = serializers.DecimalField(**MONEY, source="refunded_amount")


class PosContactOutput(serializers.Serializer):
    name = serializers.CharField(source="contact_name")
    phone = serializers.CharField(source="masked_phone")


class PosOrderOutput(serializers.ModelSerializer):
    """An order as a POS sees it. ``context["terminal"]`` narrows
    ``allowed_actions`` to what that terminal's role may do."""

    pos_status = serializers.SerializerMethodField()
    contact = PosContactOutput(source="*")
    address = serializers.SerializerMethodField()
    lines = PosLineOutput(many=True)
    amounts = PosAmountsOutput(source="*")
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["order_no", "channel", "channel_order_no", "order_type", "status", "pos_status", "day_seq",
                  "channel_day_seq", "pickup_code", "placed_at", "expected_at", "prep_minutes", "customer_note",
                  "contact", "address", "lines", "amounts", "refund_state", "needs_attention", "allowed_actions"]

    def get_pos_status(self, order: Order) -> str:
        return status_view(order_type=order.order_type, status=order.status).pos

    def get_address(self, order: Order) -> dict | None:
        return order.address if order.order_type == OrderType.DELIVERY else None

    def get_allowed_actions(self, order: Order) -> list[str]:
        return pos_verbs_for(order, self.context.get("terminal"))


class PosAfterSalesOutput(AfterSalesOutput):
    """An after-sales request as a POS sees it: ``allowed_actions`` only for a manager
    terminal (``context["terminal"]``), the API's verbs (approve, reject, goods_received)."""

    def get_allowed_actions(self, request) -> list[str]:
        terminal = self.context.get("terminal")
        if terminal is None or not terminal.may("after_sales_approve"):
            return []
        return super().get_allowed_actions(request)


class PosEventOutput(serializers.ModelSerializer):
    """``after_sales``: the request an ``aftersales.*`` event is about (null for the others);
    the view passes the page's requests as ``context["after_sales"]`` (id -> request)."""

    id = serializers.CharField()
    order = PosOrderOutput()
    after_sales = serializers.SerializerMethodField()

    class Meta:
        model = StoreFeedEvent
        fields = ["id", "type", "created_at", "order", "after_sales"]

    @extend_schema_field(PosAfterSalesOutput(allow_null=True))
    def get_after_sales(self, event: StoreFeedEvent) -> dict | None:
        request = self.context.get("after_sales", {}).get(event.after_sales_id) if event.after_sales_id else None
        if request is None:
            return None
        return PosAfterSalesOutput(request, context={**self.context, "actor_kind": "pos"}).data


class PosVoucherOutput(serializers.Serializer):
    code = serializers.CharField()
    state = serializers.CharField()
    redeemed_at = serializers.DateTimeField()


class PosVoucherRedemptionOutput(PosOrderOutput):
    """The voucher order after a redemption, with the code and how many codes are left."""

    voucher = PosVoucherOutput(read_only=True)
    codes_left = serializers.IntegerField(read_only=True)

    class Meta(PosOrderOutput.Meta):
        fields = [*PosOrderOutput.Meta.fields, "voucher", "codes_left"]


class PosMenuSkuOutput(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    spec = serializers.CharField()
    category = serializers.CharField()
    price = serializers.DecimalField(**MONEY)
    available = serializers.BooleanField(help_text="false: sold out by hand (stays so after a restock).")
    on_sale = serializers.BooleanField(help_text="What every channel shows: available and stock not at zero.")
    stock = serializers.IntegerField(allow_null=True, help_text="null: the SKU is not stock-tracked.")


class PosMenuOutput(serializers.Serializer):
    skus = PosMenuSkuOutput(many=True)


class PosStoreOutput(serializers.Serializer):
    """``GET/PATCH /api/pos/v1/store``: the store's state on every channel."""

    mode = serializers.ChoiceField(choices=["open", "busy", "paused", "closed"])
    busy_minutes = serializers.IntegerField(help_text="Extra minutes promised while busy (the store's setting).")
    open_now = serializers.BooleanField(help_text="Open or busy, and within the business hours.")
    next_opening_at = serializers.DateTimeField(allow_null=True, help_text=(
        "When the business hours open the store next (null when open now, paused, or without hours)."))
    business_hours = serializers.ListField(child=serializers.DictField(), help_text=(
        'Periods {"weekdays": [1..7], "open": "HH:MM", "close": "HH:MM"}; empty: always open.'))

    def to_representation(self, store):
        now = timezone.now()
        next_opening = store.next_opening_at(now)
        return {"mode": store.mode, "busy_minutes": store.busy_extra_minutes, "open_now": store.open_at(now),
                "next_opening_at": timezone.localtime(next_opening).isoformat() if next_opening else None,
                "business_hours": store.business_hours or []}


# --- the feed's answer, built by hand ----------------------------------------------------------


def pos_order_answer(order: Order, terminal=None) -> dict:
    """``PosOrderOutput`` as a plain dict (lines prefetched): a POS polls its feed every few
    seconds and the serializer's field machinery was a third of each answer's cost. The same
    bytes as the serializer (tests/pos/test_feed_answer.py)."""
    return {
        "order_no": order.order_no, "channel": order.channel, "channel_order_no": order.channel_order_no,
        "order_type": order.order_type, "status": order.status,
        "pos_status": status_view(order_type=order.order_type, status=order.status).pos,
        "day_seq": order.day_seq, "channel_day_seq": order.channel_day_seq, "pickup_code": order.pickup_code,
        "placed_at": datetime_text(order.placed_at), "expected_at": datetime_text(order.expected_at),
        "prep_minutes": order.prep_minutes, "customer_note": order.customer_note,
        "contact": {"name": order.contact_name, "phone": order.masked_phone},
        "address": order.address if order.order_type == OrderType.DELIVERY else None,
        "lines": [{"sku": line.sku_code, "name": line.name, "spec": line.spec, "qty": line.quantity,
                   "unit_price": money_text(line.unit_price), "discount": money_text(line.discount),
                   "line_total": money_text(line.line_total), "options": line.options} for line in order.lines.all()],
        "amounts": {"subtotal": money_text(order.subtotal), "discount": money_text(order.discount_total),
                    "delivery_fee": money_text(order.delivery_fee), "packaging_fee": money_text(order.packaging_fee),
                    "total": money_text(order.total), "paid": money_text(order.paid_amount),
                    "refunded": money_text(order.refunded_amount)},
        "refund_state": order.refund_state, "needs_attention": order.needs_attention,
        "allowed_actions": pos_verbs_for(order, terminal),
    }


def pos_events_answer(events: list[StoreFeedEvent], *, terminal, after_sales: dict) -> list[dict]:
    """``PosEventOutput(events, many=True)`` as plain dicts; an event about an after-sales
    request still goes through ``PosAfterSalesOutput`` for that part (rare, and shared with the
    after-sales endpoints)."""
    answers = []
    for event in events:
        request = after_sales.get(event.after_sales_id) if event.after_sales_id else None
        answers.append({
            "id": str(event.id), "type": event.type, "created_at": datetime_text(event.created_at),
            "order": pos_order_answer(event.order, terminal),
            "after_sales": None if request is None else PosAfterSalesOutput(
                request, context={"terminal": terminal, "after_sales": after_sales, "actor_kind": "pos"}).data,
        })
    return answers
