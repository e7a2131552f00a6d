"""A store's mode and business hours: one state, changed from the admin, the POS and services;
own channels refuse orders while paused or closed by the hours; the hours job."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Store, StoreMode
from accounts.store_hours import business_hours_validate, hours_next_opening, hours_open_at
from accounts.store_state import STORE_STATE_TOPIC, store_hours_sync, store_state_set
from core.actors import Actor
from core.errors import InvalidInput
from core.models import OutboxMessage, OutboxStatus
from orders.models import Order
from tests.factories import StoreFactory, pos_terminal
from tests.orders.conftest import api, customer, shop  # noqa: F401 (the order tests' shop and customer)
from tests.pos.conftest import token_client

SHANGHAI = ZoneInfo("Asia/Shanghai")
PERSON = Actor(kind="staff", id="7")
# Monday to Friday 10:00-14:00 and 17:00-02:00 (through midnight); Saturday and Sunday 09:00-22:00.
HOURS = [{"weekdays": [1, 2, 3, 4, 5], "open": "10:00", "close": "14:00"},
         {"weekdays": [1, 2, 3, 4, 5], "open": "17:00", "close": "02:00"},
         {"weekdays": [6, 7], "open": "09:00", "close": "22:00"}]


def at(text: str) -> datetime:
    """Local Shanghai time; 2026-12-07 is a Monday."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def state_messages(store):
    return [(m.payload["open"], m.payload["mode"], m.payload["busy_minutes"], m.payload["why"])
            for m in OutboxMessage.objects.filter(topic=STORE_STATE_TOPIC, key=f"store-state:{store.pk}").order_by("pk")]


def claimed():
    OutboxMessage.objects.filter(status=OutboxStatus.PENDING).update(attempts=1)


# --- hours ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("moment", "open_now"), [
    ("2026-12-07 09:59", False), ("2026-12-07 10:00", True), ("2026-12-07 13:59", True),
    ("2026-12-07 14:00", False), ("2026-12-07 17:00", True), ("2026-12-07 23:59", True),
    ("2026-12-08 01:59", True),   # Monday night's period, on Tuesday
    ("2026-12-08 02:00", False),
    ("2026-12-12 08:59", False),  # Saturday
    ("2026-12-12 09:00", True),
    ("2026-12-12 01:00", True),   # Friday night's period runs into Saturday
    ("2026-12-13 01:00", False),  # Saturday's period ends at 22:00
])
def test_business_hours_open_at(moment, open_now):
    assert hours_open_at(HOURS, at(moment)) is open_now


@pytest.mark.parametrize(("moment", "next_opening"), [
    ("2026-12-07 08:00", "2026-12-07 10:00"),
    ("2026-12-07 15:00", "2026-12-07 17:00"),
    ("2026-12-08 03:00", "2026-12-08 10:00"),
    ("2026-12-12 23:00", "2026-12-13 09:00"),
    ("2026-12-13 22:30", "2026-12-14 10:00"),
])
def test_business_hours_next_opening(moment, next_opening):
    assert hours_next_opening(HOURS, at(moment)) == at(next_opening)


def test_no_hours_means_always_open():
    assert hours_open_at([], at("2026-12-07 04:00")) is True
    assert hours_next_opening([], at("2026-12-07 04:00")) is None


@pytest.mark.parametrize(("hours", "message"), [
    ({"open": "10:00"}, "Business hours must be a list of periods."),
    ([{"weekdays": [1], "open": "10:00"}], 'Period 1 must have exactly "weekdays", "open" and "close".'),
    ([{"weekdays": [0], "open": "10:00", "close": "11:00"}],
     "Period 1: weekdays must be numbers 1 (Monday) to 7 (Sunday)."),
    ([{"weekdays": [True], "open": "10:00", "close": "11:00"}],
     "Period 1: weekdays must be numbers 1 (Monday) to 7 (Sunday)."),
    ([{"weekdays": [1], "open": "9:00", "close": "11:00"}], 'Period 1: "open" must be a time HH:MM.'),
    ([{"weekdays": [1], "open": "10:00", "close": "25:00"}], 'Period 1: "close" must be a time HH:MM.'),
    ([{"weekdays": [1], "open": "10:00", "close": "10:00"}], "Period 1 opens and closes at the same time."),
    ([{"weekdays": [1], "open": "24:00", "close": "10:00"}], "Period 1 cannot open at 24:00."),
])
def test_bad_business_hours_are_refused_with_a_reason(hours, message):
    with pytest.raises(ValidationError) as caught:
        business_hours_validate(hours)
    assert caught.value.messages == [message]


def test_a_period_may_close_at_24_00():
    business_hours_validate([{"weekdays": [1], "open": "18:00", "close": "24:00"}])
    assert hours_open_at([{"weekdays": [1], "open": "18:00", "close": "24:00"}], at("2026-12-07 23:59")) is True
    assert hours_open_at([{"weekdays": [1], "open": "18:00", "close": "24:00"}], at("2026-12-08 00:00")) is False


# --- the service ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_change_writes_one_message_and_nothing_when_nothing_changes():
    store = StoreFactory(busy_extra_minutes=15)

    store_state_set(store_id=store.pk, actor=PERSON, mode=StoreMode.BUSY, busy_minutes=20)
    store_state_set(store_id=store.pk, actor=PERSON, mode=StoreMode.BUSY, busy_minutes=20)

    store.refresh_from_db()
    assert (store.mode, store.busy_extra_minutes, store.channels_open) == ("busy", 20, True)
    assert state_messages(store) == [(True, "busy", 20, "changed")]
    message = OutboxMessage.objects.get(topic=STORE_STATE_TOPIC)
    assert (message.brand_id, message.payload["actor_kind"], message.payload["actor_id"]) == (
        store.brand_id, "staff", "7")


@pytest.mark.django_db
def test_changes_before_the_relay_claims_ride_in_one_message():
    store = StoreFactory()
    store_state_set(store_id=store.pk, actor=PERSON, mode=StoreMode.PAUSED)
    store_state_set(store_id=store.pk, actor=PERSON, mode=StoreMode.OPEN)
    assert len(state_messages(store)) == 1
    claimed()
    store_state_set(store_id=store.pk, actor=PERSON, mode=StoreMode.PAUSED)
    assert [m[:2] for m in state_messages(store)] == [(False, "paused"), (False, "paused")]
    store.refresh_from_db()
    assert store.channels_open is False


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "code"), [
    ({"mode": "sleeping"}, "invalid_mode"),
    ({"busy_minutes": -1}, "invalid_busy_minutes"),
    ({"busy_minutes": 121}, "invalid_busy_minutes"),
    ({"busy_minutes": True}, "invalid_busy_minutes"),
    ({"business_hours": [{"weekdays": [8], "open": "10:00", "close": "11:00"}]}, "invalid_business_hours"),
])
def test_bad_changes_are_refused_and_change_nothing(change, code):
    store = StoreFactory(mode=StoreMode.OPEN, busy_extra_minutes=15, business_hours=[])
    with pytest.raises(InvalidInput) as caught:
        store_state_set(store_id=store.pk, actor=PERSON, **change)
    assert caught.value.code == code
    store.refresh_from_db()
    assert (store.mode, store.busy_extra_minutes, store.business_hours, store.channels_open) == ("open", 15, [], None)
    assert OutboxMessage.objects.count() == 0


@pytest.mark.django_db
def test_the_hours_job_opens_and_closes_at_the_boundaries():
    store = StoreFactory(business_hours=HOURS)
    always = StoreFactory(business_hours=[])

    assert store_hours_sync(now=at("2026-12-07 09:00")) == [store.pk, always.pk]  # never told: told once
    claimed()
    assert store_hours_sync(now=at("2026-12-07 09:59")) == []
    assert store_hours_sync(now=at("2026-12-07 10:00")) == [store.pk]
    claimed()
    assert store_hours_sync(now=at("2026-12-07 13:00")) == []
    assert store_hours_sync(now=at("2026-12-07 14:00")) == [store.pk]

    assert state_messages(store) == [(False, "open", 0, "hours"), (True, "open", 0, "hours"),
                                     (False, "open", 0, "hours")]
    assert state_messages(always) == [(True, "open", 0, "hours")]
    store.refresh_from_db()
    assert store.channels_open is False


@pytest.mark.django_db
def test_a_paused_store_stays_closed_whatever_the_hours_say():
    store = StoreFactory(business_hours=HOURS, mode=StoreMode.PAUSED, channels_open=False)
    assert store_hours_sync(now=at("2026-12-07 10:00")) == []
    assert store.next_opening_at(at("2026-12-07 08:00")) is None


# --- own channels -----------------------------------------------------------------------------------


def cart(shop):
    return {"store": shop["store"].pk, "order_type": "pickup", "lines": [{"sku": "RICE", "qty": 1}]}


def test_a_paused_store_refuses_own_channel_orders_and_says_so(api, shop):
    store_state_set(store_id=shop["store"].pk, actor=PERSON, mode=StoreMode.PAUSED)

    answer = api.post("/api/v1/orders", cart(shop), format="json")

    assert answer.status_code == 409
    assert answer.json()["error"] == {"code": "store_not_accepting_orders",
                                      "message": "The store has paused taking orders.",
                                      "detail": {"store_mode": "paused", "open_now": False, "next_opening_at": None}}
    assert Order.objects.count() == 0


def test_outside_business_hours_the_answer_and_the_menu_name_the_next_opening(api, shop, monkeypatch):
    store_state_set(store_id=shop["store"].pk, actor=PERSON, business_hours=HOURS)
    monkeypatch.setattr(timezone, "now", lambda: at("2026-12-07 15:30"))  # Monday, between the two periods

    answer = api.post("/api/v1/orders", cart(shop), format="json")
    menu = api.get(f"/api/v1/stores/{shop['store'].pk}/menu").json()["store"]

    assert answer.status_code == 409
    assert answer.json()["error"] == {
        "code": "store_not_accepting_orders",
        "message": "The store is closed now; it opens again at 2026-12-07 17:00.",
        "detail": {"store_mode": "open", "open_now": False, "next_opening_at": "2026-12-07T17:00:00+08:00"}}
    assert (menu["accepting_orders"], menu["next_opening_at"], menu["busy_minutes"]) == (
        False, "2026-12-07T17:00:00+08:00", 0)
    assert menu["business_hours"] == HOURS
    assert Order.objects.count() == 0


def test_within_business_hours_orders_go_through(api, shop, monkeypatch):
    store_state_set(store_id=shop["store"].pk, actor=PERSON, business_hours=HOURS, mode=StoreMode.BUSY)
    monkeypatch.setattr(timezone, "now", lambda: at("2026-12-07 18:30"))

    answer = api.post("/api/v1/orders", cart(shop), format="json")
    menu = api.get(f"/api/v1/stores/{shop['store'].pk}/menu").json()["store"]

    assert answer.status_code == 201
    assert (menu["accepting_orders"], menu["next_opening_at"], menu["mode"], menu["busy_minutes"]) == (
        True, None, "busy", shop["store"].busy_extra_minutes)


# --- the POS ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pos_reads_and_changes_the_store_state():
    store = StoreFactory(busy_extra_minutes=15, business_hours=[])
    other = StoreFactory(brand=store.brand)
    _terminal, token = pos_terminal(store=store, role="cashier", name="Counter")
    pos = token_client(token)

    before = pos.get("/api/pos/v1/store")
    busy = pos.patch("/api/pos/v1/store", {"mode": "busy", "busy_minutes": 20}, format="json")
    paused = pos.patch("/api/pos/v1/store", {"mode": "paused"}, format="json")

    assert before.json() == {"mode": "open", "busy_minutes": 15, "open_now": True, "next_opening_at": None,
                             "business_hours": []}
    assert busy.json() == {"mode": "busy", "busy_minutes": 20, "open_now": True, "next_opening_at": None,
                           "business_hours": []}
    assert paused.json() == {"mode": "paused", "busy_minutes": 20, "open_now": False, "next_opening_at": None,
                             "business_hours": []}
    assert state_messages(store) == [(True, "busy", 20, "changed")]  # coalesced: delivered as paused
    assert OutboxMessage.objects.get().payload["actor_kind"] == "pos"
    other.refresh_from_db()
    assert other.mode == "open"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"mode": "closed_forever"}, {"busy_minutes": 500}, {"busy_minutes": "x"},
                                  {"mode": "closed"}])
def test_pos_bad_store_changes_are_400_and_change_nothing(body):
    store = StoreFactory(busy_extra_minutes=15)
    _terminal, token = pos_terminal(store=store, role="cashier", name="Counter")

    answer = token_client(token).patch("/api/pos/v1/store", body, format="json")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_input"
    store.refresh_from_db()
    assert (store.mode, store.busy_extra_minutes) == ("open", 15)
    assert OutboxMessage.objects.count() == 0
    assert Store.objects.filter(channels_open__isnull=False).count() == 0
