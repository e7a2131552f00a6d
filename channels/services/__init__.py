"""Platform orders in (pull, push, ingest) and status changes out (outbox handlers).

Ingestion is idempotent on (channel, channel order id): the first payload of an
order creates it; every later one (pulled again, pushed, pushed twice, pulled and
pushed at once) finds it and may only move it FORWARD: a platform status the
order has passed, or one it is already in, changes nothing. A line whose SKU we
cannot map is kept (sku empty) and the order flagged for a person; it is never
dropped. Stock is taken with ``allow_shortfall`` (a platform order is already
paid): what is missing is recorded and the order flagged.

``intake``: ingest and pushes; ``pull``: pulls and the beat fan-out; ``sync``:
the outbox handlers that call the platforms back; ``reconcile``: the periodic check
of known open orders; ``store_state``: stores open / closed / busy on the platforms.
"""

from channels.services.intake import (
    IngestResult,
    PullResult,
    binding_create,
    platform_order_ingest,
    platform_push_handle,
)
from channels.services.pull import binding_pull, bindings_schedule_due
from channels.services.reconcile import ReconcileResult, platform_orders_reconcile
from channels.services.store_state import StoreReconcileResult, store_state_deliver, store_states_reconcile
from channels.services.sync import item_availability_deliver, order_action_deliver

__all__ = [
    "IngestResult",
    "PullResult",
    "ReconcileResult",
    "StoreReconcileResult",
    "binding_create",
    "binding_pull",
    "bindings_schedule_due",
    "item_availability_deliver",
    "order_action_deliver",
    "platform_order_ingest",
    "platform_orders_reconcile",
    "platform_push_handle",
    "store_state_deliver",
    "store_states_reconcile",
]
