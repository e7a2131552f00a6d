"""core.cache: Django's Redis cache backend with one client per connection pool."""

from core.cache import RedisCache


def test_the_redis_client_is_built_once_per_pool_not_per_call():
    cache = RedisCache("redis://127.0.0.1:6379/13", {})  # no connection is made

    first = cache._cache.get_client("k", write=True)

    assert cache._cache.get_client("other", write=False) is first
