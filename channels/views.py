"""Push receivers: the platforms call these when they push (pulling works without them).

Each view verifies the push through its adapter (shape, then signature), applies it
through the binding that verified it, and answers in the platform's own shape
(Meituan ``{"data": "ok"}``, Ele.me ``{"message": "ok"}``). A bad signature answers
401; malformed, oversized or stale input 400 (413 for a body past
``CHANNELS_PUSH_MAX_BYTES``); a push about another shop's or store's order 403; a
failure on our side 5xx so the platform pushes again.
"""

import logging
from functools import partial

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from channels.adapters import adapter_for
from channels.adapters.base import BindingMismatch, PlatformError, PlatformPayloadError, PushRejected
from channels.selectors import bindings_for_push
from channels.services import platform_push_handle
from core.errors import InvalidInput

logger = logging.getLogger(__name__)


def _bindings(platform: str, app_id: str, shop_code: str):
    return bindings_for_push(platform=platform, app_id=app_id, shop_code=shop_code)


def _receive(request, *, platform: str) -> JsonResponse:
    adapter = adapter_for(platform)
    if request.method == "GET" and not request.GET:
        status, body = adapter.push_answer(ok=True)  # the platform checking that the URL answers
        return JsonResponse(body, status=status)
    try:
        bindings, event = adapter.verify_push(request, bindings_for=partial(_bindings, platform))
    except PushRejected as exc:
        logger.warning("platform push refused", extra={"platform": platform, "error": str(exc)})
        status, body = adapter.push_answer(ok=False, message=str(exc), status=exc.status)
        return JsonResponse(body, status=status)
    try:
        platform_push_handle(binding=bindings[0], same_credentials=bindings[1:], event=event)
    except BindingMismatch as exc:  # logged with the binding where it was found
        status, body = adapter.push_answer(ok=False, message=str(exc), status=403)
        return JsonResponse(body, status=status)
    except (PlatformPayloadError, InvalidInput) as exc:
        logger.warning("platform push is malformed", extra={"platform": platform, "binding": bindings[0].pk,
                                                             "order_id": event.order_id, "error": str(exc)})
        status, body = adapter.push_answer(ok=False, message=str(exc), status=400)
        return JsonResponse(body, status=status)
    except PlatformError as exc:
        logger.warning("platform push could not be applied yet", extra={"platform": platform, "error": str(exc)})
        status, body = adapter.push_answer(ok=False, message=str(exc), status=503)
        return JsonResponse(body, status=status)
    status, body = adapter.push_answer(ok=True)
    return JsonResponse(body, status=status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def meituan_push_view(request, path: str) -> JsonResponse:
    return _receive(request, platform="meituan")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def eleme_push_view(request) -> JsonResponse:
    return _receive(request, platform="eleme")
