"""The admin rights matrix: for every registered admin model, every right and an object at
each place, the answer is what the ONE role the user holds at that place allows.

Two brands, X (stores X1, X2) and Y (stores Y1, Y2), and three users with two roles each:

- u1: brand admin of X, and clerk at Y1 (another brand);
- u2: manager of X1, and clerk at X2 (the same brand);
- u3: manager of Y2, and clerk at X1 (across brands).

For each model, a row is made at every store (store-level models) or brand (brand-level
models) and the real admin pages are requested through the test client: the list, the
change page (GET and POST), the add page (GET with the place chosen, POST), the delete
confirmation, each changelist action and, for orders, each transition button. The
expected answer (status code, whether the row changed) is computed from the tables
below, which say the policy in the test's own words; they are not read from the code.
"""

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from typing import Callable

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from accounts.models import CustomerToken, LoginCode, LoginCodeAttempt, StaffRole
from aftersales.models import AfterSalesRequest
from channels.models import StoreBinding, UnreadablePlatformOrder
from core.models import IdempotencyRecord, OutboxMessage, OutboxStatus
from inventory.models import StockMovement, StockShortfall
from inventory.services import stock_set
from orders.models import DaySequence, OrderDiscount, OrderEvent, StoreFeedEvent, VoucherCode
from payments.models import PaymentAccount, PaymentRefund, PaymentTransaction
from pos.models import WalkInSale
from promotions.models import FlashSaleReservation, FlashSaleUsage
from tests.factories import (
    BrandFactory,
    CategoryFactory,
    CouponFactory,
    CouponTemplateFactory,
    CustomerFactory,
    MemberTierFactory,
    MembershipFactory,
    PlatformSkuMappingFactory,
    ProductFactory,
    PromotionFactory,
    SkuFactory,
    StoreBindingFactory,
    StoreFactory,
    StoreSkuFactory,
    UserFactory,
    pos_terminal,
)
from tests.order_helpers import make_order, walk

BA, MGR, CLERK = StaffRole.BRAND_ADMIN.value, StaffRole.STORE_MANAGER.value, StaffRole.CLERK.value
ALL = frozenset({BA, MGR, CLERK})
MANAGERS = frozenset({BA, MGR})
BRAND_ADMINS = frozenset({BA})
NOBODY = frozenset()

STORES = ("X1", "X2", "Y1", "Y2")
BRANDS = ("X", "Y")
USERS = ("u1", "u2", "u3")

# Where each user holds which role.
ROLES = {
    "u1": {"X1": {BA}, "X2": {BA}, "Y1": {CLERK}, "Y2": set(), "X": {BA}, "Y": {CLERK}},
    "u2": {"X1": {MGR}, "X2": {CLERK}, "Y1": set(), "Y2": set(), "X": {MGR, CLERK}, "Y": set()},
    "u3": {"X1": {CLERK}, "X2": set(), "Y1": set(), "Y2": {MGR}, "X": {CLERK}, "Y": {MGR}},
}

# Which order actions each role may trigger from the admin.
FLOOR = {"accept", "mark_ready", "dispatch", "deliver", "pick_up", "serve", "redeem"}
ORDER_ACTIONS = {CLERK: FLOOR, MGR: FLOOR | {"reject", "cancel"},
                 BA: FLOOR | {"reject", "cancel", "complete", "issue"}}
# ``refund`` is no transition a person takes: every refund is an after-sales request
# (aftersales.AfterSalesRequest below), so the VoucherOrder row checks it is refused to all.

# Models registered by Django and its packages, with Django's own permissions (which no
# staff user of the order center holds), and back-office users, which are not tenant
# data (a brand admin sees the users holding a membership in their brands, read-only):
# covered by test_models_outside_the_matrix_answer_by_their_own_rules below.
EXCLUDED = {
    "auth.User", "auth.Group", "django_celery_beat.ClockedSchedule", "django_celery_beat.CrontabSchedule",
    "django_celery_beat.IntervalSchedule", "django_celery_beat.PeriodicTask", "django_celery_beat.SolarSchedule",
    # django-axes' login failure records: operators (superusers) only
    "axes.AccessAttempt", "axes.AccessFailureLog", "axes.AccessLog",
}

_unique = itertools.count(1)


def uniq(prefix: str = "u") -> str:
    return f"{prefix}{next(_unique)}"


def rights_for(rights: dict, right: str) -> frozenset:
    allowed = rights.get(right, NOBODY)
    return allowed | rights.get("change", NOBODY) if right == "view" else allowed


def may(user: str, place: str, right: str, rights: dict) -> bool:
    """The one role held at ``place`` allows ``right`` (store roles read brand data, nothing more)."""
    roles = ROLES[user][place]
    if place in BRANDS and right != "view":
        roles = roles & {BA}
    return bool(roles & rights_for(rights, right))


def anywhere(user: str, right: str, rights: dict) -> bool:
    return bool(set().union(*ROLES[user].values()) & rights_for(rights, right))


# --- the models ------------------------------------------------------------------------------------


@dataclass
class Spec:
    level: str | None  # "store", "brand", or None (not tenant-owned: superusers only)
    rights: dict
    make: Callable
    change: dict = field(default_factory=dict)  # fields a change POST sets (None: unchecks a box; or a callable)
    add: Callable | None = None  # place -> fields an add POST sets over a copy of a row's form
    add_field: str = ""  # the form field naming the add's place
    add_level: str = ""  # "brand" when rows of a store-level model are added at a brand (stores)
    add_place_value: Callable | None = None  # place -> the value of ``add_field`` (default: its pk)
    add_template: Callable | None = None  # place -> a row whose form the add POST copies (default: make)
    actions: dict = field(default_factory=dict)  # name -> (right, extra POST data)
    transitions: tuple = ()


def _order(store, **kwargs):
    return make_order(store=store, paid=True, **kwargs)


def _platform_order(store):
    return make_order(store=store, channel="meituan", order_type="delivery", paid=True, channel_order_id=uniq("mt"))


def _after_sales_request(store):
    order = _order(store)
    return AfterSalesRequest.objects.create(brand=store.brand, store=store, order=order, amount="10.00",
                                            requested_by="customer", deadline=timezone.now() + timedelta(hours=24))


def _voucher_issued(store):
    return walk(make_order(store=store, order_type="voucher", paid=True), "issue")


def _binding(store):
    StoreBinding.objects.filter(store=store, platform="meituan").delete()
    return StoreBindingFactory(store=store, base_url="http://127.0.0.1:8100")


def _unreadable_order(store):
    binding = StoreBinding.objects.filter(store=store).first() or _binding(store)
    return UnreadablePlatformOrder.objects.create(binding=binding, reference=uniq("20261205/"), attempts=5,
                                                  last_error="HTTP 500")


def _binding_add(store):
    StoreBinding.objects.filter(store=store, platform="eleme").delete()
    return {"store": store.pk, "platform": "eleme", "shop_code": uniq("el"), "secret": "s", "token": "t"}


def _payment_account(brand):
    PaymentAccount.objects.filter(brand=brand).delete()
    return PaymentAccount.objects.create(brand=brand, mchid=f"19{next(_unique):08d}", appid="wx0brandapp0001",
                                         api_key="brand-key")


def _payment_account_add(brand):
    PaymentAccount.objects.filter(brand=brand).delete()  # one account per brand and provider
    return {"brand": brand.pk, "provider": "wxpay", "mchid": f"19{next(_unique):08d}", "appid": "wx0brandapp0002",
            "api_key": "another-key", "enabled": "on"}


def _membership_add(store):
    other = store.brand.stores.exclude(pk=store.pk).first()
    user = MembershipFactory(user=UserFactory(), brand=store.brand, store=other, role=CLERK).user
    return {"user": user.pk, "brand": store.brand_id, "store": store.pk, "role": CLERK}


def _stock(store):
    return stock_set(store_id=store.pk, sku_id=SkuFactory(brand=store.brand).pk, on_hand=5)


def _payment(brand):
    return PaymentTransaction.objects.create(provider="wxpay", out_trade_no=uniq("T"), order_ref=uniq("O"),
                                             brand=brand, description="d", amount="10.00", amount_fen=1000)


def _login_code(brand):
    now = timezone.now()
    return LoginCode.objects.create(brand=brand, phone=f"139{next(_unique):08d}", code_hash="0" * 64,
                                    created_at=now, expires_at=now + timedelta(minutes=5))


READ_ALL = {"view": ALL}
READ_MANAGERS = {"view": MANAGERS}
READ_BRAND_ADMINS = {"view": BRAND_ADMINS}
BRAND_DATA = {"view": BRAND_ADMINS, "add": BRAND_ADMINS, "change": BRAND_ADMINS, "delete": BRAND_ADMINS}
CATALOG = {"view": ALL, "add": BRAND_ADMINS, "change": BRAND_ADMINS, "delete": BRAND_ADMINS}
TRANSITIONS = ("accept", "reject")
DELETE_SELECTED = {"delete_selected": ("delete", {"post": "yes"})}

SPECS: dict[str, Spec] = {
    "accounts.Brand": Spec("brand", {"view": BRAND_ADMINS, "change": BRAND_ADMINS}, make=lambda brand: brand,
                           change={"name": lambda: uniq("Brand ")}),
    "accounts.Store": Spec(
        "store", {"view": ALL, "add": BRAND_ADMINS, "change": MANAGERS}, make=lambda store: store,
        change={"default_prep_minutes": lambda: str(next(_unique) % 200 + 1)},
        add=lambda brand: {"brand": brand.pk, "code": uniq("s")}, add_field="brand", add_level="brand", add_template=lambda brand: brand.stores.first()),
    "accounts.StaffMembership": Spec(
        "store", BRAND_DATA, make=lambda store: MembershipFactory(user=UserFactory(), brand=store.brand, store=store,
                                                                  role=CLERK),
        change={"role": MGR}, add=_membership_add, add_field="store", actions=DELETE_SELECTED),
    "accounts.MemberTier": Spec("brand", BRAND_DATA, make=lambda brand: MemberTierFactory(brand=brand),
                                change={"name": "Gold"}, add=lambda brand: {"brand": brand.pk, "code": uniq("t")},
                                add_field="brand", actions=DELETE_SELECTED),
    "accounts.Customer": Spec(
        "brand", {"view": BRAND_ADMINS, "add": BRAND_ADMINS, "change": BRAND_ADMINS},
        make=lambda brand: CustomerFactory(brand=brand), change={"name": "Renamed"},
        add=lambda brand: {"brand": brand.pk, "phone": f"139{next(_unique):08d}"}, add_field="brand"),
    "accounts.CustomerToken": Spec("brand", READ_BRAND_ADMINS, make=lambda brand: CustomerToken.objects.create(
        customer=CustomerFactory(brand=brand), key_hash=uniq("h").ljust(64, "0"), prefix="abcd")),
    "accounts.LoginCode": Spec("brand", READ_BRAND_ADMINS, make=lambda brand: _login_code(brand)),
    "accounts.LoginCodeAttempt": Spec("brand", READ_BRAND_ADMINS, make=lambda brand: LoginCodeAttempt.objects.create(
        login_code=_login_code(brand), number=1, correct=False, ip="203.0.113.7", created_at=timezone.now())),
    "catalog.Category": Spec("brand", CATALOG, make=lambda brand: CategoryFactory(brand=brand),
                             change={"name": lambda: uniq("c")},
                             add=lambda brand: {"brand": brand.pk, "name": uniq("c")}, add_field="brand",
                             actions=DELETE_SELECTED),
    "catalog.Product": Spec("brand", CATALOG, make=lambda brand: ProductFactory(brand=brand),
                            change={"name": "Renamed"}, add=lambda brand: {"brand": brand.pk, "name": uniq("p")},
                            add_field="brand", actions=DELETE_SELECTED),
    "catalog.Sku": Spec("brand", CATALOG, make=lambda brand: SkuFactory(brand=brand), change={"spec": "大份"},
                        add=lambda brand: {"brand": brand.pk, "code": uniq("SKU")}, add_field="brand",
                        actions=DELETE_SELECTED),
    "catalog.StoreSku": Spec(
        "store", {"view": ALL, "add": BRAND_ADMINS, "change": MANAGERS, "delete": BRAND_ADMINS},
        make=lambda store: StoreSkuFactory(store=store), change={"is_available": None},
        add=lambda store: {"store": store.pk, "sku": SkuFactory(brand=store.brand).pk}, add_field="store",
        actions=DELETE_SELECTED),
    "catalog.PlatformSkuMapping": Spec(
        "brand", BRAND_DATA, make=lambda brand: PlatformSkuMappingFactory(brand=brand),
        change={"platform_food_code": "F1"}, add=lambda brand: {"brand": brand.pk, "platform_sku_id": uniq("mt")},
        add_field="brand", actions=DELETE_SELECTED),
    "channels.StoreBinding": Spec("store", BRAND_DATA, make=_binding, change={"app_id": "6002"}, add=_binding_add,
                                  add_field="store", actions=DELETE_SELECTED),
    "channels.UnreadablePlatformOrder": Spec(
        "store", {"view": MANAGERS, "resolve": MANAGERS}, make=_unreadable_order,
        actions={"mark_resolved": ("resolve", {})}),
    "aftersales.AfterSalesRequest": Spec(
        "store", {"view": ALL, "decide": MANAGERS},
        make=lambda store: _after_sales_request(store),
        actions={"approve_requests": ("decide", {}),
                 "reject_requests": ("decide", {"apply": "1", "reason": "已送达"})}),
    "core.OutboxMessage": Spec(
        "brand", {"view": BRAND_ADMINS, "retry": BRAND_ADMINS},
        make=lambda brand: OutboxMessage.objects.create(topic="platform.order_action", key=uniq("k"), payload={},
                                                        brand_id=brand.pk, status=OutboxStatus.DEAD, attempts=9),
        actions={"retry_dead_letters": ("retry", {})}),
    "core.IdempotencyRecord": Spec(None, {}, make=lambda _place: IdempotencyRecord.objects.create(
        credential="pos:1", key=uniq("k"), fingerprint="f")),
    "inventory.Stock": Spec("store", {"view": MANAGERS, "change": MANAGERS}, make=_stock,
                            change={"on_hand": lambda: str(next(_unique) % 50 + 1)}),
    "inventory.StockMovement": Spec("store", READ_MANAGERS, make=lambda store: StockMovement.objects.filter(
        stock=_stock(store)).get()),
    "inventory.StockShortfall": Spec(
        "store", {"view": MANAGERS, "change": BRAND_ADMINS}, change={"resolved": "on"},
        make=lambda store: StockShortfall.objects.create(store=store, sku=SkuFactory(brand=store.brand),
                                                         reference=uniq("O"), quantity=2)),
    "orders.Order": Spec("store", READ_ALL, make=_order, transitions=TRANSITIONS),
    "orders.PickupOrder": Spec("store", READ_ALL, make=lambda store: _order(store, order_type="pickup"),
                               transitions=TRANSITIONS),
    "orders.DeliveryOrder": Spec("store", READ_ALL, make=lambda store: _order(store, order_type="delivery"),
                                 transitions=("accept", "cancel")),
    "orders.DineInOrder": Spec("store", READ_ALL, make=lambda store: _order(store, order_type="dine_in"),
                               transitions=TRANSITIONS),
    "orders.VoucherOrder": Spec("store", READ_ALL, make=_voucher_issued, transitions=("redeem", "refund")),
    "orders.OrderLine": Spec("store", READ_BRAND_ADMINS, make=lambda store: _order(store).lines.get()),
    "orders.OrderDiscount": Spec("store", READ_BRAND_ADMINS, make=lambda store: OrderDiscount.objects.create(
        order=_order(store), kind="manual", name="折扣", amount="0.00")),
    "orders.OrderEvent": Spec("store", READ_BRAND_ADMINS, make=lambda store: OrderEvent.objects.filter(
        order=_order(store)).first()),
    "orders.VoucherCode": Spec("store", READ_ALL, make=lambda store: VoucherCode.objects.create(
        code=uniq("V"), order=_order(store), line_no=1, issued_at=timezone.now())),
    "orders.StoreFeedEvent": Spec("store", READ_BRAND_ADMINS, make=lambda store: StoreFeedEvent.objects.create(
        store=store, order=_order(store), type="order.updated")),
    "orders.DaySequence": Spec(None, {}, make=lambda _place: DaySequence.objects.create(
        store=StoreFactory(), business_date="2026-01-01")),
    "payments.PaymentAccount": Spec(
        "brand", {"view": BRAND_ADMINS, "add": BRAND_ADMINS, "change": BRAND_ADMINS}, make=_payment_account,
        change={"appid": "wx0renamed00001"}, add=_payment_account_add, add_field="brand"),
    "payments.PaymentTransaction": Spec("brand", READ_BRAND_ADMINS, make=_payment),
    "payments.PaymentRefund": Spec("brand", READ_BRAND_ADMINS, make=lambda brand: PaymentRefund.objects.create(
        transaction=_payment(brand), refund_ref=uniq("RF"), out_refund_no=uniq("RN"), amount="1.00", amount_fen=100)),
    "pos.PosTerminal": Spec(
        "store", {"view": MANAGERS, "add": MANAGERS, "change": MANAGERS, "revoke": MANAGERS, "rotate": MANAGERS},
        make=lambda store: pos_terminal(store=store, name=uniq("Counter "))[0], change={"name": "Renamed"},
        add=lambda store: {"store": store.pk, "name": uniq("Counter ")}, add_field="store",
        actions={"revoke_terminals": ("revoke", {}), "rotate_tokens": ("rotate", {})}),
    "pos.WalkInSale": Spec("store", READ_ALL, make=lambda store: WalkInSale.objects.create(
        store=store, receipt_no=uniq("R"), lines=[])),
    "promotions.Promotion": Spec("brand", BRAND_DATA, make=lambda brand: PromotionFactory(brand=brand),
                                 change={"name": "Renamed"}, add=lambda brand: {"brand": brand.pk, "name": uniq("p")},
                                 add_field="brand", actions=DELETE_SELECTED),
    "promotions.CouponTemplate": Spec(
        "brand", BRAND_DATA, make=lambda brand: CouponTemplateFactory(brand=brand), change={"name": "Renamed"},
        add=lambda brand: {"brand": brand.pk, "name": uniq("c")}, add_field="brand", actions=DELETE_SELECTED),
    "promotions.Coupon": Spec(
        "brand", {"view": BRAND_ADMINS, "add": BRAND_ADMINS},
        make=lambda brand: CouponFactory(template=CouponTemplateFactory(brand=brand),
                                         customer=CustomerFactory(brand=brand)),
        add=lambda brand: {"template": CouponTemplateFactory(brand=brand).pk,
                           "customer": CustomerFactory(brand=brand).pk},
        add_field="template", add_place_value=lambda brand: CouponTemplateFactory(brand=brand).pk),
    "promotions.FlashSaleUsage": Spec("brand", READ_BRAND_ADMINS, make=lambda brand: FlashSaleUsage.objects.create(
        promotion=PromotionFactory(brand=brand), customer=CustomerFactory(brand=brand), used=0, limit=1)),
    "promotions.FlashSaleReservation": Spec(
        "brand", READ_BRAND_ADMINS, make=lambda brand: FlashSaleReservation.objects.create(
            promotion=PromotionFactory(brand=brand), customer=CustomerFactory(brand=brand), order_ref=uniq("O"),
            quantity=1)),
}


# --- the world and the requests ------------------------------------------------------------------------


@dataclass
class World:
    places: dict  # "X1" -> Store, "X" -> Brand
    clients: dict  # "u1" -> logged-in Client, "root" -> a superuser's
    place_of_store: dict  # store pk -> "X1"
    place_of_brand: dict  # brand pk -> "X"
    cells: list = field(default_factory=list)

    def cell(self, *what) -> None:
        self.cells.append(what)


@pytest.fixture
def world(db):
    x, y = BrandFactory(code="mx-x"), BrandFactory(code="mx-y")
    places = {"X": x, "Y": y, "X1": StoreFactory(brand=x, code="x1"), "X2": StoreFactory(brand=x, code="x2"),
              "Y1": StoreFactory(brand=y, code="y1"), "Y2": StoreFactory(brand=y, code="y2")}
    clients = {}
    for name in USERS:
        user = UserFactory(username=f"mx-{name}")
        for place, roles in ROLES[name].items():
            for role in roles:
                if role == BA and place in BRANDS:
                    MembershipFactory(user=user, brand=places[place], store=None, role=BA)
                elif role != BA and place in STORES:
                    MembershipFactory(user=user, brand=places[place].brand, store=places[place], role=role)
        clients[name] = Client()
        clients[name].force_login(user)
    clients["root"] = Client()
    clients["root"].force_login(UserFactory(username="mx-root", is_superuser=True))
    return World(places=places, clients=clients,
                 place_of_store={places[s].pk: s for s in STORES}, place_of_brand={places[b].pk: b for b in BRANDS})


class _FormData(HTMLParser):
    """What a browser would submit from the admin's ``<form id="<model>_form">`` unchanged."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}
        self._select = self._textarea = None

    def _add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        elif not self.inside:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "file") or (kind in ("checkbox", "radio")
                                                                 and "checked" not in a):
                return
            self._add(a["name"], a.get("value", "on" if kind in ("checkbox", "radio") else ""))
        elif tag == "select":
            self._select = {"name": a.get("name"), "multiple": "multiple" in a, "options": [], "chosen": []}
        elif tag == "option" and self._select is not None:
            self._select["options"].append(a.get("value", ""))
            if "selected" in a:
                self._select["chosen"].append(a.get("value", ""))
        elif tag == "textarea":
            self._textarea = [a.get("name"), ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select" and self._select is not None:
            select, self._select = self._select, None
            chosen = select["chosen"] or ([] if select["multiple"] else select["options"][:1])
            for value in chosen:
                self._add(select["name"], value)
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            self._textarea = None
            self._add(name, text[1:] if text.startswith("\n") else text)


def form_data(page, obj) -> dict:
    """The change form of ``obj`` on ``page``, as a browser would submit it unchanged."""
    parser = _FormData(f"{type(obj)._meta.model_name}_form")
    parser.feed(page.content.decode())
    return parser.data


def admin_url(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def change_url(obj) -> str:
    return f"{admin_url(type(obj))}{obj.pk}/change/"


def row(obj) -> dict | None:
    return type(obj)._default_manager.filter(pk=obj.pk).values().first()


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def with_changes(data: dict, changes: dict) -> dict:
    data = dict(data)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value() if callable(value) else value
    return data


def place_name(world, obj) -> str:
    """Where a listed row belongs, by the model's tenant lookups."""
    model = type(obj)
    values = model._default_manager.filter(pk=obj.pk)
    store_lookup = getattr(model, "tenant_store_lookup", None)
    if store_lookup:
        store_id = values.values_list(store_lookup, flat=True).get()
        if store_id is not None:
            return world.place_of_store.get(store_id, "elsewhere")
    return world.place_of_brand.get(values.values_list(model.tenant_brand_lookup, flat=True).get(), "elsewhere")


# --- the cells ---------------------------------------------------------------------------------------


def check_list(world, spec, model, user, made) -> None:
    response = world.clients[user].get(admin_url(model))
    world.cell(model, user, "list")
    if not anywhere(user, "view", spec.rights):
        assert response.status_code == 403
        return
    assert response.status_code == 200
    listed = response.context["cl"].result_list
    assert {place_name(world, obj) for obj in listed} <= {p for p in STORES + BRANDS
                                                           if may(user, p, "view", spec.rights)}
    assert {obj.pk for obj in listed} >= {obj.pk for p, obj in made.items() if may(user, p, "view", spec.rights)}


def check_view_and_change(world, spec, user, place, obj) -> None:
    """GET the change page, then POST its form back with ``spec.change`` (as a browser would)."""
    client = world.clients[user]
    page = client.get(change_url(obj))
    world.cell(type(obj), user, place, "view")
    if may(user, place, "view", spec.rights):
        assert page.status_code == 200
        assert page.context["has_change_permission"] is may(user, place, "change", spec.rights)
        assert page.context["has_delete_permission"] is may(user, place, "delete", spec.rights)
        if spec.transitions:
            available = obj.available_actions(actor_kind="staff")
            allowed = set().union(*(ORDER_ACTIONS[role] for role in ROLES[user][place]))
            assert [b["action"] for b in page.context["transition_buttons"]] == [
                a for a in available if a in allowed]
    else:
        assert page.status_code == (302 if anywhere(user, "view", spec.rights) else 403)
    data = with_changes(form_data(page, obj) if page.status_code == 200 else {}, spec.change)
    before = row(obj)
    response = client.post(change_url(obj), data)
    world.cell(type(obj), user, place, "change")
    if may(user, place, "change", spec.rights):
        assert response.status_code == 302, response.content.decode()[:3000]
        assert row(obj) != before
    else:
        visible = may(user, place, "view", spec.rights)
        assert response.status_code == (302 if not visible and anywhere(user, "change", spec.rights) else 403)
        assert row(obj) == before


def check_delete(world, spec, user, place, obj) -> None:
    response = world.clients[user].post(f"{admin_url(type(obj))}{obj.pk}/delete/", {"post": "yes"})
    world.cell(type(obj), user, place, "delete")
    if may(user, place, "delete", spec.rights) and may(user, place, "view", spec.rights):
        assert response.status_code == 302
        assert row(obj) is None
    else:
        visible = may(user, place, "view", spec.rights)
        assert response.status_code == (302 if not visible and anywhere(user, "delete", spec.rights) else 403)
        assert row(obj) is not None


def check_add(world, spec, model, user, place) -> None:
    target = world.places[place]
    value = spec.add_place_value(target) if spec.add_place_value else target.pk
    page = world.clients[user].get(f"{admin_url(model)}add/", {spec.add_field: value})
    world.cell(model, user, place, "add page")
    data = {}
    if anywhere(user, "add", spec.rights):  # a complete form: a copy of a row's, as a superuser sees it
        template = (spec.add_template or spec.make)(target)
        data = form_data(world.clients["root"].get(change_url(template)), template)
    data.update(spec.add(target))
    count = model._default_manager.count()
    response = world.clients[user].post(f"{admin_url(model)}add/", data)
    world.cell(model, user, place, "add")
    if not anywhere(user, "add", spec.rights):
        assert (page.status_code, response.status_code) == (403, 403)
        assert model._default_manager.count() == count
        return
    assert page.status_code == 200
    choices = {str(pk) for pk in page.context["adminform"].form.fields[spec.add_field].queryset.values_list(
        "pk", flat=True)}
    allowed = may(user, place, "add", spec.rights)
    assert (str(value) in choices) is allowed
    if allowed:
        assert response.status_code == 302, response.content.decode()[:3000]
        assert model._default_manager.count() == count + 1
    else:
        assert response.status_code == 200
        assert response.context["adminform"].form.errors
        assert model._default_manager.count() == count


def available_actions(spec, user) -> set:
    return {name for name, (right, _data) in spec.actions.items() if anywhere(user, right, spec.rights)}


def check_action(world, spec, user, place, obj, name) -> None:
    right, extra = spec.actions[name]
    before = row(obj)
    response = world.clients[user].post(admin_url(type(obj)), {
        "action": name, "_selected_action": [obj.pk], "index": 0, **extra})
    world.cell(type(obj), user, place, name)
    visible = may(user, place, "view", spec.rights)
    allowed = visible and may(user, place, right, spec.rights)
    if not anywhere(user, "view", spec.rights):
        assert response.status_code == 403
    elif available_actions(spec, user):
        assert response.status_code == 302
        if name in available_actions(spec, user) and not visible:
            assert messages_of(response)[-1] == "1 selected item was not found."
        elif name in available_actions(spec, user) and not allowed:
            assert messages_of(response)[-1].startswith("Your role at their store or brand does not allow")
    else:
        assert response.status_code == 200  # no action is offered: the list again
    assert (row(obj) != before) is allowed


def check_transition(world, spec, user, place, obj, action) -> None:
    before = row(obj)
    response = world.clients[user].post(f"{admin_url(type(obj))}{obj.pk}/transition/",
                                        {"action": action, "reason": "矩阵"})
    world.cell(type(obj), user, place, f"transition {action}")
    allowed_actions = set().union(*(ORDER_ACTIONS[role] for role in ROLES[user][place]))
    if not may(user, place, "view", spec.rights):
        assert response.status_code == 404
        assert row(obj) == before
        return
    assert response.status_code == 302
    assert (row(obj)["status"] != before["status"]) is (action in allowed_actions)


def check_placeless(world, spec, model, user) -> None:
    """Not tenant-owned: only superusers see it; every page answers 403."""
    obj = spec.make(None)
    client = world.clients[user]
    answers = [client.get(admin_url(model)).status_code, client.get(change_url(obj)).status_code,
               client.post(change_url(obj), {}).status_code,
               client.post(f"{admin_url(model)}{obj.pk}/delete/", {"post": "yes"}).status_code,
               client.get(f"{admin_url(model)}add/").status_code,
               client.post(f"{admin_url(model)}add/", {}).status_code]
    world.cells.extend((model, user, what) for what in ("list", "view", "change", "delete", "add page", "add"))
    assert answers == [403] * 6
    assert row(obj) is not None


def check_add_refused(world, model, user) -> None:
    client = world.clients[user]
    answers = (client.get(f"{admin_url(model)}add/").status_code,
               client.post(f"{admin_url(model)}add/", {}).status_code)
    world.cells.extend([(model, user, "add page"), (model, user, "add")])
    assert answers == (403, 403)


CELLS: list[int] = []


def _count(world) -> None:
    """Adds the cells one model ran to the total that tests/admin/conftest.py reports."""
    CELLS.append(len(world.cells))


# --- the tests ---------------------------------------------------------------------------------------


def test_the_matrix_covers_every_registered_admin_model():
    registered = {model._meta.label for model in admin.site._registry}

    assert set(SPECS) == registered - EXCLUDED
    assert EXCLUDED <= registered


@pytest.mark.parametrize("label", sorted(SPECS))
def test_rights_matrix(world, label):
    model = next(m for m in admin.site._registry if m._meta.label == label)
    spec = SPECS[label]
    if spec.level is None:
        for user in USERS:
            check_placeless(world, spec, model, user)
        _count(world)
        return
    places = STORES if spec.level == "store" else BRANDS
    made = {place: spec.make(world.places[place]) for place in places}
    # each cell on a row of its own (a cell may change or delete it)
    for user in USERS:
        check_list(world, spec, model, user, made)
        for place in places:
            check_view_and_change(world, spec, user, place, spec.make(world.places[place]))
            check_delete(world, spec, user, place, spec.make(world.places[place]))
            for name in spec.actions:
                check_action(world, spec, user, place, spec.make(world.places[place]), name)
            for action in spec.transitions:
                check_transition(world, spec, user, place, spec.make(world.places[place]), action)
        if spec.add is not None:
            for place in (BRANDS if spec.add_level == "brand" else places):
                check_add(world, spec, model, user, place)
        else:
            check_add_refused(world, model, user)
    _count(world)


def test_models_outside_the_matrix_answer_by_their_own_rules(world):
    # given: users of both brands
    listing = {user: world.clients[user].get("/admin/auth/user/") for user in USERS}
    # then: Django's own models: no staff user of the order center holds a Django permission
    for label in sorted(EXCLUDED - {"auth.User"}):
        app_label, model_name = label.split(".")
        for user in USERS:
            assert world.clients[user].get(f"/admin/{app_label}/{model_name.lower()}/").status_code == 403, label
    # and back-office users: the brand admin of X sees the users holding a membership in X, read-only
    assert sorted(u.username for u in listing["u1"].context["cl"].result_list) == ["mx-u1", "mx-u2", "mx-u3"]
    assert (listing["u2"].status_code, listing["u3"].status_code) == (403, 403)
    only_in_y = MembershipFactory(user=UserFactory(), brand=world.places["Y"], store=world.places["Y1"], role=CLERK)
    assert world.clients["u1"].get(f"/admin/auth/user/{only_in_y.user_id}/change/").status_code == 302
    assert get_user_model().objects.filter(pk=only_in_y.user_id).exists()
