"""Plans for the demo orders of ``manage.py seed_demo``.

A plan is pure data (codes, not rows), so the same ``--orders N`` always yields
the same orders: plan ``i`` depends only on ``i``. The first plans cover every
(order type, status) reachable in that type's machine; the rest follow a
realistic mix. Each plan walks its machine along a real path of transitions,
so every status is reached the way production reaches it.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from core.actors import ActorKind
from orders.models import Channel, OrderStatus, OrderType
from orders.models.machines import INITIAL_STATUS, machine_class_for, machine_states

S = OrderStatus
PLATFORMS = Channel.platforms()
SEED = "seed_demo-v1"

# Which channels sell which order type, with weights for the realistic mix.
CHANNEL_WEIGHTS = {
    OrderType.DELIVERY: {"meituan": 40, "eleme": 30, "miniapp": 20, "app": 10},
    OrderType.PICKUP: {"meituan": 15, "eleme": 10, "miniapp": 50, "app": 25},
    OrderType.DINE_IN: {"miniapp": 80, "app": 20},
    OrderType.VOUCHER: {"miniapp": 60, "app": 40},
}
TYPE_WEIGHTS = {OrderType.DELIVERY: 45, OrderType.PICKUP: 30, OrderType.DINE_IN: 17, OrderType.VOUCHER: 8}
STATUS_WEIGHTS = {
    S.PENDING_PAYMENT: 3, S.PAID: 4, S.ACCEPTED: 5, S.READY: 4, S.DISPATCHED: 4,
    S.DELIVERED: 12, S.PICKED_UP: 12, S.SERVED: 12, S.ISSUED: 12, S.REDEEMED: 10,
    S.COMPLETED: 40, S.CANCELLED: 8, S.REFUNDED: 3,
}
BEFORE_HANDOVER = {S.PAID, S.ACCEPTED, S.READY}
# Statuses an order sits in only briefly: such orders are placed minutes ago.
IN_FLIGHT = {S.PENDING_PAYMENT, S.PAID, S.ACCEPTED, S.READY, S.DISPATCHED}
# Minutes each move usually takes after the previous one.
STEP_MINUTES = {
    "pay": 1, "accept": 2, "reject": 3, "mark_ready": 14, "dispatch": 4, "deliver": 26, "pick_up": 9,
    "serve": 2, "issue": 1, "redeem": 60 * 26, "cancel": 4, "refund": 90,
}


@dataclass(frozen=True)
class Step:
    action: str
    actor_kind: str


@dataclass
class OrderPlan:
    key: str
    order_type: str
    channel: str
    target: str
    store_code: str
    steps: list[Step]
    line_codes: list[tuple[str, int]]
    placed_days_ago: int
    placed_minutes: int
    customer_index: int | None
    address_index: int
    note_index: int
    courier_index: int
    pickup_code: str
    step_gaps: list[int] = field(default_factory=list)

    @property
    def is_platform(self) -> bool:
        return self.channel in PLATFORMS


def transitions_of(order_type: str) -> dict[tuple[str, str], tuple[str, str, list[str]]]:
    """(source, action) -> (action, target, allowed actor kinds) for one machine."""
    machine = machine_class_for(order_type)
    edges = {}
    for transition in machine._meta.get_field("status").get_all_transitions(machine):
        edges[(str(transition.source), transition.name)] = (
            transition.name, str(transition.target), list(transition.custom.get("actors") or []),
        )
    return edges


Edge = tuple[str, str, list[str], str]


def paths_to(order_type: str, *, start: str, target: str) -> list[list[Edge]]:
    """Every simple path of (source, action, actor kinds, target) edges from ``start`` to ``target``,
    shortest first."""
    edges = transitions_of(order_type)
    found: list[list[Edge]] = []

    def walk(status: str, seen: set[str], path: list[Edge]) -> None:
        if status == target:
            found.append(list(path))
            return
        for (source, _name), (action, next_status, actors) in sorted(edges.items()):
            if source == status and next_status not in seen:
                walk(next_status, seen | {next_status}, [*path, (source, action, actors, next_status)])

    walk(start, {start}, [])
    return sorted(found, key=lambda p: (len(p), [edge[1] for edge in p]))


def start_status(channel: str) -> str:
    """Platform orders arrive paid; our own channels start before payment."""
    return S.PAID.value if channel in PLATFORMS else INITIAL_STATUS.value


def reachable_pairs() -> list[tuple[str, str]]:
    return [(t.value, status) for t in OrderType for status in machine_states(t)]


def _actor_kind(*, source: str, action: str, allowed: list[str], channel: str, auto_accept: bool,
                rng: random.Random) -> str:
    is_platform = channel in PLATFORMS
    if action == "pay":
        wanted = ActorKind.PAYMENT
    elif action == "accept":
        wanted = ActorKind.SYSTEM if auto_accept else rng.choice([ActorKind.POS, ActorKind.POS, ActorKind.STAFF])
    elif action in ("reject", "mark_ready", "pick_up", "serve", "redeem"):
        wanted = rng.choice([ActorKind.POS, ActorKind.POS, ActorKind.STAFF])
    elif action in ("dispatch", "deliver"):
        wanted = ActorKind.PLATFORM if is_platform else ActorKind.POS
    elif action == "cancel" and is_platform:
        wanted = ActorKind.PLATFORM
    elif action == "cancel" and source == S.PENDING_PAYMENT:
        wanted = rng.choice([ActorKind.CUSTOMER, ActorKind.SYSTEM])  # SYSTEM: the unpaid-order expiry
    elif action == "cancel":
        wanted = rng.choice([ActorKind.CUSTOMER, ActorKind.STAFF])
    elif action == "refund":
        wanted = ActorKind.PLATFORM if is_platform else ActorKind.STAFF
    else:  # complete, issue: jobs
        wanted = ActorKind.SYSTEM
    wanted = str(wanted.value)
    return wanted if wanted in allowed else allowed[0]


def _weighted(rng: random.Random, weights: dict) -> str:
    keys = list(weights)
    return str(rng.choices(keys, weights=[weights[k] for k in keys])[0])


def _placed(target: str, rng: random.Random) -> tuple[int, int]:
    """(days ago, minutes): minutes ago when days is 0, else the minute of that local day."""
    if target == S.PENDING_PAYMENT:
        return 0, rng.randint(1, 8)
    if target == S.PAID:
        # Waiting for the store: placed just before the demo starts, well inside the
        # acceptance limit (ACCEPT_TIMEOUTS, 5 min on the platforms) and inside the
        # window of orders the POS demo client takes on (its --since, 5 min).
        return 0, rng.randint(1, 3)
    if target in IN_FLIGHT:
        return 0, rng.randint(6, 50)
    if target == S.COMPLETED:
        days = rng.randint(9, 20)
    elif target == S.CANCELLED:
        days = rng.randint(1, 14)
    else:  # confirmed, issued, redeemed, refunded: inside the after-sales window
        days = rng.randint(2, 5)
    lunch_or_dinner = rng.choice([(11 * 60, 13 * 60 + 30), (17 * 60, 20 * 60 + 30)])
    return days, rng.randint(*lunch_or_dinner)


def order_plans(*, count: int, store_codes: list[str], auto_accept_stores: set[str], dish_codes: list[str],
                voucher_codes: list[str], sold_out: set[tuple[str, str]], customers: int, addresses: int,
                notes: int, couriers: int) -> list[OrderPlan]:
    """``count`` plans; the first ones cover every reachable (type, status)."""
    coverage = reachable_pairs()
    plans = []
    for index in range(count):
        rng = random.Random(f"{SEED}-{index}")
        if index < len(coverage):
            order_type, target = coverage[index]
            channels = list(CHANNEL_WEIGHTS[order_type])
            if target == S.PENDING_PAYMENT:
                channels = [c for c in channels if c not in PLATFORMS]
            elif target == S.PAID and set(channels) & set(PLATFORMS):
                # The orders waiting for the store: delivery on one platform, pickup on the
                # other, so each platform has one to accept when the demo starts.
                channels = [c for c in channels if c in PLATFORMS]
            channel = channels[index % len(channels)]
        else:
            order_type = _weighted(rng, TYPE_WEIGHTS)
            channel = _weighted(rng, CHANNEL_WEIGHTS[order_type])
            states = [s for s in machine_states(order_type)
                      if not (channel in PLATFORMS and s == S.PENDING_PAYMENT)]
            target = _weighted(rng, {s: STATUS_WEIGHTS[s] for s in states})
        stores = store_codes
        if target == S.PAID and order_type != OrderType.VOUCHER:
            # An auto-accepting store never leaves an order waiting in ``paid``.
            stores = [code for code in store_codes if code not in auto_accept_stores]
        store_code = stores[index % len(stores)] if index < len(coverage) else rng.choice(stores)
        placed = _placed(target, rng)
        candidates = paths_to(order_type, start=start_status(channel), target=target)
        if channel not in PLATFORMS:
            # A paid own-channel order that is cancelled is refunded through the
            # payment provider after commit; demo data stays offline, so its
            # cancelled orders are the unpaid ones.
            candidates = [path for path in candidates
                          if not any(t == S.CANCELLED and source != S.PENDING_PAYMENT for source, _a, _k, t in path)]
        # The demo's refunds are the after-sales kind: asked once the goods were handed over
        # (a refund before that is possible, but the demo's stories are about after-sales).
        candidates = [path for path in candidates
                      if not any(action == "refund" and source in BEFORE_HANDOVER for source, action, _k, _t in path)]
        path = candidates[0] if index < len(coverage) else rng.choice(candidates)
        steps = [
            Step(action, _actor_kind(source=source, action=action, allowed=actors, channel=channel,
                                     auto_accept=store_code in auto_accept_stores, rng=rng))
            for source, action, actors, _target in path
        ]
        menu = voucher_codes if order_type == OrderType.VOUCHER else dish_codes
        menu = [code for code in menu if (store_code, code) not in sold_out]
        picked = rng.sample(menu, k=1 if order_type == OrderType.VOUCHER else rng.randint(1, 4))
        line_codes = [(code, rng.choice([1, 1, 1, 2, 2, 3]) if order_type != OrderType.VOUCHER else 1)
                      for code in picked]
        plans.append(OrderPlan(
            key=f"demo-{index:04d}", order_type=order_type, channel=channel, target=target,
            store_code=store_code, steps=steps, line_codes=line_codes,
            placed_days_ago=placed[0], placed_minutes=placed[1],
            customer_index=None if channel in PLATFORMS else rng.randrange(customers),
            address_index=rng.randrange(addresses), note_index=rng.randrange(notes),
            courier_index=rng.randrange(couriers), pickup_code=f"A{rng.randint(100, 999)}",
            step_gaps=[STEP_MINUTES.get(step.action, 1) + rng.randint(0, 3) for step in steps],
        ))
    return plans


def placed_at_of(plan: OrderPlan, *, now: datetime) -> datetime:
    if plan.placed_days_ago == 0:
        return now - timedelta(minutes=plan.placed_minutes)
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=plan.placed_days_ago) + timedelta(minutes=plan.placed_minutes)


def platform_day_seqs(plans: list[OrderPlan], *, now: datetime) -> dict[str, int]:
    """The platform's day sequence number (日流水号) of each platform plan: 1, 2, ... per
    channel, store and local day in the order the orders were placed, as the platform
    numbers them (the simulator continues after the highest)."""
    days: dict[tuple[str, str, object], list[tuple[datetime, str]]] = {}
    for plan in plans:
        if plan.is_platform:
            placed_at = placed_at_of(plan, now=now)
            day = timezone.localtime(placed_at).date()
            days.setdefault((plan.channel, plan.store_code, day), []).append((placed_at, plan.key))
    return {key: seq for placed in days.values() for seq, (_at, key) in enumerate(sorted(placed), start=1)}


def step_times(*, placed_at: datetime, plan: OrderPlan, now: datetime, after_sales_days: int) -> list[datetime]:
    """When each step happened: after the previous one, never in the future."""
    times, moment = [], placed_at
    for step, gap in zip(plan.steps, plan.step_gaps, strict=True):
        if step.action == "complete":
            moment = moment + timedelta(days=after_sales_days, minutes=gap)
        else:
            moment = moment + timedelta(minutes=gap)
        moment = min(moment, now)
        times.append(moment)
    return times
