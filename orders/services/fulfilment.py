"""Store-side fulfilment rules: auto-accept and the preparation time estimate."""

from accounts.models import Store, StoreMode
from core.actors import Actor
from orders.models import Order, OrderAction, OrderStatus

AUTO_ACCEPT_ACTOR = "auto_accept"


def prep_minutes_for(*, store: Store, requested: int | None = None) -> int:
    """Minutes to prepare an order accepted now. An explicit ``requested`` value
    (the cashier's own estimate) is taken as is; otherwise the store's default,
    plus ``busy_extra_minutes`` while the store is in busy mode."""
    if requested is not None:
        return requested
    minutes = store.default_prep_minutes
    if store.mode == StoreMode.BUSY:
        minutes += store.busy_extra_minutes
    return minutes


def order_auto_accept_if_enabled(*, order: Order) -> Order:
    """Accept a just-delivered order for a store with auto-accept on.

    Precondition: inside the transaction that made the order the store's
    (the ``order.created`` feed row is written), with its row lock held. A store
    that is paused or closed does not auto-accept: a person decides. ``order``
    is brought up to date in memory (status and the accept fields), since the
    caller goes on using it.
    """
    store = Store.objects.only("id", "auto_accept", "mode", "default_prep_minutes", "busy_extra_minutes").get(
        pk=order.store_id
    )
    if (not store.auto_accept or not store.accepts_new_orders or order.status != OrderStatus.PAID
            or order.needs_attention):
        return order  # an order flagged for a person (unknown SKU, wrong total) is a person's call
    from orders.services.core import order_transition  # core calls into feed, which calls us

    accepted = order_transition(order_id=order.pk, action=OrderAction.ACCEPT,
                                actor=Actor.system(AUTO_ACCEPT_ACTOR), prep_minutes=prep_minutes_for(store=store))
    _adopt_state(order, accepted)
    return order


_ACCEPT_FIELDS = ("accepted_at", "prep_minutes", "expected_at", "updated_at")


def _adopt_state(order: Order, fresh: Order) -> None:
    """Copy a newer state of the same row into ``order`` (the status field is
    protected against assignment; the machine's own save saw the new state)."""
    for name in _ACCEPT_FIELDS:
        setattr(order, name, getattr(fresh, name))
    order.__dict__["status"] = fresh.status
    order._update_initial_state()
