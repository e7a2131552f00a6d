"""Back-office API for staff (session auth): the store's order list and actions."""

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api_base import StaffAPIView
from core.actors import Actor
from core.api import ID_MAX, DefaultPagination
from core.errors import PermissionDenied
from orders.models import Order, OrderAction, OrderStatus, OrderType
from accounts.selectors import roles_for_store
from orders.permissions import staff_may
from backoffice.selectors import order_get_for_staff, order_list_for_staff
from backoffice.serializers import BackofficeOrderDetailOutput, BackofficeOrderOutput
from orders.services import order_transition


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    order_type = django_filters.ChoiceFilter(choices=OrderType.choices)
    store = django_filters.NumberFilter(field_name="store_id", min_value=1, max_value=ID_MAX)
    date = django_filters.DateFilter(field_name="business_date")
    channel = django_filters.CharFilter()

    class Meta:
        model = Order
        fields = ["status", "order_type", "store", "date", "channel"]


class OrderStaffAPIView(StaffAPIView):
    def allowed_for(self, order: Order, action: str) -> bool:
        """Roles count only at the order's own store (or its brand, for a brand admin)."""
        roles = roles_for_store(user=self.request.user, store_id=order.store_id, brand_id=order.brand_id)
        return staff_may(roles=roles, action=action)


class OrderListApi(OrderStaffAPIView):
    pagination_class = DefaultPagination

    @extend_schema(responses=BackofficeOrderOutput(many=True), operation_id="backoffice_order_list", parameters=[
        OpenApiParameter("status", str, enum=OrderStatus.values),
        OpenApiParameter("order_type", str, enum=OrderType.values),
        OpenApiParameter("store", {"type": "integer", "minimum": 1, "maximum": ID_MAX}, description="A store id."),
        OpenApiParameter("date", OpenApiTypes.DATE, description="The business date."),
        OpenApiParameter("channel", str),
    ])
    def get(self, request):
        queryset = order_list_for_staff(scope=self.scope)
        filters = OrderFilter(request.GET, queryset=queryset)
        if not filters.is_valid():  # an unknown status or a bad date must not widen the list
            raise ValidationError(filters.errors)
        queryset = filters.qs
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        context = {"allowed": self.allowed_for}
        return paginator.get_paginated_response(BackofficeOrderOutput(page, many=True, context=context).data)


class OrderDetailApi(OrderStaffAPIView):
    def get_order(self, order_no: str) -> Order:
        return order_get_for_staff(scope=self.scope, order_no=order_no)

    @extend_schema(responses=BackofficeOrderDetailOutput, operation_id="backoffice_order_detail")
    def get(self, request, order_no: str):
        context = {"allowed": self.allowed_for}
        return Response(BackofficeOrderDetailOutput(self.get_order(order_no), context=context).data)


class OrderTransitionApi(OrderDetailApi):
    # POST only: the inherited ``get`` serves the answer, it is not an endpoint here.
    http_method_names = ["post", "options"]

    class Input(serializers.Serializer):
        action = serializers.ChoiceField(choices=[a.value for a in OrderAction])
        reason_code = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")
        reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
        prep_minutes = serializers.IntegerField(min_value=1, max_value=240, required=False)
        pickup_code = serializers.RegexField(r"^[A-Za-z0-9]{1,12}$", required=False)

    _PARAMS = {"accept": ("prep_minutes",), "mark_ready": ("pickup_code",)}

    @extend_schema(request=Input, responses=BackofficeOrderDetailOutput, operation_id="backoffice_order_transition")
    def post(self, request, order_no: str):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        action = data.validated_data["action"]
        order = self.get_order(order_no)
        if not self.allowed_for(order, action):
            raise PermissionDenied(_("Your role may not do this."), code="role_not_allowed",
                                   detail={"action": action})
        params = {k: data.validated_data[k] for k in self._PARAMS.get(action, ()) if k in data.validated_data}
        order_transition(
            order_id=order.pk, action=action, actor=Actor.staff(request.user),
            reason_code=data.validated_data["reason_code"], reason=data.validated_data["reason"], **params,
        )
        return self.get(request, order_no)
