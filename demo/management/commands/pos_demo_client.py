"""``manage.py pos_demo_client``: a stand-in cashier for each demo store.

Talks to the web process over real HTTP, as a POS vendor would (docs/pos-api.md):
long-polls ``GET /api/pos/v1/events`` with each demo terminal's token, acknowledges
the events, accepts each new order, marks it ready after ``--ready-after`` seconds,
dispatches delivery orders with a demo rider (the store's own riders), and completes
the order ``--complete-after`` seconds later. One log line per action.

- Orders placed more than ``--since`` seconds before the client started (e.g. the
  seeded demo orders) are left to people: their events are acknowledged, nothing else.
- Every POST carries an ``Idempotency-Key`` derived from the order and the verb, so a
  retry after a lost answer changes nothing twice.
- 409 (the order moved on: cancelled by the platform, accepted by auto-accept or by a
  person): logged, and the order is re-read and planned from its current state.
- Connection errors (the web process not up yet, restarting): retried with backoff.
- SIGTERM / SIGINT stop it.

Started by ``manage.py run_stack`` (settings.STACK_EXTRA_PROCESSES) unless
``STACK_RUN_POS_CLIENT=false``. It needs no database: the tokens are the demo tokens
of ``seed_demo`` (``demo-pos-<store code>``) unless ``--token`` is given.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo import data as demo_data

DEMO_COURIER = {"courier_name": "演示骑手", "courier_phone": "13700000000"}
MAX_WAIT = 25
MAX_BACKOFF = 15.0


def _default_base_url() -> str:
    bind = settings.WEB_BIND
    host, _sep, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


class Unreachable(Exception):
    """The web process did not answer (connection refused, timeout, 5xx, 429)."""


class DemoTerminal:
    """One store's terminal: a long-poll loop and the order steps it has planned."""

    def __init__(self, *, token: str, label: str, base_url: str, ready_after: float, complete_after: float,
                 since: datetime, stop: threading.Event, log) -> None:
        self.token, self.label, self.base_url = token, label, base_url.rstrip("/") + "/api/pos/v1/"
        self.ready_after, self.complete_after, self.since = ready_after, complete_after, since
        self.stop, self._log = stop, log
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})
        self.due: dict[str, tuple[float, str]] = {}  # order_no -> (monotonic time, verb)
        self.seen: OrderedDict[str, None] = OrderedDict()  # event ids handled (the feed is at-least-once)

    def log(self, message: str) -> None:
        self._log(f"[{self.label}] {message}")

    # --- HTTP ---------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, timeout: float = 10.0, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, self.base_url + path, timeout=(3.05, timeout), **kwargs)
        except requests.RequestException as exc:
            raise Unreachable(f"{type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise Unreachable(f"HTTP {response.status_code}")
        return response

    def _post(self, path: str, body: dict, *, key: str) -> requests.Response:
        return self._call("POST", path, json=body, headers={"Idempotency-Key": key[:64]})

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        backoff, down_since = 1.0, None
        while not self.stop.is_set():
            try:
                self.run_due()
                events = self.poll()
                if down_since is not None:
                    self.log(f"web reachable again after {time.monotonic() - down_since:.0f}s")
                    down_since = None
                backoff = 1.0
                self.handle(events)
            except Unreachable as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    self.log(f"web not reachable at {self.base_url} ({exc}); retrying with backoff")
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except PermissionError as exc:
                self.log(str(exc))
                self.stop.wait(30)
            except Exception as exc:  # a bug or an unexpected answer: keep the demo going
                self.log(f"error: {type(exc).__name__}: {exc}")
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def poll(self) -> list[dict]:
        wait = MAX_WAIT
        if self.due:
            wait = max(1, min(MAX_WAIT, math.ceil(min(when for when, _v in self.due.values()) - time.monotonic())))
        response = self._call("GET", "events", params={"wait": wait, "limit": 50}, timeout=wait + 10)
        if response.status_code == 401:
            raise PermissionError("token rejected (401): run `manage.py seed_demo`, or pass --token")
        response.raise_for_status()
        return response.json()["events"]

    def handle(self, events: list[dict]) -> None:
        if not events:
            return
        for event in events:
            if event["id"] in self.seen:
                continue
            self.on_event(event)
            self.seen[event["id"]] = None
            while len(self.seen) > 5000:
                self.seen.popitem(last=False)
        response = self._post("events/ack", {"ids": [int(e["id"]) for e in events]}, key=f"ack-{uuid.uuid4().hex}")
        response.raise_for_status()

    def on_event(self, event: dict) -> None:
        order, kind = event["order"], event["type"]
        order_no = order["order_no"]
        if kind == "order.created":
            if datetime.fromisoformat(order["placed_at"]) < self.since:
                return  # an order from before the client started (seed data): people handle it
            self.log(f"new order {order_no} ({order['channel']} {order['order_type']} "
                     f"{order.get('channel_order_no') or ''} total {order['amounts']['total']}), "
                     f"status {order['status']}")
            self.plan(order)
        elif kind == "order.cancelled":
            if self.due.pop(order_no, None) is not None:
                self.log(f"order {order_no} cancelled ({order.get('status')}); dropped")
        elif order_no in self.due:
            self.log(f"{kind} for {order_no}")

    # --- the steps of one order ---------------------------------------------------------
    def plan(self, order: dict) -> None:
        """The next step from the order's current state: accept and dispatch at once,
        ready and complete after their delays; nothing left -> forget it."""
        order_no, allowed = order["order_no"], order.get("allowed_actions") or []
        now = time.monotonic()
        if "accept" in allowed:
            self.due[order_no] = (now, "accept")
        elif "ready" in allowed:
            self.due[order_no] = (now + self.ready_after, "ready")
        elif "dispatch" in allowed:
            self.due[order_no] = (now, "dispatch")
        elif "complete" in allowed:
            self.due[order_no] = (now + self.complete_after, "complete")
        else:
            self.due.pop(order_no, None)

    def run_due(self) -> None:
        now = time.monotonic()
        for order_no, (when, verb) in sorted(self.due.items(), key=lambda item: item[1][0]):
            if when <= now and not self.stop.is_set():
                self.act(order_no, verb)

    def act(self, order_no: str, verb: str) -> None:
        body = {"dispatch": DEMO_COURIER}.get(verb, {})
        response = self._post(f"orders/{order_no}/{verb}", body, key=f"demo-{verb}-{order_no}")
        if response.status_code == 200:
            order = response.json()
            extra = {"ready": f", pickup code {order.get('pickup_code')}",
                     "accept": f", prep {order.get('prep_minutes')} min"}.get(verb, "")
            self.log(f"{verb} {order_no} -> {order['status']}{extra}")
            self.plan(order)
        elif response.status_code == 409:
            detail = _error(response).get("detail") or {}
            self.log(f"{verb} {order_no}: 409, the order moved on (status {detail.get('status', '?')})")
            fresh = self._call("GET", f"orders/{order_no}")
            if fresh.status_code == 200:
                self.plan(fresh.json())
            else:
                self.due.pop(order_no, None)
        else:
            code = _error(response).get("code", "")
            self.log(f"{verb} {order_no}: HTTP {response.status_code} {code}; order dropped")
            self.due.pop(order_no, None)


def _error(response: requests.Response) -> dict:
    try:
        return response.json().get("error") or {}
    except ValueError:
        return {}


class Command(BaseCommand):
    help = "Demo POS: accept, ready, dispatch and complete the demo stores' new orders over the POS API."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=settings.POS_DEMO_BASE_URL or _default_base_url(),
                            help="web process root (default http://<WEB_BIND>, i.e. http://127.0.0.1:8000)")
        parser.add_argument("--token", action="append", dest="tokens", default=None,
                            help="a terminal token (repeatable); default: the seed_demo tokens of the demo stores")
        parser.add_argument("--ready-after", type=float, default=20.0, help="seconds from accept to ready (20)")
        parser.add_argument("--complete-after", type=float, default=20.0,
                            help="seconds from ready / dispatch to complete (20)")
        parser.add_argument("--since", type=float, default=300.0,
                            help="only orders placed at most this many seconds before start (300)")

    def handle(self, *args, base_url: str, tokens, ready_after: float, complete_after: float, since: float,
               **options):
        if ready_after < 0 or complete_after < 0 or since < 0:
            raise CommandError("delays must be zero or more")
        if tokens:
            terminals = [(token, f"terminal {n}") for n, token in enumerate(tokens, start=1)]
        else:
            terminals = [(demo_data.pos_demo_token(store["code"]), store["code"]) for store in demo_data.STORES]
        stop = threading.Event()
        lock = threading.Lock()

        def log(message: str) -> None:
            with lock:
                self.stdout.write(f"{datetime.now():%H:%M:%S} pos-demo {message}")
                self.stdout.flush()

        def on_signal(signum, frame):
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        started = datetime.now().astimezone() - timedelta(seconds=since)
        threads = []
        for token, label in terminals:
            terminal = DemoTerminal(token=token, label=label, base_url=base_url, ready_after=ready_after,
                                    complete_after=complete_after, since=started, stop=stop, log=log)
            thread = threading.Thread(target=terminal.run, name=f"pos-demo-{label}", daemon=True)
            thread.start()
            threads.append(thread)
        log(f"{len(threads)} terminal(s) polling {base_url}/api/pos/v1/events "
            f"(ready after {ready_after:g}s, complete after {complete_after:g}s)")
        while not stop.is_set():
            stop.wait(0.5)
        log("stopping")
        # A long poll may be in flight; the threads are daemons, so leave without waiting for it.
        for thread in threads:
            thread.join(timeout=1)
