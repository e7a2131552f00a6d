"""Admin login lockout (django-axes; docs/security.md, "Abuse limits"): after
AXES_FAILURE_LIMIT failed logins for one user name, or from one address, logins of
that name or from that address are refused for AXES_COOLOFF_MINUTES. Through the real
admin login form.

Tests that need a logged-in user use ``client.force_login`` (no authentication, so no
axes). ``client.login`` would call ``authenticate()`` without a request, which axes
refuses; pass ``request=HttpRequest()`` to it if ever needed."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
HERE, ELSEWHERE = "203.0.113.7", "198.51.100.9"


@pytest.fixture
def staff():
    return UserFactory(username="manager")  # password pass12345


def log_in(username: str, password: str, *, ip: str = HERE, language: str = "en", **headers):
    client = Client(REMOTE_ADDR=ip)
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"},
                       headers={"Accept-Language": language, **headers})


def fail(times: int, *, username: str = "manager", ip: str = HERE, **headers) -> list[int]:
    return [log_in(username, "wrong-password", ip=ip, **headers).status_code for _ in range(times)]


def test_the_fifth_failure_locks_and_then_even_the_right_password_is_refused(staff):
    # when
    answers = fail(5)
    right = log_in("manager", "pass12345")
    # then
    assert answers == [200, 200, 200, 200, 429]  # the form again four times, then the lockout page
    assert right.status_code == 429
    html = right.content.decode()
    assert ('Too many failed logins. Logging in with this user name or from this address is blocked for '
            '15 minutes after the last failed attempt.') in html
    assert 'id="login-locked"' in html
    assert AccessAttempt.objects.get().failures_since_start == 5  # refusals while locked add nothing


def test_four_failures_do_not_lock(staff):
    fail(4)

    assert log_in("manager", "pass12345").status_code == 302


def test_the_user_name_is_locked_from_every_address(staff):
    fail(5, ip=HERE)

    assert log_in("manager", "pass12345", ip=ELSEWHERE).status_code == 429


def test_the_address_is_locked_for_every_user_name(staff):
    # given: five different user names guessed from one address
    for name in ("root", "admin", "boss", "owner", "test"):
        fail(1, username=name)
    # then
    assert log_in("manager", "pass12345").status_code == 429
    assert log_in("manager", "pass12345", ip=ELSEWHERE).status_code == 302


def test_a_forged_forwarded_header_does_not_dodge_the_address_lock(staff):
    # given: no trusted proxy; each guess claims another address
    for n, name in enumerate(("root", "admin", "boss", "owner", "test")):
        fail(1, username=name, X_Forwarded_For=f"10.0.0.{n}")
    # then
    assert log_in("manager", "pass12345", X_Forwarded_For="10.0.0.99").status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {HERE}


def test_the_lock_lifts_after_the_cool_off(staff):
    # given
    fail(5)
    # when: the last failure is 15 minutes and a second old
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=15, seconds=1))
    # then
    assert log_in("manager", "pass12345").status_code == 302


def test_failure_limit_and_cool_off_are_settings(settings, staff):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_MINUTES = 30
    settings.AXES_COOLOFF_TIME = timedelta(minutes=30)

    answers = fail(2)

    assert answers == [200, 429]
    assert "blocked for 30 minutes" in log_in("manager", "pass12345").content.decode()


def test_the_lockout_page_speaks_chinese(staff):
    fail(5)

    response = log_in("manager", "pass12345", language="zh-hans")

    assert response.status_code == 429
    assert "登录失败次数过多" in response.content.decode()
