"""POS API v1 (/api/pos/v1/), CONTRACTS.md. See docs/pos-api.md.

Auth: ``Authorization: Token <terminal token>``. Every view derives from
``PosAPIView``: its querysets are the terminal's store's only, so an order
number or event id of another store answers 404 (or is ignored, for ack).
Views are thin: validate, call a pos service, serialize.
"""

import time

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from aftersales.models import AfterSalesStatus
from catalog.selectors import store_sku_list
from core.api import ID_MAX, BaseAPIView
from core.errors import NotFound
from core.schema import error_response
from inventory.selectors import stock_levels
from orders.models import Order, OrderStatus
from orders.services.feed import FeedWaiter
from pos import services
from pos.authentication import TerminalPrincipal, TerminalTokenAuthentication
from pos.models import PosTerminal
from pos.selectors import (
    pos_after_sales,
    pos_after_sales_for_events,
    pos_after_sales_get,
    pos_events_unacked,
    pos_orders,
)
from pos.serializers import (
    PosAfterSalesOutput,
    PosEventOutput,
    PosMenuOutput,
    PosOrderOutput,
    PosStoreOutput,
    PosVoucherRedemptionOutput,
    pos_events_answer,
)

MAX_WAIT_SECONDS = 25
MAX_EVENTS = 100


class IsPosTerminal(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TerminalPrincipal)


class PosPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 50


class PosAPIView(BaseAPIView):
    """Base of every POS view: one terminal, one store, every read scoped to it."""

    authentication_classes = [TerminalTokenAuthentication]
    permission_classes = [IsPosTerminal]
    throttle_classes = [UserRateThrottle]

    @property
    def terminal(self) -> PosTerminal:
        return self.request.user.terminal

    def store_orders(self):
        """The one place POS order querysets come from: this store's only."""
        return pos_orders(store_id=self.terminal.store_id)

    def get_order(self, order_no: str) -> Order:
        try:
            return self.store_orders().get(order_no=order_no)
        except Order.DoesNotExist:
            raise NotFound(_("Order not found."), code="order_not_found") from None

    def order_response(self, order_no: str) -> Response:
        order = self.get_order(order_no)
        return Response(PosOrderOutput(order, context={"terminal": self.terminal}).data)


class _OrderVerbApi(PosAPIView):
    """POST orders/{order_no}/<verb>: the order is looked up in this store first
    (404 otherwise), the service moves it (409 with ``detail.status`` and
    ``allowed_actions`` when it can't), the answer is the fresh PosOrder."""

    class Input(serializers.Serializer):
        pass

    def act(self, order: Order, data: dict) -> None:
        raise NotImplementedError

    def post(self, request, order_no: str):
        data = self.Input(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        order = self.get_order(order_no)
        self.act(order, data.validated_data)
        return self.order_response(order_no)


# --- feed -------------------------------------------------------------------------
class EventsApi(PosAPIView):
    class Query(serializers.Serializer):
        wait = serializers.IntegerField(min_value=0, required=False, default=0)
        limit = serializers.IntegerField(min_value=1, required=False, default=MAX_EVENTS)

    @extend_schema(
        operation_id="pos_events",
        parameters=[OpenApiParameter("wait", int, description="Long poll: seconds to wait for events (0-25)."),
                    OpenApiParameter("limit", int, description="At most this many events (capped at 100).")],
        responses=inline_serializer("PosEvents", {"events": PosEventOutput(many=True)}),
    )
    def get(self, request):
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        wait = min(query.validated_data["wait"], MAX_WAIT_SECONDS)
        limit = min(query.validated_data["limit"], MAX_EVENTS)
        store_id = self.terminal.store_id
        deadline = time.monotonic() + wait
        if wait == 0:  # nothing to wait for: no wake-up subscription (a Redis round trip)
            events = pos_events_unacked(store_id=store_id, limit=limit)
        else:
            # Subscribe before the first read: a commit between the read and the wait wakes us.
            with FeedWaiter(store_id=store_id) as waiter:
                events = pos_events_unacked(store_id=store_id, limit=limit)
                while not events and not waiter.stopped and (remaining := deadline - time.monotonic()) > 0:
                    waiter.wait(min(remaining, waiter.recheck_seconds))
                    events = pos_events_unacked(store_id=store_id, limit=limit)
        after_sales = pos_after_sales_for_events(events=events)
        return Response({"events": pos_events_answer(events, terminal=self.terminal, after_sales=after_sales)})


class EventsAckApi(PosAPIView):
    class Input(serializers.Serializer):
        ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
                                    max_length=500)

    @extend_schema(request=Input, operation_id="pos_events_ack",
                   responses=inline_serializer("PosEventsAcked", {"acked": serializers.IntegerField()}))
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        acked = services.pos_events_ack(terminal=self.terminal, event_ids=data.validated_data["ids"])
        return Response({"acked": acked})


# --- orders -----------------------------------------------------------------------
class PosOrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    date = django_filters.DateFilter(field_name="business_date")
    channel = django_filters.CharFilter()

    class Meta:
        model = Order
        fields = ["status", "date", "channel"]


class OrderListApi(PosAPIView):
    pagination_class = PosPagination

    @extend_schema(responses=PosOrderOutput(many=True), operation_id="pos_order_list",
                   parameters=[OpenApiParameter("status", str, enum=OrderStatus.values),
                               OpenApiParameter("date", OpenApiTypes.DATE, description="The business date."),
                               OpenApiParameter("channel", str)])
    def get(self, request):
        filters = PosOrderFilter(request.query_params, queryset=self.store_orders().order_by("-placed_at", "-id"))
        if not filters.is_valid():  # an unknown status or a bad date must not widen the list
            raise ValidationError(filters.errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(filters.qs, request, view=self)
        return paginator.get_paginated_response(
            PosOrderOutput(page, many=True, context={"terminal": self.terminal}).data
        )


class OrderDetailApi(PosAPIView):
    @extend_schema(responses=PosOrderOutput, operation_id="pos_order_detail")
    def get(self, request, order_no: str):
        return self.order_response(order_no)


class OrderAcceptApi(_OrderVerbApi):
    class Input(serializers.Serializer):
        prep_minutes = serializers.IntegerField(min_value=1, max_value=240, required=False)

    def act(self, order, data):
        services.pos_order_accept(terminal=self.terminal, order_id=order.pk, prep_minutes=data.get("prep_minutes"))

    @extend_schema(request=Input, responses=PosOrderOutput, operation_id="pos_order_accept")
    def post(self, request, order_no: str):
        return super().post(request, order_no)


class OrderRejectApi(_OrderVerbApi):
    class Input(serializers.Serializer):
        reason_code = serializers.ChoiceField(choices=["sold_out", "store_busy", "store_closed", "other"])
        reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

    def act(self, order, data):
        services.pos_order_reject(terminal=self.terminal, order_id=order.pk, reason_code=data["reason_code"],
                                  reason=data["reason"])

    @extend_schema(request=Input, responses=PosOrderOutput, operation_id="pos_order_reject")
    def post(self, request, order_no: str):
        return super().post(request, order_no)


class OrderReadyApi(_OrderVerbApi):
    class Input(serializers.Serializer):
        pickup_code = serializers.RegexField(r"^[A-Za-z0-9]{1,12}$", required=False)

    def act(self, order, data):
        services.pos_order_ready(terminal=self.terminal, order_id=order.pk, pickup_code=data.get("pickup_code", ""))

    @extend_schema(request=Input, responses=PosOrderOutput, operation_id="pos_order_ready")
    def post(self, request, order_no: str):
        return super().post(request, order_no)


class OrderDispatchApi(_OrderVerbApi):
    class Input(serializers.Serializer):
        courier_name = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
        courier_phone = serializers.RegexField(r"^\+?[\d-]{3,30}$", required=False, default="")

    def act(self, order, data):
        services.pos_order_dispatch(terminal=self.terminal, order_id=order.pk, courier_name=data["courier_name"],
                                    courier_phone=data["courier_phone"])

    @extend_schema(request=Input, responses=PosOrderOutput, operation_id="pos_order_dispatch")
    def post(self, request, order_no: str):
        return super().post(request, order_no)


class OrderCompleteApi(_OrderVerbApi):
    def act(self, order, data):
        services.pos_order_complete(terminal=self.terminal, order_id=order.pk)

    @extend_schema(request=None, responses=PosOrderOutput, operation_id="pos_order_complete")
    def post(self, request, order_no: str):
        return super().post(request, order_no)


# --- stock, vouchers, menu --------------------------------------------------------
class StockSalesApi(PosAPIView):
    class Input(serializers.Serializer):
        class Line(serializers.Serializer):
            sku = serializers.CharField(max_length=40)
            qty = serializers.IntegerField(min_value=1, max_value=999)

        receipt_no = serializers.RegexField(r"^[\w.:/-]{1,64}$")
        lines = Line(many=True, allow_empty=False, max_length=100)

    class Output(serializers.Serializer):
        receipt_no = serializers.CharField()
        lines = serializers.SerializerMethodField()
        shortfall = serializers.SerializerMethodField()
        created_at = serializers.DateTimeField()

        def get_lines(self, sale) -> list[dict]:
            # jsonb does not keep key order; the answer must be byte-for-byte stable.
            return [{"sku": line["sku"], "qty": line["qty"]} for line in sale.lines]

        def get_shortfall(self, sale) -> dict[str, int]:
            return dict(sorted(sale.shortfall.items()))

    @extend_schema(request=Input, responses={201: Output}, operation_id="pos_stock_sales")
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        sale, _created = services.pos_walk_in_sale_record(
            terminal=self.terminal, receipt_no=data.validated_data["receipt_no"],
            lines=data.validated_data["lines"],
        )
        # The same receipt again gets the same answer (and took stock once).
        return Response(self.Output(sale).data, status=status.HTTP_201_CREATED)


class StockAvailabilityApi(PosAPIView):
    class Input(serializers.Serializer):
        sku = serializers.CharField(max_length=40)
        available = serializers.BooleanField()

    @extend_schema(request=Input, operation_id="pos_stock_availability",
                   responses=inline_serializer("PosAvailability", {"sku": serializers.CharField(),
                                                                   "available": serializers.BooleanField()}))
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        services.pos_sku_set_availability(terminal=self.terminal, sku_code=data.validated_data["sku"],
                                          available=data.validated_data["available"])
        return Response({"sku": data.validated_data["sku"], "available": data.validated_data["available"]})


class VoucherRedeemApi(PosAPIView):
    class Input(serializers.Serializer):
        code = serializers.CharField(max_length=32)

    @extend_schema(request=Input, operation_id="pos_voucher_redeem", responses={
        200: PosVoucherRedemptionOutput, 404: error_response("Unknown code (`voucher_not_found`).")},
        description="The voucher PosOrder (``redeemed`` once its last code is), plus the code and "
                    "``codes_left``. A code redeemed before is a 409 ``voucher_already_redeemed``.")
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        redemption = services.pos_voucher_redeem(terminal=self.terminal, code=data.validated_data["code"])
        order = self.get_order(redemption.order.order_no)
        voucher = redemption.voucher
        return Response({
            **PosOrderOutput(order, context={"terminal": self.terminal}).data,
            "voucher": {"code": voucher.code, "state": voucher.state, "redeemed_at": voucher.redeemed_at.isoformat()},
            "codes_left": redemption.codes_left,
        })


class MenuApi(PosAPIView):
    @extend_schema(operation_id="pos_menu", responses=PosMenuOutput)
    def get(self, request):
        store_id = self.terminal.store_id
        levels = stock_levels(store_id=store_id)
        skus = [
            {"sku": row.sku.code, "name": row.sku.product.name, "spec": row.sku.spec,
             "category": row.sku.product.category.name, "price": f"{row.effective_price:.2f}",
             "available": row.is_available, "on_sale": row.on_sale, "stock": levels.get(row.sku_id)}
            for row in store_sku_list(store_id=store_id)
        ]
        return Response({"skus": skus})


class StoreApi(PosAPIView):
    class Input(serializers.Serializer):
        mode = serializers.ChoiceField(choices=["open", "busy", "paused"], required=False)
        busy_minutes = serializers.IntegerField(min_value=0, max_value=120, required=False)

        def validate(self, attrs):
            if not attrs:
                raise ValidationError(_("Give mode and / or busy_minutes."))
            return attrs

    @extend_schema(operation_id="pos_store", responses=PosStoreOutput)
    def get(self, request):
        return Response(PosStoreOutput(self.terminal.store).data)

    @extend_schema(request=Input, operation_id="pos_store_update", responses=PosStoreOutput,
                   description="Open / busy (+ minutes) / paused: reaches every platform the store is bound to "
                               "(Meituan poi/open | poi/close, Ele.me updateShop and setDeliveryTime).")
    def patch(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.pos_store_state_set(terminal=self.terminal, mode=data.validated_data.get("mode"),
                                             busy_minutes=data.validated_data.get("busy_minutes"))
        return Response(PosStoreOutput(store).data)


# --- after-sales ------------------------------------------------------------------
class AfterSalesListApi(PosAPIView):
    pagination_class = PosPagination

    class Query(serializers.Serializer):
        status = serializers.ChoiceField(choices=AfterSalesStatus.choices, required=False)

    @extend_schema(operation_id="pos_after_sales_list", responses=PosAfterSalesOutput(many=True),
                   parameters=[OpenApiParameter("status", str, enum=AfterSalesStatus.values,
                                                description="Only requests in this status.")])
    def get(self, request):
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            pos_after_sales(store_id=self.terminal.store_id, status=query.validated_data.get("status")),
            request, view=self)
        return paginator.get_paginated_response(
            PosAfterSalesOutput(page, many=True, context={"terminal": self.terminal, "actor_kind": "pos"}).data)


class _AfterSalesVerbApi(PosAPIView):
    """POST after-sales/{id}/<verb>: a request of this store (404 otherwise), manager
    terminals only (403 ``terminal_role_not_allowed``), 409 when its status does not
    allow it (``detail.status``); the answer is the fresh ``AfterSales``."""

    class Input(serializers.Serializer):
        pass

    def act(self, request_id: int, data: dict) -> None:
        raise NotImplementedError

    def post(self, request, request_id: int):
        data = self.Input(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        if pos_after_sales_get(store_id=self.terminal.store_id, request_id=request_id) is None:
            raise NotFound(_("After-sales request not found."), code="after_sales_not_found")
        self.act(request_id, data.validated_data)
        fresh = pos_after_sales_get(store_id=self.terminal.store_id, request_id=request_id)
        return Response(PosAfterSalesOutput(fresh, context={"terminal": self.terminal, "actor_kind": "pos"}).data)


_VERB_ERRORS = {403: error_response("Not a manager terminal (`terminal_role_not_allowed`)."),
                404: error_response("No such request at this store (`after_sales_not_found`)."),
                409: error_response("Its status does not allow this (`transition_not_allowed`, `detail.status`).")}


class AfterSalesApproveApi(_AfterSalesVerbApi):
    def act(self, request_id, data):
        services.pos_after_sales_approve(terminal=self.terminal, request_id=request_id)

    @extend_schema(request=None, responses={200: PosAfterSalesOutput, **_VERB_ERRORS},
                   operation_id="pos_after_sales_approve")
    def post(self, request, request_id: int):
        return super().post(request, request_id)


class AfterSalesRejectApi(_AfterSalesVerbApi):
    class Input(serializers.Serializer):
        reason = serializers.CharField(max_length=255)

    def act(self, request_id, data):
        services.pos_after_sales_reject(terminal=self.terminal, request_id=request_id, reason=data["reason"])

    @extend_schema(request=Input, responses={200: PosAfterSalesOutput, **_VERB_ERRORS},
                   operation_id="pos_after_sales_reject")
    def post(self, request, request_id: int):
        return super().post(request, request_id)


class AfterSalesGoodsReceivedApi(_AfterSalesVerbApi):
    class Input(serializers.Serializer):
        restock = serializers.BooleanField(required=False, default=True)

    def act(self, request_id, data):
        services.pos_after_sales_goods_received(terminal=self.terminal, request_id=request_id,
                                                restock=data["restock"])

    @extend_schema(request=Input, responses={200: PosAfterSalesOutput, **_VERB_ERRORS},
                   operation_id="pos_after_sales_goods_received")
    def post(self, request, request_id: int):
        return super().post(request, request_id)
