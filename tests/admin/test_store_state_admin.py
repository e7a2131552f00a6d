"""The store page of the admin changes mode, busy minutes and hours through the store-state
service: the platforms hear of it like a change from the POS."""

import json

from accounts.store_state import STORE_STATE_TOPIC
from core.models import OutboxMessage

STORES = "/admin/accounts/store/"


def form_of(response) -> dict:
    """The change form's current values, as the browser would post them back."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, (list, dict)):
            data[name] = json.dumps(value)
        else:
            data[name] = value.pk if hasattr(value, "pk") else value
    return data


def test_a_manager_pauses_the_store_and_the_platforms_are_told(login, manager_a, store_a):
    client = login(manager_a)
    page = client.get(f"{STORES}{store_a.pk}/change/")
    data = form_of(page)
    data.update({"mode": "paused", "business_hours": json.dumps(
        [{"weekdays": [1, 2, 3, 4, 5, 6, 7], "open": "10:00", "close": "22:00"}])})

    answer = client.post(f"{STORES}{store_a.pk}/change/", data)

    assert answer.status_code == 302, answer.context["adminform"].form.errors if answer.context else answer
    store_a.refresh_from_db()
    assert (store_a.mode, store_a.business_hours, store_a.channels_open) == (
        "paused", [{"weekdays": [1, 2, 3, 4, 5, 6, 7], "open": "10:00", "close": "22:00"}], False)
    message = OutboxMessage.objects.get(topic=STORE_STATE_TOPIC)
    assert (message.key, message.payload["open"], message.payload["mode"], message.payload["actor_kind"],
            message.payload["actor_id"]) == (f"store-state:{store_a.pk}", False, "paused", "staff",
                                             str(manager_a.pk))


def test_bad_business_hours_are_shown_on_the_form_and_change_nothing(login, manager_a, store_a):
    client = login(manager_a)
    data = form_of(client.get(f"{STORES}{store_a.pk}/change/"))
    data["business_hours"] = json.dumps([{"weekdays": [9], "open": "10:00", "close": "22:00"}])

    answer = client.post(f"{STORES}{store_a.pk}/change/", data)

    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors["business_hours"] == [
        "Period 1: weekdays must be numbers 1 (Monday) to 7 (Sunday)."]
    store_a.refresh_from_db()
    assert store_a.business_hours == []
    assert OutboxMessage.objects.count() == 0


def test_saving_the_page_without_a_state_change_writes_no_message(login, manager_a, store_a):
    client = login(manager_a)
    data = form_of(client.get(f"{STORES}{store_a.pk}/change/"))
    data["default_prep_minutes"] = 25

    answer = client.post(f"{STORES}{store_a.pk}/change/", data)

    assert answer.status_code == 302
    store_a.refresh_from_db()
    assert store_a.default_prep_minutes == 25
    assert OutboxMessage.objects.count() == 0
