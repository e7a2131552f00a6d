"""Celery application. With no REDIS_URL the tasks run inline (eager) instead.

Logging: workers and beat log like the web process (settings.LOGGING: one JSON object
per line, ``LOG_LEVEL``), not in Celery's own format. Celery's line per task run
("received", "succeeded", beat's "Sending due task") is turned down in settings.LOGGING;
instead every task's return value says what it did and ``OrderCenterTask`` logs it:
at INFO when the run did something (a non-zero count, a non-empty list or text, in a
dict any such value), at DEBUG when it found nothing, so a quiet system logs nothing
every second. A failure is still logged by Celery at ERROR.
"""

import logging
import os
from numbers import Number
from typing import Any

from celery import Celery, Task
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger("ordercenter.tasks")


def did_work(result: Any) -> bool:
    """Whether a task's return value reports something done (see the module doc)."""
    if isinstance(result, bool) or result is None:
        return bool(result)
    if isinstance(result, Number):
        return result != 0
    if isinstance(result, str | list | tuple | set):
        return len(result) > 0
    if isinstance(result, dict):
        return any(did_work(value) for value in result.values() if not isinstance(value, bool))
    return True


class OrderCenterTask(Task):
    #: Which keys of the task's dict result count as work (None: all). A pull's "pulled"
    #: is a read, its "created" is work; ``()``: the task only queues others, which log theirs.
    work_keys: tuple[str, ...] | None = None

    def on_success(self, retval, task_id, args, kwargs):
        work = retval
        if self.work_keys is not None:
            work = {key: retval.get(key) for key in self.work_keys} if isinstance(retval, dict) else None
        level = logging.INFO if did_work(work) else logging.DEBUG
        logger.log(level, "task done", extra={"task": self.name, "result": retval})


app = Celery("ordercenter", task_cls=OrderCenterTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _log_like_the_web_process(**kwargs) -> None:
    """Celery's documented hook: with a receiver it leaves logging to us, so the
    worker and beat use settings.LOGGING instead of replacing the root logger's handlers."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
