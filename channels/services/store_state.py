"""A store's open / closed / busy state on the platforms: the outbox handler that tells
them, and the reconcile job that compares their view with ours and repairs drift.

The state itself belongs to accounts (``accounts.store_state``); this module only speaks
to the platforms through the adapters.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import Store
from accounts.store_state import store_state_announce, store_state_key, store_state_of
from channels.adapters import adapter_for
from channels.adapters.base import PlatformError, PlatformPayloadError, PlatformRejected
from channels.models import StoreBinding
from core.models import OutboxMessage, OutboxStatus
from core.outbox import OutboxPermanentError

logger = logging.getLogger(__name__)


def store_state_deliver(message: OutboxMessage) -> None:
    """Outbox handler of ``platform.store_state``: every enabled binding of the store is
    told what is true *now* (read under the store row's lock after the claim, so a
    change coalesced into this message is not lost): open or closed, and on Ele.me the
    busy minutes. A platform refusing is a dead letter a person sees; anything else is
    retried with backoff."""
    store_id = message.payload["store_id"]
    with transaction.atomic():
        store = Store.objects.select_for_update().filter(pk=store_id).first()
        if store is None:
            return
        state = store_state_of(store, now=timezone.now())
    for binding in StoreBinding.objects.select_related("store").filter(store_id=store_id, enabled=True):
        try:
            adapter_for(binding.platform).set_store_state(binding, open=state.open, busy_minutes=state.busy_minutes,
                                                          prep_minutes=state.prep_minutes)
        except PlatformRejected as exc:
            raise OutboxPermanentError(str(exc)) from exc


@dataclass
class StoreReconcileResult:
    checked: int = 0
    drifted: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def store_states_reconcile() -> StoreReconcileResult:
    """Ask each platform whether our bound shops are open (one call per set of
    credentials: ``poi/mget``, ``eleme.shop.mgetShopStatus``) and, where its answer
    differs from what we last told it (``Store.channels_open``, which the hours job keeps
    equal to what the mode and hours say), tell it again (one coalesced store-state
    message; the handler sends what is true then). Stores with a state message still
    pending, or never told, are not judged; nor a shop the platform leaves out of its
    answer. A platform that cannot answer is logged and left for the next round."""
    result = StoreReconcileResult()
    now = timezone.now()
    groups: dict[tuple, list[StoreBinding]] = defaultdict(list)
    bindings = list(StoreBinding.objects.select_related("store").filter(enabled=True).order_by("pk"))
    # A store whose state message is still on its way is not judged: the platform has not
    # been told yet (an hours boundary, a change a second ago). Nor one never told.
    in_flight = set(OutboxMessage.objects.filter(
        status=OutboxStatus.PENDING, key__in=sorted({store_state_key(b.store_id) for b in bindings}))
        .values_list("key", flat=True))
    for binding in bindings:
        if binding.store.channels_open is None or store_state_key(binding.store_id) in in_flight:
            continue
        groups[(binding.platform, binding.base_url, binding.app_id, binding.secret, binding.token)].append(binding)
    for (platform, *_credentials), bindings in groups.items():
        try:
            seen = adapter_for(platform).shops_open(bindings[0], [binding.shop_code for binding in bindings])
        except (PlatformError, PlatformPayloadError) as exc:
            logger.warning("store status could not be read from a platform",
                           extra={"platform": platform, "bindings": [b.pk for b in bindings], "error": str(exc)})
            result.errors.append(f"{platform}: {exc}"[:300])
            continue
        for binding in bindings:
            if binding.shop_code not in seen:
                continue
            result.checked += 1
            ours = binding.store.channels_open  # what we told it (the hours job keeps that current)
            if seen[binding.shop_code] is not ours:
                result.drifted.append({"binding": binding.pk, "store": binding.store_id, "platform": platform,
                                       "platform_open": seen[binding.shop_code], "open": ours})
                store_state_announce(store_id=binding.store_id, why="drift", now=now)
    if result.drifted:
        logger.warning("platforms' store status drifted from ours; told again", extra={"drifted": result.drifted})
    return result
