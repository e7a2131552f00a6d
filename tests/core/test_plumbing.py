"""Cross-cutting plumbing: health, request ids, JSON logs, API docs, scheduler, settings."""

import json
import logging
import re

import pytest
from django.conf import settings

import core.health
import core.scheduler
from core.logging import JsonFormatter, RequestIdFilter, request_id_var
from core.models import IdempotencyRecord
from core.scheduler import EmbeddedScheduler

# --- /health/ --------------------------------------------------------------------


@pytest.mark.django_db
def test_health_is_200_when_database_and_cache_answer(client, settings):
    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    # The broker is checked only where one is configured (REDIS_URL), as in CI.
    expected = {"database", "cache"} | ({"broker"} if settings.HEALTH_CHECK_BROKER else set())
    assert set(body["checks"]) == expected
    assert all(check["ok"] is True for check in body["checks"].values())
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cache"]["ok"] is True


@pytest.mark.django_db
def test_health_is_503_and_names_the_broken_check(client, monkeypatch):
    def broken_cache():
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(core.health, "_check_cache", broken_cache)

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"] == {"ok": False, "error": "ConnectionError: cache unreachable"}
    assert body["checks"]["database"]["ok"] is True


# --- request id and JSON logs ---------------------------------------------------------


@pytest.mark.django_db
def test_request_id_from_the_caller_is_echoed(client):
    response = client.get("/health/", headers={"X-Request-ID": "pos-42.retry_1"})

    assert response["X-Request-ID"] == "pos-42.retry_1"


@pytest.mark.django_db
def test_request_id_is_generated_when_missing_or_unsafe(client):
    missing = client.get("/health/")
    unsafe = client.get("/health/", headers={"X-Request-ID": "evil\"value with spaces"})

    assert re.fullmatch(r"[0-9a-f]{32}", missing["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe["X-Request-ID"])
    assert missing["X-Request-ID"] != unsafe["X-Request-ID"]


def test_json_formatter_writes_one_json_object_with_the_request_id():
    record = logging.LogRecord("orders.services", logging.WARNING, __file__, 1, "order %s refused", ("A1",), None)
    record.order_no = "A1"
    token = request_id_var.set("req-123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)

    line = JsonFormatter().format(record)

    payload = json.loads(line)
    assert "\n" not in line
    assert payload["request_id"] == "req-123"
    assert (payload["level"], payload["logger"], payload["message"], payload["order_no"]) == (
        "WARNING", "orders.services", "order A1 refused", "A1")


def test_json_formatter_without_filter_uses_the_current_request_id_and_keeps_chinese():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "宫保鸡丁", (), None)
    token = request_id_var.set("req-9")
    try:
        payload = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)

    assert (payload["request_id"], payload["message"]) == ("req-9", "宫保鸡丁")


# --- OpenAPI schema and Swagger UI ------------------------------------------------------


@pytest.mark.django_db
def test_schema_is_an_openapi_document_with_the_backoffice_paths(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/backoffice/v1/orders",
        "/api/backoffice/v1/orders/{order_no}",
        "/api/backoffice/v1/orders/{order_no}/transitions",
    } <= set(schema["paths"])
    assert list(schema["paths"]["/api/backoffice/v1/orders/{order_no}/transitions"]) == ["post"]
    operation_ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


@pytest.mark.django_db
def test_swagger_ui_loads_nothing_from_an_external_host(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    tags = re.findall(r"<(?:script|link)\b[^>]*>", html, flags=re.IGNORECASE)
    urls = [url for tag in tags for url in re.findall(r"(?:src|href)\s*=\s*[\"']([^\"']+)", tag)]
    assert any("swagger-ui" in url for url in urls)
    assert [url for url in urls if re.match(r"(?:https?:)?//", url)] == []
    assert [url for url in urls if not url.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/")
                                                      else "/" + settings.STATIC_URL)] == []


# --- the embedded scheduler ------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeTask:
    def __init__(self) -> None:
        self.calls = 0

    def apply(self, *, throw):
        self.calls += 1


def test_scheduler_runs_each_due_job_once_per_interval(monkeypatch):
    tasks = {"t.fast": FakeTask(), "t.slow": FakeTask()}
    monkeypatch.setattr(core.scheduler, "_resolve", tasks.__getitem__)
    clock = FakeClock(1000.0)
    scheduler = EmbeddedScheduler(jobs={"fast": {"task": "t.fast", "every": 60},
                                        "slow": {"task": "t.slow", "every": 300}}, clock=clock)

    ran = [scheduler.run_due()]
    clock.now = 1030.0
    ran.append(scheduler.run_due())
    ran.append(scheduler.run_due())
    clock.now = 1060.0
    ran.append(scheduler.run_due())
    clock.now = 1300.0
    ran.append(scheduler.run_due())

    assert ran == [["fast", "slow"], [], [], ["fast"], ["fast", "slow"]]
    assert (tasks["t.fast"].calls, tasks["t.slow"].calls) == (3, 2)


def test_scheduler_failing_job_is_logged_and_does_not_stop_the_others(monkeypatch, caplog):
    class Broken:
        def apply(self, *, throw):
            raise RuntimeError("boom")

    ok = FakeTask()
    monkeypatch.setattr(core.scheduler, "_resolve", {"t.broken": Broken(), "t.ok": ok}.__getitem__)
    scheduler = EmbeddedScheduler(jobs={"broken": {"task": "t.broken", "every": 10},
                                        "ok": {"task": "t.ok", "every": 10}}, clock=FakeClock(5.0))

    with caplog.at_level(logging.ERROR, logger="core.scheduler"):
        ran = scheduler.run_due()

    assert ran == ["ok"]
    assert ok.calls == 1
    assert [r.job for r in caplog.records] == ["broken"]


@pytest.mark.django_db
def test_scheduler_runs_a_real_task_of_the_settings_through_celery():
    IdempotencyRecord.objects.create(credential="user:1", key="k", fingerprint="f")
    job = settings.PERIODIC_JOBS["purge-idempotency-records"]
    scheduler = EmbeddedScheduler(jobs={"purge-idempotency-records": job}, clock=FakeClock(0.0))

    assert scheduler.run_due() == ["purge-idempotency-records"]
    assert scheduler.run_due() == []
    assert IdempotencyRecord.objects.count() == 1  # fresh: kept for at least 24 h


def test_every_periodic_job_names_a_registered_task_and_feeds_beat():
    for name, job in settings.PERIODIC_JOBS.items():
        assert core.scheduler._resolve(job["task"]).name == job["task"], name
        assert float(job["every"]) > 0
    assert {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()} == {
        name: job["task"] for name, job in settings.PERIODIC_JOBS.items()}


# --- settings --------------------------------------------------------------------------


def test_base_settings_are_chinese_and_shanghai_time():
    import config.settings as base

    assert base.LANGUAGE_CODE == "zh-hans"
    assert base.TIME_ZONE == "Asia/Shanghai"
    assert base.USE_TZ is True
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.CELERY_TIMEZONE == "Asia/Shanghai"


def test_deploy_check_warns_while_credentials_are_the_simulators(settings):
    from django.core.checks import run_checks

    def ours():
        return sorted(m.msg for m in run_checks(include_deployment_checks=True) if m.id == "core.W001")

    assert ours() == ["OMS_APP_SECRET is still the simulator's default.",
                      "WXPAY_API_KEY is still the simulator's default."]
    settings.PAYMENT_PROVIDERS = {"wxpay": {**settings.PAYMENT_PROVIDERS["wxpay"], "api_key": "live-key"}}
    settings.OMS = {**settings.OMS, "app_secret": "live-secret"}
    assert ours() == []


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json", "application/json; indent=4", "text/html",
                                    "text/html, */*;q=0.1", "application/*", "image/png"])
@pytest.mark.parametrize("query", ["", "?format=json", "?format=xml"])
def test_json_first_negotiation_picks_what_drf_picks(rf, accept, query):
    """The short cut answers only where DRF's full negotiation gives the same renderer and
    media type; everything else (a 406 included) is DRF's own answer."""
    from django.http import Http404
    from rest_framework.exceptions import NotAcceptable
    from rest_framework.negotiation import DefaultContentNegotiation
    from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
    from rest_framework.request import Request

    from core.negotiation import JSONFirstNegotiation

    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    for renderers in ([JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()], [BrowsableAPIRenderer(),
                                                                                  JSONRenderer()]):
        request = Request(rf.get(f"/api/v1/orders{query}", **headers))
        outcomes = []
        for negotiation in (JSONFirstNegotiation(), DefaultContentNegotiation()):
            try:
                renderer, media_type = negotiation.select_renderer(request, renderers)
                outcomes.append((type(renderer).__name__, media_type))
            except NotAcceptable:
                outcomes.append("406")
            except Http404:  # an unknown ?format=
                outcomes.append("404")
        assert outcomes[0] == outcomes[1], (accept, query, [type(r).__name__ for r in renderers])
    assert settings.REST_FRAMEWORK["DEFAULT_CONTENT_NEGOTIATION_CLASS"] == "core.negotiation.JSONFirstNegotiation"
