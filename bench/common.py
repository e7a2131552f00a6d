"""Shared plumbing of the benchmarks: Django setup on a dedicated database,
fixtures, timing, a raw psycopg connection for baselines, and a gunicorn
server on a free localhost port for the HTTP benches.

Benchmarks wipe the database they run on, so they refuse any database whose
name does not contain "bench" or start with "test_" (pytest's test database)
unless BENCH_ALLOW_ANY_DB=1.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/oc_bench"


# --- Django -----------------------------------------------------------------
def setup_django() -> None:
    """Configure Django for a benchmark run (no-op when already configured, e.g. under pytest)."""
    from django.conf import settings

    if not settings.configured:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
        # The benches start the simulator on a free port: let the adapters call it.
        os.environ.setdefault("OUTBOUND_URL_ALLOWED_HOSTS", "127.0.0.1:*")
        if str(PROJECT_DIR) not in sys.path:
            sys.path.insert(0, str(PROJECT_DIR))
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def database_prepare() -> None:
    """Check the database is disposable and PostgreSQL, then migrate it."""
    from django.core.management import call_command
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql":
        raise SystemExit(f"benchmarks need PostgreSQL (DATABASE_URL); got {connection.vendor}")
    if not ("bench" in name or name.startswith("test_")) and os.environ.get("BENCH_ALLOW_ANY_DB") != "1":
        raise SystemExit(f"refusing to wipe database {name!r}: use one named *bench* (or BENCH_ALLOW_ANY_DB=1)")
    call_command("migrate", interactive=False, verbosity=0)


def database_wipe() -> None:
    """Empty every table (the benchmarks create all the data they use)."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


def database_url() -> str:
    """A URL for the database Django is connected to (for gunicorn and psycopg)."""
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = s["HOST"] or "127.0.0.1"
    port = s["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


def raw_connect():
    """A plain psycopg connection (autocommit off) to the same database."""
    import psycopg
    from django.db import connection

    s = connection.settings_dict
    return psycopg.connect(dbname=s["NAME"], user=s["USER"] or None, password=s.get("PASSWORD") or None,
                           host=s["HOST"] or None, port=s["PORT"] or None)


def close_thread_connection() -> None:
    """Worker threads open their own Django connection; close it when done."""
    from django.db import connection

    connection.close()


# --- fixtures ---------------------------------------------------------------
@dataclass
class Shop:
    brand: object
    store: object
    category: object


def shop_create(*, code: str = "bench") -> Shop:
    from accounts.models import Brand, Store
    from catalog.models import Category

    brand = Brand.objects.create(code=code, name=f"Bench {code}")
    store = Store.objects.create(brand=brand, code=f"{code}-s1", name="Bench store", delivery_fee=Decimal("5.00"))
    category = Category.objects.create(brand=brand, name="Bench")
    return Shop(brand=brand, store=store, category=category)


def sku_create(*, shop: Shop, code: str, stock: int | None = None, stock_mode: str | None = None,
               price: str = "12.00", packaging_fee: str = "1.00"):
    """A SKU sold by the shop's store; tracked with ``stock`` units when given."""
    from catalog.models import Product, Sku, StockDeductionMode, StoreSku
    from inventory.services import stock_set

    product = Product.objects.create(brand=shop.brand, category=shop.category, name=f"Dish {code}")
    sku = Sku.objects.create(brand=shop.brand, product=product, code=code, price=Decimal(price),
                             packaging_fee=Decimal(packaging_fee),
                             stock_mode=stock_mode or StockDeductionMode.ON_ORDER)
    StoreSku.objects.create(store=shop.store, sku=sku)
    if stock is not None:
        stock_set(store_id=shop.store.pk, sku_id=sku.pk, on_hand=stock, note="bench")
    return sku


def customers_create(*, shop: Shop, count: int, prefix: str = "139") -> list:
    from accounts.models import Customer

    return Customer.objects.bulk_create([
        Customer(brand=shop.brand, phone=f"{prefix}{i:08d}", name=f"buyer{i}") for i in range(count)
    ])


def customer_tokens(customers) -> list[str]:
    from accounts.services import customer_token_issue

    return [customer_token_issue(customer=c).token for c in customers]


# --- timing and output ------------------------------------------------------
class Stopwatch:
    def __enter__(self):
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        return False


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline > 0 else 0.0


def run_threads(target, args_list: list[tuple]) -> float:
    """Start one thread per args tuple, release them together, return the wall time
    from the release until the last one finished."""
    barrier = threading.Barrier(len(args_list) + 1)
    errors: list[BaseException] = []

    def body(*args):
        try:
            barrier.wait()
            target(*args)
        except BaseException as exc:  # surfaced below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=body, args=args, daemon=True) for args in args_list]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds


def line(label: str, value: float, unit: str, base_label: str, base_value: float, base_unit: str,
         aim: float | None = None) -> str:
    text = (f"{label}: {value:.1f} {unit} | baseline {base_label}: {base_value:.1f} {base_unit} "
            f"| ratio {ratio(value, base_value):.2f}")
    if aim is not None:
        text += f" (aim >= {aim})"
    return text


def emit(result: dict) -> None:
    """The machine-readable last line of every bench."""
    print("BENCH_JSON " + json.dumps(result, sort_keys=True, default=str), flush=True)


def check(label: str, ok: bool, detail: str = "") -> bool:
    print(f"  check {label}: {'OK' if ok else 'FAILED'}{' (' + detail + ')' if detail else ''}", flush=True)
    return ok


# --- gunicorn -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornServer:
    """``with GunicornServer(workers=2, threads=8) as server: server.url(...)``

    Runs config.wsgi under gunicorn (gthread workers) on a free localhost
    port against the same database; stopped with SIGTERM (then SIGKILL) on
    exit. The user throttle is raised so the bench measures the code, not
    the rate limit; everything else is the production settings module.
    """

    def __init__(self, *, workers: int = 2, threads: int = 4, env: dict | None = None) -> None:
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "THROTTLE_USER": "1000000/min",
            "THROTTLE_ANON": "1000000/min",
            "LOG_LEVEL": "ERROR",
            "DEBUG": "false",
            "CONN_MAX_AGE": "600",
            "PYTHONPATH": str(PROJECT_DIR),
        })
        env.update(self.extra_env)
        command = [sys.executable, "-m", "gunicorn", "config.wsgi:application",
                   "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                   "--threads", str(self.threads), "--worker-class", "gthread",
                   "--backlog", "512", "--timeout", "120", "--log-level", "warning"]
        self.process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=self.log, stderr=self.log)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}); log: {self.log.name}")
            try:
                # Every worker must be up: hit it a few times.
                if all(requests.get(self.url("/ping/"), timeout=2).status_code == 200 for _ in range(self.workers * 2)):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"gunicorn did not answer within {timeout}s; log: {self.log.name}")

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()
        return False


@contextmanager
def sessions(count: int, *, tokens: list[str] | None = None):
    """``count`` requests.Session objects (one per client thread), with a Bearer token each."""
    import requests

    made = []
    for i in range(count):
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
        session.mount("http://", adapter)
        if tokens:
            session.headers["Authorization"] = f"Bearer {tokens[i % len(tokens)]}"
        made.append(session)
    try:
        yield made
    finally:
        for session in made:
            session.close()
