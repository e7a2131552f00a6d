"""/health/: database, cache and (when configured) the broker; nothing external."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

from config.celery_app import app as celery_app


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    token = str(time.monotonic_ns())
    cache.set("health:probe", token, 10)
    if cache.get("health:probe") != token:
        raise RuntimeError("cache did not return what was stored")


def _check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def health_view(request):
    checks = {"database": _check_database, "cache": _check_cache}
    if settings.HEALTH_CHECK_BROKER:
        checks["broker"] = _check_broker
    results, healthy = {}, True
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except Exception as exc:  # a health check reports, it never raises
            healthy = False
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": results}, status=200 if healthy else 503)
