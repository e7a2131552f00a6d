"""Test settings: PostgreSQL whenever one is reachable, else SQLite.

Order of preference: DATABASE_URL, then the local default
postgres://postgres@127.0.0.1:5432/ordercenter. When neither answers, the suite
runs on SQLite and the PostgreSQL-only tests (locking, concurrency) are skipped
and listed at the end of the run (see tests/conftest.py).
"""

import os
import tempfile

import environ

LOCAL_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/ordercenter"


def _postgres_reachable(url: str) -> bool:
    try:
        import psycopg

        cfg = environ.Env.db_url_config(url)
        with psycopg.connect(
            dbname="postgres",
            user=cfg.get("USER") or None,
            password=cfg.get("PASSWORD") or None,
            host=cfg.get("HOST") or None,
            port=cfg.get("PORT") or None,
            connect_timeout=2,
        ):
            return True
    except Exception:
        return False


_url = os.environ.get("DATABASE_URL") or LOCAL_POSTGRES_URL
if os.environ.get("TEST_FORCE_SQLITE") != "1" and _postgres_reachable(_url):
    os.environ["DATABASE_URL"] = _url
    TEST_DATABASE_VENDOR = "postgresql"
else:
    os.environ.pop("DATABASE_URL", None)
    TEST_DATABASE_VENDOR = "sqlite"

from config.settings import *  # noqa: E402,F401,F403
from config.settings import DATABASES, OUTBOUND_URL_ALLOWED_HOSTS  # noqa: E402

if TEST_DATABASE_VENDOR == "sqlite":
    # A file, not ":memory:": with an in-memory database Django shares ONE connection
    # between the live server's thread and the test's, and their queries interleave
    # (random failures of the real-HTTP tests). A file gives each thread its own
    # connection with SQLite's own locking, as in the embedded `make run`. One file
    # per test process, so parallel runs never share it.
    _sqlite_test_file = os.path.join(tempfile.gettempdir(), f"ordercenter-test-{os.getpid()}.sqlite3")
    DATABASES["default"]["NAME"] = _sqlite_test_file
    DATABASES["default"]["TEST"] = {"NAME": _sqlite_test_file}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 0

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://localhost/"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
LANGUAGE_CODE = "en"
# The test servers (simulator, HTTP receivers, live server) listen on free ports of 127.0.0.1.
OUTBOUND_URL_ALLOWED_HOSTS = [*OUTBOUND_URL_ALLOWED_HOSTS, "127.0.0.1:*"]
# seed_demo writes the simulator's orders file: never into the checkout from a test.
SIMULATOR_ORDERS_FILE = os.path.join(tempfile.gettempdir(), f"ordercenter-test-sim-orders-{os.getpid()}.json")
