"""core.postgres: a kept connection that served a request without an error less than
HEALTH_CHECK_BYPASS_SECONDS ago skips Django's health check (SELECT 1); an older one, or
one after an error, is checked as before, and a connection the server dropped while idle is
replaced without the request noticing."""

import time
from unittest import mock

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conn():
    """The default connection, kept between requests (CONN_MAX_AGE 600) as in production."""
    wrapper = connections["default"]
    saved = {key: wrapper.settings_dict[key] for key in ("CONN_MAX_AGE", "HEALTH_CHECK_BYPASS_SECONDS")}
    wrapper.close()
    wrapper.settings_dict["CONN_MAX_AGE"] = 600
    wrapper.settings_dict["HEALTH_CHECK_BYPASS_SECONDS"] = 0.5
    yield wrapper
    wrapper.close()
    wrapper.settings_dict.update(saved)


def _request(conn, sql="SELECT 1"):
    """One request as Django's handler runs it: close_old_connections at its start and end."""
    close_old_connections()
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()
    finally:
        close_old_connections()


def _backend_pid(conn) -> int:
    return conn.connection.info.backend_pid


def test_the_backend_is_in_use_with_its_window():
    assert settings.DATABASES["default"]["ENGINE"] == "core.postgres"
    assert connections["default"].settings_dict["HEALTH_CHECK_BYPASS_SECONDS"] == 0.5
    assert connections["default"].settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_connection_that_just_served_a_request_is_not_checked_again(conn):
    _request(conn)  # connects: a new connection needs no check
    with mock.patch.object(conn, "is_usable", wraps=conn.is_usable) as checked:
        assert _request(conn) == (1,)
        assert _request(conn) == (1,)
    assert checked.call_count == 0


def test_a_connection_idle_longer_than_the_window_is_checked(conn):
    conn.settings_dict["HEALTH_CHECK_BYPASS_SECONDS"] = 0.05
    _request(conn)
    time.sleep(0.1)
    with mock.patch.object(conn, "is_usable", wraps=conn.is_usable) as checked:
        _request(conn)
    assert checked.call_count == 1


def test_without_a_window_every_request_is_checked(conn):
    conn.settings_dict["HEALTH_CHECK_BYPASS_SECONDS"] = 0
    _request(conn)
    with mock.patch.object(conn, "is_usable", wraps=conn.is_usable) as checked:
        _request(conn)
        _request(conn)
    assert checked.call_count == 2


def test_after_an_error_the_connection_is_checked_as_django_checks_it(conn):
    _request(conn)
    with mock.patch.object(conn, "is_usable", wraps=conn.is_usable) as checked:
        with pytest.raises(DatabaseError):
            _request(conn, "SELECT * FROM no_such_table")
        assert checked.call_count == 1  # Django's check at the end of the failed request
        assert _request(conn) == (1,)
        assert checked.call_count == 1  # just checked: not again


def test_a_connection_dropped_while_idle_is_replaced_unnoticed(conn):
    conn.settings_dict["HEALTH_CHECK_BYPASS_SECONDS"] = 0.05
    _request(conn)
    old_pid = _backend_pid(conn)
    time.sleep(0.1)
    params = conn.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    time.sleep(0.05)
    assert _request(conn) == (1,)
    assert _backend_pid(conn) != old_pid
