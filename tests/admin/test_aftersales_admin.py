"""After-sales in the admin: "Refund this order" (a staff request created and approved
after a confirm step showing the amount), the request page (order link, lines and
amounts in yuan, the platform's lines as a table), the decisions (approve, reject,
goods received), and the order page listing its requests.

Rights: store managers and brand admins decide, clerks only see, another brand sees
nothing."""

from decimal import Decimal

from django.contrib.messages import get_messages

from aftersales.models import AfterSalesEvent, AfterSalesRequest, AfterSalesStatus
from aftersales.services import LineAsk, PlatformAsk, aftersales_platform_record, aftersales_request_create
from core.actors import Actor
from inventory.models import MovementReason, StockMovement
from inventory.services import stock_set
from orders.models import OrderStatus
from orders.services import LineInput
from tests.factories import SkuFactory, StoreSkuFactory
from tests.order_helpers import make_order, walk

REQUESTS = "/admin/aftersales/aftersalesrequest/"
ORDERS = "/admin/orders/order/"
D = Decimal


def _refund_url(order) -> str:
    return f"{REQUESTS}refund-order/{order.pk}/"


def _request_url(after_sales) -> str:
    return f"{REQUESTS}{after_sales.pk}/change/"


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _two_lines():
    return [LineInput(name="水煮鱼", unit_price=D("38.00"), quantity=1, packaging_fee=D("1.00")),
            LineInput(name="米饭", unit_price=D("12.50"), quantity=3, packaging_fee=D("1.50"))]


def _picked_up(store, **kwargs):
    """A paid own-channel pickup order the customer collected (paid outside the
    provider: the refund completes at once)."""
    return walk(make_order(store=store, paid=True, lines=_two_lines(), **kwargs), "accept", "mark_ready", "pick_up")


def _form(order, *, scope="lines", kind="refund", quantities=(0, 2), **extra) -> dict:
    lines = list(order.lines.order_by("line_no"))
    data = {"kind": kind, "scope": scope, "reason_code": "quality", "reason": "Fish was cold", **extra}
    for line, quantity in zip(lines, quantities):
        data[f"qty_{line.pk}"] = str(quantity)
    return data


def _staff_actor(order):
    from tests.factories import staff_user

    return Actor.staff(staff_user(role="store_manager", store=order.store))


# --- "Refund this order" ----------------------------------------------------------------------


def test_manager_refunds_two_units_of_a_line_of_a_picked_up_order_after_seeing_the_amount(
        login, manager_a, store_a):
    # given: 水煮鱼 38.00 + box 1.00; 米饭 3 x 12.50 + box 1.50 = 39.00 paid for the line
    order = _picked_up(store_a)
    client = login(manager_a)
    # when: the form, then the amount, then the confirmation
    form_page = client.get(_refund_url(order))
    preview = client.post(_refund_url(order), {**_form(order), "preview": "1"})
    requests_after_preview = AfterSalesRequest.objects.count()
    done = client.post(_refund_url(order), {**_form(order), "confirmed_amount": "26.00", "confirm": "1"})
    # then
    assert form_page.status_code == 200
    assert [(row["line"].name, row["paid"], row["left"]) for row in form_page.context["form"].rows] == [
        ("水煮鱼", D("39.00"), 1), ("米饭", D("39.00"), 3)]
    assert preview.status_code == 200
    assert preview.context["preview"].amount == D("26.00")
    assert "Confirm: give back ¥26.00" in preview.content.decode()
    assert 'name="confirmed_amount" value="26.00"' in preview.content.decode()
    assert requests_after_preview == 0
    refund = AfterSalesRequest.objects.get()
    assert done.status_code == 302
    assert done.url == _request_url(refund)
    assert _messages(done) == [f"Request #{refund.pk} approved: ¥26.00 goes back to the customer."]
    assert (refund.status, refund.kind, refund.scope, refund.amount, refund.requested_by, refund.reason_code,
            refund.reason, refund.decided_by) == (
        AfterSalesStatus.REFUNDED, "refund", "lines", D("26.00"), "staff", "quality", "Fish was cold",
        f"staff:{manager_a.pk} manager_a")
    assert [(line.order_line.line_no, line.quantity, line.amount) for line in refund.lines.all()] == [
        (2, 2, D("26.00"))]
    assert list(refund.events.values_list("action", "actor_kind")) == [
        ("create", "staff"), ("approve", "staff"), ("start_refund", "system"), ("complete", "system")]
    order.refresh_from_db()
    assert (order.status, order.paid_amount, order.refunded_amount, order.refund_state) == (
        OrderStatus.PICKED_UP, D("78.00"), D("26.00"), "partial")


def test_brand_admin_refunds_the_whole_order_and_it_becomes_refunded(login, admin_x, store_a):
    # given
    order = _picked_up(store_a)
    client = login(admin_x)
    # when
    preview = client.post(_refund_url(order), {**_form(order, scope="order", quantities=(0, 0)), "preview": "1"})
    done = client.post(_refund_url(order), {**_form(order, scope="order", quantities=(0, 0)),
                                            "confirmed_amount": "78.00", "confirm": "1"})
    # then
    assert preview.context["preview"].amount == D("78.00")
    assert "Everything left to refund goes back: the order becomes refunded." in preview.content.decode()
    refund = AfterSalesRequest.objects.get()
    assert done.status_code == 302
    assert (refund.status, refund.scope, refund.amount) == (AfterSalesStatus.REFUNDED, "order", D("78.00"))
    order.refresh_from_db()
    assert (order.status, order.refunded_amount, order.refund_state) == (OrderStatus.REFUNDED, D("78.00"), "full")
    assert order.events.filter(action="refund").values_list("actor_kind", flat=True).get() == "system"


def test_a_return_is_approved_and_waits_for_the_goods_then_goes_back_on_the_shelf(login, manager_a, store_a):
    # given: a tracked SKU sold on the order
    sku = SkuFactory(brand=store_a.brand, code="FISH")
    StoreSkuFactory(store=store_a, sku=sku)
    stock_set(store_id=store_a.pk, sku_id=sku.pk, on_hand=10)
    order = walk(make_order(store=store_a, paid=True, lines=[
        LineInput(name="水煮鱼", unit_price=D("38.00"), quantity=2, sku_id=sku.pk, sku_code="FISH")]),
        "accept", "mark_ready", "pick_up")
    client = login(manager_a)
    data = _form(order, kind="return", quantities=(1,))
    # when
    client.post(_refund_url(order), {**data, "confirmed_amount": "38.00", "confirm": "1"})
    waiting = AfterSalesRequest.objects.get()
    received = client.post(REQUESTS, {"action": "goods_back_restock", "_selected_action": [waiting.pk]})
    # then
    assert waiting.status == AfterSalesStatus.AWAITING_GOODS
    assert received.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.status, waiting.restock) == (AfterSalesStatus.REFUNDED, True)
    assert list(StockMovement.objects.filter(reference=f"as-{waiting.pk}").values_list("reason", "delta")) == [
        (MovementReason.RETURN, 1)]


def test_the_amount_changed_since_it_was_shown_creates_nothing_and_shows_the_new_amount(login, manager_a, store_a):
    # given: the manager saw 26.00 for two units of 米饭; meanwhile one unit was refunded
    order = _picked_up(store_a)
    client = login(manager_a)
    client.post(_refund_url(order), {**_form(order), "preview": "1"})
    # when: a confirmation with an amount that is not what the request would give back
    response = client.post(_refund_url(order), {**_form(order), "confirmed_amount": "25.00", "confirm": "1"})
    # then
    assert response.status_code == 200
    assert AfterSalesRequest.objects.count() == 0
    assert _messages(response) == [
        "The amount is now ¥26.00 (another request of the order changed what is left). Check it and confirm again."]
    assert response.context["preview"].amount == D("26.00")
    order.refresh_from_db()
    assert (order.refunded_amount, order.refund_state) == (D("0.00"), "none")


def test_more_units_than_are_left_is_a_form_error(login, manager_a, store_a):
    # given
    order = _picked_up(store_a)
    # when
    response = login(manager_a).post(_refund_url(order), {**_form(order, quantities=(0, 4)), "preview": "1"})
    # then
    assert response.status_code == 200
    assert response.context["preview"] is None
    assert response.context["form"].errors == {
        f"qty_{order.lines.get(line_no=2).pk}": ["Ensure this value is less than or equal to 3."]}


def test_lines_scope_without_a_quantity_is_refused(login, manager_a, store_a):
    order = _picked_up(store_a)

    response = login(manager_a).post(_refund_url(order), {**_form(order, quantities=(0, 0)), "preview": "1"})

    assert response.context["form"].non_field_errors() == [
        "Give a quantity for at least one line, or refund the whole order."]
    assert AfterSalesRequest.objects.count() == 0


def test_a_return_of_an_order_not_collected_yet_is_refused_with_the_reason(login, manager_a, store_a):
    # given: paid, accepted, not handed over
    order = walk(make_order(store=store_a, paid=True, lines=_two_lines()), "accept")
    # when
    response = login(manager_a).post(_refund_url(order), {**_form(order, kind="return"), "confirmed_amount": "26.00",
                                                          "confirm": "1"})
    # then
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Goods can be returned only once the customer has them."]
    assert AfterSalesRequest.objects.count() == 0


def test_clerk_may_not_open_the_refund_page_nor_post_it(login, clerk_a, store_a):
    # given
    order = _picked_up(store_a)
    client = login(clerk_a)
    # when
    page = client.get(_refund_url(order))
    post = client.post(_refund_url(order), {**_form(order), "confirmed_amount": "26.00", "confirm": "1"})
    # then
    assert page.status_code == 403
    assert post.status_code == 403
    assert AfterSalesRequest.objects.count() == 0


def test_refund_page_of_another_brand_or_store_is_not_found(login, admin_y, manager_a, store_a, store_b):
    # given
    order_a = _picked_up(store_a)
    order_b = _picked_up(store_b)
    # when / then
    assert login(admin_y).get(_refund_url(order_a)).status_code == 404
    assert login(manager_a).get(_refund_url(order_b)).status_code == 404
    assert login(manager_a).get(f"{REQUESTS}refund-order/nope/").status_code == 404


def test_a_platform_order_is_not_refunded_here(login, manager_a, store_a):
    # given
    order = make_order(store=store_a, order_type="delivery", channel="meituan", channel_order_id="MT-9", paid=True)
    # when
    response = login(manager_a).get(_refund_url(order))
    # then
    assert response.status_code == 302
    assert response.url == f"{ORDERS}{order.pk}/change/"
    assert _messages(response) == ["Platform orders are refunded through their platform: answer the customer's "
                                   "application there."]


# --- the order page -----------------------------------------------------------------------------


def test_order_page_lists_its_requests_with_links_and_its_refund_state(login, manager_a, store_a):
    # given
    order = _picked_up(store_a)
    login(manager_a).post(_refund_url(order), {**_form(order), "confirmed_amount": "26.00", "confirm": "1"})
    refund = AfterSalesRequest.objects.get()
    # when
    response = login(manager_a).get(f"{ORDERS}{order.pk}/change/")
    # then
    content = response.content.decode()
    assert response.status_code == 200
    assert (f'<a href="{_request_url(refund)}" class="after-sales-request">#{refund.pk}</a> '
            "Refund (money only) · Some lines · ¥26.00 · Refunded") in content
    assert '<div class="readonly">26.00</div>' in content
    assert '<div class="readonly">Partly refunded</div>' in content
    assert '<div class="readonly">Picked up · Partly refunded</div>' in content  # the merchant's status
    assert response.context["refund_order_url"] == _refund_url(order)
    assert f'href="{_refund_url(order)}" class="refund-order-link"' in content


def test_order_page_offers_no_refund_to_clerks_and_none_once_fully_refunded(login, clerk_a, manager_a, store_a):
    # given
    order = _picked_up(store_a)
    refunded = _picked_up(store_a)
    login(manager_a).post(_refund_url(refunded), {**_form(refunded, scope="order"), "confirmed_amount": "78.00",
                                                  "confirm": "1"})
    # when
    clerk_page = login(clerk_a).get(f"{ORDERS}{order.pk}/change/")
    refunded_page = login(manager_a).get(f"{ORDERS}{refunded.pk}/change/")
    # then
    assert clerk_page.status_code == 200
    assert clerk_page.context["refund_order_url"] == ""
    assert "refund-order-link" not in clerk_page.content.decode()
    assert refunded_page.context["refund_order_url"] == ""


def test_no_staff_refund_button_on_the_order_page_any_more(login, admin_x, store_a):
    # given: a collected order, where a brand admin once had "Refund"
    order = _picked_up(store_a)
    # when
    response = login(admin_x).get(f"{ORDERS}{order.pk}/change/")
    forged = login(admin_x).post(f"{ORDERS}{order.pk}/transition/", {"action": "refund", "reason": "x"})
    # then
    assert [b["action"] for b in response.context["transition_buttons"]] == ["complete"]
    assert _messages(forged) == ["Your role may not do “Refund” on this order."]
    order.refresh_from_db()
    assert (order.status, order.refund_state) == (OrderStatus.PICKED_UP, "none")


# --- the request page and the list ----------------------------------------------------------------


def test_request_page_links_to_its_order_and_shows_lines_and_amounts_in_yuan(login, clerk_a, manager_a, store_a):
    # given
    order = _picked_up(store_a)
    login(manager_a).post(_refund_url(order), {**_form(order), "confirmed_amount": "26.00", "confirm": "1"})
    refund = AfterSalesRequest.objects.get()
    # when: a clerk reads it
    response = login(clerk_a).get(_request_url(refund))
    # then
    content = response.content.decode()
    assert response.status_code == 200
    assert f'<a href="{ORDERS}{order.pk}/change/" class="after-sales-order">{order.order_no}</a> (Picked up)' in content
    assert '<div class="readonly">¥26.00</div>' in content
    assert "paid ¥78.00, refunded ¥26.00 (Partly refunded)" in content
    formsets = {f.formset.prefix: f for f in response.context["inline_admin_formsets"]}
    lines = formsets["lines"]
    assert [[field.contents() for field in line_fields] for line_fields in
            ([f for fieldset in form for line in fieldset for f in line] for form in lines)] == [
        ["2", "米饭", "2 of 3", "¥26.00"]]
    assert response.context["has_change_permission"] is False


def test_platform_lines_are_a_table_not_json(login, manager_a, store_a):
    # given: a partial application from Meituan
    order = make_order(store=store_a, order_type="delivery", channel="meituan", channel_order_id="MT-7", paid=True)
    ask = PlatformAsk(refund_id="R1", reason="少送了", partial=True, amount=D("12.00"),
                      lines=({"name": "宫保鸡丁", "merchant_code": "KB", "platform_sku_id": "9001", "quantity": 1,
                              "amount": "12.00"},))
    platform_request, _created = aftersales_platform_record(order=order, actor=Actor.platform("meituan"), ask=ask)
    # when
    response = login(manager_a).get(_request_url(platform_request))
    # then
    content = response.content.decode()
    assert ('<table class="platform-lines"><thead><tr><th>name</th><th>merchant code</th><th>platform SKU id</th>'
            "<th>quantity</th><th>amount</th></tr></thead><tbody><tr><td>宫保鸡丁</td><td>KB</td><td>9001</td>"
            "<td>1</td><td>¥12.00</td></tr></tbody></table>") in content
    assert "merchant_code" not in content


def test_clerk_sees_requests_but_has_no_decision_to_take(login, clerk_a, store_a):
    # given
    order = _picked_up(store_a)
    asked = aftersales_request_create(order_id=order.pk, actor=_staff_actor(order))
    client = login(clerk_a)
    # when
    listing = client.get(REQUESTS)
    forged = client.post(REQUESTS, {"action": "approve_requests", "_selected_action": [asked.pk]})
    # then
    assert listing.status_code == 200
    assert [r.pk for r in listing.context["cl"].result_list] == [asked.pk]
    assert listing.context["action_form"] is None  # no action is offered
    assert forged.status_code == 200  # the list again, nothing done
    asked.refresh_from_db()
    assert asked.status == AfterSalesStatus.REQUESTED


def test_brand_admin_of_another_brand_sees_no_request(login, admin_y, store_a):
    # given
    order = _picked_up(store_a)
    asked = aftersales_request_create(order_id=order.pk, actor=_staff_actor(order))
    client = login(admin_y)
    # when
    listing = client.get(REQUESTS)
    forged = client.post(REQUESTS, {"action": "approve_requests", "_selected_action": [asked.pk]})
    page = client.get(_request_url(asked))
    # then
    assert list(listing.context["cl"].result_list) == []
    assert page.status_code == 302  # the admin's "does not exist" redirect
    asked.refresh_from_db()
    assert asked.status == AfterSalesStatus.REQUESTED
    assert _messages(forged) == ["1 selected item was not found."]


def test_manager_approves_and_rejects_with_a_reason(login, manager_a, store_a):
    # given
    first, second = _picked_up(store_a), _picked_up(store_a)
    actor = _staff_actor(first)
    approved = aftersales_request_create(order_id=first.pk, actor=actor, lines=[
        LineAsk(line_id=first.lines.get(line_no=1).pk, quantity=1)])
    rejected = aftersales_request_create(order_id=second.pk, actor=actor)
    client = login(manager_a)
    # when
    approve = client.post(REQUESTS, {"action": "approve_requests", "_selected_action": [approved.pk]})
    form = client.post(REQUESTS, {"action": "reject_requests", "_selected_action": [rejected.pk]})
    reject = client.post(REQUESTS, {"action": "reject_requests", "_selected_action": [rejected.pk], "apply": "1",
                                    "reason": "Eaten already"})
    # then
    assert _messages(approve) == ["1 request is answered."]
    assert form.status_code == 200
    assert _messages(reject) == ["1 request is answered."]
    approved.refresh_from_db()
    rejected.refresh_from_db()
    assert (approved.status, approved.amount) == (AfterSalesStatus.REFUNDED, D("39.00"))
    assert (rejected.status, rejected.decision_reason) == (AfterSalesStatus.REJECTED, "Eaten already")
    assert AfterSalesEvent.objects.filter(request=rejected, action="reject").get().actor_name == "manager_a"
