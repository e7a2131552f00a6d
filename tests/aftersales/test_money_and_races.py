"""After-sales money and races, on PostgreSQL with the provider played by the
simulator over real HTTP: an approved own-channel request refunds exactly its
amount once, its notify closes it; every race on one request or one order has
exactly one winner."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import StaffRole
from aftersales.models import AfterSalesEvent, AfterSalesRequest, AfterSalesStatus
from aftersales.services import (
    LineAsk,
    aftersales_approve,
    aftersales_deadlines_run,
    aftersales_refunds_sync,
    aftersales_reject,
    aftersales_request_create,
    aftersales_withdraw,
)
from core.actors import Actor
from core.errors import Conflict, TransitionNotAllowed
from inventory.services import stock_ledger_mismatches
from orders.models import Order, OrderEvent, OrderStatus, StoreFeedEvent
from orders.services.refunds import order_refunds_follow_up
from orders.tasks import retry_owed_refunds_task
from payments.models import PaymentRefund
from payments.services import refund_out_no
from promotions.models import Coupon
from tests.channels.sim_helpers import threads_run, wait_for
from tests.factories import CouponFactory, CouponTemplateFactory, staff_user
from tests.orders.conftest import customer, shop  # noqa: F401  (fixtures)
from tests.orders.test_refunds_money import (  # noqa: F401  (wxpay is a fixture)
    POS,
    on_hand,
    paid_order,
    refund_calls,
    sim_post,
    sim_refund_status,
    walk,
    wxpay,
)

D = Decimal
pytestmark = pytest.mark.postgres_only


def customer_actor(customer) -> Actor:
    return Actor(kind="customer", id=str(customer.pk), name=customer.name)


def ask(order, customer, lines=None, kind="refund"):
    return aftersales_request_create(order_id=order.pk, actor=customer_actor(customer), kind=kind, lines=lines,
                                     reason_code="quality", reason="太咸了", customer_id=customer.pk)


def manager(store) -> Actor:
    return Actor.staff(staff_user(role=StaffRole.STORE_MANAGER, store=store))


def line_of(order, sku_code: str):
    return order.lines.get(sku_code=sku_code)


@pytest.mark.django_db(transaction=True)
def test_an_approved_line_refund_sends_exactly_its_amount_once_and_the_notify_closes_it(wxpay, shop, customer):
    store = shop["store"]
    order = paid_order(wxpay, customer, store, lines=(("RICE", 2), ("TEA", 1)))
    order = walk(order, ("accept", POS), ("mark_ready", POS), ("pick_up", POS))
    assert order.paid_amount == D("36.00")  # 2 x (12.00 + 1.00 box) + (9.50 + 0.50 box)

    request = ask(order, customer, lines=[LineAsk(line_id=line_of(order, "RICE").pk, quantity=1)])
    assert (request.amount, request.status, request.scope) == (D("13.00"), "requested", "lines")
    assert Order.objects.get(pk=order.pk).after_sales_open is True

    boss = manager(store)
    request = aftersales_approve(request_id=request.pk, actor=boss)
    assert request.status == AfterSalesStatus.REFUNDING
    assert wait_for(lambda: AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.REFUNDED)

    [call] = refund_calls(wxpay)
    assert call["body"]["out_refund_no"] == refund_out_no(order_ref=order.order_no, refund_ref=f"as-{request.pk}")
    assert call["body"]["amount"] == {"refund": 1300, "total": 3600, "currency": "CNY"}
    refund = PaymentRefund.objects.get()
    assert (refund.refund_ref, refund.amount, refund.status) == (f"as-{request.pk}", D("13.00"), "succeeded")
    order = Order.objects.get(pk=order.pk)
    # A partial refund keeps the order's status; it shows the refunded amount and state.
    assert (order.status, order.refunded_amount, order.refund_state, order.after_sales_open) == (
        OrderStatus.PICKED_UP, D("13.00"), "partial", False)
    money = OrderEvent.objects.get(order=order, action="payment_refund")
    assert (money.data, money.actor_kind, money.actor_id) == (
        {"amount": "13.00", "refund_ref": f"as-{request.pk}"}, "staff", boss.id)
    assert list(AfterSalesEvent.objects.filter(request=request).values_list("action", "to_status")) == [
        ("create", "requested"), ("approve", "approved"), ("start_refund", "refunding"), ("complete", "refunded")]
    # Approving again refunds nothing more.
    with pytest.raises(TransitionNotAllowed):
        aftersales_approve(request_id=request.pk, actor=boss)
    assert aftersales_refunds_sync() == 0
    assert len(refund_calls(wxpay)) == 1
    # The goods were handed over: no stock back for a money-only refund.
    assert (on_hand(store, shop["rice"]), on_hand(store, shop["tea"])) == (8, 4)


@pytest.mark.django_db(transaction=True)
def test_a_whole_refund_of_an_accepted_order_gives_its_stock_and_coupon_back_and_refunds_the_order(
        wxpay, shop, customer):
    store = shop["store"]
    coupon = CouponFactory(template=CouponTemplateFactory(brand=store.brand, value=D("3.00")), customer=customer,
                           code="SAVE3", valid_from=timezone.now() - timedelta(days=1),
                           valid_until=timezone.now() + timedelta(days=9))
    order = paid_order(wxpay, customer, store, lines=(("RICE", 2), ("TEA", 1)), coupon_codes=["SAVE3"])
    order = walk(order, ("accept", POS))
    assert (order.paid_amount, on_hand(store, shop["rice"]), on_hand(store, shop["tea"])) == (D("33.00"), 8, 4)

    request = ask(order, customer)
    assert (request.scope, request.amount, request.fees_included) == ("order", D("33.00"), True)
    aftersales_approve(request_id=request.pk, actor=manager(store))

    assert wait_for(lambda: AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.REFUNDED)
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.refunded_amount, order.refund_state) == (OrderStatus.REFUNDED, D("33.00"), "full")
    # Not yet prepared: the stock the order held comes back; the coupon too (everything went back).
    assert (on_hand(store, shop["rice"]), on_hand(store, shop["tea"])) == (10, 5)
    assert Coupon.objects.get(pk=coupon.pk).status == "available"
    assert [c["body"]["amount"]["refund"] for c in refund_calls(wxpay)] == [3300]
    assert stock_ledger_mismatches() == []
    # Nothing is left: a further request is refused and changes nothing.
    with pytest.raises(Conflict) as refused:
        ask(order, customer)
    assert refused.value.code == "order_not_refundable"
    assert AfterSalesRequest.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_partial_refund_before_preparing_gives_back_only_its_units_and_a_later_cancel_the_rest(
        wxpay, shop, customer):
    store = shop["store"]
    order = paid_order(wxpay, customer, store, lines=(("RICE", 3),))
    assert on_hand(store, shop["rice"]) == 7
    request = ask(order, customer, lines=[LineAsk(line_id=line_of(order, "RICE").pk, quantity=1)])
    aftersales_approve(request_id=request.pk, actor=manager(store))
    assert on_hand(store, shop["rice"]) == 8
    from orders.services import order_cancel
    order_cancel(order_id=order.pk, actor=Actor.staff(staff_user(role=StaffRole.STORE_MANAGER, store=store)),
                 reason_code="other", reason="客户不要了")
    assert on_hand(store, shop["rice"]) == 10  # the other two, never three
    assert stock_ledger_mismatches() == []
    # The money: the request's share, then the cancel gives back only the rest.
    assert wait_for(lambda: PaymentRefund.objects.filter(status="succeeded").count() == 2)
    assert sorted(PaymentRefund.objects.values_list("refund_ref", "amount")) == sorted([
        (f"as-{request.pk}", D("13.00")), (f"cancel-{order.order_no}", D("26.00"))])
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.refunded_amount, order.refund_state) == ("cancelled", D("39.00"), "full")
    # An open request of an order cancelled meanwhile cannot be approved: it is rejected by a person.


@pytest.mark.django_db(transaction=True)
def test_two_approvals_race_and_exactly_one_refund_starts(wxpay, shop, customer):
    store = shop["store"]
    order = walk(paid_order(wxpay, customer, store, lines=(("RICE", 2),)), ("accept", POS), ("mark_ready", POS),
                 ("pick_up", POS))
    request = ask(order, customer)
    deciders = [manager(store) for _ in range(4)]

    results, errors = threads_run(4, lambda i: aftersales_approve(request_id=request.pk, actor=deciders[i]).status)

    assert len(results) == 1 and all(isinstance(e, TransitionNotAllowed) for e in errors) and len(errors) == 3
    assert wait_for(lambda: AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.REFUNDED)
    assert [c["body"]["amount"]["refund"] for c in refund_calls(wxpay)] == [2600]
    assert AfterSalesEvent.objects.filter(request=request, action="approve").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_approval_racing_a_withdrawal_has_one_winner_and_money_moves_only_if_approval_won(
        wxpay, shop, customer):
    store = shop["store"]
    boss = manager(store)
    outcomes = []
    for _round in range(3):
        order = walk(paid_order(wxpay, customer, store, lines=(("RICE", 1),)), ("accept", POS),
                     ("mark_ready", POS), ("pick_up", POS))
        request = ask(order, customer)

        def act(i, request=request):
            if i == 0:
                return aftersales_approve(request_id=request.pk, actor=boss).status
            return aftersales_withdraw(request_id=request.pk, actor=customer_actor(customer),
                                       customer_id=customer.pk).status

        results, errors = threads_run(2, act)
        assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], TransitionNotAllowed)
        final = AfterSalesRequest.objects.get(pk=request.pk).status
        outcomes.append(final)
        if final == AfterSalesStatus.WITHDRAWN:
            assert not PaymentRefund.objects.filter(refund_ref=f"as-{request.pk}").exists()
            assert Order.objects.get(pk=order.pk).refunded_amount == D("0.00")
        else:
            assert wait_for(lambda r=request: PaymentRefund.objects.filter(refund_ref=f"as-{r.pk}",
                                                                         status="succeeded").exists())
    refunds = PaymentRefund.objects.filter(refund_ref__startswith="as-")
    assert refunds.count() == sum(1 for o in outcomes if o != AfterSalesStatus.WITHDRAWN)


@pytest.mark.django_db(transaction=True)
def test_two_partial_requests_that_together_exceed_what_was_paid_have_one_winner(wxpay, shop, customer):
    store = shop["store"]
    order = walk(paid_order(wxpay, customer, store, lines=(("RICE", 2), ("TEA", 1))), ("accept", POS),
                 ("mark_ready", POS), ("pick_up", POS))
    rice = line_of(order, "RICE").pk

    results, errors = threads_run(2, lambda i: ask(order, customer, lines=[LineAsk(line_id=rice, quantity=2)]).pk)

    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], Conflict)
    assert errors[0].code == "after_sales_already_open"
    # Decided, the first still holds its units: more than is left is refused.
    aftersales_approve(request_id=results[0], actor=manager(store))
    with pytest.raises(Conflict) as refused:
        ask(order, customer, lines=[LineAsk(line_id=rice, quantity=1)])
    assert refused.value.code == "quantity_exceeds_refundable"
    assert AfterSalesRequest.objects.filter(order=order).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_deadline_job_and_a_manager_decision_race_with_one_winner(wxpay, shop, customer):
    store = shop["store"]
    boss = manager(store)
    order = walk(paid_order(wxpay, customer, store, lines=(("RICE", 1),)), ("accept", POS), ("mark_ready", POS),
                 ("pick_up", POS))
    request = ask(order, customer)
    later = timezone.now() + timedelta(hours=25)  # past the brand's 24 h response time

    def act(i):
        if i == 0:
            return aftersales_deadlines_run(now=later).approved
        return aftersales_reject(request_id=request.pk, actor=boss, reason="已出餐").status

    results, errors = threads_run(2, act)
    final = AfterSalesRequest.objects.get(pk=request.pk)
    assert AfterSalesEvent.objects.filter(request=request, action__in=("approve", "reject")).count() == 1
    if final.status == AfterSalesStatus.REJECTED:  # the manager first: the job finds it decided
        assert (sorted(map(str, results)), errors) == (["0", "rejected"], [])
        assert not PaymentRefund.objects.exists()
    else:  # the job first: the manager's rejection is refused with the current status
        assert results == [1] and len(errors) == 1 and isinstance(errors[0], TransitionNotAllowed)
        assert errors[0].detail["status"] in ("refunding", "refunded")
        assert final.decided_by.startswith("system:aftersales_deadline")
        assert wait_for(lambda: PaymentRefund.objects.filter(status="succeeded").count() == 1)


@pytest.mark.django_db(transaction=True)
def test_the_deadline_job_approves_or_escalates_per_brand_and_warns_before(wxpay, shop, customer):
    store = shop["store"]
    order = walk(paid_order(wxpay, customer, store, lines=(("RICE", 1), ("TEA", 1))), ("accept", POS),
                 ("mark_ready", POS), ("pick_up", POS))
    first = ask(order, customer, lines=[LineAsk(line_id=line_of(order, "RICE").pk, quantity=1)])
    now = timezone.now()

    assert aftersales_deadlines_run(now=now + timedelta(hours=21)).warned == 0
    assert aftersales_deadlines_run(now=now + timedelta(hours=22, minutes=30)).warned == 1
    assert aftersales_deadlines_run(now=now + timedelta(hours=23)).warned == 0  # once
    assert OrderEvent.objects.filter(order=order, reason_code="refund_deadline_near").count() == 1

    store.brand.after_sales_overdue_action = "escalate"
    store.brand.save()
    run = aftersales_deadlines_run(now=now + timedelta(hours=25))
    assert (run.approved, run.escalated) == (0, 1)
    first.refresh_from_db()
    assert (first.status, first.escalated_at is not None) == ("requested", True)
    assert Order.objects.get(pk=order.pk).needs_attention is True
    assert aftersales_deadlines_run(now=now + timedelta(hours=26)).escalated == 0

    store.brand.after_sales_overdue_action = "approve"
    store.brand.save()
    second = ask(order, customer, lines=[LineAsk(line_id=line_of(order, "TEA").pk, quantity=1)])
    run = aftersales_deadlines_run(now=now + timedelta(hours=25))
    assert (run.approved, run.escalated) == (1, 0)
    assert AfterSalesRequest.objects.get(pk=second.pk).status in (AfterSalesStatus.REFUNDING,
                                                                    AfterSalesStatus.REFUNDED)


@pytest.mark.django_db(transaction=True)
def test_the_pos_hears_of_every_step_of_a_request(wxpay, shop, customer):
    store = shop["store"]
    order = walk(paid_order(wxpay, customer, store, lines=(("RICE", 1),)), ("accept", POS), ("mark_ready", POS),
                 ("pick_up", POS))
    request = ask(order, customer)
    aftersales_approve(request_id=request.pk, actor=manager(store))
    assert wait_for(lambda: AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.REFUNDED)
    rows = list(StoreFeedEvent.objects.filter(order=order).order_by("id").values_list("type", "after_sales_id"))
    assert rows == [("order.created", None), ("order.refund_requested", None),
                    ("aftersales.requested", request.pk), ("aftersales.decided", request.pk),
                    ("order.refunded", None), ("aftersales.refunded", request.pk)]


def approved_request(sim, shop, customer, *, plan: dict | None = None) -> AfterSalesRequest:
    if plan:
        sim_post(sim, "/_sim/wxpay/refund_plan", plan, status=201)
    order = walk(paid_order(sim, customer, shop["store"], lines=(("RICE", 1),)), ("accept", POS),
                 ("mark_ready", POS), ("pick_up", POS))
    request = ask(order, customer)
    aftersales_approve(request_id=request.pk, actor=manager(shop["store"]))
    assert wait_for(lambda: PaymentRefund.objects.filter(refund_ref=f"as-{request.pk}").exclude(refund_id="").exists())
    return AfterSalesRequest.objects.get(pk=request.pk)


@pytest.mark.django_db(transaction=True)
def test_a_refund_the_provider_closes_is_retried_by_the_owed_refunds_job_and_then_completes_the_request(
        wxpay, shop, customer):
    request = approved_request(wxpay, shop, customer, plan={"status": "CLOSED", "count": 1})
    assert wait_for(lambda: PaymentRefund.objects.filter(status="failed").exists())
    # Closed once: the request keeps refunding (the job starts it again), never "failed" yet.
    assert AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.REFUNDING

    assert retry_owed_refunds_task.apply().get()["retried"] == 1
    assert wait_for(lambda: AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.REFUNDED)
    retry = PaymentRefund.objects.get(attempt=2)
    assert (retry.refund_ref, retry.status, retry.amount) == (f"as-{request.pk}#2", "succeeded", D("13.00"))
    assert [c["body"]["amount"]["refund"] for c in refund_calls(wxpay)] == [1300, 1300]


@pytest.mark.django_db(transaction=True)
def test_a_refund_failed_for_good_marks_the_request_failed_once(
        wxpay, shop, customer, settings):
    settings.PAYMENT_REFUND_MAX_ATTEMPTS = 1
    request = approved_request(wxpay, shop, customer, plan={"status": "CLOSED", "count": 1})
    assert wait_for(lambda: PaymentRefund.objects.filter(status="failed").exists())
    assert retry_owed_refunds_task.apply().get()["flagged"] == 1

    assert aftersales_refunds_sync() == 1
    assert AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.FAILED
    assert aftersales_refunds_sync() == 0  # once


@pytest.mark.django_db(transaction=True)
def test_a_lost_refund_notify_is_found_and_completes_the_request_once(wxpay, shop, customer):
    request = approved_request(wxpay, shop, customer, plan={"status": "SUCCESS", "notify": False})
    refund = PaymentRefund.objects.get()
    assert wait_for(lambda: sim_refund_status(wxpay, refund.out_refund_no) == "SUCCESS")
    assert AfterSalesRequest.objects.get(pk=request.pk).status == AfterSalesStatus.REFUNDING

    order_refunds_follow_up(now=refund.created_at + timedelta(seconds=121))  # the refund query finds it
    assert (aftersales_refunds_sync(), aftersales_refunds_sync()) == (1, 0)
    request.refresh_from_db()
    assert (request.status, request.refunded_at is not None) == (AfterSalesStatus.REFUNDED, True)
    assert StoreFeedEvent.objects.filter(type="aftersales.refunded", after_sales_id=request.pk).count() == 1
