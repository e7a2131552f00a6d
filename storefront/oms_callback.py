"""The OMS's signed callback (``POST /api/v1/fulfilment/oms/callback``): verified
by signature, not by session, and not throttled. Thin: one service, one answer."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core.api import BaseAPIView
from core.schema import error_response
from orders.fulfilment.oms import oms_callback_record

SIGNATURE_HEADERS = (
    ("X-Oms-App-Key", "The OMS's app key."),
    ("X-Oms-Timestamp", "Unix time in seconds; at most 300 s off."),
    ("X-Oms-Nonce", "Random string of the OMS."),
    ("X-Oms-Signature", 'Lowercase hex HMAC-SHA256 (app secret) of timestamp + "\\n" + nonce + "\\n" + body + "\\n".'),
)


class OmsCallbackInput(serializers.Serializer):
    """The report, for the schema: ``orders.fulfilment.oms_client`` parses and checks it
    (after the signature) from the raw bytes the signature covers."""

    event = serializers.ChoiceField(choices=["voucher.redeemed"])
    event_id = serializers.CharField()
    code = serializers.CharField()
    order_no = serializers.CharField()
    store_ref = serializers.CharField(required=False, allow_blank=True, help_text="The OMS shop.")
    redeemed_at = serializers.DateTimeField(help_text="With its UTC offset.")


class OmsCallbackApi(BaseAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    # Authenticated by its signature; the OMS reports redemptions in bursts from few addresses.
    throttle_classes = []

    @extend_schema(
        request=OmsCallbackInput, operation_id="oms_callback",
        parameters=[OpenApiParameter(name, str, OpenApiParameter.HEADER, required=True, description=text)
                    for name, text in SIGNATURE_HEADERS],
        responses={
            200: inline_serializer("OmsCallbackAck", {
                "code": serializers.CharField(), "order_no": serializers.CharField(),
                "status": serializers.CharField(), "codes_left": serializers.IntegerField()}),
            400: error_response("Missing headers, a stale timestamp (`stale_timestamp`) or a malformed report "
                                "(`malformed_callback`)."),
            401: error_response("Bad signature (`bad_signature`)."),
            404: error_response("The code is not that order's (`voucher_not_found`)."),
            409: error_response("The code is void."),
        },
        description="The OMS's signed report of a code redeemed at one of its shops (docs/fulfilment.md): "
                    "verified by its signature over the exact body, not by a session. A replay is answered the same.")
    def post(self, request):
        redemption = oms_callback_record(headers=request.headers, body=request.body)
        return Response({"code": "SUCCESS", "order_no": redemption.order.order_no,
                         "status": redemption.order.status, "codes_left": redemption.codes_left})
