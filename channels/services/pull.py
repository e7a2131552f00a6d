"""Pulling platform orders: per-binding pulls and the beat fan-out."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from channels.adapters import adapter_for
from channels.adapters.base import (
    BindingMismatch,
    PlatformAdapter,
    PlatformError,
    PlatformPayloadError,
)
from channels.models import StoreBinding
from channels.services.intake import PullResult, platform_order_ingest
from core.errors import InvalidInput

logger = logging.getLogger(__name__)

# --- Pulling ------------------------------------------------------------------------------------


def binding_pull(*, binding_id: int, now: datetime | None = None) -> PullResult:
    """Pull one binding's new orders and ingest them.

    The binding row is taken with ``SELECT ... FOR UPDATE SKIP LOCKED`` for the
    whole pull, so an overlapping pull of the same binding returns at once
    (``skipped``). Orders and the advanced pull state commit together; each
    order is ingested in its own savepoint, and a Meituan pull stops advancing
    at the first order it could not ingest, so none is skipped.
    """
    now = now or timezone.now()
    result = PullResult(binding_id=binding_id)
    with transaction.atomic():
        binding = (StoreBinding.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("store").filter(pk=binding_id, enabled=True).first())
        if binding is None:
            result.skipped = True
            return result
        adapter = adapter_for(binding.platform)
        state = dict(binding.pull_state or {})
        payloads: list[dict] = []
        try:
            payloads = adapter.pull_new_orders(binding, now=now)
            reconciles = type(adapter).reconcile_orders is not PlatformAdapter.reconcile_orders
            if reconciles and _reconcile_due(binding, state=state, now=now):
                payloads += adapter.reconcile_orders(binding)
                state["reconciled_at"] = now.isoformat()
        except (PlatformError, PlatformPayloadError) as exc:
            result.errors.append(str(exc))
        for payload in payloads:
            try:
                with transaction.atomic():
                    ingested = platform_order_ingest(binding=binding, payload=payload)
            except BindingMismatch as exc:  # another shop's order (logged): never ours, nothing to wait for
                result.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            except (PlatformError, PlatformPayloadError, InvalidInput, IntegrityError) as exc:
                logger.exception("platform order could not be ingested", extra={"binding": binding.pk})
                result.errors.append(f"{type(exc).__name__}: {exc}")
                if binding.platform == "meituan":
                    break  # the day_seq cursor must not pass an order we do not have
                continue
            result.pulled += 1
            result.created += int(ingested.created)
            state = adapter.pull_state_after(binding, state=state, payload=payload)
        StoreBinding.objects.filter(pk=binding.pk).update(
            pull_state=state, last_pull_at=now, last_error="; ".join(result.errors)[:2000],
        )
    return result


def _reconcile_due(binding: StoreBinding, *, state: dict, now: datetime) -> bool:
    every = int(getattr(settings, "CHANNELS_RECONCILE_SECONDS", 300))
    last = state.get("reconciled_at")
    if not last:
        return True
    try:
        return now - datetime.fromisoformat(last) >= timedelta(seconds=every)
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
        from channels.tasks import pull_binding_task

        def enqueue(binding_id: int) -> None:
            pull_binding_task.delay(binding_id=binding_id)

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
