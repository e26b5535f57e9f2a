"""Groundwork settings, read from the environment.

Two ways to run, one code base:
- embedded default (no variables): SQLite in WAL mode and Celery over kombu's filesystem
  transport under ``var/``, so web, worker and beat run with nothing installed but Python;
- production: ``DATABASE_URL`` (PostgreSQL through psycopg 3) and ``REDIS_URL`` (broker and
  cache); ``CELERY_BROKER_URL`` overrides the broker; ``DATABASE_OWNER_URL`` (optional) for
  ``migrate``, when the app runs as a role that owns nothing.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
VAR_DIR = Path(env.str("GROUNDWORK_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """The configured key, or one generated once and kept under var/ for the embedded mode."""
    configured = env.str("DJANGO_SECRET_KEY", default="")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "msp.apps.GroundworkAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_countries",
    # Before tenants: tenants.admin replaces the admin pages these register.
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "tenants",
    "operations.inventory",
    "operations.telemetry",
    "operations.incidents",
    "operations.events",
    "operations.jobs",
    "operations.compliance",
    "operations.optimisation",
    "operations.readiness",
    "operations.reports",
    # Last: the project wires the contexts together (seed_demo) and owns no models.
    "msp.apps.MspConfig",
]

MIDDLEWARE = [
    "msp.api.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: marks request.user verified when the session passed its second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenants.middleware.SecondFactorMiddleware",
    "tenants.middleware.ViewerTimezoneMiddleware",
    "tenants.middleware.AuditContextMiddleware",
    "tenants.middleware.StaffAdminScopeMiddleware",
    # Last, as django-axes requires: turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "msp.urls"
WSGI_APPLICATION = "msp.wsgi.application"
ASGI_APPLICATION = "msp.asgi.application"
AUTH_USER_MODEL = "tenants.User"
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"
# django-axes first: a locked-out username or address is refused before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
IS_PRODUCTION = bool(env.str("DATABASE_URL", default=""))
if IS_PRODUCTION:
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "groundwork.sqlite3")),
            "OPTIONS": {
                # WAL lets the worker and beat write while the web server reads.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DATABASES["default"].setdefault("TEST", {})
# Optional: the role that owns the tables (see README, "Two database roles"). `migrate` runs
# as it and grants DATABASE_URL's role DML only, so the running app cannot switch off
# row-level security or the audit log's guards. Unset: one role does both.
DATABASE_OWNER_URL = env.str("DATABASE_OWNER_URL", default="")
DATABASE_ROUTERS: list[str] = []
if DATABASE_OWNER_URL:
    if not IS_PRODUCTION:
        raise ImproperlyConfigured("DATABASE_OWNER_URL needs DATABASE_URL (the runtime role).")
    DATABASES["owner"] = env.db("DATABASE_OWNER_URL")
    # Tests run as one role: the owner alias then points at the same test database.
    DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["tenants.database_roles.OwnerRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if IS_POSTGRES:
    # JIT compilation is for long analytic queries: on the ingest statement (whose staging
    # table has no statistics, so its estimated cost is high) it added 2 s of compiling to a
    # 10 ms insert. Our queries are short; a DATABASE_URL option can still turn it on.
    for _database in DATABASES.values():
        _database.setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")

# --- Cache and broker -------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="groundwork"),
            # A Redis that stops answering costs a request a second at most, not a hang; the
            # cache's users fall back (msp.api.throttling) or report it (/healthz).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    # File-based so that web, worker and beat (separate processes) share one cache.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_QUEUE_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (CELERY_QUEUE_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "queue"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "queue"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        # Exchange bindings; kombu's default is ./control in the working directory.
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Above the longest job's hard time limit, so acks_late tasks are not redelivered early.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=7200),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "jobs"
# Every task's queue (ingest, jobs, maintenance, notifications) is decided in msp/queues.py.
CELERY_TASK_ROUTES = ("msp.queues.route_task",)
# Tenants per chunk task when periodic fleet work fans out (tenants.tasks.fleet_fan_out).
FLEET_CHUNK_SIZE = env.int("FLEET_CHUNK_SIZE", default=200)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=3000)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3600)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes the DB connection after every task unless this is set (a new
# PostgreSQL connection per job, ~10 ms); jobs still recycle connections by age and health.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)

# --- Security ---------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Production (DATABASE_URL set, DEBUG off) is served over HTTPS behind a proxy; the embedded
# mode is a local, single-machine install on plain HTTP.
HTTPS = env.bool("DJANGO_HTTPS", default=not DEBUG and IS_PRODUCTION)
SECURE_SSL_REDIRECT = HTTPS
# A load balancer probes /healthz over plain HTTP: it must see 200 or 503, not a redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=HTTPS)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
# Sessions live in the database only: sign-in and every signed-in page keep working while Redis
# is down. (cached_db would not: its load() re-caches and its exists() asks the cache unguarded.)
SESSION_ENGINE = "django.contrib.sessions.backends.db"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)

# --- Sign-in: lockout (django-axes) and second factor (django-otp) ---------------------------
# Counted per username and address (AXES_FAILURE_LIMIT) and per address alone (a higher limit,
# against password spraying); see tenants.signin. A lock lifts after the cool-off, or when
# msp_admin unlocks it in the admin or runs `manage.py axes_reset`.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=50)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "tenants.signin.LoginLockoutHandler"
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
AXES_ENABLE_ADMIN = False  # tenants.admin registers its own, with an audited unlock action
AXES_VERBOSE = False
# Successful sign-ins are not kept here (the failures are); the sessions say who is in.
AXES_DISABLE_ACCESS_LOG = True
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Groundwork")

# --- Email (password reset) ----------------------------------------------------------------------
# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587, or the EMAIL_HOST family;
# neither set: messages are printed to the console (the embedded default).
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Groundwork <groundwork@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
elif env.str("EMAIL_HOST", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=EMAIL_PORT == 587)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=EMAIL_PORT == 465)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60 * 3)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date format on every page, the zone always shown (msp/formats/en/formats.py).
FORMAT_MODULE_PATH = ["msp.formats"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the finders: the embedded demo needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Generated reports (HTML and PDF): a local folder by default; any Django storage works.
    "reports": {
        "BACKEND": env.str(
            "REPORTS_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": {"location": env.str("REPORTS_DIR", default=str(VAR_DIR / "reports"))},
    },
}
# The MSP as its clients' reports name it: the name, and a logo (PNG, JPEG or SVG; a path
# relative to the project unless absolute).
MSP_NAME = env.str("MSP_NAME", default="Groundwork Managed AI Services")
MSP_LOGO_PATH = env.str("MSP_LOGO_PATH", default="static/reports/msp-logo.svg")

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "msp.api.filters.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "msp.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["msp.api.throttling.PerTokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_THROTTLE_RATE", default="1200/minute"),
        # Telemetry agents get a bucket of their own, so they never eat the API budget.
        "ingest": env.str("API_INGEST_THROTTLE_RATE", default="6000/minute"),
    },
    "EXCEPTION_HANDLER": "msp.api.errors.api_exception_handler",
    "DEFAULT_METADATA_CLASS": "msp.api.metadata.ApiMetadata",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["msp.api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_MAX_PAGE_SIZE = 500
# Longest list a request field takes (ids of related objects, nested rows).
API_MAX_LIST_LENGTH = env.int("API_MAX_LIST_LENGTH", default=1000)
API_TOKEN_LAST_USED_INTERVAL_SECONDS = 60
# How often agents report each metric (the demo and dcgm scrapes: 5 min); an alert rule's window
# must span at least twice this to decide anything.
TELEMETRY_SAMPLING_INTERVAL_SECONDS = env.int("TELEMETRY_SAMPLING_INTERVAL_SECONDS", default=300)
# Where raw telemetry lives (operations/telemetry/backends): "builtin" (this database) or
# "victoriametrics" at TELEMETRY_URL (a single node: http://vm:8428); a cluster takes
# TELEMETRY_INSERT_URL (http://vminsert:8480/insert/0/prometheus) and TELEMETRY_SELECT_URL
# (http://vmselect:8481/select/0/prometheus) instead.
TELEMETRY_BACKEND = env.str("TELEMETRY_BACKEND", default="builtin")
TELEMETRY_URL = env.str("TELEMETRY_URL", default="")
TELEMETRY_INSERT_URL = env.str("TELEMETRY_INSERT_URL", default="")
TELEMETRY_SELECT_URL = env.str("TELEMETRY_SELECT_URL", default="")
TELEMETRY_TIMEOUT_SECONDS = env.float("TELEMETRY_TIMEOUT_SECONDS", default=10.0)
# Optional: a label value (groundwork="...") on every series written and in every query, for
# installations that share one VictoriaMetrics.
TELEMETRY_INSTANCE = env.str("TELEMETRY_INSTANCE", default="")
# VictoriaMetrics makes samples searchable a moment after acknowledging them: the rollup job
# leaves hours marked more recently than this for its next run.
TELEMETRY_SEARCH_DELAY_SECONDS = env.float("TELEMETRY_SEARCH_DELAY_SECONDS", default=5.0)
# VictoriaMetrics: the label carrying the tenant on every series (Groundwork's own, and those an
# MSP's vmagent writes straight into VictoriaMetrics), and per tenant slug its value (default:
# the tenant's id). Values are letters first (never a bare id, which is another tenant's
# default) and unique: "acme=acme,globex=globex-prod".
TELEMETRY_TENANT_LABEL = env.str("TELEMETRY_TENANT_LABEL", default="tenant")
TELEMETRY_TENANT_LABEL_VALUES = env.dict("TELEMETRY_TENANT_LABEL_VALUES", default={})
# How far back the GPU inventory job looks for dcgm-exporter series in VictoriaMetrics.
TELEMETRY_DISCOVERY_MINUTES = env.int("TELEMETRY_DISCOVERY_MINUTES", default=15)
if TELEMETRY_BACKEND not in ("builtin", "victoriametrics"):
    raise ImproperlyConfigured(
        f"TELEMETRY_BACKEND must be builtin or victoriametrics, not {TELEMETRY_BACKEND!r}"
    )
if TELEMETRY_BACKEND == "victoriametrics" and not (
    TELEMETRY_URL or (TELEMETRY_INSERT_URL and TELEMETRY_SELECT_URL)
):
    raise ImproperlyConfigured(
        "TELEMETRY_BACKEND=victoriametrics needs TELEMETRY_URL (or TELEMETRY_INSERT_URL and "
        "TELEMETRY_SELECT_URL)"
    )
if TELEMETRY_BACKEND == "victoriametrics":
    from operations.telemetry.tenant_label import check_tenant_label_settings

    check_tenant_label_settings(TELEMETRY_TENANT_LABEL, TELEMETRY_TENANT_LABEL_VALUES)
# Lists answer from .values() rows where every field maps to a column (msp/api/values.py).
API_VALUES_LISTS = env.bool("API_VALUES_LISTS", default=True)

SPECTACULAR_SETTINGS = {
    "TITLE": "Groundwork API",
    "DESCRIPTION": "Operate AI for many client organisations: tenants, estate, incidents, jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    "SECURITY": [{"bearerAuth": []}],
    # One name per choice set that several fields share (the gate status is "status" in one
    # component, "gate_status" in another; the tenant's and a webhook delivery's are "status").
    "ENUM_NAME_OVERRIDES": {
        "EndpointKindEnum": "operations.events.models.EndpointKind",
        "DeliveryStatusEnum": "operations.events.models.DeliveryStatus",
        "GateStatusEnum": "operations.readiness.gates.GATE_STATUSES",
        "TenantStatusEnum": "tenants.models.TenantStatus",
        "ReportKindEnum": "operations.reports.models.ReportKind",
        "ReportStatusEnum": "operations.reports.models.ReportStatus",
    },
    # Every operation documents the errors it can answer with, in one Error body (msp/api/schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "msp.api.schema.document_error_responses",
        "msp.api.schema.document_csv_responses",
        "operations.events.schema.add_event_schemas",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
