"""Queueing background jobs by name.

Services never import a ``tasks`` module: the tasks import the services they run, so
a service that queues a job names it (the Celery task name, e.g.
``"orders.payment_refund"``) and ``job_enqueue`` looks the task up in the Celery app's
registry (config.celery_app, the project's one app: Celery's ``current_app`` is
per thread and falls back to a default app in threads that did not create it).
Keyword arguments only, like the services. With no broker
(``CELERY_TASK_ALWAYS_EAGER``) the job runs at once in this process, as ``delay`` does.
"""

import threading
from typing import Any

from celery.app.task import Task

from config.celery_app import app as celery_app


_imported = threading.Event()
_import_lock = threading.Lock()


def jobs_import() -> None:
    """Import every app's ``tasks`` module (Celery's autodiscovery), once per process
    and under a lock: importing them runs django.setup() and the system checks again,
    not something to do on every call, and Celery's autodiscovery returns nothing at
    all to a second thread that asks while the first is still importing."""
    if _imported.is_set():
        return
    with _import_lock:
        if not _imported.is_set():
            celery_app.loader.import_default_modules()
            _imported.set()


def job_task(name: str) -> Task:
    """The task registered under ``name``; the apps' task modules are imported the
    first time a name is not known yet, so a web process that never imported them
    can queue their jobs."""
    tasks = celery_app.tasks
    if name not in tasks:
        jobs_import()
    try:
        return tasks[name]
    except KeyError:
        raise LookupError(f"no background job named {name!r}") from None


def job_enqueue(name: str, /, **kwargs: Any) -> None:
    """Queue the job ``name`` with ``kwargs`` (call it after commit when it reads what
    the transaction wrote: ``transaction.on_commit(lambda: job_enqueue(...))``)."""
    job_task(name).delay(**kwargs)
