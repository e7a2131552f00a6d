import os

import pytest
from django.conf import settings



_skipped_postgres_only: list[str] = []


def _on_postgres() -> bool:
    return getattr(settings, "TEST_DATABASE_VENDOR", "sqlite") == "postgresql"


def pytest_configure(config):
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        from django.conf import settings as dj_settings

        if getattr(dj_settings, "TEST_DATABASE_VENDOR", None) != "postgresql":
            raise pytest.UsageError("REQUIRE_POSTGRES=1 but no PostgreSQL is reachable (check DATABASE_URL)")


def pytest_collection_modifyitems(config, items):
    if _on_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks / concurrent transactions); none reachable")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)
            _skipped_postgres_only.append(item.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    vendor = getattr(settings, "TEST_DATABASE_VENDOR", "?")
    terminalreporter.write_sep("-", f"database: {vendor}")
    if _skipped_postgres_only:
        terminalreporter.write_line(
            f"No PostgreSQL reachable: skipped {len(_skipped_postgres_only)} PostgreSQL-only test(s):"
        )
        for nodeid in _skipped_postgres_only:
            terminalreporter.write_line(f"  SKIPPED (PostgreSQL only) {nodeid}")


def pytest_unconfigure(config):
    """The SQLite test database is a file of this process (config/settings_test.py): remove it."""
    from django.conf import settings

    if getattr(settings, "TEST_DATABASE_VENDOR", "") == "sqlite":
        name = settings.DATABASES["default"]["TEST"]["NAME"]
        for path in (name, f"{name}-wal", f"{name}-shm", f"{name}-journal"):
            if os.path.exists(path):
                os.remove(path)
