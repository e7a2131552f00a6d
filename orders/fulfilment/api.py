"""The OMS's signed callback (``POST /api/v1/fulfilment/oms/callback``): verified
by signature, not by session, and not throttled. Thin: one service, one answer."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core.api import BaseAPIView
from orders.fulfilment.oms import oms_callback_record


class OmsCallbackApi(BaseAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    # Authenticated by its signature; the OMS reports redemptions in bursts from few addresses.
    throttle_classes = []

    @extend_schema(request=None, operation_id="oms_callback",
                   responses=inline_serializer("OmsCallbackAck", {
                       "code": serializers.CharField(), "order_no": serializers.CharField(),
                       "status": serializers.CharField(), "codes_left": serializers.IntegerField()}))
    def post(self, request):
        redemption = oms_callback_record(headers=request.headers, body=request.body)
        return Response({"code": "SUCCESS", "order_no": redemption.order.order_no,
                         "status": redemption.order.status, "codes_left": redemption.codes_left})
