"""Status changes out: the outbox handlers that tell the platforms."""

from __future__ import annotations

import logging

from aftersales.services import aftersales_platform_confirmed
from catalog.selectors import store_skus_on_sale
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
    """Outbox handler of ``platform.item_availability``: every enabled binding of the store
    is told what is true *now* (sold out by hand, or out of stock, or on sale), read under
    the StoreSku row locks after the claim (``core.outbox.outbox_enqueue_latest``), so
    messages coalesced while stock flipped still end with the right state. The payload's
    ``available`` is what was true when it was written (for the admin and the logs)."""
    payload = message.payload
    sku_ids = [int(sku_id) for sku_id in payload["sku_ids"]]
    # A SKU with no StoreSku row was never sold out by hand nor out of stock: on sale.
    on_sale = {sku_id: True for sku_id in sku_ids} | store_skus_on_sale(
        store_id=payload["store_id"], sku_ids=sku_ids)
    for binding in StoreBinding.objects.select_related("store").filter(store_id=payload["store_id"], enabled=True):
        items = platform_items_for_skus(binding=binding, sku_ids=sorted(on_sale))
        adapter = adapter_for(binding.platform)
        for available in (False, True):
            chosen = [item for item in items if on_sale[item["sku_id"]] is available]
            if not chosen:
                continue
            try:
                adapter.set_item_availability(binding, chosen, available=available)
            except PlatformRejected as exc:
                raise OutboxPermanentError(str(exc)) from exc
