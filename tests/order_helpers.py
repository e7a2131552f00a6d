"""Building orders in tests through the real services."""

from decimal import Decimal

from core.actors import Actor
from orders.services import LineInput, order_create, order_transition
from orders.services.acceptance import order_auto_accept_if_enabled


def make_order(*, store, order_type="pickup", channel="miniapp", paid=False, lines=None, **kwargs):
    lines = lines or [LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2)]
    order = order_create(store=store, channel=channel, order_type=order_type, lines=lines,
                         actor=Actor.system("test"), paid=paid, **kwargs)
    # Created paid (a platform order): the store's to handle, as the platform intake does.
    return order_auto_accept_if_enabled(order=order) if paid else order


# Who normally triggers each action.
DEFAULT_ACTOR_KIND = {"pay": "payment", "issue": "system", "complete": "system"}


def walk(order, *actions, actor_kind=None):
    """Apply actions in turn (each by its usual actor unless one is given). "refund" is a
    person's whole-order refund: an after-sales request by the store's manager, approved."""
    for action in actions:
        if action == "refund" and actor_kind is None:
            order = staff_refund(order)
            continue
        kind = actor_kind or DEFAULT_ACTOR_KIND.get(action, "staff")
        order = order_transition(order_id=order.pk, action=action, actor=Actor(kind=kind, id="t"))
        if action == "pay":  # paid: the store's to handle, as the payment confirmation does
            order = order_auto_accept_if_enabled(order=order)
    return order


def transitions_url(order) -> str:
    """The back-office transition endpoint of one order."""
    return f"/api/backoffice/v1/orders/{order.order_no}/transitions"


def staff_client(client, *, store, role):
    """``client`` logged in as a new staff member with ``role`` in ``store``."""
    from tests.factories import MembershipFactory

    membership = MembershipFactory(brand=store.brand, store=None if role == "brand_admin" else store, role=role)
    client.force_login(membership.user)
    return client


def staff_refund(order):
    """The admin's "Refund this order": a whole-order request by the store's manager, approved.
    Returns the order as it is afterwards."""
    from accounts.models import StaffRole
    from aftersales.services import aftersales_approve, aftersales_request_create
    from orders.models import Order
    from tests.factories import staff_user

    manager = Actor.staff(staff_user(role=StaffRole.STORE_MANAGER, store=order.store))
    request = aftersales_request_create(order_id=order.pk, actor=manager, reason_code="store_error", reason="退款")
    aftersales_approve(request_id=request.pk, actor=manager)
    return Order.objects.get(pk=order.pk)
