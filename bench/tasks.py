"""Celery tasks used only by the benchmarks (workers load them with ``-I bench.tasks``)."""

import os

from celery import shared_task

NOOP_COUNTER_KEY = "bench:noop:done"
_clients: dict = {}


def redis_client():
    """A client of the Redis the running bench uses: the benches set REDIS_URL in the
    environment (relay: db 14, pos_e2e: db 13, one after the other in `make bench`),
    so the client is chosen per URL, not cached once."""
    import redis
    from django.conf import settings

    url = os.environ.get("REDIS_URL") or getattr(settings, "REDIS_URL", "")
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


@shared_task(name="bench.noop")
def noop_task() -> None:
    """The relay bench's baseline: a task that does nothing but count itself (one Redis INCR)."""
    redis_client().incr(NOOP_COUNTER_KEY)
