"""The platform orders the demo's simulator must already have when it starts.

``manage.py seed_demo`` makes up Meituan and Ele.me orders the simulator never
made, and a run of the demo leaves live ones the next simulator process forgets.
Asked about one of them (the ``reconcile-platform-orders`` job) or told to move it
(the POS accepts it: ``order/confirm``), the simulator would answer "no such order":
a warning every few minutes and dead letters. So seed_demo writes them, as the
order center has them now, to ``settings.SIMULATOR_ORDERS_FILE``, which
``run_stack`` passes to the simulator (``--orders``, simulator.history): every
platform order of the stores bound to the simulator (``SIMULATOR_BASE_URL``) that
is still open, or was placed in the last ``RECENT_HOURS`` hours, with its platform
status (orders.status_map), lines, amounts, day sequence number and courier.

The simulator is a separate standard-library program: the file is its only
contract, JSON in the platforms' own terms (yuan amounts, unix seconds).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from catalog.models import PlatformSkuMapping
from orders.models import Channel, Order, OrderStatus, OrderType
from orders.status_map import STATUS_MAP

RECENT_HOURS = 24
CENT = Decimal("0.01")
FINAL_STATUSES = (OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.REFUNDED)


def simulator_orders(*, brand_id: int, now: datetime | None = None) -> dict[str, list[dict]]:
    """{"meituan_orders": [...], "eleme_orders": [...]} for the simulator (see the module doc)."""
    now = now or timezone.now()
    StoreBinding = apps.get_model("channels", "StoreBinding")  # channels sits above orders: by name
    shops = {(b.store_id, b.platform): b.shop_code for b in StoreBinding.objects.filter(
        store__brand_id=brand_id, base_url=settings.SIMULATOR_BASE_URL)}
    mappings = {(m.platform, m.sku_id): m for m in PlatformSkuMapping.objects.filter(
        brand_id=brand_id, store__isnull=True)}
    orders = (Order.objects.filter(brand_id=brand_id, channel__in=Channel.platforms(),
                                   channel_order_id__isnull=False)
              .filter(~Q(status__in=FINAL_STATUSES) | Q(placed_at__gte=now - timedelta(hours=RECENT_HOURS)))
              .prefetch_related("lines", "discounts").order_by("placed_at", "pk"))
    out: dict[str, list[dict]] = {"meituan_orders": [], "eleme_orders": []}
    taken: set[tuple[str, str, int]] = set()
    for order in orders:
        shop = shops.get((order.store_id, order.channel))
        if shop is None or order.order_type not in (OrderType.DELIVERY, OrderType.PICKUP):
            continue
        if order.channel == "meituan" and not order.channel_order_id.isdigit():
            continue  # not an id Meituan could have made
        spec = _meituan(order, mappings) if order.channel == "meituan" else _eleme(order, mappings)
        spec["shop"] = shop
        day = timezone.localtime(order.placed_at).strftime("%Y%m%d")
        if order.channel_day_seq and (order.channel, shop, day, order.channel_day_seq) not in taken:
            taken.add((order.channel, shop, day, order.channel_day_seq))
            spec["day_seq"] = order.channel_day_seq
        out[f"{order.channel}_orders"].append(spec)
    return out


def simulator_orders_write(*, brand_id: int, path: Path | str | None = None) -> tuple[Path, int]:
    """Write ``simulator_orders`` to ``path`` (default settings.SIMULATOR_ORDERS_FILE), atomically.
    Returns the path and the number of orders."""
    path = Path(path or settings.SIMULATOR_ORDERS_FILE)
    data = simulator_orders(brand_id=brand_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(partial, path)
    return path, sum(len(specs) for specs in data.values())


def _yuan(amount: Decimal) -> float:
    return float(amount.quantize(CENT))


def _unit(amount: Decimal, quantity: int) -> float:
    return _yuan(amount / quantity) if quantity else 0.0


def _promotions(order: Order) -> list[dict]:
    return [{"name": d.name, "platform": _yuan(d.platform_part), "merchant": _yuan(d.merchant_part)}
            for d in order.discounts.all()]


def _platform_status(order: Order) -> int | str:
    return STATUS_MAP[order.order_type][order.status].for_audience(order.channel)


def _meituan(order: Order, mappings: dict) -> dict:
    lines = []
    for line in order.lines.all():
        mapping = mappings.get(("meituan", line.sku_id))
        lines.append({
            "app_food_code": line.platform_food_code or (mapping.platform_food_code if mapping else line.sku_code),
            "sku_id": line.platform_sku_id or (mapping.platform_sku_id if mapping else line.sku_code),
            "food_name": line.name, "price": _yuan(line.unit_price),
            "box_price": _unit(line.packaging_fee, line.quantity), "quantity": line.quantity,
        })
    return {
        "order_id": int(order.channel_order_id), "status": _platform_status(order),
        "created_at": int(order.placed_at.timestamp()), "lines": lines,
        "pickup": order.order_type == OrderType.PICKUP, "shipping_fee": _yuan(order.delivery_fee),
        "promotions": _promotions(order), "recipient_name": order.contact_name,
        "recipient_phone": order.contact_phone, "recipient_address": (order.address or {}).get("text", ""),
        "caution": order.customer_note, "meal_ready": order.ready_at is not None,
        "courier_name": order.courier_name, "courier_phone": order.courier_phone,
        "refund_status": 2 if order.status == OrderStatus.REFUNDED else 0,
    }


def _eleme(order: Order, mappings: dict) -> dict:
    lines = []
    for line in order.lines.all():
        mapping = mappings.get(("eleme", line.sku_id))
        item = {"name": line.name, "price": _yuan(line.unit_price),
                "package_fee": _unit(line.packaging_fee, line.quantity), "quantity": line.quantity,
                "extend_code": line.sku_code}
        sku_id = line.platform_sku_id or (mapping.platform_sku_id if mapping else "")
        if sku_id:
            item["sku_id"] = sku_id
        lines.append(item)
    return {
        "id": order.channel_order_id, "status": _platform_status(order),
        "created_at": int(order.placed_at.timestamp()), "lines": lines,
        "pickup": order.order_type == OrderType.PICKUP, "deliver_fee": _yuan(order.delivery_fee),
        "promotions": _promotions(order), "consignee": order.contact_name, "phone": order.contact_phone,
        "address": (order.address or {}).get("text", ""), "description": order.customer_note,
        "prepared": order.ready_at is not None, "delivering": order.dispatched_at is not None,
        "refund_status": "successful" if order.status == OrderStatus.REFUNDED else "noRefund",
    }
