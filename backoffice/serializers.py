from rest_framework import serializers

from core.actors import ActorKind
from orders.models import Order, OrderEvent, OrderLine
from orders.status_map import status_label


class OrderLineOutput(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["line_no", "sku_code", "name", "spec", "unit_price", "quantity", "discount", "line_total",
                  "options"]


class OrderEventOutput(serializers.ModelSerializer):
    class Meta:
        model = OrderEvent
        fields = ["action", "from_status", "to_status", "actor_kind", "actor_id", "reason_code", "reason",
                  "created_at"]


class BackofficeOrderOutput(serializers.ModelSerializer):
    store = serializers.CharField(source="store.code")
    contact_phone = serializers.CharField(source="masked_phone")
    merchant_status = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = ["order_no", "store", "channel", "channel_order_no", "order_type", "status", "merchant_status",
                  "day_seq", "pickup_code", "placed_at", "expected_at", "contact_name", "contact_phone",
                  "subtotal", "discount_total", "delivery_fee", "packaging_fee", "total", "paid_amount",
                  "needs_attention", "attention_reason", "allowed_actions"]

    def get_merchant_status(self, order: Order) -> str:
        return status_label(order_type=order.order_type, status=order.status, audience="merchant")

    def get_allowed_actions(self, order: Order) -> list[str]:
        allowed = self.context.get("allowed")
        names = order.available_actions(actor_kind=ActorKind.STAFF)
        return [n for n in names if allowed is None or allowed(order, n)]


class BackofficeOrderDetailOutput(BackofficeOrderOutput):
    lines = OrderLineOutput(many=True)
    events = OrderEventOutput(many=True)

    class Meta(BackofficeOrderOutput.Meta):
        fields = BackofficeOrderOutput.Meta.fields + ["address", "customer_note", "lines", "events"]
