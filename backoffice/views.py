"""Back-office pages: the status map, and the merchant workspace beside the admin.

The workspace: server-rendered templates made lively with htmx (django-htmx; htmx itself is
served from django-htmx's static files, nothing from a CDN). Every page is scoped like the
admin (a store outside the user's scope is not found) and each action re-checks the user's
role *at that store* (``accounts.selectors.roles_for_store``) before the same services the POS
uses run.
"""

from __future__ import annotations

import datetime

from django import forms
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.models import StaffRole, Store, StoreMode, mask_phone
from accounts.selectors import roles_for_store, roles_for_user, scope_for_user
from accounts.store_state import store_state_set
from backoffice.board import board_for_store, board_version
from backoffice.dashboard import MAX_DAYS, DashboardFilter, dashboard_figures
from backoffice.exports import XLSX_TYPE, csv_stream, order_columns, order_rows, summary_columns, summary_rows, xlsx_bytes
from aftersales.services import aftersales_approve, aftersales_goods_received, aftersales_reject
from backoffice.selectors import (
    SKU_STATES,
    workspace_after_sales,
    workspace_after_sales_request,
    workspace_failed_call,
    workspace_order,
    workspace_order_page,
    workspace_orders_search,
    workspace_store,
    workspace_store_skus,
    workspace_stores,
)
from catalog.services import store_sku_set_availability
from core.actors import Actor, ActorKind
from core.errors import DomainError, NotFound
from core.outbox import outbox_retry
from orders.models import Channel
from orders.permissions import staff_may
from orders.services import order_transition
from orders.status_map import status_label
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
MODES = ((StoreMode.OPEN, gettext_lazy("Open")), (StoreMode.BUSY, gettext_lazy("Busy")),
         (StoreMode.PAUSED, gettext_lazy("Paused")))
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
    """Where ``/`` and a login land: a store's people on their board; HQ (brand admins, platform
    operators) on the dashboard; someone with no store on the admin."""
    roles = roles_for_user(user=request.user)
    if not _stores(request).exists():
        return redirect("admin:index")
    if roles & {StaffRole.BRAND_ADMIN, "superuser"}:
        return redirect("workspace:dashboard")
    return redirect("workspace:board")


@staff_member_required
@require_GET
def board_view(request):
    stores = list(_stores(request)[:500])
    if not stores:
        raise Http404(_("You have no store."))
    store = _store(request, request.GET.get("store")) if request.GET.get("store") else stores[0]
    return render(request, "workspace/board.html", {
        **_board_context(request, store), "stores": stores, "title": _("Order board"), "nav": "board",
    })


def _board_context(request, store: Store, *, error: str = "") -> dict:
    roles = _roles(request, store)
    return {"board": board_for_store(store=store, roles=roles, now=timezone.now()), "store": store,
            "version": board_version(store=store),
            "may_switch_mode": bool(roles & MODE_ROLES), "may_retry": bool(roles & RETRY_ROLES),
            "modes": MODES,
            "reject_reasons": REJECT_REASONS, "error": error,
            "prep_choices": [(m, _("%(minutes)s min") % {"minutes": m}) for m in (10, 15, 20, 30, 45)],
            "open_now": store.open_at(timezone.now())}


def _columns(request, store: Store, *, error: str = "") -> HttpResponse:
    return render(request, "workspace/_board_columns.html", _board_context(request, store, error=error))


@staff_member_required
@require_GET
def board_columns_view(request, store_id: int):
    """The columns alone: what the board's poll (every second) swaps in. The poll sends the
    version it shows (``v``); when nothing changed the answer is 204 and htmx keeps the page
    (two queries instead of the whole board)."""
    store = _store(request, store_id)
    if request.GET.get("v") and request.GET["v"] == board_version(store=store):
        return HttpResponse(status=204)
    return _columns(request, store)


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
        back = request.POST.get("next", "")
        if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return redirect(back)
        return redirect(f"{reverse('workspace:board')}?store={store.pk}")
    return _columns(request, store, error=error)


# --- store controls: mode, business hours, sold out -------------------------------------

WEEKDAYS = ((1, gettext_lazy("Mon")), (2, gettext_lazy("Tue")), (3, gettext_lazy("Wed")), (4, gettext_lazy("Thu")),
            (5, gettext_lazy("Fri")), (6, gettext_lazy("Sat")), (7, gettext_lazy("Sun")))
HOURS_ROWS = 6  # periods the form offers (empty rows are ignored)


def _hours_rows(hours: list[dict]) -> list[dict]:
    rows = [{"weekdays": set(p["weekdays"]), "open": p["open"], "close": p["close"]} for p in hours]
    return rows + [{"weekdays": set(), "open": "", "close": ""}] * max(0, HOURS_ROWS - len(rows))


def _hours_from_post(post) -> list[dict]:
    periods = []
    for index in range(HOURS_ROWS):
        days = sorted(int(d) for d in post.getlist(f"weekdays-{index}") if d.isdigit())
        opens, closes = post.get(f"open-{index}", "").strip(), post.get(f"close-{index}", "").strip()
        if days or opens or closes:
            periods.append({"weekdays": days, "open": opens, "close": closes})
    return periods


def _store_controls(request, store: Store, *, error: str = "", hours_error: str = "", done: str = "",
                    hours_rows: list[dict] | None = None) -> dict:
    roles = _roles(request, store)
    query, state = request.GET.get("q", ""), request.GET.get("state", "all")
    state = state if state in SKU_STATES else "all"
    return {"store": store, "title": _("Store controls"), "nav": "controls",
            "may_switch_mode": bool(roles & MODE_ROLES), "may_edit_hours": bool(roles & RETRY_ROLES),
            "may_toggle": bool(roles & MODE_ROLES), "modes": MODES,
            "open_now": store.open_at(timezone.now()), "next_opening": store.next_opening_at(timezone.now()),
            "weekdays": WEEKDAYS, "hours_rows": hours_rows or _hours_rows(store.business_hours or []),
            "skus": list(workspace_store_skus(store=store, query=query, state=state)[:500]),
            "q": query, "state": state, "states": SKU_STATE_LABELS, "error": error, "hours_error": hours_error,
            "done": done}


SKU_STATE_LABELS = (("all", gettext_lazy("All")), ("on_sale", gettext_lazy("On sale")),
                    ("by_hand", gettext_lazy("Sold out by hand")), ("out_of_stock", gettext_lazy("Out of stock")))


@staff_member_required
@require_GET
def store_controls_view(request, store_id: int):
    store = _store(request, store_id)
    context = _store_controls(request, store)
    if request.htmx and request.htmx.target == "sku-table":
        return render(request, "workspace/_sku_table.html", context)
    return render(request, "workspace/store_controls.html", {**context, "stores": list(_stores(request)[:500])})


@staff_member_required
@require_POST
def store_hours_view(request, store_id: int):
    """Business hours from the form's rows: ``store_state_set`` validates them and tells the platforms."""
    store = _store(request, store_id)
    hours = _hours_from_post(request.POST)
    if not _roles(request, store) & RETRY_ROLES:
        return render(request, "workspace/store_controls.html", {
            **_store_controls(request, store, hours_error=_("Your role may not do this.")),
            "stores": list(_stores(request)[:500])}, status=403)
    try:
        store = store_state_set(store_id=store.pk, actor=Actor.staff(request.user), business_hours=hours)
    except DomainError as exc:
        return render(request, "workspace/store_controls.html", {
            **_store_controls(request, store, hours_error=str(exc.message), hours_rows=_hours_rows(hours)),
            "stores": list(_stores(request)[:500])}, status=400)
    return redirect(f"{reverse('workspace:store-controls', args=[store.pk])}?saved=hours")


@staff_member_required
@require_POST
def store_skus_availability_view(request, store_id: int):
    """Sold out / back on sale for the ticked SKUs at once: ``store_sku_set_availability`` per SKU
    (one coalesced outbox message each, every channel)."""
    store = _store(request, store_id)
    available = request.POST.get("available") == "1"
    ids = [int(v) for v in request.POST.getlist("sku") if v.isdigit()][:500]
    error = done = ""
    if not _roles(request, store) & MODE_ROLES:
        error = _("Your role may not do this.")
    elif not ids:
        error = _("Tick the SKUs first.")
    else:
        try:
            for sku_id in ids:
                store_sku_set_availability(store_id=store.pk, sku_id=sku_id, available=available,
                                           actor=Actor.staff(request.user))
        except DomainError as exc:
            error = str(exc.message)
        else:
            done = (ngettext("%(count)d SKU back on sale.", "%(count)d SKUs back on sale.", len(ids)) if available
                    else ngettext("%(count)d SKU sold out.", "%(count)d SKUs sold out.", len(ids))) % {"count": len(ids)}
    context = _store_controls(request, store, error=error, done=done)
    if request.htmx:
        return render(request, "workspace/_sku_table.html", context)
    return redirect(reverse("workspace:store-controls", args=[store.pk]))


# --- the after-sales queue -----------------------------------------------------------

DECIDING_ROLES = {StaffRole.STORE_MANAGER, StaffRole.BRAND_ADMIN, "superuser"}


def _after_sales_context(request, *, error: str = "", done: str = "") -> dict:
    tab = "decided" if request.GET.get("tab") == "decided" else "open"
    stores = list(_stores(request)[:500])
    store_id = request.GET.get("store", "")
    store_id = int(store_id) if store_id.isdigit() and int(store_id) in {s.pk for s in stores} else None
    channel = request.GET.get("channel", "")
    channel = channel if channel in Channel.values else ""
    requests = workspace_after_sales(user=request.user, tab=tab, store_id=store_id, channel=channel)
    for asked in requests:
        asked.staff_actions = asked.available_actions(actor_kind=ActorKind.STAFF)
    deciders = {s.pk for s in stores if _roles(request, s) & DECIDING_ROLES}
    return {"title": _("After-sales"), "nav": "after_sales", "tab": tab, "stores": stores, "store_id": store_id,
            "channel": channel, "channels": Channel.choices, "requests": requests, "deciders": deciders,
            "store": next((s for s in stores if s.pk == store_id), stores[0] if len(stores) == 1 else None),
            "error": error, "done": done, "now": timezone.now()}


@staff_member_required
@require_GET
def after_sales_view(request):
    context = _after_sales_context(request)
    if request.htmx and request.htmx.target == "after-sales-list":
        return render(request, "workspace/_after_sales_list.html", context)
    return render(request, "workspace/after_sales.html", context)


@staff_member_required
@require_POST
def after_sales_decide_view(request, request_id: int):
    """Approve (the money goes out), reject (a reason), or goods received (restock or write
    off): the after-sales services, which re-check that the person decides at that store."""
    try:
        asked = workspace_after_sales_request(user=request.user, request_id=request_id)
    except NotFound:
        raise Http404(_("After-sales request not found.")) from None
    decision, actor = request.POST.get("decision", ""), Actor.staff(request.user)
    error = done = ""
    try:
        if decision == "approve":
            aftersales_approve(request_id=asked.pk, actor=actor, store_id=asked.store_id)
            done = _("Approved: the refund of ¥%(amount)s is on its way.") % {"amount": asked.amount}
        elif decision == "reject":
            aftersales_reject(request_id=asked.pk, actor=actor, store_id=asked.store_id,
                              reason=(request.POST.get("reason") or "").strip()[:255])
            done = _("Rejected.")
        elif decision in ("restock", "write_off"):
            aftersales_goods_received(request_id=asked.pk, actor=actor, store_id=asked.store_id,
                                      restock=decision == "restock")
            done = _("Goods received; the refund is on its way.")
        else:
            error = _("Unknown decision.")
    except DomainError as exc:
        error = str(exc.message)
    context = _after_sales_context(request, error=error, done=done)
    if request.htmx:
        return render(request, "workspace/_after_sales_list.html", context)
    return redirect(reverse("workspace:after-sales"))


# --- orders: search and the order page -------------------------------------------------

PHONE_ROLES = {StaffRole.STORE_MANAGER, StaffRole.BRAND_ADMIN, "superuser"}  # clerks see masked phones


@staff_member_required
@require_GET
def orders_view(request):
    stores = list(_stores(request)[:500])
    store_id = request.GET.get("store", "")
    store_id = int(store_id) if store_id.isdigit() and int(store_id) in {s.pk for s in stores} else None
    q = request.GET.get("q", "")
    orders = workspace_orders_search(user=request.user, q=q, store_id=store_id)
    for order in orders:
        order.merchant_status = status_label(order_type=order.order_type, status=order.status, audience="merchant")
    context = {"title": _("Orders"), "nav": "orders", "orders": orders, "q": q, "stores": stores,
               "store_id": store_id, "store": stores[0] if len(stores) == 1 else None}
    if request.htmx and request.htmx.target == "order-results":
        return render(request, "workspace/_order_results.html", context)
    return render(request, "workspace/orders.html", context)


@staff_member_required
@require_GET
def order_page_view(request, order_no: str):
    """An order a person reads: address, amounts, the timeline in words with who did what, its
    after-sales; printable as a kitchen ticket."""
    try:
        order = workspace_order_page(user=request.user, order_no=order_no)
    except NotFound:
        raise Http404(_("Order not found.")) from None
    roles = roles_for_store(user=request.user, store_id=order.store_id, brand_id=order.brand_id)
    phone = order.contact_phone if roles & PHONE_ROLES else mask_phone(order.contact_phone)
    events = sorted(order.events.all(), key=lambda e: (e.created_at, e.pk))
    return render(request, "workspace/order.html", {
        "title": _("Order %(no)s") % {"no": order.order_no}, "nav": "orders", "order": order, "store": order.store,
        "phone": phone, "events": events, "after_sales": list(order.after_sales.all()),
        "merchant_status": status_label(order_type=order.order_type, status=order.status, audience="merchant"),
        "lines": sorted(order.lines.all(), key=lambda line: line.line_no), "discounts": list(order.discounts.all()),
    })


# --- the dashboard -----------------------------------------------------------------

MONEY_ROLES = {StaffRole.STORE_MANAGER, StaffRole.BRAND_ADMIN, "superuser"}
PERIODS = (("today", gettext_lazy("Today")), ("yesterday", gettext_lazy("Yesterday")),
           ("7d", gettext_lazy("Last 7 days")), ("30d", gettext_lazy("Last 30 days")),
           ("range", gettext_lazy("Chosen dates")))


class DashboardForm(forms.Form):
    """What the dashboard shows: a period (or two dates), a brand (people of several), a store."""

    period = forms.ChoiceField(choices=PERIODS, required=False)
    date_from = forms.DateField(required=False, label=gettext_lazy("From"))
    date_to = forms.DateField(required=False, label=gettext_lazy("To"))
    brand = forms.IntegerField(required=False)
    store = forms.IntegerField(required=False)

    def __init__(self, data, *, today):
        super().__init__(data)
        self.today = today

    def clean(self):
        data = super().clean()
        period = data.get("period") or "today"
        if period == "range":
            start, end = data.get("date_from"), data.get("date_to")
            if not start or not end:
                raise forms.ValidationError(_("Choose both dates."), code="dates_missing")
            if start > end:
                raise forms.ValidationError(_("The first date is after the second."), code="dates_reversed")
            if (end - start).days + 1 > MAX_DAYS:
                raise forms.ValidationError(_("Choose at most %(days)d days.") % {"days": MAX_DAYS},
                                            code="range_too_long")
        else:
            end = self.today - datetime.timedelta(days=1) if period == "yesterday" else self.today
            start = end - datetime.timedelta(days={"7d": 6, "30d": 29}.get(period, 0))
        data.update(period=period, date_from=start, date_to=end)
        return data


def _dashboard_selection(request) -> tuple[dict, int]:
    """The dashboard's context without the figures: the form, the brand, the stores the user may
    pick, the selection, whether money shows; and the HTTP status (400 for a bad form)."""
    today = timezone.localdate()
    form = DashboardForm(request.GET, today=today)
    status = 200
    if not form.is_valid():
        status = 400
        form_errors = form.non_field_errors() or [_("Enter dates as YYYY-MM-DD.")]
        data = DashboardForm({}, today=today)
        data.is_valid()
        values = {**data.cleaned_data, "brand": form.data.get("brand"), "store": form.data.get("store")}
    else:
        form_errors, values = [], form.cleaned_data
    stores = list(_stores(request)[:2000])
    if not stores:
        raise Http404(_("You have no store."))
    brands = {store.brand_id: store.brand for store in stores}
    brand_id = int(values["brand"]) if str(values.get("brand") or "").isdigit() else None
    brand = brands.get(brand_id) or stores[0].brand
    brand_stores = [store for store in stores if store.brand_id == brand.pk]
    store_id = int(values["store"]) if str(values.get("store") or "").isdigit() else None
    store = next((s for s in brand_stores if s.pk == store_id), None)
    if store_id is not None and store is None:
        raise Http404(_("Store not found."))
    scope = scope_for_user(user=request.user)
    brand_wide = scope.all_access or brand.pk in scope.brand_wide_ids
    if store is not None:
        store_ids = (store.pk,)
    else:
        store_ids = None if brand_wide else tuple(s.pk for s in brand_stores)
    shown = [store] if store is not None else brand_stores
    money = brand.clerks_see_money or brand_wide or all(_roles(request, s) & MONEY_ROLES for s in shown)
    selection = DashboardFilter(brand_id=brand.pk, store_ids=store_ids, date_from=values["date_from"],
                                date_to=values["date_to"])
    return {"form_errors": form_errors, "period": values["period"], "selection": selection, "brand": brand,
            "brands": sorted(brands.values(), key=lambda b: b.code), "brand_stores": brand_stores,
            "picked_store": store, "brand_wide": brand_wide, "money_visible": money, "today": today,
            "store": store or (brand_stores[0] if len(brand_stores) == 1 else None)}, status


def _chart_data(figures, *, money: bool) -> dict:
    """What the charts draw (numbers as strings for money: JavaScript parses them)."""
    def series(rows, label):
        return {"labels": [label(row) for row in rows], "orders": [row.orders for row in rows],
                "takings": [str(row.takings) for row in rows] if money else []}
    return {"hours": series(figures.hours, lambda row: f"{row.key:02d}:00"),
            "days": series(figures.days, lambda row: row.key.strftime("%m-%d")),
            "channels": {**series(figures.channels, lambda row: row.label),
                         "keys": [row.key for row in figures.channels]},
            "labels": {"orders": str(_("Orders")), "takings": str(_("Takings (¥)"))}}


@staff_member_required
@require_GET
def dashboard_view(request):
    """Today's (yesterday's, a range's) figures of a store or the brand, from the rollups: a fixed
    number of queries whatever the number of orders. Clerks see counts and times only when
    their brand keeps money figures from them."""
    context, status = _dashboard_selection(request)
    selection = context["selection"]
    names = {s.pk: s.name for s in context["brand_stores"]}
    figures = dashboard_figures(selection=selection, store_names=names)
    stale_after = datetime.timedelta(seconds=5 * settings.PERIODIC_JOBS["sales-rollups"]["every"])
    context.update(title=_("Dashboard"), nav="dashboard", figures=figures, periods=PERIODS,
                   figures_stale=figures.as_of is not None and timezone.now() - figures.as_of > stale_after,
                   charts=_chart_data(figures, money=context["money_visible"]),
                   query=request.GET.urlencode())
    template = "workspace/_dashboard_figures.html" if request.htmx and request.htmx.target == "dashboard-figures" \
        else "workspace/dashboard.html"
    return render(request, template, context, status=status)


EXPORTS = {"orders": (order_columns, order_rows, gettext_lazy("Orders")),
           "summary": (summary_columns, summary_rows, gettext_lazy("Summary"))}


@staff_member_required
@require_GET
def dashboard_export_view(request, kind: str, fmt: str):
    """The orders or the summary of what the dashboard shows, as CSV or Excel. Not for people
    who may not see money figures (403)."""
    if kind not in EXPORTS or fmt not in ("csv", "xlsx"):
        raise Http404(_("No such export."))
    context, status = _dashboard_selection(request)
    if status != 200:
        return HttpResponse(" ".join(str(e) for e in context["form_errors"]), status=400,
                            content_type="text/plain; charset=utf-8")
    if not context["money_visible"]:
        return HttpResponse(_("Your brand keeps money figures from your role."), status=403,
                            content_type="text/plain; charset=utf-8")
    selection = context["selection"]
    columns, rows, title = EXPORTS[kind]
    where = context["picked_store"].code if context["picked_store"] else context["brand"].code
    filename = f"{where}-{kind}-{selection.date_from:%Y%m%d}-{selection.date_to:%Y%m%d}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(csv_stream(columns=columns(), rows=rows(selection=selection)),
                                         content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(xlsx_bytes(title=str(title), columns=columns(), rows=rows(selection=selection)),
                                content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
