"""Seed the demo brand: stores, menu, staff, customers and orders in every status,
plus what the live demo needs: each store bound to the simulator's Meituan and
Ele.me shops (settings.SIMULATOR_BASE_URL; the simulator need not be running) and
one POS terminal per store with a known demo token (stored hashed).

Idempotent: every row is found by its natural key (brand code, store code, SKU
code, username, phone, ...) and only created or updated when it differs, and
every demo order carries its plan key, so a second run changes nothing. A
larger ``--orders`` tops the orders up. Orders are created and moved only
through orders.services, so each one has a real audit trail.
"""

import hashlib
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Brand, Customer, MemberTier, StaffMembership, StaffRole, Store
from backoffice.rollups import sales_rollups_refresh
from catalog.models import Category, PlatformSkuMapping, Product, Sku, StockDeductionMode, StoreSku
from inventory.models import Stock
from inventory.services import stock_set
from core.actors import Actor, ActorKind
from core.models import OutboxMessage, OutboxStatus
from core.progress import progress_write
from orders.fulfilment.oms import VOUCHER_ISSUE_TOPIC, VOUCHER_VOID_TOPIC
from demo import data
from demo.orders import (
    OrderPlan,
    order_plans,
    placed_at_of,
    platform_day_seqs,
    reachable_pairs,
    step_times,
)
from demo.simulator_orders import simulator_orders_write
from orders.models import Channel, Order, OrderReasonCode, OrderStatus, OrderType
from aftersales.services import aftersales_approve, aftersales_request_create
from orders.services import DiscountInput, LineInput, order_create, order_transition
from orders.services.acceptance import order_auto_accept_if_enabled
from orders.services.vouchers import IssuedCode, voucher_code_redeem, voucher_codes_record_issued
from orders.services.sync import ORDER_ACTION_TOPIC
from promotions.apportion import apportion

ZERO = Decimal("0.00")
PLAN_KEY = "seed_demo"
PAYMENT_PROVIDER = "wxpay"  # the provider of settings.PAYMENT_PROVIDERS (mini-program and App alike)
OMS_WAIT = timedelta(seconds=30)  # seeded voucher issue requests wait for run_stack's simulator


class Command(BaseCommand):
    help = "Create (or bring up to date) the demo brand with stores, menu, staff, customers and orders."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=100,
                            help="how many demo orders the brand should have (default 100)")

    def handle(self, *args, orders: int, **options):
        if orders < 0:
            raise CommandError("--orders must be zero or more")
        started = time.monotonic()
        self.tally: dict[str, Counter] = {}
        with transaction.atomic():
            brand = self._seed_brand()
            stores = self._seed_stores(brand)
            tiers = self._seed_tiers(brand)
            skus = self._seed_menu(brand, stores)
            logins = self._seed_staff(brand, stores)
            customers = self._seed_customers(brand, tiers)
            bindings = self._seed_bindings(stores)
            terminals = self._seed_pos_terminals(stores)
        created_orders = self._seed_orders(brand, stores, skus, customers, logins, count=orders)
        rolled = sales_rollups_refresh()  # the dashboard's figures, without waiting for the job
        self.stdout.write(f"dashboard figures: {rolled['pairs']} store-days computed")
        # Every run, also when nothing was created: the simulator starts from the orders as they are now.
        orders_file, exported = simulator_orders_write(brand_id=brand.pk)
        self._report(logins, created_orders=created_orders, seconds=time.monotonic() - started)
        self._report_demo(bindings, terminals, orders_file=orders_file, exported=exported)

    # --- rows with natural keys -------------------------------------------
    def _upsert(self, model: type[models.Model], lookup: dict, values: dict) -> models.Model:
        """Find by ``lookup``; create, or save only the fields that differ."""
        counter = self.tally.setdefault(model.__name__, Counter())
        obj = model.objects.filter(**lookup).first()
        if obj is None:
            counter["created"] += 1
            return model.objects.create(**lookup, **values)
        changed = [name for name, value in values.items() if getattr(obj, name) != value]
        if changed:
            for name in changed:
                setattr(obj, name, values[name])
            obj.save(update_fields=[model._meta.get_field(name).name for name in changed])
            counter["updated"] += 1
        else:
            counter["unchanged"] += 1
        return obj

    def _seed_brand(self) -> Brand:
        values = {k: v for k, v in data.BRAND.items() if k != "code"}
        return self._upsert(Brand, {"code": data.BRAND["code"]}, values)

    def _seed_stores(self, brand: Brand) -> dict[str, Store]:
        stores = {}
        for spec in data.STORES:
            values = {k: v for k, v in spec.items() if k != "code"}
            stores[spec["code"]] = self._upsert(Store, {"brand": brand, "code": spec["code"]}, values)
        return stores

    def _seed_tiers(self, brand: Brand) -> dict[str, MemberTier]:
        return {
            spec["code"]: self._upsert(MemberTier, {"brand": brand, "code": spec["code"]},
                                       {k: v for k, v in spec.items() if k != "code"})
            for spec in data.TIERS
        }

    def _seed_menu(self, brand: Brand, stores: dict[str, Store]) -> dict[str, Sku]:
        skus: dict[str, Sku] = {}
        products: dict[str, Product] = {}
        for category_order, (category_name, items) in enumerate(data.MENU.items(), start=1):
            category = self._upsert(Category, {"brand": brand, "name": category_name},
                                    {"sort_order": category_order * 10})
            for code, product_name, spec, price, packaging_fee, stock_mode in items:
                product = products.get(product_name)
                if product is None:  # a product with specs has one SKU per spec
                    product = products[product_name] = self._upsert(
                        Product, {"brand": brand, "name": product_name},
                        {"category_id": category.pk, "sort_order": len(products) + 1, "is_active": True})
                skus[code] = self._upsert(Sku, {"brand": brand, "code": code}, {
                    "product_id": product.pk, "spec": spec, "price": price, "packaging_fee": packaging_fee,
                    "stock_mode": stock_mode, "is_active": True,
                })
                skus[code].product = product  # order lines snapshot its name
        for store_code, store in stores.items():
            for code, sku in skus.items():
                self._upsert(StoreSku, {"store": store, "sku": sku}, {
                    "price": data.STORE_PRICES.get((store_code, code)),
                    "is_available": (store_code, code) not in data.SOLD_OUT,
                })
        self._seed_stock(stores, skus)
        for platform, code, food_code, platform_sku_id in data.PLATFORM_MAPPINGS:
            self._upsert(
                PlatformSkuMapping,
                {"brand": brand, "platform": platform, "platform_sku_id": platform_sku_id, "store": None},
                {"sku_id": skus[code].pk, "platform_food_code": food_code},
            )
        return skus

    def _seed_stock(self, stores: dict[str, Store], skus: dict[str, Sku]) -> None:
        """Count stock for the SKUs made ahead (on-order ones: limited, e.g. for flash
        sales) and the bottled/packaged on-payment ones; the rest is made to order
        (untracked). Counted once: a second run leaves the ledger alone."""
        tracked = Stock.objects.filter(store__in=stores.values()).values_list("store_id", "sku_id")
        already = set(tracked)
        for index, (code, sku) in enumerate(sorted(skus.items())):
            if sku.stock_mode != StockDeductionMode.ON_ORDER and index % 3:
                continue
            for store in stores.values():
                if (store.pk, sku.pk) not in already:
                    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=30 + (index * 7) % 50, note="demo seed")

    def _seed_staff(self, brand: Brand, stores: dict[str, Store]) -> list[dict]:
        """Users with the demo password (set when created); returns the login table."""
        logins = [self._user("admin", "系统管理员", superuser=True) | {"role": "superuser", "store": "-"}]
        hq = self._user("demo_hq", "品牌总部")
        self._upsert(StaffMembership, {"user": hq["user"], "brand": brand, "store": None},
                     {"role": StaffRole.BRAND_ADMIN})
        logins.append(hq | {"role": StaffRole.BRAND_ADMIN.value, "store": "-"})
        for store_code, store in stores.items():
            for role, suffix, title in ((StaffRole.STORE_MANAGER, "manager", "店长"),
                                        (StaffRole.CLERK, "clerk", "店员")):
                login = self._user(f"{store_code}_{suffix}", f"{store.name}{title}")
                self._upsert(StaffMembership, {"user": login["user"], "brand": brand, "store": store},
                             {"role": role})
                logins.append(login | {"role": role.value, "store": store.name})
        return logins

    def _user(self, username: str, first_name: str, *, superuser: bool = False) -> dict:
        User = get_user_model()
        counter = self.tally.setdefault("User", Counter())
        user = User.objects.filter(username=username).first()
        if user is None:
            # One hash for every demo user of this run: hashing is slow on purpose.
            if not hasattr(self, "_demo_hash"):
                self._demo_hash = make_password(data.DEMO_PASSWORD)
            user = User(username=username, first_name=first_name, is_staff=True, is_superuser=superuser,
                        password=self._demo_hash)
            user.save()
            counter["created"] += 1
            password = data.DEMO_PASSWORD
        else:
            wanted = {"is_staff": True, "is_superuser": superuser, "is_active": True}
            changed = [name for name, value in wanted.items() if getattr(user, name) != value]
            for name in changed:
                setattr(user, name, wanted[name])
            if changed:
                user.save(update_fields=changed)
            counter["updated" if changed else "unchanged"] += 1
            # An existing user keeps the password someone may have changed.
            password = data.DEMO_PASSWORD if self._is_demo_password(user.password) else "(changed)"
        return {"user": user, "username": username, "password": password}

    def _is_demo_password(self, encoded: str) -> bool:
        checked = self.__dict__.setdefault("_checked_hashes", {})
        if encoded not in checked:
            checked[encoded] = check_password(data.DEMO_PASSWORD, encoded)
        return checked[encoded]

    def _seed_customers(self, brand: Brand, tiers: dict[str, MemberTier]) -> list[Customer]:
        customers = []
        for name, phone, tier in data.CUSTOMERS:
            customer = self._upsert(Customer, {"brand": brand, "phone": phone},
                                    {"name": name, "tier_id": tiers[tier].pk})
            customer.tier = tiers[tier]  # member rights price the orders
            customers.append(customer)
        return customers

    # --- the live demo: platform bindings and POS terminals -------------------
    # channels and pos sit above orders (tests/test_architecture.py), so their models are
    # looked up by name, never imported.

    def _seed_bindings(self, stores: dict[str, Store]) -> list:
        StoreBinding = apps.get_model("channels", "StoreBinding")
        bindings = []
        for store_code, (meituan_shop, eleme_shop) in data.PLATFORM_SHOPS.items():
            for platform, shop_code, credentials in (("meituan", meituan_shop, data.MEITUAN_CREDENTIALS),
                                                     ("eleme", eleme_shop, data.ELEME_CREDENTIALS)):
                bindings.append(self._upsert(StoreBinding, {"store": stores[store_code], "platform": platform}, {
                    "shop_code": shop_code, **credentials, "base_url": settings.SIMULATOR_BASE_URL,
                    "pull_interval_seconds": data.PULL_INTERVAL_SECONDS, "enabled": True,
                }))
        return bindings

    def _seed_pos_terminals(self, stores: dict[str, Store]) -> list[dict]:
        """One cashier terminal per store whose token is ``data.pos_demo_token(store)``.
        Only the token's SHA-256 is stored (as pos.services does); a terminal whose token
        was rotated or that was revoked since is left alone and reported so."""
        PosTerminal = apps.get_model("pos", "PosTerminal")
        counter = self.tally.setdefault("PosTerminal", Counter())
        rows = []
        for store_code, store in stores.items():
            token = data.pos_demo_token(store_code)
            key_hash = hashlib.sha256(token.encode()).hexdigest()  # pos.services.terminal_token_hash
            terminal = PosTerminal.objects.filter(store=store, name=data.POS_TERMINAL_NAME).first()
            if terminal is None:
                terminal = PosTerminal.objects.create(store=store, name=data.POS_TERMINAL_NAME, role="cashier",
                                                      key_hash=key_hash, prefix=token[:10])
                counter["created"] += 1
            else:
                counter["unchanged"] += 1
            if terminal.revoked_at is not None:
                shown = "(revoked)"
            elif terminal.key_hash != key_hash:
                shown = "(rotated)"
            else:
                shown = token
            rows.append({"store": store.name, "terminal": terminal.name, "token": shown})
        return rows

    # --- orders -------------------------------------------------------------
    def _seed_orders(self, brand, stores, skus, customers, logins, *, count: int) -> int:
        voucher_codes = [code for code, *_ in data.MENU[data.VOUCHER_CATEGORY]]
        plans = order_plans(
            count=count, store_codes=list(stores), dish_codes=[c for c in skus if c not in voucher_codes],
            auto_accept_stores={code for code, store in stores.items() if store.auto_accept},
            voucher_codes=voucher_codes, sold_out=data.SOLD_OUT, customers=len(customers),
            addresses=len(data.DELIVERY_ADDRESSES), notes=len(data.CUSTOMER_NOTES), couriers=len(data.COURIERS),
        )
        if count < len(reachable_pairs()):
            self.stdout.write(self.style.WARNING(
                f"--orders {count} is fewer than the {len(reachable_pairs())} (type, status) pairs: "
                "not every status will have an order"))
        existing = set(
            Order.objects.filter(brand=brand, raw_payload__has_key=PLAN_KEY)
            .values_list(f"raw_payload__{PLAN_KEY}", flat=True)
        )
        todo = [plan for plan in plans if plan.key not in existing]
        store_prices = {
            (store_sku.store_id, store_sku.sku_id): store_sku.effective_price
            for store_sku in StoreSku.objects.filter(store__brand=brand).select_related("sku")
        }
        staff = {login["username"]: login["user"] for login in logins}
        now = timezone.now()
        day_seqs = platform_day_seqs(plans, now=now)
        self.stdout.write(f"orders: {len(plans) - len(todo)} of {len(plans)} already there, creating {len(todo)}")
        batch = 25  # one commit per batch: fast on SQLite, short write locks elsewhere
        for start in range(0, len(todo), batch):
            with transaction.atomic():
                for done, plan in enumerate(todo[start:start + batch], start=start + 1):
                    self._create_order(plan, brand=brand, store=stores[plan.store_code], skus=skus,
                                       prices=store_prices, customers=customers, staff=staff, now=now,
                                       day_seq=day_seqs.get(plan.key))
                    self._progress(done, len(todo))
                self._settle_platform_messages(brand)
                self._settle_fulfilment_messages(brand)
        return len(todo)

    def _settle_fulfilment_messages(self, brand: Brand) -> None:
        """Seeded vouchers got made-up codes the OMS (the simulator) never issued:
        their issue requests (unless still waiting in ``paid``, which the OMS may
        then fulfil for the demo) and their voids are marked delivered, not sent.
        The issue requests of the ``paid`` ones are held back for ``OMS_WAIT``: the
        simulator playing the OMS is not running while seed_demo runs (the relay
        kicked by this commit would fail and retry); the relay sweep of the
        running demo sends them."""
        seeded = Order.objects.filter(brand=brand, raw_payload__has_key=PLAN_KEY, order_type=OrderType.VOUCHER)
        settled = seeded.exclude(status=OrderStatus.PAID).values_list("order_no", flat=True)
        OutboxMessage.objects.filter(topic__in=[VOUCHER_ISSUE_TOPIC, VOUCHER_VOID_TOPIC], status=OutboxStatus.PENDING,
                                     key__in=list(settled)).update(
            status=OutboxStatus.DELIVERED, delivered_at=timezone.now(),
            last_error="not sent: seed_demo history, unknown to the OMS")
        waiting = seeded.filter(status=OrderStatus.PAID).values_list("order_no", flat=True)
        OutboxMessage.objects.filter(topic=VOUCHER_ISSUE_TOPIC, status=OutboxStatus.PENDING, attempts=0,
                                     key__in=list(waiting)).update(next_attempt_at=timezone.now() + OMS_WAIT)

    def _settle_platform_messages(self, brand: Brand) -> None:
        """The seeded platform orders are made-up history: the status changes their
        transitions queued for the platform are marked delivered, not sent. The platform
        (the simulator) gets each order in the state it ended in from the orders file
        instead (demo.simulator_orders). Same transaction, so no relay ever
        picks them up."""
        order_nos = Order.objects.filter(brand=brand, raw_payload__has_key=PLAN_KEY,
                                         channel__in=Channel.platforms()).values_list("order_no", flat=True)
        OutboxMessage.objects.filter(topic=ORDER_ACTION_TOPIC, status=OutboxStatus.PENDING,
                                     key__in=list(order_nos)).update(
            status=OutboxStatus.DELIVERED, delivered_at=timezone.now(),
            last_error="not sent: seed_demo history, the simulator loads the order as it ended")

    def _create_order(self, plan: OrderPlan, *, brand, store, skus, prices, customers, staff, now,
                      day_seq: int | None) -> None:
        customer = customers[plan.customer_index] if plan.customer_index is not None else None
        takeaway = plan.order_type in (OrderType.DELIVERY, OrderType.PICKUP)
        grosses, lines = [], []
        for code, quantity in plan.line_codes:
            sku = skus[code]
            unit_price = prices[(store.pk, sku.pk)]
            grosses.append(unit_price * quantity)
            lines.append(LineInput(
                name=sku.product.name, spec=sku.spec, sku_id=sku.pk, sku_code=sku.code, unit_price=unit_price,
                quantity=quantity, packaging_fee=sku.packaging_fee * quantity if takeaway else ZERO,
            ))
        discounts = self._discounts(plan, customer=customer, subtotal=sum(grosses, ZERO))
        for line, part in zip(lines, apportion(amount=sum((d.amount for d in discounts), ZERO), weights=grosses),
                              strict=True):
            line.discount = part

        placed_at = placed_at_of(plan, now=now)
        index = int(plan.key.rsplit("-", 1)[1])
        kwargs = {}
        if plan.order_type == OrderType.DELIVERY:
            text, lat, lng = data.DELIVERY_ADDRESSES[plan.address_index]
            kwargs["address"] = {"text": text, "latitude": str(lat), "longitude": str(lng)}
            free = customer is not None and customer.tier is not None and customer.tier.free_delivery
            kwargs["delivery_fee"] = ZERO if free else Decimal("4.00" if plan.is_platform else "5.00")
        if plan.is_platform:
            channel_order_id = (f"2790{index:012d}" if plan.channel == "meituan" else f"30{index:017d}")
            kwargs.update(
                channel_order_id=channel_order_id, channel_order_no=channel_order_id[-8:],
                channel_day_seq=day_seq, paid=True, payment_provider=plan.channel,
                payment_txn_no=f"{plan.channel}-pay-{channel_order_id}",
                contact_name=data.CUSTOMERS[plan.address_index][0][0] + ("先生" if index % 2 else "女士"),
                contact_phone=f"1840000{index:04d}",
            )
            if Order.objects.filter(channel=plan.channel, channel_order_id=channel_order_id).exists():
                return
        else:
            kwargs.update(customer_id=customer.pk, contact_name=customer.name, contact_phone=customer.phone,
                          expires_at=placed_at + timedelta(minutes=brand.unpaid_timeout_minutes))
        note = data.CUSTOMER_NOTES[plan.note_index]
        if plan.order_type == OrderType.DINE_IN:
            note = f"桌号 {plan.pickup_code[1:3]}" + (f"，{note}" if note else "")
        order = order_create(
            store=store, channel=plan.channel, order_type=plan.order_type, lines=lines,
            actor=Actor(kind=ActorKind.PLATFORM, id=plan.channel, name=plan.channel) if plan.is_platform
            else Actor(kind=ActorKind.CUSTOMER, id=str(customer.pk), name=customer.name),
            discounts=discounts, placed_at=placed_at, customer_note=note,
            raw_payload={PLAN_KEY: plan.key, "channel": plan.channel, "demo": True}, **kwargs,
        )
        order = order_auto_accept_if_enabled(order=order)  # a platform order arrives paid
        times = step_times(placed_at=placed_at, plan=plan, now=now, after_sales_days=brand.after_sales_days)
        for step, moment in zip(plan.steps, times, strict=True):
            if step.action == "accept" and order.status == "accepted":
                continue  # the store's auto-accept already did it (orders.services.acceptance)
            actor = self._actor(step.actor_kind, plan=plan, store=store, customer=customer, staff=staff,
                                action=step.action)
            if step.action == "issue":  # what the OMS route does: codes, then ``issue``
                order = voucher_codes_record_issued(order_no=order.order_no, actor=actor, now=moment,
                                                    codes=self._voucher_codes(order, index=index))
            elif step.action == "redeem":  # every code redeemed: the last one redeems the order
                for voucher in order.voucher_codes.order_by("id"):
                    order = voucher_code_redeem(code=voucher.code, actor=actor, redeemed_at=moment,
                                                report_to_oms=False).order
            elif step.action == "refund" and not plan.is_platform:
                # A person refunds through after-sales (HQ asks and approves; paid outside the
                # provider: the request completes at once).
                hq = Actor.staff(staff["demo_hq"])
                request = aftersales_request_create(order_id=order.pk, actor=hq, reason_code="quality",
                                                    reason="菜品洒漏，全额退款", now=moment)
                aftersales_approve(request_id=request.pk, actor=hq, now=moment)
                order = Order.objects.get(pk=order.pk)
            else:
                order = order_transition(order_id=order.pk, action=step.action, actor=actor, now=moment,
                                         **self._params(step, plan=plan, order=order, store=store))
                if step.action == "pay":  # as the payment confirmation does
                    order = order_auto_accept_if_enabled(order=order)

    @staticmethod
    def _voucher_codes(order: Order, *, index: int) -> list[IssuedCode]:
        """Deterministic demo codes, one per unit: EV9 + the plan index + the unit number."""
        codes, unit = [], 0
        for line in order.lines.order_by("line_no"):
            for _ in range(line.quantity):
                unit += 1
                codes.append(IssuedCode(code=f"EV9{index:05d}{unit:04d}", line_no=line.line_no,
                                        sku_code=line.sku_code))
        return codes

    def _discounts(self, plan: OrderPlan, *, customer, subtotal: Decimal) -> list[DiscountInput]:
        if plan.is_platform:
            if subtotal < Decimal("50.00"):
                return []
            amount = Decimal("12.00") if subtotal >= Decimal("100.00") else Decimal("6.00")
            platform_part = Decimal("2.00")
            name = "满100减12" if amount == Decimal("12.00") else "满50减6"
            return [DiscountInput(kind="full_reduction", name=name, amount=amount,
                                  merchant_part=amount - platform_part, platform_part=platform_part,
                                  reference=f"{plan.channel}-act-{name}")]
        tier = customer.tier if customer is not None else None
        if tier is None or tier.price_rate >= 1:
            return []
        amount = (subtotal - (subtotal * tier.price_rate).quantize(Decimal("0.01")))
        if amount <= 0:
            return []
        return [DiscountInput(kind="member", name=f"{tier.name}会员价", amount=amount, merchant_part=amount,
                              reference=f"tier:{tier.code}")]

    def _actor(self, kind: str, *, plan: OrderPlan, store, customer, staff, action: str) -> Actor:
        if kind == ActorKind.PAYMENT:
            return Actor(kind=kind, id=PAYMENT_PROVIDER, name=PAYMENT_PROVIDER)
        if kind == ActorKind.POS:
            return Actor(kind=kind, id=f"pos-{store.code}-1", name=f"{store.name} POS 1")
        if kind == ActorKind.STAFF:
            user = staff["demo_hq"] if action == "refund" else staff[f"{store.code}_manager"]
            return Actor.staff(user)
        if kind == ActorKind.CUSTOMER:
            return Actor(kind=kind, id=str(customer.pk), name=customer.name)
        if kind == ActorKind.PLATFORM:
            return Actor.platform(plan.channel if plan.is_platform else "meituan")
        job = {"accept": "auto_accept", "cancel": "unpaid_expiry", "complete": "after_sales_close",
               "issue": "oms_voucher_issue"}.get(action, "seed_demo")
        return Actor.system(job)

    def _params(self, step, *, plan: OrderPlan, order: Order, store) -> dict:
        action = step.action
        index = int(plan.key.rsplit("-", 1)[1])
        if action == "pay":
            return {"provider": PAYMENT_PROVIDER, "txn_no": f"4200{index:024d}"}
        if action == "accept":
            return {"prep_minutes": store.default_prep_minutes}
        if action == "mark_ready":
            return {"pickup_code": plan.pickup_code if plan.order_type != OrderType.DELIVERY else ""}
        if action == "dispatch":
            name, phone = data.COURIERS[plan.courier_index]
            return {"courier_name": name, "courier_phone": phone}
        if action == "reject":
            return {"reason_code": "sold_out", "reason": "部分菜品已售完"}
        if action == "cancel":
            if plan.is_platform:
                return {"reason_code": OrderReasonCode.CUSTOMER_CANCELLED, "reason": "用户在平台取消订单"}
            if step.actor_kind == ActorKind.SYSTEM and order.status == "pending_payment":
                return {"reason_code": OrderReasonCode.PAYMENT_TIMEOUT, "reason": "超时未支付，订单自动取消"}
            if step.actor_kind == ActorKind.STAFF:
                return {"reason_code": "store_busy", "reason": "门店繁忙，与顾客协商取消"}
            return {"reason_code": OrderReasonCode.CUSTOMER_CANCELLED, "reason": "不想要了"}
        if action == "refund":
            return {"reason_code": "quality", "reason": "菜品洒漏，全额退款"}
        return {}

    # --- output ---------------------------------------------------------------
    def _progress(self, done: int, total: int) -> None:
        progress_write(self.stdout, done=done, total=total, what="orders")

    def _report(self, logins: list[dict], *, created_orders: int, seconds: float) -> None:
        self.stdout.write("")
        for name, counter in self.tally.items():
            parts = ", ".join(f"{counter[k]} {k}" for k in ("created", "updated", "unchanged") if counter[k])
            self.stdout.write(f"  {name:<24} {parts}")
        self.stdout.write(f"  {'Order':<24} {created_orders} created")
        self.stdout.write(self.style.SUCCESS(f"demo data ready in {seconds:.1f}s"))
        self.stdout.write("")
        headers = ("username", "password", "role", "store")
        rows = [(login["username"], login["password"], login["role"], login["store"]) for login in logins]
        widths = [max(_width(str(value)) for value in column) for column in zip(headers, *rows, strict=False)]
        self.stdout.write("Demo logins (back-office: /admin/):")
        for row in (headers, tuple("-" * w for w in widths), *rows):
            cells = [_pad(str(value), width) for value, width in zip(row, widths, strict=True)]
            self.stdout.write(("  " + "  ".join(cells)).rstrip())


    def _report_demo(self, bindings: list, terminals: list[dict], *, orders_file, exported: int) -> None:
        self.stdout.write("")
        self.stdout.write(f"Platform bindings (pull every {data.PULL_INTERVAL_SECONDS}s from "
                          f"{settings.SIMULATOR_BASE_URL}, the simulator of run_stack):")
        for binding in bindings:
            self.stdout.write(f"  {_pad(binding.store.name, 22)}  {binding.platform:<8} {binding.shop_code}")
        self.stdout.write(f"  {exported} platform orders written to {orders_file} for the simulator to load")
        self.stdout.write("")
        self.stdout.write("Demo POS terminals (/api/pos/v1/, header Authorization: Token <token>; "
                          "used by manage.py pos_demo_client):")
        for row in terminals:
            self.stdout.write(f"  {_pad(row['store'], 22)}  {row['terminal']}  {row['token']}")


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
