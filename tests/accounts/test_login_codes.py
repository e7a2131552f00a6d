"""Customer login codes: guesses counted atomically in the database, a code consumed
once, sending limited per phone and per client address (docs/security.md, "Abuse limits")."""

import random
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Customer, CustomerToken, LoginCode, LoginCodeAttempt, StaffRole
from accounts.services import (
    LoginCodesLimited,
    LoginFailed,
    Rate,
    customer_login_start,
    customer_login_verify,
    login_codes_purge,
    rate_parse,
)
from tests.factories import BrandFactory, staff_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 20 s into a minute, an hour and a Shanghai day that end 40 s, 3580 s and 53980 s later.
NOW = datetime(2026, 12, 1, 9, 0, 20, tzinfo=SHANGHAI)
PHONE = "13800001234"


@pytest.fixture(autouse=True)
def fresh_cache():
    """Sending limits and DRF throttles count in the cache: start and leave it empty."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def brand(db):
    return BrandFactory(code="tea")


def start(brand, *, phone=PHONE, ip="203.0.113.7", now=NOW) -> str:
    return customer_login_start(brand_code=brand.code, phone=phone, ip=ip, now=now)


def verify(brand, code, *, phone=PHONE, now=NOW):
    return customer_login_verify(brand_code=brand.code, phone=phone, code=code, ip="203.0.113.7", now=now)


def wrong_codes(right: str, count: int) -> list[str]:
    return [f"{n:06d}" for n in range(count + 1) if f"{n:06d}" != right][:count]


def attempts_recorded(login_code) -> list[tuple[int, bool]]:
    return list(LoginCodeAttempt.objects.filter(login_code=login_code).order_by("number")
                .values_list("number", "correct"))


# --- guessing -------------------------------------------------------------------------


def test_the_right_code_gives_a_token_once_and_every_guess_is_recorded(brand):
    # given
    code = start(brand)
    # when
    with pytest.raises(LoginFailed):
        verify(brand, wrong_codes(code, 1)[0])
    issued = verify(brand, code)
    with pytest.raises(LoginFailed):
        verify(brand, code)  # consumed
    # then
    row = LoginCode.objects.get()
    assert issued.customer == Customer.objects.get(brand=brand, phone=PHONE)
    assert CustomerToken.objects.filter(customer=issued.customer).count() == 1
    assert row.attempts == 3
    assert row.used_at == NOW
    assert attempts_recorded(row) == [(1, False), (2, True), (3, True)]
    assert code not in row.code_hash and len(row.code_hash) == 64


def test_after_five_wrong_guesses_the_right_code_is_not_even_compared(brand):
    # given
    code = start(brand)
    for guess in wrong_codes(code, 5):
        with pytest.raises(LoginFailed):
            verify(brand, guess)
    # when
    with pytest.raises(LoginFailed):
        verify(brand, code)
    # then
    row = LoginCode.objects.get()
    assert row.attempts == 5
    assert row.used_at is None
    assert attempts_recorded(row) == [(1, False), (2, False), (3, False), (4, False), (5, False)]
    assert CustomerToken.objects.count() == 0


def test_an_expired_code_is_refused_without_taking_an_attempt(brand):
    code = start(brand)

    with pytest.raises(LoginFailed):
        verify(brand, code, now=NOW + timedelta(seconds=300))

    assert LoginCode.objects.get().attempts == 0
    assert verify(brand, code, now=NOW + timedelta(seconds=299)).customer.phone == PHONE


def test_only_the_newest_code_of_a_phone_counts(brand):
    first = start(brand)
    second = start(brand, now=NOW + timedelta(seconds=60))

    if first != second:
        with pytest.raises(LoginFailed):
            verify(brand, first, now=NOW + timedelta(seconds=61))
    issued = verify(brand, second, now=NOW + timedelta(seconds=62))

    assert issued.customer.phone == PHONE
    assert LoginCode.objects.order_by("id").values_list("used_at", flat=True)[1] == NOW + timedelta(seconds=62)


def test_a_phone_without_a_code_fails_like_a_wrong_code(brand):
    with pytest.raises(LoginFailed) as failed:
        verify(brand, "123456")

    assert failed.value.code == "login_failed"
    assert failed.value.status_code == 401


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_guesses_the_right_one_wins_only_within_the_first_five_attempts():
    # given: a code, 49 wrong guesses and the right one at a random place, each on its own connection
    brand = BrandFactory(code="race")
    code = customer_login_start(brand_code=brand.code, phone=PHONE)
    right_at = random.randrange(50)
    guesses = wrong_codes(code, 49)
    guesses.insert(right_at, code)
    ready = threading.Barrier(50)
    outcomes: list[str | None] = [None] * 50
    errors: list[BaseException] = []

    def guess(i: int) -> None:
        try:
            connection.ensure_connection()
            ready.wait(timeout=60)
            try:
                customer_login_verify(brand_code=brand.code, phone=PHONE, code=guesses[i], ip="203.0.113.7")
                outcomes[i] = "accepted"
            except LoginFailed:
                outcomes[i] = "refused"
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(50)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: the database gave exactly five slots, numbered 1 to 5
    assert errors == []
    row = LoginCode.objects.get()
    recorded = attempts_recorded(row)
    assert [number for number, _correct in recorded] == [1, 2, 3, 4, 5]
    right_slot = [number for number, correct in recorded if correct]
    # the right guess was accepted exactly when it got one of those slots
    if right_slot:
        assert outcomes[right_at] == "accepted", right_slot
        assert outcomes.count("accepted") == 1
        assert CustomerToken.objects.count() == 1
    else:
        assert outcomes[right_at] == "refused"
        assert outcomes.count("accepted") == 0
        assert CustomerToken.objects.count() == 0
    assert outcomes.count("refused") == 50 - outcomes.count("accepted")
    assert row.attempts == 5


# --- sending limits ---------------------------------------------------------------------


def test_rates_are_read_as_count_per_period():
    assert rate_parse("1/minute") == Rate(count=1, seconds=60)
    assert rate_parse("10/day") == Rate(count=10, seconds=86400)
    assert rate_parse("20/h") == Rate(count=20, seconds=3600)
    with pytest.raises(ValueError):
        rate_parse("ten/day")


def test_one_code_a_minute_per_phone(brand):
    # given
    start(brand)
    # when
    with pytest.raises(LoginCodesLimited) as limited:
        start(brand, now=NOW + timedelta(seconds=39))
    # then
    assert limited.value.retry_after == 1
    assert limited.value.detail == {"scope": "phone", "retry_after": 1}
    assert LoginCode.objects.count() == 1
    start(brand, now=NOW + timedelta(seconds=40))  # the next minute
    start(brand, phone="13800009999", now=NOW + timedelta(seconds=40))  # another phone
    assert LoginCode.objects.count() == 3


def test_ten_codes_a_day_per_phone(brand):
    # given: ten codes, a minute apart, from ten addresses
    for n in range(10):
        start(brand, ip=f"203.0.113.{n}", now=NOW + timedelta(minutes=n))
    # when
    with pytest.raises(LoginCodesLimited) as limited:
        start(brand, ip="203.0.113.99", now=NOW + timedelta(minutes=10))
    # then
    assert limited.value.detail == {"scope": "phone", "retry_after": 53980 - 600}
    assert LoginCode.objects.count() == 10
    start(brand, now=datetime(2026, 12, 2, 0, 0, 0, tzinfo=SHANGHAI))  # the next day in Shanghai
    assert LoginCode.objects.count() == 11


def test_twenty_codes_an_hour_per_address(brand):
    # given
    for n in range(20):
        start(brand, phone=f"1380000{n:04d}", now=NOW + timedelta(seconds=n))
    # when
    with pytest.raises(LoginCodesLimited) as limited:
        start(brand, phone="13900000000", now=NOW + timedelta(seconds=20))
    # then
    assert limited.value.detail == {"scope": "ip", "retry_after": 3560}
    start(brand, phone="13900000000", ip="198.51.100.1", now=NOW + timedelta(seconds=21))  # another address
    assert LoginCode.objects.count() == 21


def test_a_refused_send_counts_against_no_limit(brand):
    # given: the address is at its limit
    for n in range(20):
        start(brand, phone=f"1380000{n:04d}", now=NOW)
    with pytest.raises(LoginCodesLimited):
        start(brand, phone="13900000000", now=NOW)
    # when: the same phone from another address, in the same minute
    start(brand, phone="13900000000", ip="198.51.100.1", now=NOW)
    # then
    assert LoginCode.objects.filter(phone="13900000000").count() == 1


def test_limits_are_settings(settings, brand):
    settings.LOGIN_CODE_PHONE_RATES = ["3/hour"]
    settings.LOGIN_CODE_IP_RATES = []

    for n in range(3):
        start(brand, now=NOW + timedelta(seconds=n))
    with pytest.raises(LoginCodesLimited) as limited:
        start(brand, now=NOW + timedelta(seconds=3))

    assert limited.value.detail == {"scope": "phone", "retry_after": 3577}


# --- over HTTP ----------------------------------------------------------------------------


def test_the_api_answers_429_throttled_with_retry_after(settings, monkeypatch, brand):
    # given: the clock at NOW and one code sent
    settings.CUSTOMER_OTP_DEV_ECHO = True
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    client = APIClient()
    body = {"brand": "tea", "phone": PHONE}
    assert client.post("/api/v1/auth/code", body, format="json").status_code == 200
    # when
    response = client.post("/api/v1/auth/code", body, format="json", headers={"Accept-Language": "en"})
    # then
    assert response.status_code == 429
    assert response["Retry-After"] == "40"
    assert response.json() == {"error": {
        "code": "throttled",
        "message": "Too many verification codes for this phone number. Try again in 40 seconds.",
        "detail": {}}}
    assert LoginCode.objects.count() == 1


def test_the_api_limits_by_the_client_address_not_a_forged_header(settings, monkeypatch, brand):
    # given: no trusted proxy; twenty codes sent from one address, each with another forged header
    settings.LOGIN_CODE_PHONE_RATES = []
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    client = APIClient(REMOTE_ADDR="203.0.113.50")
    for n in range(20):
        response = client.post("/api/v1/auth/code", {"brand": "tea", "phone": f"1380000{n:04d}"}, format="json",
                               HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        assert response.status_code == 200
    # when
    response = client.post("/api/v1/auth/code", {"brand": "tea", "phone": "13900000000"}, format="json",
                           HTTP_X_FORWARDED_FOR="10.0.0.99")
    # then
    assert response.status_code == 429
    assert response["Retry-After"] == "3580"
    assert set(LoginCode.objects.values_list("sent_to_ip", flat=True)) == {"203.0.113.50"}


def test_the_token_api_records_the_guessing_address(settings, brand):
    settings.CUSTOMER_OTP_DEV_ECHO = True
    client = APIClient(REMOTE_ADDR="203.0.113.51")
    code = client.post("/api/v1/auth/code", {"brand": "tea", "phone": PHONE}, format="json").json()["dev_code"]

    issued = client.post("/api/v1/auth/token", {"brand": "tea", "phone": PHONE, "code": code}, format="json")

    assert issued.status_code == 201
    assert list(LoginCodeAttempt.objects.values_list("number", "correct", "ip")) == [(1, True, "203.0.113.51")]


# --- housekeeping -------------------------------------------------------------------------


def test_codes_are_purged_a_day_after_they_expire(brand):
    old = start(brand)
    verify(brand, old)
    start(brand, now=NOW + timedelta(days=1))

    assert login_codes_purge(now=NOW + timedelta(days=1, seconds=301)) == 1

    assert list(LoginCode.objects.values_list("created_at", flat=True)) == [NOW + timedelta(days=1)]
    assert LoginCodeAttempt.objects.count() == 0


def test_brand_admins_read_their_brands_codes_masked_and_without_the_hash(client, brand):
    # given: codes of this brand (one guessed wrong) and one of another brand
    start(brand)
    other = BrandFactory(code="coffee")
    start(other, phone="13900001111")
    guessed = start(brand, phone="13700002222")
    with pytest.raises(LoginFailed):
        verify(brand, wrong_codes(guessed, 1)[0], phone="13700002222")
    client.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=brand, username="hq"))
    # when
    codes = client.get("/admin/accounts/logincode/")
    attempts = client.get("/admin/accounts/logincodeattempt/")
    # then
    html = codes.content.decode()
    assert codes.status_code == 200
    assert "138****1234" in html and "137****2222" in html
    assert "139****1111" not in html and PHONE not in html
    assert "code_hash" not in html
    assert attempts.status_code == 200
    assert "137****2222" in attempts.content.decode()
    assert client.get(f"/admin/accounts/logincode/{LoginCode.objects.filter(brand=other).get().pk}/change/"
                      ).status_code in (302, 404)
