"""Input and output shapes of the customer API v1 (CONTRACTS.md)."""

import re

from drf_spectacular.utils import extend_schema_field
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from aftersales.models import AfterSalesKind, AfterSalesReasonCode
from aftersales.serializers import AfterSalesOutput
from core.api import ID_MAX, ConstantChoiceField, datetime_text, money_text
from core.actors import ActorKind
from orders.models import Order, OrderLine, OrderType
from orders.status_map import status_label

# Fields a client must never send: prices are computed on the server only.
PRICE_FIELDS = frozenset({
    "price", "unit_price", "total", "subtotal", "discount", "discount_total", "amount", "line_total",
    "delivery_fee", "packaging_fee", "paid", "paid_amount", "pay_amount",
})


def price_fields_in(data, path: str = "") -> list[str]:
    """Every price-like key anywhere in a request body, as dotted paths."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if key in PRICE_FIELDS:
                found.append(where)
            found.extend(price_fields_in(value, where))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(price_fields_in(value, f"{path}[{index}]"))
    return found


class CartLineInput(serializers.Serializer):
    sku = serializers.CharField(max_length=40)
    qty = serializers.IntegerField(min_value=1, max_value=99)


class AddressInput(serializers.Serializer):
    name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    phone = serializers.RegexField(r"^\+?\d{6,20}$", required=False)
    detail = serializers.CharField(max_length=255)
    latitude = serializers.DecimalField(max_digits=9, decimal_places=6, required=False)
    longitude = serializers.DecimalField(max_digits=9, decimal_places=6, required=False)


class CartInput(serializers.Serializer):
    store = serializers.IntegerField(min_value=1, max_value=ID_MAX)
    order_type = ConstantChoiceField(choices=OrderType.choices)
    lines = CartLineInput(many=True, allow_empty=False, max_length=50)
    coupon_codes = serializers.ListField(child=serializers.CharField(max_length=32), required=False, max_length=5,
                                         default=list)
    address = AddressInput(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    contact_name = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    contact_phone = serializers.RegexField(r"^\+?\d{6,20}$", required=False, default="")


_FAST_ORDER_TYPES = frozenset(OrderType.values)
_FAST_PHONE = re.compile(r"\+?[0-9]{6,20}")


def _plain_text(value, *, max_length: int) -> str | None:
    """``value`` as CharField(trim_whitespace, allow_blank) validates it, for the plain
    case only (a str, stripped already, printable ASCII); None: let the serializer judge."""
    if type(value) is str and len(value) <= max_length and value.isascii() and value.isprintable() \
            and value == value.strip():
        return value
    return None


def cart_input_plain(data: dict) -> dict | None:
    """``CartInput(data=data).validated_data`` for the plain body almost every client sends
    (no coupons, no address, ASCII text), without building the serializer's fields (DRF
    deep-copies them for every request: about a tenth of an order create's CPU); None for
    anything else, which the serializer validates (and refuses with its own errors).
    Keys the serializer does not know are ignored, as it ignores them.
    tests/storefront/test_cart_input_plain.py holds it equal to the serializer."""
    store, order_type, lines = data.get("store"), data.get("order_type"), data.get("lines")
    if type(store) is not int or not 1 <= store <= ID_MAX or type(order_type) is not str \
            or order_type not in _FAST_ORDER_TYPES or type(lines) is not list or not 1 <= len(lines) <= 50:
        return None
    items = []
    for line in lines:
        if type(line) is not dict:
            return None
        sku, qty = line.get("sku"), line.get("qty")
        if type(qty) is not int or not 1 <= qty <= 99 or not sku or _plain_text(sku, max_length=40) is None:
            return None
        items.append({"sku": sku, "qty": qty})
    if data.get("coupon_codes", []) != [] or "address" in data:
        return None
    texts = {}
    for name, max_length in (("note", 500), ("contact_name", 50)):
        texts[name] = _plain_text(data.get(name, ""), max_length=max_length)
        if texts[name] is None:
            return None
    phone = data.get("contact_phone", "")
    if "contact_phone" in data and (type(phone) is not str or not _FAST_PHONE.fullmatch(phone)):
        return None
    return {"store": store, "order_type": order_type, "lines": items, "coupon_codes": [], **texts,
            "contact_phone": phone}


class LineOutput(serializers.ModelSerializer):
    line_id = serializers.IntegerField(source="id")
    sku = serializers.CharField(source="sku_code")

    class Meta:
        model = OrderLine
        fields = ["line_id", "sku", "name", "spec", "quantity", "unit_price", "discount", "line_total",
                  "packaging_fee"]


class AmountsOutput(serializers.Serializer):
    subtotal = serializers.DecimalField(max_digits=10, decimal_places=2)
    discount = serializers.DecimalField(max_digits=10, decimal_places=2, source="discount_total")
    delivery_fee = serializers.DecimalField(max_digits=10, decimal_places=2)
    packaging_fee = serializers.DecimalField(max_digits=10, decimal_places=2)
    total = serializers.DecimalField(max_digits=10, decimal_places=2)
    paid = serializers.DecimalField(max_digits=10, decimal_places=2, source="paid_amount")
    refunded = serializers.DecimalField(max_digits=10, decimal_places=2, source="refunded_amount")


class DiscountOutput(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)


class OrderStoreOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class OrderContactOutput(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField()


class RefundOutput(serializers.Serializer):
    refund_no = serializers.CharField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    reason = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)


class VoucherOutput(serializers.Serializer):
    code = serializers.CharField()
    sku = serializers.CharField()
    state = serializers.CharField()
    redeemed_at = serializers.DateTimeField(allow_null=True)


class CustomerOrderOutput(serializers.ModelSerializer):
    store = serializers.SerializerMethodField()
    buyer_status = serializers.SerializerMethodField()
    amounts = AmountsOutput(source="*")
    lines = LineOutput(many=True)
    discounts = DiscountOutput(many=True)
    contact = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()
    refunds = serializers.SerializerMethodField()
    after_sales = serializers.SerializerMethodField()
    vouchers = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["order_no", "store", "channel", "order_type", "status", "buyer_status", "placed_at",
                  "expires_at", "expected_at", "day_seq", "pickup_code", "contact", "address", "customer_note",
                  "lines", "discounts", "amounts", "refund_state", "cancel_reason", "allowed_actions", "refunds",
                  "after_sales", "vouchers"]

    @extend_schema_field(OrderStoreOutput)
    def get_store(self, order: Order) -> dict:
        return {"id": str(order.store_id), "name": order.store.name}

    def get_buyer_status(self, order: Order) -> str:
        return status_label(order_type=order.order_type, status=order.status, audience="buyer")

    @extend_schema_field(OrderContactOutput)
    def get_contact(self, order: Order) -> dict:
        return {"name": order.contact_name, "phone": order.contact_phone}

    def get_allowed_actions(self, order: Order) -> list[str]:
        return order.available_actions(actor_kind=ActorKind.CUSTOMER)

    @extend_schema_field(AfterSalesOutput(many=True))
    def get_after_sales(self, order: Order) -> list[dict]:
        """The order's refund and return requests (prefetched with the order), with the
        actions a customer may take on each."""
        if self.context.get("after_sales") is False:  # a new order: none, and not read
            return []
        return AfterSalesOutput(order.after_sales.all(), many=True,
                                context={"actor_kind": ActorKind.CUSTOMER.value}).data

    @extend_schema_field(RefundOutput(many=True))
    def get_refunds(self, order: Order) -> list[dict]:
        """Money sent back through the provider (each after-sales refund, and the automatic
        ones of cancelled orders); the requests themselves are ``after_sales``. The view
        loads them for the whole page in one query and passes them as ``context["refunds"]``."""
        return [
            {"refund_no": refund.out_refund_no, "amount": f"{refund.amount:.2f}", "reason": refund.reason,
             "status": refund.status, "created_at": refund.created_at.isoformat(),
             "succeeded_at": refund.succeeded_at.isoformat() if refund.succeeded_at else None}
            for refund in self.context.get("refunds", {}).get(order.order_no, [])
        ]

    @extend_schema_field(VoucherOutput(many=True, allow_null=True))
    def get_vouchers(self, order: Order) -> list[dict] | None:
        """A voucher order's codes once the OMS issued them (``[]`` before); ``null``
        for other order types. The view prefetches them with the page."""
        if order.order_type != OrderType.VOUCHER:
            return None
        return [
            {"code": voucher.code, "sku": voucher.sku_code, "state": voucher.state,
             "redeemed_at": voucher.redeemed_at.isoformat() if voucher.redeemed_at else None}
            for voucher in order.voucher_codes.all()
        ]


class ContactInput(serializers.Serializer):
    contact_name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    contact_phone = serializers.RegexField(r"^\+?\d{6,20}$", required=False)
    address = AddressInput(required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


# --- answers the views build as plain dicts: their shapes, for the OpenAPI schema ---------------
class MenuStoreOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    mode = serializers.CharField()
    accepting_orders = serializers.BooleanField(help_text="Open now: mode open or busy and within the business hours.")
    busy_minutes = serializers.IntegerField(help_text="Extra minutes promised while busy (0 otherwise).")
    next_opening_at = serializers.DateTimeField(
        allow_null=True, help_text="When a store closed by its business hours opens again (null when open now, "
                                   "paused by the store, or without hours).")
    business_hours = serializers.ListField(child=serializers.DictField(), help_text=(
        'Periods {"weekdays": [1..7], "open": "HH:MM", "close": "HH:MM"} in local time; empty: always open.'))


class MenuSkuOutput(serializers.Serializer):
    sku = serializers.CharField()
    spec = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    packaging_fee = serializers.DecimalField(max_digits=10, decimal_places=2)
    available = serializers.BooleanField()
    sold_out = serializers.BooleanField()
    stock = serializers.IntegerField(allow_null=True, help_text="null: the SKU is not stock-tracked.")


class MenuItemOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    skus = MenuSkuOutput(many=True)


class MenuCategoryOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    items = MenuItemOutput(many=True)


class MenuPromotionOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class MenuOutput(serializers.Serializer):
    store = MenuStoreOutput()
    categories = MenuCategoryOutput(many=True)
    promotions = MenuPromotionOutput(many=True)


class QuoteLineOutput(serializers.Serializer):
    sku = serializers.CharField()
    qty = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    subtotal = serializers.DecimalField(max_digits=10, decimal_places=2)
    discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    total = serializers.DecimalField(max_digits=10, decimal_places=2)


class QuoteDiscountOutput(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    explanation = serializers.CharField()


class RejectedCouponOutput(serializers.Serializer):
    code = serializers.CharField()
    reason_code = serializers.CharField()
    message = serializers.CharField()


class QuoteOutput(serializers.Serializer):
    lines = QuoteLineOutput(many=True)
    discounts = QuoteDiscountOutput(many=True)
    rejected_coupons = RejectedCouponOutput(many=True)
    subtotal = serializers.DecimalField(max_digits=10, decimal_places=2)
    discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    delivery_fee = serializers.DecimalField(max_digits=10, decimal_places=2)
    delivery_fee_discount = serializers.DecimalField(max_digits=10, decimal_places=2)
    packaging_fee = serializers.DecimalField(max_digits=10, decimal_places=2)
    total = serializers.DecimalField(max_digits=10, decimal_places=2)


class PaymentParamsOutput(serializers.Serializer):
    """What the mini-program passes to the provider's SDK (wx.requestPayment)."""

    appId = serializers.CharField()  # the provider SDK's names
    timeStamp = serializers.CharField()
    nonceStr = serializers.CharField()
    package = serializers.CharField()
    signType = serializers.CharField()
    paySign = serializers.CharField()


class PaymentStartOutput(serializers.Serializer):
    order_no = serializers.CharField()
    provider = serializers.CharField()
    out_trade_no = serializers.CharField()
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    params = PaymentParamsOutput()


# --- the payment provider's notification (payments.provider parses it from the signed bytes) ----
class PaymentNotifyAmountInput(serializers.Serializer):
    total = serializers.IntegerField(help_text="Fen.")
    payer_total = serializers.IntegerField(required=False)


class PaymentNotifyResourceInput(serializers.Serializer):
    out_trade_no = serializers.CharField(required=False)
    transaction_id = serializers.CharField(required=False, help_text="TRANSACTION.SUCCESS")
    trade_state = serializers.CharField(required=False, help_text="TRANSACTION.SUCCESS: SUCCESS")
    success_time = serializers.DateTimeField(required=False)
    amount = PaymentNotifyAmountInput(required=False, help_text="TRANSACTION.SUCCESS")
    out_refund_no = serializers.CharField(required=False, help_text="REFUND.*")
    refund_id = serializers.CharField(required=False, help_text="REFUND.*")
    refund_status = serializers.CharField(required=False, help_text="REFUND.SUCCESS: SUCCESS")


class PaymentNotifyInput(serializers.Serializer):
    """The notification body, for the schema: ``payments.provider`` parses and checks it
    (after the signature) from the raw bytes the signature covers."""

    id = serializers.CharField()
    event_type = serializers.ChoiceField(
        choices=["TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"])
    resource = PaymentNotifyResourceInput()


class RefundLineInput(serializers.Serializer):
    line_id = serializers.IntegerField(min_value=1, max_value=ID_MAX)
    qty = serializers.IntegerField(min_value=1, max_value=10_000)


class RefundRequestInput(serializers.Serializer):
    """``POST orders/{order_no}/refunds``: no lines (or an empty list) asks back the whole order."""

    type = ConstantChoiceField(choices=AfterSalesKind.choices, default=AfterSalesKind.REFUND)
    reason_code = ConstantChoiceField(choices=AfterSalesReasonCode.choices)
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    lines = RefundLineInput(many=True, required=False, default=list, max_length=100)

    def validate_reason_code(self, value: str) -> str:
        if value == AfterSalesReasonCode.PLATFORM:  # the platforms' own applications only
            raise serializers.ValidationError(_("Choose the reason of your request."))
        return value


# --- the create answer, built by hand --------------------------------------------------------


def new_order_answer(order: Order) -> dict:
    """``CustomerOrderOutput`` of an order just created (no refunds, no after-sales requests,
    not a voucher order), as a plain dict: the create path answers many orders a second and
    the serializer's field machinery was a tenth of its cost. The same bytes as the serializer
    (tests/storefront/test_created_answer.py compares the 201 with the order's GET)."""
    return {
        "order_no": order.order_no, "store": {"id": str(order.store_id), "name": order.store.name},
        "channel": order.channel, "order_type": order.order_type, "status": order.status,
        "buyer_status": status_label(order_type=order.order_type, status=order.status, audience="buyer"),
        "placed_at": datetime_text(order.placed_at), "expires_at": datetime_text(order.expires_at),
        "expected_at": datetime_text(order.expected_at), "day_seq": order.day_seq, "pickup_code": order.pickup_code,
        "contact": {"name": order.contact_name, "phone": order.contact_phone}, "address": order.address,
        "customer_note": order.customer_note,
        "lines": [{"line_id": line.id, "sku": line.sku_code, "name": line.name, "spec": line.spec,
                   "quantity": line.quantity, "unit_price": money_text(line.unit_price), "discount": money_text(line.discount),
                   "line_total": money_text(line.line_total), "packaging_fee": money_text(line.packaging_fee)}
                  for line in order.lines.all()],
        "discounts": [{"kind": d.kind, "name": str(d.name), "amount": money_text(d.amount)} for d in order.discounts.all()],
        "amounts": {"subtotal": money_text(order.subtotal), "discount": money_text(order.discount_total),
                    "delivery_fee": money_text(order.delivery_fee), "packaging_fee": money_text(order.packaging_fee),
                    "total": money_text(order.total), "paid": money_text(order.paid_amount),
                    "refunded": money_text(order.refunded_amount)},
        "refund_state": order.refund_state, "cancel_reason": order.cancel_reason,
        "allowed_actions": order.available_actions(actor_kind=ActorKind.CUSTOMER),
        "refunds": [], "after_sales": [], "vouchers": None,
    }
