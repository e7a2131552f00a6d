"""A store's state on every channel: mode (open / busy + minutes / paused) and business hours.

One state, changed from the admin, the POS (``PATCH /api/pos/v1/store``) and the
workspace through ``store_state_set``. Each change writes one outbox message (topic
``platform.store_state``, key ``store-state:<id>``) in the same transaction; channels
delivers it to every platform the store is bound to, telling what is true *when it
runs* (``core.outbox.outbox_enqueue_latest``: changes made before the relay claims it
ride along), in order, with the relay's retries and dead letters.

``Store.channels_open`` remembers whether the platforms were last told open or closed;
the hours job (``store_hours_sync``, every minute) writes a message when the business
hours open or close a store, and the channels reconcile job repairs platforms whose own
view drifted from ours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import MAX_BUSY_MINUTES, Store, StoreMode
from accounts.store_hours import business_hours_validate
from core.actors import Actor
from core.errors import InvalidInput, NotFound
from core.outbox import outbox_enqueue_latest

logger = logging.getLogger(__name__)

STORE_STATE_TOPIC = "platform.store_state"
SETTABLE_MODES = tuple(StoreMode.values)


def store_state_key(store_id: int) -> str:
    return f"store-state:{store_id}"


@dataclass(frozen=True)
class StoreState:
    """What every channel should show for a store at a moment."""

    store_id: int
    mode: str
    open: bool
    busy_minutes: int
    prep_minutes: int


def store_state_of(store: Store, *, now: datetime) -> StoreState:
    return StoreState(store_id=store.pk, mode=store.mode, open=store.open_at(now), busy_minutes=store.busy_minutes,
                      prep_minutes=store.default_prep_minutes)


def _announce(store: Store, *, now: datetime, why: str, actor: Actor | None) -> None:
    """One coalesced outbox message with the state, and ``channels_open`` recorded (store row locked)."""
    state = store_state_of(store, now=now)
    payload = {"store_id": store.pk, "open": state.open, "mode": state.mode, "busy_minutes": state.busy_minutes,
               "why": why}
    if actor is not None:
        payload.update({"actor_kind": str(actor.kind), "actor_id": actor.id})
    outbox_enqueue_latest(topic=STORE_STATE_TOPIC, key=store_state_key(store.pk), payload=payload,
                          brand_id=store.brand_id)
    if store.channels_open is not state.open:
        store.channels_open = state.open
        Store.objects.filter(pk=store.pk).update(channels_open=state.open)


def store_state_set(*, store_id: int, actor: Actor, mode: str | None = None, busy_minutes: int | None = None,
                    business_hours: list | None = None, now: datetime | None = None) -> Store:
    """Change a store's mode (open / busy / paused / closed for the day), its busy
    minutes and / or its business hours; every bound platform is told (nothing is
    written when nothing changes). Bad values are an InvalidInput and change nothing. The caller has checked the actor's right to the
    store (the admin's roles, the terminal's store)."""
    now = now or timezone.now()
    if mode is not None and mode not in SETTABLE_MODES:
        raise InvalidInput(_("Mode must be open, busy, paused or closed."), code="invalid_mode",
                           detail={"mode": list(SETTABLE_MODES)})
    if busy_minutes is not None and (isinstance(busy_minutes, bool) or not isinstance(busy_minutes, int)
                                     or not 0 <= busy_minutes <= MAX_BUSY_MINUTES):
        raise InvalidInput(_("Busy minutes must be a whole number from 0 to %(max)d.") % {"max": MAX_BUSY_MINUTES},
                           code="invalid_busy_minutes")
    if business_hours is not None:
        try:
            business_hours_validate(business_hours)
        except Exception as exc:  # ValidationError: its message, in the contract's shape
            messages = getattr(exc, "messages", [str(exc)])
            raise InvalidInput(" ".join(messages), code="invalid_business_hours") from None
    with transaction.atomic():
        store = Store.objects.select_for_update().filter(pk=store_id).first()
        if store is None:
            raise NotFound(_("Store not found."), code="store_not_found")
        changed = []
        for field, value in (("mode", mode), ("busy_extra_minutes", busy_minutes),
                             ("business_hours", business_hours)):
            if value is not None and getattr(store, field) != value:
                setattr(store, field, value)
                changed.append(field)
        if not changed:
            return store
        store.save(update_fields=changed)
        _announce(store, now=now, why="changed", actor=actor)
    logger.info("store state changed", extra={"store_id": store.pk, "fields": changed, "mode": store.mode,
                                               "actor_kind": str(actor.kind), "actor_id": actor.id})
    return store


def store_state_announce(*, store_id: int, why: str, now: datetime | None = None) -> bool:
    """Tell the platforms the store's state again (drift found by the reconcile job, a
    new binding). Returns False for an unknown store."""
    now = now or timezone.now()
    with transaction.atomic():
        store = Store.objects.select_for_update().filter(pk=store_id).first()
        if store is None:
            return False
        _announce(store, now=now, why=why, actor=None)
    return True


def store_hours_sync(*, now: datetime | None = None) -> list[int]:
    """The hours job: stores whose business hours (or mode) now say otherwise than what
    the platforms were last told open or close there. Returns their ids. Reads every
    store once (a few columns); writes only for those that cross a boundary."""
    now = now or timezone.now()
    due = [store.pk for store in Store.objects.only("id", "mode", "business_hours", "channels_open")
           if store.channels_open is not store.open_at(now)]  # None (never told): told once
    crossed = []
    for store_id in due:
        with transaction.atomic():
            store = Store.objects.select_for_update().filter(pk=store_id).first()
            if store is None or store.channels_open is store.open_at(now):
                continue  # changed meanwhile
            _announce(store, now=now, why="hours", actor=None)
            crossed.append(store_id)
    if crossed:
        logger.info("business hours opened or closed stores on the platforms", extra={"stores": crossed})
    return crossed
