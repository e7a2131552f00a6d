"""The embedded scheduler: runs settings.PERIODIC_JOBS in-process.

Used when there is no Redis (so no Celery beat). It reads the same job table
that feeds CELERY_BEAT_SCHEDULE and runs each due task inline. Jobs are
idempotent service functions, so overlapping with a real beat does no harm.
Each run is logged by the task itself (config.celery_app: INFO when it did
something, DEBUG when it found nothing); a failing job at ERROR here.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings

from core.jobs import job_task

logger = logging.getLogger(__name__)


def _resolve(task_name: str):
    return job_task(task_name)


class EmbeddedScheduler:
    def __init__(self, jobs: dict[str, dict] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs = jobs if jobs is not None else settings.PERIODIC_JOBS
        self.clock = clock
        self.next_run = {name: 0.0 for name in self.jobs}

    def run_due(self) -> list[str]:
        """Run every job whose time has come; returns the names run."""
        ran = []
        now = self.clock()
        for name, job in self.jobs.items():
            if now < self.next_run[name]:
                continue
            self.next_run[name] = now + float(job["every"])
            try:
                _resolve(job["task"]).apply(throw=True)
                ran.append(name)
            except Exception:
                logger.exception("periodic job failed", extra={"job": name})
        return ran

    def loop(self, *, tick_seconds: float = 1.0, max_ticks: int | None = None,
             stop: threading.Event | None = None) -> None:
        """Run due jobs every ``tick_seconds`` until ``stop`` is set (a job running then finishes first)."""
        stop = stop or threading.Event()
        ticks = 0
        while (max_ticks is None or ticks < max_ticks) and not stop.is_set():
            self.run_due()
            ticks += 1
            stop.wait(tick_seconds)
