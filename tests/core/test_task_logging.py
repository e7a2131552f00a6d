"""Tasks log what they did: at INFO when a run did something, at DEBUG when it found nothing,
so a quiet system logs nothing every second (config.celery_app.OrderCenterTask)."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery_app import did_work
from core.models import IdempotencyRecord
from core.scheduler import EmbeddedScheduler
from core.tasks import purge_idempotency_records_task


class FrozenClock:
    def __call__(self) -> float:
        return 0.0


def task_lines(caplog) -> list[tuple[int, str, object]]:
    return [(r.levelno, r.task, r.result) for r in caplog.records if r.name == "ordercenter.tasks"]


@pytest.mark.parametrize(("result", "expected"), [
    (0, False), (3, True), ("", False), ("R123", True), (None, False), ([], False), (["x"], True),
    ({"delivered": 0, "failed": 0}, False), ({"delivered": 0, "failed": 1}, True),
    ({"pulled": 0, "created": 0, "errors": [], "skipped": True}, False),
    ({"checked": 0, "changed": 0, "errors": ["1: PlatformRejected"]}, True),
])
def test_a_result_did_work_when_it_holds_a_non_zero_count_or_something_non_empty(result, expected):
    assert did_work(result) is expected


@pytest.mark.django_db
def test_a_run_that_found_nothing_logs_at_debug_and_one_that_did_work_at_info(caplog):
    with caplog.at_level(logging.DEBUG, logger="ordercenter.tasks"):
        purge_idempotency_records_task.apply()
        IdempotencyRecord.objects.create(credential="user:1", key="k", fingerprint="f")
        IdempotencyRecord.objects.filter(key="k").update(created_at=timezone.now() - timedelta(days=30))
        purge_idempotency_records_task.apply()

    assert task_lines(caplog) == [(logging.DEBUG, "core.purge_idempotency_records", 0),
                                  (logging.INFO, "core.purge_idempotency_records", 1)]


@pytest.mark.django_db
def test_a_pull_that_only_read_known_orders_is_not_work(caplog):
    from channels.tasks import pull_binding_task, schedule_due_pulls_task

    assert pull_binding_task.work_keys == ("created", "errors")
    with caplog.at_level(logging.DEBUG, logger="ordercenter.tasks"):
        pull_binding_task.on_success({"pulled": 3, "created": 0, "errors": [], "skipped": False}, "t1", (1,), {})
        pull_binding_task.on_success({"pulled": 3, "created": 1, "errors": [], "skipped": False}, "t2", (1,), {})
        schedule_due_pulls_task.on_success(6, "t3", (), {})

    assert [(level, task) for level, task, _result in task_lines(caplog)] == [
        (logging.DEBUG, "channels.pull_binding"), (logging.INFO, "channels.pull_binding"),
        (logging.DEBUG, "channels.schedule_due_pulls")]


@pytest.fixture
def task_modules_imported():
    """Importing the task modules the first time runs django.setup(), which configures logging
    again (and so drops pytest's capture handler): do it before the test body."""
    from core.jobs import jobs_import

    jobs_import()


@pytest.mark.django_db
def test_every_periodic_job_run_on_a_quiet_system_logs_nothing_at_info(task_modules_imported, caplog):
    scheduler = EmbeddedScheduler(jobs=settings.PERIODIC_JOBS, clock=FrozenClock())

    with caplog.at_level(logging.DEBUG):
        ran = scheduler.run_due()

    assert ran == list(settings.PERIODIC_JOBS)
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO] == []
    assert sorted(task for level, task, _result in task_lines(caplog) if level == logging.DEBUG) == sorted(
        job["task"] for job in settings.PERIODIC_JOBS.values())


@pytest.mark.django_db
def test_an_eager_task_on_the_in_memory_broker_logs_no_kombu_warning(caplog):
    from kombu import Connection

    with caplog.at_level(logging.WARNING):
        purge_idempotency_records_task.delay()
        Connection(settings.CELERY_BROKER_URL)._info()
        clean = [r.getMessage() for r in caplog.records]
        Connection("memory://")._info()  # the old default: no host name

    assert settings.CELERY_BROKER_URL == "memory://localhost/"
    assert clean == []
    assert [r.getMessage() for r in caplog.records] == ["No hostname was supplied. Reverting to default 'localhost'"]
