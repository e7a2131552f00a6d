"""The ``AfterSales`` shape of CONTRACTS.md, shared by the customer and POS APIs.

``context["actor_kind"]`` narrows ``allowed_actions`` to what that kind of actor
may do now (a customer: withdraw; a POS: approve, reject, goods received)."""

from rest_framework import serializers

from aftersales.models import AfterSalesLine, AfterSalesRequest

MONEY = {"max_digits": 10, "decimal_places": 2}

# Transition names -> the verbs the APIs expose.
API_VERBS = {"approve": "approve", "reject": "reject", "withdraw": "withdraw", "receive_goods": "goods_received"}


class AfterSalesLineOutput(serializers.ModelSerializer):
    line_id = serializers.CharField(source="order_line_id")
    sku = serializers.CharField(source="order_line.sku_code")
    name = serializers.CharField(source="order_line.name")
    qty = serializers.IntegerField(source="quantity")
    amount = serializers.DecimalField(**MONEY)

    class Meta:
        model = AfterSalesLine
        fields = ["line_id", "sku", "name", "qty", "amount"]


class AfterSalesOutput(serializers.ModelSerializer):
    id = serializers.CharField()
    order_no = serializers.CharField(source="order.order_no")
    lines = AfterSalesLineOutput(many=True)
    amount = serializers.DecimalField(**MONEY)
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = AfterSalesRequest
        fields = ["id", "order_no", "kind", "scope", "lines", "platform_lines", "amount", "fees_included",
                  "reason_code", "reason", "requested_by", "status", "deadline", "decided_by", "decided_at",
                  "decision_reason", "restock", "created_at", "refunded_at", "allowed_actions"]

    def get_allowed_actions(self, request: AfterSalesRequest) -> list[str]:
        actor_kind = self.context.get("actor_kind")
        return [API_VERBS[name] for name in request.available_actions(actor_kind=actor_kind) if name in API_VERBS]
