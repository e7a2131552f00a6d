"""Order transitions from the admin: buttons for the moves allowed now, one POST handler;
and the link to after-sales' "Refund this order" page (by its URL name: orders never
imports aftersales).

The handler changes nothing itself: it checks the user's role at the order's
store (never a role held elsewhere; orders.permissions.staff_may) and calls
orders.services.order_transition, which takes the row lock, checks the state
machine and writes the event. An order the user cannot see answers 404.
"""

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext_lazy as _

from accounts.admin_base import MANAGERS, SUPERUSER, roles_at
from core.actors import Actor, ActorKind
from core.errors import DomainError
from orders.models import Order, OrderAction, OrderReasonCode, OrderRefundState
from orders.permissions import staff_may
from orders.services import order_transition
from orders.services.core import REFUNDABLE_STATUSES

# Moves that undo an order: a person must say why. (A refund is not an order move of
# staff: after-sales' "Refund this order" page asks and approves it.)
REASON_REQUIRED = frozenset({OrderAction.REJECT.value, OrderAction.CANCEL.value})


def action_label(action: str) -> str:
    try:
        return str(OrderAction(action).label)
    except ValueError:
        return action


def order_transitions_for_user(*, user, order: Order) -> list[dict]:
    """The buttons to show: allowed by the order's machine now AND by the user's role at its store."""
    roles = roles_at(user=user, obj=order)
    # The machine's own wording for its type ("Picked up", "Issue vouchers"), else the action's.
    labels = {t.name: t.custom.get("label") for t in order.as_machine().get_available_status_transitions()}
    return [
        {"action": action, "label": str(labels.get(action) or action_label(action)),
         "needs_reason": action in REASON_REQUIRED}
        for action in order.available_actions(actor_kind=ActorKind.STAFF.value)
        if staff_may(roles=roles, action=action)
    ]


def refund_order_url(*, user, order: Order, admin_site_name: str = "admin") -> str:
    """After-sales' "Refund this order" page of ``order``, for a store manager of its
    store or a brand admin of its brand, when it is an own-channel order with money
    left to give back; "" otherwise (after-sales checks all of it again)."""
    if (order.is_platform_order or order.status not in REFUNDABLE_STATUSES or order.paid_amount <= 0
            or order.refund_state == OrderRefundState.FULL
            or not roles_at(user=user, obj=order) & (MANAGERS | {SUPERUSER})):
        return ""
    try:
        return reverse("admin:aftersales_aftersalesrequest_refund_order", args=[order.pk], current_app=admin_site_name)
    except NoReverseMatch:  # after-sales not installed
        return ""


class TransitionAdminMixin:
    """Adds ``<id>/transition/`` to an order ModelAdmin and the buttons to its change page."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/transition/", self.admin_site.admin_view(self.transition_view),
                 name="%s_%s_transition" % info),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        order = self.get_object(request, unquote(object_id))
        if order is not None and self.has_view_permission(request, order):
            extra_context["transition_buttons"] = order_transitions_for_user(user=request.user, order=order)
            extra_context["transition_url"] = reverse(
                "admin:%s_%s_transition" % (self.opts.app_label, self.opts.model_name),
                args=[order.pk], current_app=self.admin_site.name,
            )
            extra_context["refund_order_url"] = refund_order_url(user=request.user, order=order,
                                                                 admin_site_name=self.admin_site.name)
        return super().change_view(request, object_id, form_url, extra_context)

    def transition_view(self, request, object_id):
        """POST ``action`` (and ``reason`` for the moves that undo an order); CSRF-protected by admin_view."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        order = self.get_object(request, unquote(object_id))
        if order is None or not self.has_view_permission(request, order):
            raise Http404
        change_url = reverse(
            "admin:%s_%s_change" % (self.opts.app_label, self.opts.model_name),
            args=[order.pk], current_app=self.admin_site.name,
        )
        action = request.POST.get("action", "")
        reason = request.POST.get("reason", "").strip()
        label = action_label(action)
        if not staff_may(roles=roles_at(user=request.user, obj=order), action=action):
            messages.error(request, _("Your role may not do “%(action)s” on this order.") % {"action": label})
            return HttpResponseRedirect(change_url)
        if action in REASON_REQUIRED and not reason:
            messages.error(request, _("“%(action)s” needs a reason.") % {"action": label})
            return HttpResponseRedirect(change_url)
        try:
            order = order_transition(
                order_id=order.pk, action=action, actor=Actor.staff(request.user),
                reason_code=OrderReasonCode.STAFF if action in REASON_REQUIRED else "", reason=reason,
                expected_store_id=order.store_id,
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Order %(order_no)s: “%(action)s” done; it is now %(status)s.") % {
                "order_no": order.order_no, "action": label, "status": order.get_status_display(),
            })
        return HttpResponseRedirect(change_url)
