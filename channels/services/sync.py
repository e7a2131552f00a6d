"""Status changes out: the outbox handlers that tell the platforms."""

from __future__ import annotations

import logging

from aftersales.services import aftersales_platform_confirmed
from channels.adapters import adapter_for
from channels.adapters.base import (
    PlatformRejected,
)
from channels.models import StoreBinding
from channels.selectors import (
    binding_for_store,
    platform_items_for_skus,
)
from core.models import OutboxMessage
from core.outbox import OutboxPermanentError, outbox_memo
from orders.models import OrderAction
from orders.services.sync import REFUND_REJECT

logger = logging.getLogger(__name__)
# --- Outbox handlers: telling the platforms --------------------------------------------------------


def _binding_for_message(*, store_id: int, platform: str) -> StoreBinding | None:
    # Read once per relay round, not once per message (core.outbox.outbox_memo).
    binding = outbox_memo(("binding", store_id, platform),
                          lambda: binding_for_store(store_id=store_id, platform=platform))
    if binding is not None and not binding.enabled:
        raise RuntimeError(f"the {platform} binding of store {store_id} is disabled")  # retried with backoff
    return binding


def order_action_deliver(message: OutboxMessage) -> None:
    """Outbox handler of ``platform.order_action``: one call of the platform's adapter."""
    payload = message.payload
    binding = _binding_for_message(store_id=payload["store_id"], platform=payload["platform"])
    if binding is None:
        # Demo and test orders of stores never bound to the platform: nobody to tell.
        logger.info("no binding for a platform order action; nothing sent", extra={"outbox_id": message.pk})
        return
    adapter = adapter_for(binding.platform)
    order_id = str(payload["channel_order_id"])
    action = payload["action"]
    try:
        if action == OrderAction.ACCEPT:
            adapter.accept(binding, order_id)
        elif action in (OrderAction.REJECT, OrderAction.CANCEL):
            adapter.reject(binding, order_id, reason_code=payload.get("reason_code", ""),
                           reason=payload.get("reason", ""))
        elif action == OrderAction.MARK_READY:
            adapter.meal_ready(binding, order_id)
        elif action == OrderAction.DISPATCH:
            # Own riders; a platform wants a name and a phone, the store's when none was given.
            adapter.dispatch(binding, order_id, courier_name=payload.get("courier_name") or binding.store.name,
                             courier_phone=payload.get("courier_phone") or binding.store.phone or "-")
        elif action == OrderAction.DELIVER:
            adapter.delivered(binding, order_id)
        elif action == OrderAction.PICK_UP:
            # Written before pick_up stopped being synced: the platforms have no call for it.
            logger.info("pick_up is not sent to the platforms; nothing sent", extra={"outbox_id": message.pk})
        elif action == OrderAction.REFUND:
            adapter.refund_agree(binding, order_id, reason=payload.get("reason", ""))
            # The platform took the agree and refunds its customer: the request is refunded.
            aftersales_platform_confirmed(order_no=payload["order_no"])
        elif action == REFUND_REJECT:
            adapter.refund_reject(binding, order_id, reason=payload.get("reason", "") or "rejected")
        else:
            raise OutboxPermanentError(f"unknown platform action {action!r}")
    except PlatformRejected as exc:
        raise OutboxPermanentError(str(exc)) from exc


def item_availability_deliver(message: OutboxMessage) -> None:
    """Outbox handler of ``platform.item_availability``: every enabled binding of the store."""
    payload = message.payload
    for binding in StoreBinding.objects.select_related("store").filter(store_id=payload["store_id"], enabled=True):
        items = platform_items_for_skus(binding=binding, sku_ids=list(payload["sku_ids"]))
        if not items:
            continue
        try:
            adapter_for(binding.platform).set_item_availability(binding, items, available=bool(payload["available"]))
        except PlatformRejected as exc:
            raise OutboxPermanentError(str(exc)) from exc
