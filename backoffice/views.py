"""Back-office pages: the status map, and the merchant workspace beside the admin.

The workspace: server-rendered templates made lively with htmx (django-htmx; htmx itself is
served from django-htmx's static files, nothing from a CDN). Every page is scoped like the
admin (a store outside the user's scope is not found) and each action re-checks the user's
role *at that store* (``accounts.selectors.roles_for_store``) before the same services the POS
uses run.
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.models import StaffRole, Store, StoreMode
from accounts.selectors import roles_for_store, roles_for_user
from accounts.store_state import store_state_set
from backoffice.board import board_for_store
from backoffice.selectors import workspace_failed_call, workspace_order, workspace_store, workspace_stores
from core.actors import Actor
from core.errors import DomainError, NotFound
from core.outbox import outbox_retry
from orders.permissions import staff_may
from orders.services import order_transition
from orders.status_map_render import refund_state_rows, status_map_rows


@staff_member_required
def status_map_view(request):
    """The status mapping table and the refund states, for everyone who works in the back-office."""
    return render(request, "backoffice/status_map.html", {"rows": status_map_rows(), "refund_rows": refund_state_rows(),
                                                          "title": _("Status mapping table")})


# --- the merchant workspace ------------------------------------------------------

# Who may switch the store's mode from the board: everyone who works the pass (as any POS
# terminal may), and who may put a platform call that failed for good back in line.
MODE_ROLES = {StaffRole.CLERK, StaffRole.STORE_MANAGER, StaffRole.BRAND_ADMIN, "superuser"}
RETRY_ROLES = {StaffRole.STORE_MANAGER, StaffRole.BRAND_ADMIN, "superuser"}
REJECT_REASONS = (("sold_out", gettext_lazy("Sold out")), ("store_busy", gettext_lazy("Too busy")),
                  ("store_closed", gettext_lazy("Closed")), ("other", gettext_lazy("Other")))


def _stores(request):
    return workspace_stores(user=request.user)


def _store(request, store_id) -> Store:
    try:
        return workspace_store(user=request.user, store_id=store_id)
    except NotFound:
        raise Http404(_("Store not found.")) from None


def _roles(request, store: Store) -> frozenset[str]:
    return roles_for_store(user=request.user, store_id=store.pk, brand_id=store.brand_id)


@staff_member_required
@require_GET
def workspace_home(request):
    """Where ``/`` and a login land: a store's people on their board; HQ on the admin until the
    dashboard exists."""
    roles = roles_for_user(user=request.user)
    if roles & {StaffRole.CLERK, StaffRole.STORE_MANAGER} and _stores(request).exists():
        return redirect("workspace:board")
    return redirect("admin:index")


@staff_member_required
@require_GET
def board_view(request):
    stores = list(_stores(request)[:500])
    if not stores:
        raise Http404(_("You have no store."))
    store = _store(request, request.GET.get("store")) if request.GET.get("store") else stores[0]
    return render(request, "workspace/board.html", {
        **_board_context(request, store), "stores": stores, "title": _("Order board"),
    })


def _board_context(request, store: Store, *, error: str = "") -> dict:
    roles = _roles(request, store)
    return {"board": board_for_store(store=store, roles=roles, now=timezone.now()), "store": store,
            "may_switch_mode": bool(roles & MODE_ROLES), "may_retry": bool(roles & RETRY_ROLES),
            "modes": [(StoreMode.OPEN, _("Open")), (StoreMode.BUSY, _("Busy")), (StoreMode.PAUSED, _("Paused"))],
            "reject_reasons": REJECT_REASONS, "prep_choices": (10, 15, 20, 30, 45), "error": error,
            "open_now": store.open_at(timezone.now())}


def _columns(request, store: Store, *, error: str = "") -> HttpResponse:
    return render(request, "workspace/_board_columns.html", _board_context(request, store, error=error))


@staff_member_required
@require_GET
def board_columns_view(request, store_id: int):
    """The columns alone: what the board's poll (every 2 s) swaps in."""
    return _columns(request, _store(request, store_id))


@staff_member_required
@require_POST
def board_action_view(request, store_id: int, order_no: str):
    """Accept (prep minutes), reject (reason), ready, dispatch, deliver / picked up / served:
    ``orders.services.order_transition`` as staff, after the role check at this store."""
    store = _store(request, store_id)
    try:
        order = workspace_order(store=store, order_no=order_no)
    except NotFound:
        raise Http404(_("Order not found.")) from None
    action = request.POST.get("action", "")
    error = ""
    if not staff_may(roles=_roles(request, store), action=action):
        error = _("Your role may not do this.")
    else:
        params = {}
        if action == "accept" and request.POST.get("prep_minutes", "").isdigit():
            params["prep_minutes"] = max(1, min(240, int(request.POST["prep_minutes"])))
        if action == "reject":
            params["reason_code"] = request.POST.get("reason_code") or "other"
            params["reason"] = (request.POST.get("reason") or "").strip()[:255]
            if params["reason_code"] not in dict(REJECT_REASONS):
                error = _("Choose a reason.")
        if not error:
            try:
                order_transition(order_id=order.pk, action=action, actor=Actor.staff(request.user), **params)
            except DomainError as exc:
                error = str(exc.message)
    if not request.htmx:
        return redirect(f"{reverse('workspace:board')}?store={store.pk}")
    return _columns(request, store, error=error)


@staff_member_required
@require_POST
def board_retry_view(request, store_id: int, message_id: int):
    """A platform call that failed for good, back in line (managers)."""
    store = _store(request, store_id)
    error = ""
    try:
        message = workspace_failed_call(store=store, message_id=message_id)
    except NotFound:
        raise Http404(_("Message not found.")) from None
    if not _roles(request, store) & RETRY_ROLES:
        error = _("Your role may not do this.")
    else:
        outbox_retry(message_ids=[message.pk])
    if not request.htmx:
        return redirect(f"{reverse('workspace:board')}?store={store.pk}")
    return _columns(request, store, error=error)


@staff_member_required
@require_POST
def store_mode_view(request, store_id: int):
    """Open / busy (+ minutes) / paused from the board: ``accounts.store_state.store_state_set``,
    which tells every platform the store is bound to."""
    store = _store(request, store_id)
    error = ""
    if not _roles(request, store) & MODE_ROLES:
        error = _("Your role may not do this.")
    else:
        minutes = request.POST.get("busy_minutes", "")
        try:
            store = store_state_set(store_id=store.pk, actor=Actor.staff(request.user),
                                    mode=request.POST.get("mode") or None,
                                    busy_minutes=int(minutes) if minutes.isdigit() else None)
        except DomainError as exc:
            error = str(exc.message)
    if not request.htmx:
        return redirect(f"{reverse('workspace:board')}?store={store.pk}")
    return _columns(request, store, error=error)
