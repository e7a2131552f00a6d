"""Settings, all read from the environment (see .env.example for every name).

With no DATABASE_URL the project runs on an embedded SQLite database (WAL,
immediate transactions, busy timeout); with no REDIS_URL, Celery tasks run
inline and the in-process scheduler (``manage.py run_scheduler``) runs the
periodic jobs instead of Celery beat.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS and browser protections (docs/security.md "Production settings") ------
# The defaults suit `make run` on http://127.0.0.1:8000; docs/operations.md
# ("Production environment") lists the values for a deployment, with which
# `manage.py check --deploy` prints nothing.
# Behind a load balancer that terminates TLS: trust its X-Forwarded-Proto header.
if env.bool("SECURE_PROXY_SSL", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Health probes of the load balancer may speak plain HTTP (paths without the leading slash).
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ping/$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = env.bool("SECURE_CONTENT_TYPE_NOSNIFF", default=True)
SECURE_REFERRER_POLICY = env.str("SECURE_REFERRER_POLICY", default="same-origin")
X_FRAME_OPTIONS = env.str("X_FRAME_OPTIONS", default="DENY")

# --- Client addresses --------------------------------------------------------------
# Reverse proxies in front of the web process that append to X-Forwarded-For; the
# client is the entry this many places from the right (core.clientip). 0: the header
# is ignored and the connecting address is the client. Feeds DRF's NUM_PROXIES and
# django-axes (AXES_CLIENT_IP_CALLABLE).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    # Our apps, bottom layer first (STYLE.md rule 1).
    "core",
    "accounts",
    "catalog",
    "inventory",
    "promotions",
    "payments",
    "orders",
    "aftersales",
    "channels",
    "pos",
    "storefront",
    "backoffice",
    "demo",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
SQLITE_PATH = env.str("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3"))
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the single writer; IMMEDIATE takes the
        # write lock at BEGIN so two writers queue instead of deadlocking.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=20),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, but a kept connection that served a request without an error less
        # than this many seconds ago skips the health check's SELECT 1 (core.postgres; 0: never skips).
        DATABASES["default"]["ENGINE"] = "core.postgres"
        DATABASES["default"]["HEALTH_CHECK_BYPASS_SECONDS"] = env.float("DB_HEALTH_CHECK_BYPASS_SECONDS", default=0.5)
    # Server-side parameter binding: psycopg prepares a statement the connection has run
    # DB_PREPARE_THRESHOLD times and reuses its plan (parsing and planning were ~40% of the
    # database's CPU on the order paths). Behind PgBouncer in transaction mode set
    # DB_SERVER_SIDE_BINDING=false (prepared statements do not survive its connection swaps).
    if env.bool("DB_SERVER_SIDE_BINDING", default=True):
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True, prepare_threshold=env.int("DB_PREPARE_THRESHOLD", default=2))
DATABASES["default"].setdefault("TEST", {})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker ---------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Without Redis: the in-memory transport, named with a host (a bare "memory://" makes kombu
# warn "No hostname was supplied" each time an eager task is serialised).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Periodic jobs: one declaration feeds Celery beat and the embedded scheduler.
# Each entry names a Celery task and its interval in seconds.
PERIODIC_JOBS: dict[str, dict] = {
    "purge-idempotency-records": {"task": "core.purge_idempotency_records", "every": 3600},
    "purge-login-codes": {"task": "accounts.purge_login_codes", "every": 3600},
    "expire-unpaid-orders": {"task": "orders.expire_unpaid", "every": env.int("EXPIRY_SWEEP_SECONDS", default=30)},
    "reconcile-payments": {"task": "orders.reconcile_payments", "every": 60},
    "complete-after-sales": {"task": "orders.complete_after_sales", "every": 600},
    "expire-coupons": {"task": "promotions.expire_coupons", "every": 3600},
    "retry-owed-refunds": {"task": "orders.retry_owed_refunds", "every": 300},
    "handle-unaccepted-orders": {"task": "orders.handle_unaccepted", "every": 60},
    "after-sales-deadlines": {"task": "aftersales.deadlines", "every": 60},
    "after-sales-refunds": {"task": "aftersales.refunds_sync", "every": 300},
    "store-hours": {"task": "accounts.store_hours", "every": 60},
    "reconcile-store-states": {"task": "channels.reconcile_store_states",
                               "every": env.int("STORE_STATE_RECONCILE_SECONDS", default=300)},
    # The dashboard's figures (backoffice.rollups): how stale they may be.
    "sales-rollups": {"task": "backoffice.sales_rollups", "every": env.int("SALES_ROLLUP_SECONDS", default=60)},
}
# Acceptance time limit per channel (seconds after payment). A paid order the store has
# not accepted by then: own channels are rejected ("store_timeout", refunded); platform
# orders are flagged for a person, the platform cancels them on its own timer
# (orders.services.acceptance.orders_handle_unaccepted). A channel not listed has no limit.
ACCEPT_TIMEOUTS = {"meituan": 300, "eleme": 300, "miniapp": 600, "app": 600}
CUSTOMER_OTP_DEV_ECHO = env.bool("CUSTOMER_OTP_DEV_ECHO", default=DEBUG)
# Customer login codes (accounts.services): valid this long, this many guesses each.
LOGIN_CODE_TTL_SECONDS = env.int("LOGIN_CODE_TTL_SECONDS", default=300)
LOGIN_CODE_MAX_ATTEMPTS = env.int("LOGIN_CODE_MAX_ATTEMPTS", default=5)
# How many codes may be sent, as "count/period" (period: second, minute, hour, day):
# per phone number of a brand, and per client address (core.clientip). Beyond: 429.
LOGIN_CODE_PHONE_RATES = env.list("LOGIN_CODE_PHONE_RATES", default=["1/minute", "10/day"])
LOGIN_CODE_IP_RATES = env.list("LOGIN_CODE_IP_RATES", default=["20/hour"])

# Demo processes started by `manage.py run_stack` beside web and jobs: the simulator with
# the demo shops (simulator/demo_config.json: the shops seed_demo binds, each making
# two orders a minute, pushed to our receivers at web's address) and the platform orders
# the order center already has (SIMULATOR_ORDERS_FILE, written by seed_demo), and the POS
# demo client (pos_demo_client). run_stack fills in {python} and {web_url}.
SIMULATOR_ORDERS_FILE = env.str("SIMULATOR_ORDERS_FILE", default=str(BASE_DIR / "var" / "simulator_orders.json"))
# run_stack's web process: its address and worker count (the --bind and --web-workers defaults).
WEB_BIND = env.str("WEB_BIND", default="127.0.0.1:8000")
WEB_WORKERS = env.int("WEB_WORKERS", default=2)
# pos_demo_client's web root (its --base-url default); empty: http://<WEB_BIND>.
POS_DEMO_BASE_URL = env.str("POS_DEMO_BASE_URL", default="")
STACK_EXTRA_PROCESSES = {}
if env.bool("STACK_RUN_SIMULATOR", default=True):
    STACK_EXTRA_PROCESSES["simulator"] = [
        "{python}", "-m", "simulator", "--port", env.str("SIMULATOR_PORT", default="8100"),
        "--config", str(BASE_DIR / "simulator" / "demo_config.json"), "--push-base-url", "{web_url}",
        "--orders", SIMULATOR_ORDERS_FILE,
    ]
if env.bool("STACK_RUN_POS_CLIENT", default=True):
    STACK_EXTRA_PROCESSES["pos-client"] = ["{python}", "manage.py", "pos_demo_client", "--base-url", "{web_url}"]
# Where `manage.py seed_demo` points the demo stores' platform bindings (the simulator).
SIMULATOR_BASE_URL = env.str("SIMULATOR_BASE_URL", default="http://127.0.0.1:8100")
# Hosts a URL typed by a tenant (a binding's base URL) may point at: "host:port", "host"
# (the scheme's default port) or "host:*" (any port); core.urlguard. Production: the
# platforms' API hosts only. Default: the simulator (the demo).
OUTBOUND_URL_ALLOWED_HOSTS = env.list(
    "OUTBOUND_URL_ALLOWED_HOSTS",
    default=sorted({"127.0.0.1:8100", "localhost:8100", urlsplit(SIMULATOR_BASE_URL).netloc.rpartition("@")[2]}),
)
CELERY_BEAT_SCHEDULE = {
    name: {"task": job["task"], "schedule": float(job["every"])} for name, job in PERIODIC_JOBS.items()
}

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "admin:login"
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Admin login lockout (django-axes; docs/security.md "Abuse limits") ---------------
# After AXES_FAILURE_LIMIT failed logins for one user name (from any address), or from
# one address (for any user name), further logins of that name or from that address are
# refused for AXES_COOLOFF_MINUTES, counted from the last failure.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.int("AXES_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "core.clientip.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.admin_lockout_response"
# A success does not wipe the failures: it would wipe those of the same address too, and a
# staff user of another brand could then interleave logins of their own account with guesses.
AXES_RESET_ON_SUCCESS = False
# A failure while locked out does not extend the lock: "try again in N minutes" holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False  # no start-up log line; lockouts are still logged

# --- i18n -----------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static ---------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- REST -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.jsonparse.BoundedJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.JSONFirstNegotiation",
    "DEFAULT_SCHEMA_CLASS": "core.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "core.api.DefaultPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="120/min"),
        "user": env.str("THROTTLE_USER", default="1200/min"),
    },
    # The client address of the anonymous throttle: the same rule as core.clientip.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Unified Order Center API",
    "DESCRIPTION": "Customer API v1, POS API v1 and back-office API v1 of the unified order center. "
                   "Errors have one shape (the Error component). Authorize with a customer token "
                   "(customerToken: the token alone) or a POS terminal token (posTerminalToken: "
                   "`Token <token>`); the back-office API uses the staff session of the admin.",
    "TAGS": [
        {"name": "customer", "description": "Customer API v1 (/api/v1/): mini-program and App."},
        {"name": "pos", "description": "POS API v1 (/api/pos/v1/): store terminals."},
        {"name": "backoffice", "description": "Back-office API v1 (/api/backoffice/v1/): staff."},
    ],
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"OrderStatusEnum": "orders.models.OrderStatus",
                            "AfterSalesKindEnum": "aftersales.models.AfterSalesKind",
                            "AfterSalesStatusEnum": "aftersales.models.AfterSalesStatus",
                            "AfterSalesReasonCodeEnum": "aftersales.models.AfterSalesReasonCode"},
}

# Deepest nesting of arrays and objects accepted in a JSON body (core.jsonparse); deeper is a 400.
JSON_MAX_DEPTH = 32

# --- Idempotency ------------------------------------------------------------
IDEMPOTENCY_TTL_HOURS = env.int("IDEMPOTENCY_TTL_HOURS", default=48)
# Customer token reads and Idempotency-Key reservations (outside a transaction) of requests
# arriving together in one web process are one statement each, up to this many
# (core.groupcommit; PostgreSQL only). 1 turns the grouping off.
REQUEST_GROUP_MAX = env.int("REQUEST_GROUP_MAX", default=64)

# --- Order placement -------------------------------------------------------
# Own-channel placements arriving together in one web process are written in
# one transaction, up to this many (orders.services.placement; PostgreSQL only).
# 1 turns batching off.
ORDER_PLACEMENT_BATCH_MAX = env.int("ORDER_PLACEMENT_BATCH_MAX", default=64)

# --- Logging: one JSON object per line, carrying the request id -----------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
        # Celery's line per task run ("received", "succeeded") and beat's per send: every
        # second for some jobs. Tasks report what they did themselves (config.celery_app).
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
    },
}

# --- Health -----------------------------------------------------------------
HEALTH_CHECK_BROKER = bool(REDIS_URL)

# --- Payments (payments app) -------------------------------------------------
# One entry per provider; payments.provider builds its client from it. The
# defaults point at the local simulator (``python -m simulator --port 8100``).
PAYMENT_PROVIDERS = {
    "wxpay": {
        "base_url": env.str("WXPAY_BASE_URL", default="http://127.0.0.1:8100"),
        "appid": env.str("WXPAY_APPID", default="wx0sim0miniapp0001"),
        "mchid": env.str("WXPAY_MCHID", default="1900000001"),
        "api_key": env.str("WXPAY_API_KEY", default="sim-wxpay-key"),
        # Where the provider POSTs TRANSACTION.SUCCESS and REFUND.SUCCESS notifies.
        "notify_url": env.str("WXPAY_NOTIFY_URL", default="http://127.0.0.1:8000/api/v1/payments/notify/wxpay"),
        "timeout": env.float("WXPAY_TIMEOUT_SECONDS", default=5.0),
        # Extra attempts after an HTTP 5xx or a refused connection (never after a read timeout).
        "retries": env.int("WXPAY_RETRIES", default=2),
    },
}
# Refund follow-up (orders.services.refunds, job retry-owed-refunds): a refund still
# processing this many hours after the request is handed to a person (its order flagged);
# a refund the provider closed is started again until this many attempts in all.
PAYMENT_REFUND_STUCK_HOURS = env.int("PAYMENT_REFUND_STUCK_HOURS", default=72)
PAYMENT_REFUND_MAX_ATTEMPTS = env.int("PAYMENT_REFUND_MAX_ATTEMPTS", default=3)
# --- end Payments ------------------------------------------------------------

# --- Fulfilment: the OMS that issues e-voucher codes (orders.fulfilment.oms) ---
# Defaults point at the local simulator (``python -m simulator``).
OMS = {
    "base_url": env.str("OMS_BASE_URL", default="http://127.0.0.1:8100"),
    "app_key": env.str("OMS_APP_KEY", default="sim-oms-app"),
    "app_secret": env.str("OMS_APP_SECRET", default="sim-oms-secret"),
    # Where the OMS POSTs signed redemption reports: must reach the web process.
    "callback_url": env.str("OMS_CALLBACK_URL", default="http://127.0.0.1:8000/api/v1/fulfilment/oms/callback"),
    "timeout": env.float("OMS_TIMEOUT_SECONDS", default=5.0),
}
# --- end Fulfilment -----------------------------------------------------------

# --- Channels and outbox (channels app, core.outbox) ----------------------------
# Plain values for now; to read them from the environment, list them in .env.example too.
# Outbox delivery: retries with exponential backoff (base * 2**(n-1), capped, plus
# up to JITTER of itself), then a dead letter (admin: Outbox messages -> Retry).
OUTBOX_MAX_ATTEMPTS = 8
OUTBOX_BACKOFF_BASE_SECONDS = 5.0
OUTBOX_BACKOFF_MAX_SECONDS = 3600.0
OUTBOX_BACKOFF_JITTER = 0.2
# How long a claimed message stays invisible to other relays (longer than any delivery;
# a message not started within half of it is handed back).
OUTBOX_LEASE_SECONDS = 120
# One relay round: up to BATCH due messages (one per key) claimed in one statement,
# delivered on up to THREADS threads per worker process (each with its own database
# connection, kept for CONN_MAX_AGE), outcomes written in one UPDATE.
OUTBOX_RELAY_BATCH = 50
OUTBOX_RELAY_THREADS = 4
# After-commit kicks are coalesced by a flag in the broker's Redis; it expires after
# this long in case the relay task it queued is lost.
OUTBOX_KICK_TTL_SECONDS = 5
# Platform HTTP calls (base URLs and credentials are per StoreBinding).
CHANNELS_HTTP_CONNECT_TIMEOUT = 3.0
CHANNELS_HTTP_READ_TIMEOUT = 10.0
CHANNELS_PULL_MAX_ORDERS = 50
# Orders a pull has fetched are written this many at a time, in one transaction with the
# pull state past them (channels.services.pull); a page that fails is written again one
# order at a time. The page's stock rows and the store's day counter stay locked until
# its COMMIT. 1: one transaction per order.
CHANNELS_INGEST_PAGE_ORDERS = env.int("CHANNELS_INGEST_PAGE_ORDERS", default=25)
# ... and a page is written at the latest this long after its first order was fetched.
CHANNELS_INGEST_PAGE_WAIT_SECONDS = env.float("CHANNELS_INGEST_PAGE_WAIT_SECONDS", default=0.1)
# New orders pushed to one web process for one binding at the same moment are written
# together, up to this many (a page, as for pulls); each push is answered once its order
# is stored. 1: one at a time.
CHANNELS_PUSH_BATCH_MAX = env.int("CHANNELS_PUSH_BATCH_MAX", default=25)
# Meituan day sequences a pull could not ingest ("missing") are tried again first, at
# most this many a pull (beside CHANNELS_PULL_MAX_ORDERS for new ones, so orders that
# never ingest cannot starve the new), and at most ATTEMPTS pulls each; then they are
# handed to a person (channels.UnreadablePlatformOrder, admin "Platform orders we could
# not read"), never dropped silently.
CHANNELS_PULL_MISSING_PER_PULL = env.int("CHANNELS_PULL_MISSING_PER_PULL", default=10)
CHANNELS_PULL_MISSING_MAX_ATTEMPTS = env.int("CHANNELS_PULL_MISSING_MAX_ATTEMPTS", default=5)
# A pull's reads (Meituan getOrderDaySeq / getOrderIdByDaySeq / getOrderDetail, Ele.me
# getUnprocessOrders / mgetOrders / getAllOrders) answered with HTTP 5xx are tried again,
# up to ATTEMPTS times in all, DELAY x the attempt apart.
CHANNELS_PULL_CALL_ATTEMPTS = env.int("CHANNELS_PULL_CALL_ATTEMPTS", default=4)
CHANNELS_PULL_RETRY_DELAY_SECONDS = env.float("CHANNELS_PULL_RETRY_DELAY_SECONDS", default=0.2)
# A pull holds its binding this long (renewed with every order it ingests); another pull
# of the binding meanwhile is skipped. A pull that dies leaves the lease to expire.
CHANNELS_PULL_LEASE_SECONDS = 300
# Ele.me getAllOrders reconciliation (cancellations, refunds) at most this often per binding.
CHANNELS_RECONCILE_SECONDS = 300
CHANNELS_ELEME_PAGE_SIZE = 50
CHANNELS_ELEME_MAX_PAGES = 10
# Meituan: for this many minutes after midnight a pull also finishes yesterday's day sequences.
CHANNELS_MEITUAN_MIDNIGHT_GRACE_MINUTES = 30
# Day numbers in a row without an order that end the walk of a past day (gaps happen).
CHANNELS_MEITUAN_PAST_DAY_MISSES = 3
# Reconciliation of known orders (job reconcile-platform-orders): open platform orders are
# fetched from their platform, those placed less than YOUNG_MINUTES ago at most every
# YOUNG_EVERY_SECONDS (a cancellation without a push reaches the POS within a minute),
# older ones up to MAX_HOURS at most every ORDER_EVERY_SECONDS; at most BATCH per run.
CHANNELS_RECONCILE_YOUNG_MINUTES = env.int("CHANNELS_RECONCILE_YOUNG_MINUTES", default=60)
CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS = env.int("CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS", default=30)
CHANNELS_RECONCILE_ORDER_MAX_HOURS = 24
CHANNELS_RECONCILE_ORDER_EVERY_SECONDS = 300
CHANNELS_RECONCILE_ORDER_BATCH = 100
# Our public base URL as the platforms see it (Meituan signs pushes over it); empty: the request's own.
CHANNELS_PUSH_BASE_URL = ""
# A platform push body larger than this is refused (413) before it is read; real ones are a few KB.
CHANNELS_PUSH_MAX_BYTES = 256 * 1024
_CHANNEL_JOBS = {
    "relay-outbox": {"task": "core.relay_outbox", "every": 15},
    # Every second: one indexed query; a binding is pulled within about a second of its interval.
    "pull-platform-orders": {"task": "channels.schedule_due_pulls", "every": 1},
    # Every 15 s: a young open order is checked within YOUNG_EVERY_SECONDS + 7.5 s of its last check.
    "reconcile-platform-orders": {"task": "channels.reconcile_platform_orders", "every": 15},
}
PERIODIC_JOBS.update(_CHANNEL_JOBS)
CELERY_BEAT_SCHEDULE.update(
    {name: {"task": job["task"], "schedule": float(job["every"])} for name, job in _CHANNEL_JOBS.items()}
)
# --- end Channels and outbox ----------------------------------------------------
