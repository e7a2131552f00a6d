"""Rights at each object, beyond the matrix: actions over rows of several places, forged
places in forms, the last gate before saving, inlines, and the role helpers."""

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.forms import modelform_factory

from accounts.admin_base import TenantAdmin
from accounts.models import StaffRole
from accounts.selectors import roles_for_brand, roles_for_store, scope_for_roles
from catalog.models import StoreSku
from inventory.models import Stock
from inventory.services import stock_set
from orders.models import Order
from pos.models import PosTerminal
from tests.factories import (
    CustomerFactory,
    MemberTierFactory,
    MembershipFactory,
    SkuFactory,
    StoreFactory,
    StoreSkuFactory,
    pos_terminal,
    staff_user,
)
from tests.order_helpers import make_order

STORE_SKUS = "/admin/catalog/storesku/"
TERMINALS = "/admin/pos/posterminal/"


@pytest.fixture
def admin_x_clerk_y(admin_x, brand_y, store_y):
    """Brand admin of X, and clerk in brand Y's store."""
    MembershipFactory(user=admin_x, brand=brand_y, store=store_y, role=StaffRole.CLERK)
    return admin_x


@pytest.fixture
def manager_a_clerk_b(manager_a, store_b):
    MembershipFactory(user=manager_a, brand=store_b.brand, store=store_b, role=StaffRole.CLERK)
    return manager_a


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_an_action_over_rows_of_two_places_runs_only_where_the_role_allows_it(login, admin_x_clerk_y, store_a,
                                                                             store_y):
    # given: a store SKU where the user is brand admin, one where they are a clerk
    own = StoreSkuFactory(store=store_a)
    clerk_row = StoreSkuFactory(store=store_y)
    # when
    response = login(admin_x_clerk_y).post(STORE_SKUS, {"action": "delete_selected", "index": 0, "post": "yes",
                                                        "_selected_action": [own.pk, clerk_row.pk]})
    # then
    assert response.status_code == 302
    assert list(StoreSku.objects.values_list("pk", flat=True)) == [clerk_row.pk]
    assert _messages(response) == [
        f"Your role at their store or brand does not allow “Delete selected store SKUs” for: {clerk_row}. "
        "Nothing was done to them.",
        "Successfully deleted 1 store SKU.",
    ]


def test_revoke_and_rotate_run_only_at_the_stores_the_user_manages(login, manager_a_clerk_b, store_a, store_b,
                                                                  store_y):
    # given: terminals where the user is manager, clerk, and nothing
    managed, _token = pos_terminal(store=store_a, name="A")
    clerk_only, _token = pos_terminal(store=store_b, name="B")
    elsewhere, _token = pos_terminal(store=store_y, name="Y")
    client = login(manager_a_clerk_b)
    hashes = dict(PosTerminal.objects.values_list("pk", "key_hash"))
    selected = [managed.pk, clerk_only.pk, elsewhere.pk]
    # when
    rotated = client.post(TERMINALS, {"action": "rotate_tokens", "index": 0, "_selected_action": selected})
    revoked = client.post(TERMINALS, {"action": "revoke_terminals", "index": 0, "_selected_action": selected})
    # then: the clerk's and the other brand's terminals are not even listed: not found, untouched
    assert (rotated.status_code, revoked.status_code) == (302, 302)
    after = {t.pk: t for t in PosTerminal.objects.all()}
    assert after[managed.pk].key_hash != hashes[managed.pk] and after[managed.pk].revoked_at is not None
    for untouched in (clerk_only.pk, elsewhere.pk):
        assert (after[untouched].key_hash, after[untouched].revoked_at) == (hashes[untouched], None)
    assert _messages(revoked)[-2:] == ["2 selected items were not found.", "1 terminal revoked."]


def test_a_forged_add_for_a_store_where_the_user_is_a_clerk_is_refused(login, manager_a_clerk_b, store_a, store_b):
    # given
    client = login(manager_a_clerk_b)
    # when
    page = client.get(f"{TERMINALS}add/")
    forged = client.post(f"{TERMINALS}add/", {"store": store_b.pk, "name": "Forged", "role": "cashier"})
    allowed = client.post(f"{TERMINALS}add/", {"store": store_a.pk, "name": "Counter", "role": "cashier"})
    # then
    assert [s.pk for s in page.context["adminform"].form.fields["store"].queryset] == [store_a.pk]
    assert forged.status_code == 200
    assert forged.context["adminform"].form.errors["store"] == [
        "Select a valid choice. That choice is not one of the available choices."]
    assert allowed.status_code == 302
    assert list(PosTerminal.objects.values_list("store_id", "name")) == [(store_a.pk, "Counter")]


def test_a_change_cannot_move_a_row_to_a_store_where_the_user_is_a_clerk(login, admin_x_clerk_y, store_a, store_y):
    # given: the brand admin of X edits a store SKU of X and names brand Y's store
    store_sku = StoreSkuFactory(store=store_a)
    # when
    response = login(admin_x_clerk_y).post(f"{STORE_SKUS}{store_sku.pk}/change/", {
        "store": store_y.pk, "sku": store_sku.sku_id, "is_available": "on"})
    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["store"] == [
        "Select a valid choice. That choice is not one of the available choices."]
    store_sku.refresh_from_db()
    assert store_sku.store_id == store_a.pk


def test_the_form_checks_the_place_even_when_its_choice_is_offered(rf, manager_a_clerk_b, store_a, store_b):
    # given: the store choices widened again (as a custom field or widget might): clean() still checks
    terminal_admin = admin.site._registry[PosTerminal]
    request = rf.post(f"{TERMINALS}add/")
    request.user = manager_a_clerk_b
    form_class = terminal_admin.get_form(request)
    form = form_class(data={"store": store_b.pk, "name": "Forged", "role": "cashier"})
    form.fields["store"].queryset = form.fields["store"].queryset.model.objects.all()
    # when / then
    assert form.is_valid() is False
    assert form.non_field_errors() == ["Your role does not allow this at the chosen store or brand."]


def test_save_form_is_the_last_gate(rf, manager_a_clerk_b, store_b):
    # given: a valid form built without the admin's checks, for a store where the user is a clerk
    terminal_admin = admin.site._registry[PosTerminal]
    request = rf.post(f"{TERMINALS}add/")
    request.user = manager_a_clerk_b
    form = modelform_factory(PosTerminal, fields=["store", "name", "role"])(
        data={"store": store_b.pk, "name": "Forged", "role": "cashier"})
    assert form.is_valid()
    # when / then
    with pytest.raises(PermissionDenied):
        terminal_admin.save_form(request, form, change=False)
    assert PosTerminal.objects.count() == 0


def test_an_action_that_names_no_right_is_refused_at_start(rf, superuser):
    # given
    class CarelessAdmin(TenantAdmin):
        actions = ["do_it"]

        @admin.action(description="Do it")
        def do_it(self, request, queryset):
            queryset.delete()

    request = rf.get("/admin/")
    request.user = superuser
    # when / then
    with pytest.raises(ImproperlyConfigured, match="the action 'do_it' must name the right it needs"):
        CarelessAdmin(Order, admin.site).get_actions(request)


def test_an_inline_follows_the_role_at_its_parent(rf, manager_a_clerk_b, store_a, store_b):
    # given: stock ledger lines, shown to managers, at the store managed and the one clerked
    sku = SkuFactory(brand=store_a.brand)
    managed = stock_set(store_id=store_a.pk, sku_id=sku.pk, on_hand=3)
    clerked = stock_set(store_id=store_b.pk, sku_id=sku.pk, on_hand=3)
    stock_admin = admin.site._registry[Stock]
    request = _request(rf, manager_a_clerk_b)
    inline = stock_admin.get_inline_instances(request, managed)[0]
    # when / then
    assert inline.has_view_permission(request, managed) is True
    assert inline.has_view_permission(request, clerked) is False
    assert stock_admin.get_inline_instances(request, clerked) == []


def _request(rf, user):
    request = rf.get("/admin/")
    request.user = user
    return request


def test_a_transition_url_for_a_store_where_the_user_is_a_clerk_cannot_do_a_manager_move(
        login, manager_a_clerk_b, store_a, store_b):
    # given
    clerked = make_order(store=store_b, paid=True)
    managed = make_order(store=store_a, paid=True)
    client = login(manager_a_clerk_b)
    # when
    refused = client.post(f"/admin/orders/order/{clerked.pk}/transition/", {"action": "reject", "reason": "x"})
    done = client.post(f"/admin/orders/order/{managed.pk}/transition/", {"action": "reject", "reason": "x"})
    # then
    assert (refused.status_code, done.status_code) == (302, 302)
    assert _messages(refused) == ["Your role may not do “Reject” on this order."]
    assert dict(Order.objects.values_list("pk", "status")) == {clerked.pk: "paid", managed.pk: "cancelled"}


def test_roles_at_one_store_or_brand_never_borrow_a_role_held_elsewhere(admin_x_clerk_y, brand_x, brand_y,
                                                                        store_a, store_y):
    # given: also a brand admin of Z, which has no store
    brand_z_store = StoreFactory(brand__code="brand-z")
    other_admin = staff_user(role=StaffRole.BRAND_ADMIN, brand=brand_z_store.brand, username="admin_z")
    # then
    assert roles_for_store(user=admin_x_clerk_y, store_id=store_a.pk, brand_id=brand_x.pk) == {"brand_admin"}
    assert roles_for_store(user=admin_x_clerk_y, store_id=store_y.pk, brand_id=brand_y.pk) == {"clerk"}
    assert roles_for_store(user=other_admin, store_id=None, brand_id=brand_y.pk) == frozenset()
    assert roles_for_brand(user=admin_x_clerk_y, brand_id=brand_y.pk) == {"clerk"}
    scope = scope_for_roles(user=admin_x_clerk_y, roles={"brand_admin", "store_manager"},
                            store_roles_reach_brand=False)
    assert (scope.brand_ids, scope.store_ids, scope.brand_wide_ids) == ({brand_x.pk}, set(), {brand_x.pk})
    read = scope_for_roles(user=admin_x_clerk_y, roles={"brand_admin", "clerk"}, store_roles_reach_brand=True)
    assert (read.brand_ids, read.store_ids) == ({brand_x.pk, brand_y.pk}, {store_y.pk})


def test_foreign_key_list_filters_offer_only_the_places_of_the_listed_rows(login, admin_x_clerk_y, store_a, store_b,
                                                                          store_y, brand_x, brand_y):
    # given: stock at X's two stores and at Y's store (where the user is a clerk: stock is
    # for managers); member tiers and customers in both brands
    sku = SkuFactory(brand=brand_x)
    for store in (store_a, store_b):
        stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=1)
    stock_set(store_id=store_y.pk, sku_id=SkuFactory(brand=brand_y).pk, on_hand=1)
    gold, silver = MemberTierFactory(brand=brand_x, name="金卡"), MemberTierFactory(brand=brand_x, name="银卡")
    other = MemberTierFactory(brand=brand_y, name="别家")
    for tier in (gold, silver, other):
        CustomerFactory(brand=tier.brand, tier=tier)
    client = login(admin_x_clerk_y)
    # when
    stock_list = client.get("/admin/inventory/stock/")
    customer_list = client.get("/admin/accounts/customer/")
    # then
    store_filter = next(f for f in stock_list.context["cl"].filter_specs if f.field_path == "store")
    tier_filter = next(f for f in customer_list.context["cl"].filter_specs if f.field_path == "tier")
    assert sorted(store_filter.lookup_choices) == sorted([(store_a.pk, str(store_a)), (store_b.pk, str(store_b))])
    assert sorted(tier_filter.lookup_choices) == sorted([(gold.pk, "金卡"), (silver.pk, "银卡")])
