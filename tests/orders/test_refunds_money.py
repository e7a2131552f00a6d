"""Money is right: every path that ends an order paid through the provider sends back
exactly what was paid, once, over real HTTP (the project's simulator plays the
provider and notifies our live server); refunds that do not end by their notify are
followed up until they end or a person has them."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from core.actors import Actor
from accounts.models import StaffRole
from aftersales.models import AfterSalesRequest
from aftersales.services import aftersales_approve, aftersales_request_create
from core.errors import Conflict, TransitionNotAllowed
from inventory.models import Stock
from inventory.services import stock_ledger_mismatches
from orders.models import Order, OrderEvent, OrderStatus, VoucherCode
from orders.services import order_transition
from orders.services.acceptance import orders_handle_unaccepted
from orders.services.refunds import order_refund_settled_by_hand, order_refunds_follow_up
from orders.services.vouchers import voucher_code_redeem
from orders.tasks import retry_owed_refunds_task
from payments.models import PaymentRefund, PaymentTransaction
from payments.services import refund_out_no
from promotions.models import Coupon, FlashSaleUsage
from simulator.testing import running_simulator
from tests.factories import CouponFactory, CouponTemplateFactory, PromotionFactory, staff_user
from tests.order_helpers import make_order
from tests.orders.conftest import client_for
from tests.channels.sim_helpers import threads_run, wait_for

API_KEY = "money-test-key"
MCHID = "1900000099"
REFUNDS = "/v3/refund/domestic/refunds"
D = Decimal
STAFF = Actor(kind="staff", id="7", name="店长")
POS = Actor(kind="pos", id="T1", name="收银台1")


@pytest.fixture
def wxpay(settings, live_server):
    """The simulator as the payment provider (and the OMS); notifies reach our live server."""
    with running_simulator(wxpay_api_key=API_KEY, wxpay_mchid=MCHID, notify_backoff=(0.05, 0.1, 0.2),
                           notify_max_attempts=30, notify_timeout=3.0, refund_delay=0.05) as sim:
        settings.PAYMENT_PROVIDERS = {"wxpay": {
            "base_url": sim.base_url, "appid": "wxmoneytest", "mchid": MCHID, "api_key": API_KEY,
            "notify_url": f"{live_server.url}/api/v1/payments/notify/wxpay", "timeout": 3.0, "retries": 1}}
        settings.OMS = {"base_url": sim.base_url, "app_key": "sim-oms-app", "app_secret": "sim-oms-secret",
                        "callback_url": f"{live_server.url}/api/v1/fulfilment/oms/callback", "timeout": 3.0}
        yield sim


def sim_post(sim, path: str, body: dict, status: int = 200) -> dict:
    response = requests.post(f"{sim.base_url}{path}", json=body, timeout=5)
    assert response.status_code == status, response.text
    return response.json()


def refund_calls(sim) -> list[dict]:
    calls = requests.get(f"{sim.base_url}/_sim/calls", params={"path_prefix": REFUNDS, "direction": "in"},
                         timeout=5).json()["calls"]
    return [call for call in calls if call["method"] == "POST"]


def paid_order(sim, customer, store, *, order_type="pickup", lines=(("RICE", 1),), coupon_codes=(),
               address=None) -> Order:
    """Placed and paid through the customer API; the provider's notify marks it paid.

    Waits for the payment to be recorded (``paid_at``), not for the status ``paid``: a
    voucher order is issued by the OMS moments later (the relay runs after the notify's
    commit, eagerly in the live server's thread), at times before a poll sees ``paid``."""
    api = client_for(customer)
    body = {"store": store.pk, "order_type": order_type, "lines": [{"sku": s, "qty": q} for s, q in lines],
            "coupon_codes": list(coupon_codes)}
    if address:
        body["address"] = address
    created = api.post("/api/v1/orders", body, format="json")
    assert created.status_code == 201, created.json()
    order_no = created.json()["order_no"]
    started = api.post(f"/api/v1/orders/{order_no}/pay", {"provider": "wxpay"}, format="json")
    assert started.status_code == 200, started.json()
    sim_post(sim, "/_sim/wxpay/pay", {"out_trade_no": started.json()["out_trade_no"]})
    assert wait_for(lambda: Order.objects.filter(order_no=order_no, paid_at__isnull=False).exists())
    return Order.objects.get(order_no=order_no)


def walk(order, *steps) -> Order:
    for action, actor in steps:
        if action == "refund":  # a person refunds through after-sales, never the machine directly
            staff_refund(order)
            continue
        order = order_transition(order_id=order.pk, action=action, actor=actor)
    return Order.objects.get(pk=order.pk)


def staff_refund(order) -> AfterSalesRequest:
    """The admin's "Refund this order": a whole-order request by the store's manager, approved."""
    manager = Actor.staff(staff_user(role=StaffRole.STORE_MANAGER, store=order.store))
    request = aftersales_request_create(order_id=order.pk, actor=manager, reason_code="store_error", reason="退款")
    return aftersales_approve(request_id=request.pk, actor=manager)


def refund_ref_of(order) -> str:
    return f"as-{AfterSalesRequest.objects.get(order=order).pk}"


def sim_refund_status(sim, out_refund_no: str) -> str:
    """What the provider says of a refund (its refund query)."""
    return requests.get(f"{sim.base_url}/v3/refund/domestic/refunds/{out_refund_no}", timeout=5).json()["status"]


def refund_ended(order_no: str, status: str = "succeeded") -> bool:
    return PaymentRefund.objects.filter(transaction__order_ref=order_no, status=status).exists()


def on_hand(store, sku) -> int:
    return Stock.objects.get(store=store, sku=sku).on_hand


# --- the staff refund ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_picked_up_order_refunded_by_staff_gets_exactly_what_was_paid_back_once_and_its_coupon_and_limit(
        wxpay, shop, customer):
    store = shop["store"]
    flash = PromotionFactory(brand=store.brand, kind="flash_sale", name="奶茶秒杀", tiers=[], flash_price=D("1.00"),
                             purchase_limit=1, target_skus=[shop["tea"]],
                             starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now() + timedelta(days=9))
    coupon = CouponFactory(template=CouponTemplateFactory(brand=store.brand, value=D("3.00")), customer=customer,
                           code="SAVE3", valid_from=timezone.now() - timedelta(days=1),
                           valid_until=timezone.now() + timedelta(days=9))
    order = paid_order(wxpay, customer, store, lines=(("RICE", 2), ("TEA", 1)), coupon_codes=["SAVE3"])
    assert (order.total, order.paid_amount) == (D("24.50"), D("24.50"))
    assert Coupon.objects.get(pk=coupon.pk).status == "used"
    assert (on_hand(store, shop["rice"]), on_hand(store, shop["tea"])) == (8, 4)

    order = walk(order, ("accept", POS), ("mark_ready", POS), ("pick_up", POS))
    order = walk(order, ("refund", STAFF))

    assert order.status == OrderStatus.REFUNDED
    assert wait_for(lambda: refund_ended(order.order_no))
    [call] = refund_calls(wxpay)
    refund_ref = refund_ref_of(order)
    assert call["body"]["out_refund_no"] == refund_out_no(order_ref=order.order_no, refund_ref=refund_ref)
    assert call["body"]["amount"] == {"refund": 2450, "total": 2450, "currency": "CNY"}
    refund = PaymentRefund.objects.get()
    assert (refund.refund_ref, refund.amount, refund.status, refund.provider_status) == (
        refund_ref, D("24.50"), "succeeded", "SUCCESS")
    assert refund.notify_payload["event_type"] == "REFUND.SUCCESS"  # closed by its notify
    assert PaymentTransaction.objects.get().status == "refunded"
    event = OrderEvent.objects.get(order=order, action="payment_refund")
    assert (event.data, event.actor_kind) == ({"amount": "24.50", "refund_ref": refund_ref}, "staff")
    # Coupons and limits back as on cancel; the goods were handed over: no restock.
    coupon = Coupon.objects.get(pk=coupon.pk)
    assert (coupon.status, coupon.order_ref, coupon.used_at) == ("available", "", None)
    assert FlashSaleUsage.objects.get(promotion=flash, customer=customer).used == 0
    assert (on_hand(store, shop["rice"]), on_hand(store, shop["tea"])) == (8, 4)
    assert stock_ledger_mismatches() == []
    # The follow-up job finds nothing owed: never a second refund.
    assert retry_owed_refunds_task.apply().get() == {"started": 0, "checked": 0, "retried": 0, "flagged": 0,
                                                     "settled": 0}
    with pytest.raises(Conflict):  # nothing is left to refund
        walk(order, ("refund", STAFF))
    assert len(refund_calls(wxpay)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_coupon_whose_validity_ended_comes_back_expired(wxpay, shop, customer):
    store = shop["store"]
    coupon = CouponFactory(template=CouponTemplateFactory(brand=store.brand, value=D("3.00")), customer=customer,
                           code="LAST3", valid_from=timezone.now() - timedelta(days=1),
                           valid_until=timezone.now() + timedelta(days=1))
    order = paid_order(wxpay, customer, store, coupon_codes=["LAST3"])
    order = walk(order, ("accept", POS), ("mark_ready", POS), ("pick_up", POS))
    Coupon.objects.filter(pk=coupon.pk).update(valid_until=timezone.now() - timedelta(seconds=1))

    walk(order, ("refund", STAFF))

    assert Coupon.objects.get(pk=coupon.pk).status == "expired"
    assert wait_for(lambda: refund_ended(order.order_no))


# --- every other path that ends a provider-paid order -------------------------------------------------

ADDRESS = {"name": "王先生", "phone": "13800001234", "detail": "漕溪北路398号5楼"}
PATHS = {
    "the store rejects it": ("pickup", [("reject", POS)], "cancel", "cancelled"),
    "staff cancel it after accepting": ("pickup", [("accept", POS), ("mark_ready", POS), ("cancel", STAFF)],
                                        "cancel", "cancelled"),
    "staff refund a delivered order": ("delivery", [("accept", POS), ("mark_ready", POS), ("dispatch", POS),
                                                    ("deliver", POS), ("refund", STAFF)], "refund", "refunded"),
    "staff refund a served dine-in order": ("dine_in", [("accept", POS), ("mark_ready", POS), ("serve", POS),
                                                        ("refund", STAFF)], "refund", "refunded"),
    "the acceptance time limit rejects it": ("pickup", [], "cancel", "cancelled"),
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.django_db(transaction=True)
def test_every_path_that_ends_a_paid_order_sends_back_exactly_what_was_paid_once(wxpay, shop, customer, path):
    order_type, steps, prefix, final = PATHS[path]
    order = paid_order(wxpay, customer, shop["store"], order_type=order_type, lines=(("RICE", 1), ("SOUP", 1)),
                       address=ADDRESS if order_type == "delivery" else None)
    if path == "the acceptance time limit rejects it":
        orders_handle_unaccepted(now=order.paid_at + timedelta(seconds=601), timeouts={"miniapp": 600})
    order = walk(order, *steps)

    assert order.status == final
    assert wait_for(lambda: refund_ended(order.order_no))
    [call] = refund_calls(wxpay)
    fen = int(order.paid_amount * 100)
    assert call["body"]["amount"] == {"refund": fen, "total": fen, "currency": "CNY"}
    refund = PaymentRefund.objects.get()
    expected_ref = refund_ref_of(order) if prefix == "refund" else f"{prefix}-{order.order_no}"
    assert (refund.refund_ref, refund.amount) == (expected_ref, order.paid_amount)
    assert OrderEvent.objects.filter(order=order, action="payment_refund").count() == 1
    assert retry_owed_refunds_task.apply().get()["started"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_partly_redeemed_voucher_order_gets_back_the_share_of_its_unused_codes_and_they_are_voided(
        wxpay, shop, customer):
    order = paid_order(wxpay, customer, shop["store"], order_type="voucher", lines=(("RICE", 2), ("SOUP", 1)))
    assert order.paid_amount == D("30.00")
    assert wait_for(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.ISSUED)
    rice_code = VoucherCode.objects.filter(order=order, sku_code="RICE").order_by("id").first()
    voucher_code_redeem(code=rice_code.code, actor=POS, store_id=shop["store"].pk)

    order = walk(order, ("refund", STAFF))

    assert order.status == OrderStatus.REFUNDED
    assert wait_for(lambda: refund_ended(order.order_no))
    [call] = refund_calls(wxpay)
    assert call["body"]["amount"] == {"refund": 1800, "total": 3000, "currency": "CNY"}  # 30.00 - one 12.00 code
    assert PaymentRefund.objects.get().amount == D("18.00")
    assert sorted(VoucherCode.objects.filter(order=order).values_list("state", flat=True)) == [
        "redeemed", "void", "void"]
    assert PaymentTransaction.objects.get().status == "succeeded"  # partly refunded


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_refunds_and_cancels_racing_on_one_order_start_exactly_one_provider_refund(wxpay, shop, customer):
    rice_left = 10
    for _round in range(3):
        order = paid_order(wxpay, customer, shop["store"])
        order = walk(order, ("accept", POS), ("mark_ready", POS))
        before = len(refund_calls(wxpay))

        def move(index):
            if index % 2:
                return walk(order, ("cancel", STAFF)).status
            try:
                walk(order, ("pick_up", POS))
            except TransitionNotAllowed:
                pass  # another thread picked it up, or it was cancelled
            staff_refund(order)
            return Order.objects.get(pk=order.pk).status

        results, errors = threads_run(8, move)

        # The losers are refused (a move the machine no longer allows, a second request,
        # an approval of a request whose order was cancelled meanwhile).
        assert len(results) == 1 and all(isinstance(e, Conflict) for e in errors)
        final = Order.objects.get(pk=order.pk)
        assert final.status == results[0]
        assert wait_for(lambda: refund_ended(order.order_no))
        assert len(refund_calls(wxpay)) == before + 1
        [refund] = PaymentRefund.objects.filter(transaction__order_ref=order.order_no)
        expected_ref = refund_ref_of(order) if final.status == OrderStatus.REFUNDED else f"cancel-{order.order_no}"
        assert (refund.refund_ref, refund.amount) == (expected_ref, order.paid_amount)
        assert OrderEvent.objects.filter(order=order, action="payment_refund").count() == 1
        # Cancelled: the meal never left, its stock came back; refunded after pickup: it did not.
        rice_left -= 1 if final.status == OrderStatus.REFUNDED else 0
        assert on_hand(shop["store"], shop["rice"]) == rice_left
    assert stock_ledger_mismatches() == []


# --- refunds that do not end by their notify -------------------------------------------------------


def refunded_order(sim, shop, customer, *, plan: dict | None = None) -> Order:
    if plan:
        sim_post(sim, "/_sim/wxpay/refund_plan", plan, status=201)
    order = paid_order(sim, customer, shop["store"])
    order = walk(order, ("accept", POS), ("mark_ready", POS), ("pick_up", POS), ("refund", STAFF))
    assert wait_for(lambda: PaymentRefund.objects.filter(transaction__order_ref=order.order_no)
                    .exclude(refund_id="").exists())
    return order


@pytest.mark.django_db(transaction=True)
def test_a_lost_refund_notify_is_found_by_the_follow_up_job(wxpay, shop, customer):
    order = refunded_order(wxpay, shop, customer, plan={"status": "SUCCESS", "notify": False})
    refund = PaymentRefund.objects.get()
    # the provider settles it a moment after the request (its notify is the one lost)
    assert wait_for(lambda: sim_refund_status(wxpay, refund.out_refund_no) == "SUCCESS")

    early = order_refunds_follow_up(now=refund.created_at + timedelta(seconds=60))
    due = order_refunds_follow_up(now=refund.created_at + timedelta(seconds=121))

    assert early.checked == 0
    assert due.checked == 1
    refund.refresh_from_db()
    assert (refund.status, refund.provider_status) == ("succeeded", "SUCCESS")
    assert PaymentTransaction.objects.get(order_ref=order.order_no).status == "refunded"
    assert Order.objects.get(pk=order.pk).needs_attention is False


@pytest.mark.django_db(transaction=True)
def test_an_abnormal_refund_flags_the_order_for_a_person_and_its_success_resolves_the_flag(wxpay, shop, customer):
    order = refunded_order(wxpay, shop, customer, plan={"status": "ABNORMAL"})
    assert wait_for(lambda: refund_ended(order.order_no, "abnormal"))  # its notify
    refund = PaymentRefund.objects.get()

    flagged = retry_owed_refunds_task.apply().get()
    again = retry_owed_refunds_task.apply().get()

    assert (flagged["flagged"], flagged["retried"], again["flagged"]) == (1, 0, 0)
    order = Order.objects.get(pk=order.pk)
    assert (order.needs_attention, order.attention_reason) == (True, "refund not completed")
    flag = OrderEvent.objects.get(order=order, action="flag", reason_code="refund_attention")
    assert flag.data == {"kind": "refund_attention", "out_refund_no": refund.out_refund_no,
                         "refund_ref": refund_ref_of(order), "amount": "13.00",
                         "refund_status": "abnormal", "provider_status": "ABNORMAL", "why": "abnormal"}
    # A person sends the money at the provider: it reports SUCCESS.
    sim_post(wxpay, f"/_sim/wxpay/refunds/{refund.out_refund_no}/settle", {"status": "SUCCESS"})
    assert wait_for(lambda: refund_ended(order.order_no))

    settled = retry_owed_refunds_task.apply().get()

    assert settled["settled"] == 1
    order = Order.objects.get(pk=order.pk)
    assert (order.needs_attention, order.attention_reason) == (False, "")
    assert OrderEvent.objects.filter(order=order, action="flag", reason_code="refund_settled").count() == 1
    assert len(refund_calls(wxpay)) == 1  # never retried by the machine


@pytest.mark.django_db(transaction=True)
def test_a_closed_refund_is_started_again_then_handed_to_a_person_after_the_last_attempt(
        wxpay, shop, customer, settings):
    settings.PAYMENT_REFUND_MAX_ATTEMPTS = 2
    order = refunded_order(wxpay, shop, customer, plan={"status": "CLOSED", "count": 2})
    assert wait_for(lambda: refund_ended(order.order_no, "failed"))

    first_run = retry_owed_refunds_task.apply().get()
    assert wait_for(lambda: PaymentRefund.objects.filter(attempt=2, status="failed").exists())
    second_run = retry_owed_refunds_task.apply().get()

    assert (first_run["retried"], first_run["flagged"]) == (1, 0)
    assert (second_run["retried"], second_run["flagged"]) == (0, 1)
    first, retry = PaymentRefund.objects.order_by("attempt")
    assert (retry.refund_ref, retry.retry_of_id, retry.needs_person) == (
        f"{refund_ref_of(order)}#2", first.pk, True)
    calls = refund_calls(wxpay)
    assert [c["body"]["out_refund_no"] for c in calls] == [first.out_refund_no, retry.out_refund_no]
    assert {c["body"]["amount"]["refund"] for c in calls} == {int(order.paid_amount * 100)}
    assert Order.objects.get(pk=order.pk).attention_reason == "refund not completed"
    # The person paid the customer back another way and says so.
    assert order_refund_settled_by_hand(out_refund_no=retry.out_refund_no, actor=STAFF, note="现金退还") is True
    order = Order.objects.get(pk=order.pk)
    assert (order.needs_attention, order.attention_reason) == (False, "")
    settled = OrderEvent.objects.get(order=order, action="flag", reason_code="refund_settled")
    assert (settled.actor_kind, settled.data["note"], settled.data["why"]) == ("staff", "现金退还", "by_hand")
    assert retry_owed_refunds_task.apply().get() == {"started": 0, "checked": 0, "retried": 0, "flagged": 0,
                                                     "settled": 0}


@pytest.mark.django_db(transaction=True)
def test_a_refund_still_processing_after_the_limit_is_handed_to_a_person_and_still_asked_about(
        wxpay, shop, customer, settings):
    order = refunded_order(wxpay, shop, customer, plan={"status": "PROCESSING"})
    refund = PaymentRefund.objects.get()
    later = refund.created_at + timedelta(hours=settings.PAYMENT_REFUND_STUCK_HOURS)

    before = order_refunds_follow_up(now=later - timedelta(seconds=1))
    at_limit = order_refunds_follow_up(now=later)

    assert (before.checked, before.flagged) == (1, 0)
    assert (at_limit.checked, at_limit.flagged) == (0, 1)  # asked a second ago: next in 240 s
    refund.refresh_from_db()
    assert (refund.status, refund.escalated_at, refund.needs_person) == ("processing", later, True)
    flag = OrderEvent.objects.get(order=order, action="flag", reason_code="refund_attention")
    assert flag.data["why"] == "processing"
    # It ends at the provider after all: the next question finds it and the flag goes.
    sim_post(wxpay, f"/_sim/wxpay/refunds/{refund.out_refund_no}/settle", {"status": "SUCCESS", "notify": False})
    done = order_refunds_follow_up(now=later + timedelta(hours=1))
    assert (done.checked, done.settled) == (1, 1)
    assert Order.objects.get(pk=order.pk).needs_attention is False


@pytest.mark.django_db
def test_an_order_paid_outside_the_provider_is_refunded_without_a_provider_call(shop, caplog):
    # given: an own-channel order marked paid with no provider payment (imported, or the demo's seed)
    order = make_order(store=shop["store"], order_type="pickup", paid=True)
    assert order.paid_amount == D("56.00")

    # when: it is picked up and refunded by staff
    with caplog.at_level("INFO"):
        order = walk(order, ("accept", POS), ("mark_ready", POS), ("pick_up", POS), ("refund", STAFF))
        follow_up = order_refunds_follow_up()

    # then: refunded, the decision recorded as outside the provider, no provider call, no warning
    assert order.status == OrderStatus.REFUNDED
    assert OrderEvent.objects.get(order=order, action="payment_refund").data == {
        "amount": "56.00", "outside_provider": True}
    assert PaymentRefund.objects.count() == 0
    assert follow_up.started == 0
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
