"""Push receivers: the platforms call these when they push (pulling works without them).

Each view verifies the platform's signature through its adapter, applies the
push, and answers in the platform's own shape (Meituan ``{"data": "ok"}``,
Ele.me ``{"message": "ok"}``). A bad signature answers 401, malformed or stale
input 400; a failure on our side answers 5xx so the platform pushes again.
"""

import logging
from functools import partial

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from channels.adapters import adapter_for
from channels.adapters.base import PlatformError, PlatformPayloadError, PushRejected
from channels.selectors import binding_for_push
from channels.services import platform_push_handle

logger = logging.getLogger(__name__)


def _find_binding(platform: str, app_id: str, shop_code: str):
    return binding_for_push(platform=platform, app_id=app_id, shop_code=shop_code)


def _receive(request, *, platform: str) -> JsonResponse:
    adapter = adapter_for(platform)
    if request.method == "GET" and not request.GET:
        status, body = adapter.push_answer(ok=True)  # the platform checking that the URL answers
        return JsonResponse(body, status=status)
    try:
        binding, event = adapter.verify_push(request, bindings_by_app_id=partial(_find_binding, platform))
    except PushRejected as exc:
        logger.warning("platform push refused", extra={"platform": platform, "error": str(exc)})
        status, body = adapter.push_answer(ok=False, message=str(exc), status=exc.status)
        return JsonResponse(body, status=status)
    try:
        platform_push_handle(binding=binding, event=event)
    except PlatformPayloadError as exc:
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
