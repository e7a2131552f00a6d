"""Celery tasks used only by the benchmarks (workers load them with ``-I bench.tasks``)."""

import os

from celery import shared_task

NOOP_COUNTER_KEY = "bench:noop:done"
_client = None


def redis_client():
    global _client
    if _client is None:
        import redis
        from django.conf import settings

        _client = redis.Redis.from_url(getattr(settings, "REDIS_URL", "") or os.environ["REDIS_URL"])
    return _client


@shared_task(name="bench.noop")
def noop_task() -> None:
    """The relay bench's baseline: a task that does nothing but count itself (one Redis INCR)."""
    redis_client().incr(NOOP_COUNTER_KEY)
