"""Pulling platform orders: per-binding pulls and the beat fan-out."""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from channels.adapters import adapter_for
from channels.adapters.base import (
    BindingMismatch,
    PlatformAdapter,
    PlatformError,
    PlatformPayloadError,
    PulledOrder,
)
from channels.models import StoreBinding, UnreadablePlatformOrder
from channels.services.intake import (
    PAGE_FALLBACK_ERRORS,
    PullResult,
    platform_order_ingest,
    platform_orders_ingest_page,
)
from channels.services.walk import WalkAhead
from core.actors import Actor
from core.errors import InvalidInput
from core.jobs import job_enqueue
from orders.models import Order

logger = logging.getLogger(__name__)

# The pull state key under which an adapter hands over what it gave up (Meituan's GIVEN_UP).
GIVEN_UP_KEY = "given_up"
# The Celery task that runs one binding's pull (channels.tasks).
PULL_BINDING_JOB = "channels.pull_binding"

# --- Pulling ------------------------------------------------------------------------------------


def binding_pull_claim(*, binding_id: int) -> str:
    """Take the pull of one enabled binding for ``CHANNELS_PULL_LEASE_SECONDS`` (a
    conditional UPDATE of ``pull_lease_until``): the lease's token, or "" when another
    pull holds it. The pull renews and clears the lease only while it holds this token.

    A lease, not a lock held open: no transaction spans the pull's platform calls,
    and it works through a transaction-mode connection pooler. A pull that dies
    leaves the lease to expire; a pull that outlives it may overlap the next one,
    which only repeats calls (ingestion is idempotent and every pull state written
    is one that pull's own walk justifies). The clock is the real one, whatever
    ``now`` a pull is given."""
    clock = timezone.now()
    token = secrets.token_hex(16)
    claimed = (StoreBinding.objects.filter(pk=binding_id, enabled=True)
               .filter(Q(pull_lease_until__isnull=True) | Q(pull_lease_until__lte=clock))
               .update(pull_lease_until=_lease_end(), pull_lease_token=token))
    return token if claimed else ""


def _lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.CHANNELS_PULL_LEASE_SECONDS)


def binding_pull(*, binding_id: int, now: datetime | None = None) -> PullResult:
    """Pull one binding's new orders and ingest them as they are fetched.

    The platform calls run a few orders ahead in a thread of their own
    (``channels.services.walk``) while the orders already fetched are written: each
    page (what has been fetched by then, at most ``CHANNELS_INGEST_PAGE_ORDERS``)
    commits with the pull state advanced past it (and the lease renewed). The orders
    fetched before a call that fails are written before the pull stops, so an order
    fetched is kept whatever a later call of the same pull does. An order that cannot
    be fetched or ingested stays in the pull state as missing (Meituan) or
    unprocessed (Ele.me) and is tried again by the next pull, while the orders after
    it go on. An overlapping pull of the same binding returns at once (``skipped``).
    """
    now = now or timezone.now()
    result = PullResult(binding_id=binding_id)
    token = binding_pull_claim(binding_id=binding_id)
    if not token:
        result.skipped = True
        return result
    state = None
    try:
        binding = StoreBinding.objects.select_related("store").get(pk=binding_id)
        adapter = adapter_for(binding.platform)
        state = dict(binding.pull_state or {})
        walk = WalkAhead(lambda known: adapter.pull_new_orders(binding, now=now, known=known),
                         known=_known(binding), ahead=2 * settings.CHANNELS_INGEST_PAGE_ORDERS)
        try:
            # A page: what has been fetched within CHANNELS_INGEST_PAGE_WAIT_SECONDS of its
            # first order (a slow platform's orders one by one, a backlog's a page at a time).
            for fetched in walk.pages(size=settings.CHANNELS_INGEST_PAGE_ORDERS,
                                     wait=settings.CHANNELS_INGEST_PAGE_WAIT_SECONDS):
                page: list[PulledOrder] = []
                for pulled in fetched:
                    if pulled.payload is not None and pulled.key is not None:
                        page.append(pulled)
                        continue
                    # The pull state moves past the orders in the order they came.
                    state = _page_ingest(binding=binding, adapter=adapter, state=state, page=page, result=result,
                                         token=token)
                    page = []
                    state = _pulled_ingest(binding=binding, adapter=adapter, state=state, pulled=pulled,
                                           result=result, token=token)
                state = _page_ingest(binding=binding, adapter=adapter, state=state, page=page, result=result,
                                     token=token)
            reconciles = type(adapter).reconcile_orders is not PlatformAdapter.reconcile_orders
            if reconciles and _reconcile_due(state=state, now=now):
                for payload in adapter.reconcile_orders(binding):
                    state = _pulled_ingest(binding=binding, adapter=adapter, state=state,
                                           pulled=PulledOrder(payload=payload), result=result, token=token)
                state["reconciled_at"] = now.isoformat()
        except (PlatformError, PlatformPayloadError) as exc:
            # Raised by the walk after the orders fetched before the failed call: those are written.
            result.errors.append(str(exc))
        finally:
            walk.close()
    finally:
        done = {"pull_lease_until": None, "pull_lease_token": ""}
        if state is not None:
            done.update(pull_state=state, last_pull_at=now, last_error="; ".join(result.errors)[:2000])
        if not StoreBinding.objects.filter(pk=binding_id, pull_lease_token=token).update(**done):
            # Outlived its lease: the next pull holds it now and writes its own state.
            logger.warning("pull outlived its lease; the next pull's lease is left alone",
                           extra={"binding": binding_id})
    return result


def _known(binding: StoreBinding):
    def known(order_ids: list[str]) -> set[str]:
        # This store's orders only: an id known at another store is fetched and refused
        # (and logged) by intake like any other foreign payload.
        return set(Order.objects.filter(store_id=binding.store_id, channel=binding.platform,
                                        channel_order_id__in=order_ids)
                   .values_list("channel_order_id", flat=True))

    return known


def _page_ingest(*, binding: StoreBinding, adapter: PlatformAdapter, state: dict, page: list[PulledOrder],
                 result: PullResult, token: str) -> dict:
    """Ingest a page of fetched orders (``CHANNELS_INGEST_PAGE_ORDERS``) and save the pull
    state past them, in one transaction. A page that cannot be written whole is written
    again one order at a time (``_pulled_ingest``): the order at fault stays missing, the
    others are kept. Returns the pull state to go on with."""
    if len(page) <= 1:
        for pulled in page:
            state = _pulled_ingest(binding=binding, adapter=adapter, state=state, pulled=pulled, result=result,
                                   token=token)
        return state
    try:
        with transaction.atomic():
            ingested = platform_orders_ingest_page(binding=binding, payloads=[pulled.payload for pulled in page])
            after = state
            for pulled in page:
                after = _state_after(adapter, binding=binding, state=after, pulled=pulled, done=True)
            StoreBinding.objects.filter(pk=binding.pk, pull_lease_token=token).update(
                pull_state=after, pull_lease_until=_lease_end())
    except PAGE_FALLBACK_ERRORS as exc:
        logger.info("a page of pulled orders is written one at a time",
                    extra={"binding": binding.pk, "orders": len(page), "error": f"{type(exc).__name__}: {exc}"[:200]})
        for pulled in page:
            state = _pulled_ingest(binding=binding, adapter=adapter, state=state, pulled=pulled, result=result,
                                   token=token)
        return state
    result.pulled += len(page)
    result.created += sum(int(one.created) for one in ingested)
    return after


def _pulled_ingest(*, binding: StoreBinding, adapter: PlatformAdapter, state: dict, pulled: PulledOrder,
                   result: PullResult, token: str) -> dict:
    """Ingest one pulled order and save the pull state past it, in one transaction;
    returns the pull state to go on with (the order kept as missing when it failed)."""
    if pulled.payload is None:
        if pulled.error:
            result.errors.append(pulled.error)
        return _state_after(adapter, binding=binding, state=state, pulled=pulled, done=not pulled.error)
    try:
        with transaction.atomic():
            ingested = platform_order_ingest(binding=binding, payload=pulled.payload)
            after = _state_after(adapter, binding=binding, state=state, pulled=pulled, done=True)
            StoreBinding.objects.filter(pk=binding.pk, pull_lease_token=token).update(
                pull_state=after, pull_lease_until=_lease_end())
    except BindingMismatch as exc:
        # Another shop's order (refused and logged by intake): never ours, so the pull
        # state moves past it instead of asking for it again on every pull.
        result.errors.append(f"{type(exc).__name__}: {exc}")
        return _state_after(adapter, binding=binding, state=state, pulled=pulled, done=True)
    except (PlatformError, PlatformPayloadError, InvalidInput, IntegrityError) as exc:
        logger.exception("platform order could not be ingested", extra={"binding": binding.pk})
        result.errors.append(f"{type(exc).__name__}: {exc}")
        return _state_after(adapter, binding=binding, state=state, pulled=pulled, done=False,
                            error=f"{type(exc).__name__}: {exc}")
    result.pulled += 1
    result.created += int(ingested.created)
    return after


def _state_after(adapter: PlatformAdapter, *, binding: StoreBinding, state: dict, pulled: PulledOrder,
                 done: bool, error: str = "") -> dict:
    if pulled.key is None:
        return state  # not a place in the pull state (a reconciliation payload)
    if error and not pulled.error:
        pulled = replace(pulled, error=error)
    after = dict(adapter.pull_state_after(binding, state=state, pulled=pulled, done=done))
    for given_up in after.pop(GIVEN_UP_KEY, None) or ():
        unreadable_order_record(binding=binding, reference=str(given_up["reference"]),
                                attempts=int(given_up.get("attempts") or 0), error=str(given_up.get("error") or ""))
    return after


def unreadable_order_record(*, binding: StoreBinding, reference: str, attempts: int, error: str) -> None:
    """Hand a platform order the pulls could not ingest to a person (once per reference:
    a repeat updates the attempts and the error, and opens it again if it was resolved)."""
    record, created = UnreadablePlatformOrder.objects.get_or_create(
        binding=binding, reference=reference[:64], defaults={"attempts": attempts, "last_error": error[:2000]})
    if not created:
        UnreadablePlatformOrder.objects.filter(pk=record.pk).update(
            attempts=record.attempts + attempts, last_error=error[:2000], resolved_at=None, resolved_by="")
    logger.error("platform order handed to a person: never ingested",
                 extra={"binding": binding.pk, "reference": reference, "attempts": attempts, "error": error[:200]})


def _reconcile_due(*, state: dict, now: datetime) -> bool:
    last = state.get("reconciled_at")
    if not last:
        return True
    try:
        return now - datetime.fromisoformat(last) >= timedelta(seconds=settings.CHANNELS_RECONCILE_SECONDS)
    except ValueError:
        return True


def bindings_schedule_due(*, now: datetime | None = None, enqueue=None) -> list[int]:
    """Start a pull for every enabled binding whose time has come.

    Each binding is claimed by a conditional UPDATE of ``next_pull_at`` (only if
    it still holds the value we read), so two beats or an overlapping run never
    schedule the same binding twice. A binding due within half a scheduler tick
    counts as due now: the tick's own jitter would otherwise land it a few
    milliseconds early and skip it for a whole tick (a 5 s interval became a 10 s
    period). Returns the ids scheduled.
    """
    now = now or timezone.now()
    tolerance = timedelta(seconds=float(settings.PERIODIC_JOBS["pull-platform-orders"]["every"]) / 2)
    if enqueue is None:
        def enqueue(binding_id: int) -> None:
            job_enqueue(PULL_BINDING_JOB, binding_id=binding_id)

    scheduled = []
    due = StoreBinding.objects.filter(enabled=True, next_pull_at__lte=now + tolerance).values_list(
        "pk", "next_pull_at", "pull_interval_seconds")
    for binding_id, seen, interval in due:
        claimed = StoreBinding.objects.filter(pk=binding_id, next_pull_at=seen).update(
            next_pull_at=now + timedelta(seconds=interval))
        if claimed:
            scheduled.append(binding_id)
    for binding_id in scheduled:
        try:
            enqueue(binding_id)
        except Exception:  # the broker is down: this round is lost, the next one pulls
            logger.warning("pull could not be scheduled", exc_info=True, extra={"binding": binding_id})
    return scheduled


def unreadable_orders_resolve(*, ids: list[int], actor: Actor) -> int:
    """A person handled these platform orders (entered them, or found them not ours):
    marked resolved with who did it. Returns how many were open."""
    return UnreadablePlatformOrder.objects.filter(pk__in=ids, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=f"{actor.kind}:{actor.id} {actor.name}".strip()[:150])
