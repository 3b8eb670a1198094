"""Settings shared by every deployment.

Every value that differs between deployments is read from the environment (django-environ);
``README.md`` has the table of them. Without ``DATABASE_URL`` and ``CELERY_BROKER_URL`` the
portal runs on a SQLite file with Celery tasks executed in-process, which is what ``make demo``
uses.
"""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-demo-key-change-me-in-production-0123456789abcdef")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "simple_history",
    "pgtrigger",
    "axes",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "alliance",
    "merchants",
    "ledger",
    "points",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "alliance.mfa.MfaRequiredMiddleware",
    # Axes must come last so that it sees the outcome of authentication.
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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "alliance.context_processors.navigation",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
# Value-moving services own their transactions (``transaction.atomic(durable=True)``), so
# requests are not wrapped in one.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the demo's web process read while a task writes; the busy timeout turns brief
    # writer contention into a wait instead of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USES_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
# A covering index's extra columns (points.Purchase) are PostgreSQL's; SQLite, the demo's
# database, builds the same index without them, as intended.
SILENCED_SYSTEM_CHECKS = [] if USES_POSTGRES else ["models.W040"]
# The ledger's posting call is a server-side prepared statement (ledger.engine); turn it off
# behind a connection pooler in transaction mode that cannot keep prepared statements.
LEDGER_PREPARED_STATEMENTS = env.bool("LEDGER_PREPARED_STATEMENTS", default=True)
if USES_POSTGRES and LEDGER_PREPARED_STATEMENTS:
    # Django opens psycopg connections with prepare_threshold=None, which turns off every
    # prepared statement, the ones asked for by name (alliance.prepared, prepare=True)
    # included: they were parsed and planned afresh at every call. A threshold no statement
    # reaches keeps the ORM's statements unprepared (psycopg would otherwise prepare any
    # statement run that many times) and lets the hot paths' own be prepared.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)
# How a purchase is recorded: "auto" is points.purchase_engine on PostgreSQL (two statements)
# and the ORM elsewhere; "orm" forces the ORM path (the tests hold both to the same results).
PURCHASE_ENGINE = "auto"

# --- Cache (rate limits, velocity counters) --------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
    # Redis holds nothing the ledger needs: when it is down, cache reads miss and writes are
    # dropped (and logged), so purchases go on; /healthz reports the outage.
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Users and authentication ------------------------------------------------------------------
AUTH_USER_MODEL = "alliance.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "storefront:home"

ACCOUNT_ADAPTER = "alliance.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email", "phone"}
# Shoppers in China sign up with a mobile number (verified by SMS); an email address is
# optional and verified by mail when given. Staff accounts may be email-only.
ACCOUNT_SIGNUP_FIELDS = ["phone*", "email", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = False
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_PHONE_VERIFICATION_ENABLED = True
ACCOUNT_PHONE_VERIFICATION_SUPPORTS_RESEND = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
    "login": "30/m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Staff, supervisors, council members and superusers must activate TOTP (alliance.mfa).
MFA_REQUIRED_FOR_STAFF = env.bool("MFA_REQUIRED_FOR_STAFF", default=True)
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", default="Alliance Points")

# Where SMS verification and login codes go; see alliance.sms.
SMS_BACKEND = env("SMS_BACKEND", default="alliance.sms.ConsoleSmsBackend")
# Region used to read phone numbers typed without a country code.
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default="CN")

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=8)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# --- Internationalisation ----------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static and media --------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))
# Uploads no URL serves (licence images, member imports): pages stream them after an access
# check. Shared storage when there are several web nodes.
PRIVATE_MEDIA_ROOT = env("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "var" / "private"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Email -------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Alliance Points <noreply@alliance.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Security headers --------------------------------------------------------------------------
# Strict CSP: nothing inline, nothing from another origin (the portal must work on an intranet).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Merchant systems sign with ``Authorization: Api-Key <key>`` (merchants.api_auth); it
    # comes first so that a request without credentials is answered 401 with its challenge.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "merchants.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "alliance.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "merchants.api_auth.AnonymousRateThrottle",
        "merchants.api_auth.ApiKeyRateThrottle",
        "merchants.api_auth.PersonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="600/min"),
        "api_key": env("API_THROTTLE_API_KEY", default="6000/min"),
        "user": env("API_THROTTLE_USER", default="3000/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Alliance Points Portal API",
    "DESCRIPTION": (
        "Merchant, shopper and public interfaces of the alliance's shared loyalty-points "
        "ledger. Every 4xx answers {\"error\": {\"code\", \"message\", \"details\"}}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
# No broker configured: run tasks in-process so the demo needs nothing else installed.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TIMEZONE = TIME_ZONE
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that queues work after its commit must not hang on a broker that is down.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The schedule of SPEC §8. django-celery-beat copies these entries into the database, where
# operators can see and change them in the admin.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "worker-heartbeat": {"task": "alliance.tasks.worker_heartbeat", "schedule": 60.0},
    "issuance-spike-check": {"task": "alliance.tasks.issuance_spike_check", "schedule": 3600.0},
    "deposit-levels-check": {"task": "merchants.tasks.deposit_levels_check", "schedule": 600.0},
    "member-claims-expire": {"task": "merchants.tasks.claims_expire_task",
                             "schedule": crontab(hour=0, minute=20)},
    "anchor-ledger": {"task": "ledger.tasks.anchor_ledger", "schedule": 60.0},
    "expire-holds": {"task": "ledger.tasks.expire_holds", "schedule": 60.0},
    # The scheduled jobs (points.tasks), in the alliance's time zone (CELERY_TIMEZONE).
    "airdrop-daily": {"task": "points.tasks.run_airdrop", "schedule": crontab(hour=0, minute=5)},
    "expire-points-daily": {"task": "points.tasks.expire_points",
                            "schedule": crontab(hour=0, minute=10)},
    "expiry-reminders-daily": {"task": "points.tasks.send_expiry_reminders",
                               "schedule": crontab(hour=9, minute=0)},
    "ally-inflation-yearly": {"task": "points.tasks.mint_inflation",
                              "schedule": crontab(month_of_year=1, day_of_month=1, hour=0,
                                                  minute=30)},
    "resume-jobs": {"task": "points.tasks.resume_jobs", "schedule": 600.0},
    # Pages already treat a voucher past its date as expired; this marks the row so.
    "expire-vouchers": {"task": "points.tasks.expire_vouchers", "schedule": 900.0},
}

# --- Logging -----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- The alliance ------------------------------------------------------------------------------
# The origin line of the transparency log's checkpoints (C2SP tlog-checkpoint).
LOG_ORIGIN = env("LOG_ORIGIN", default="alliance.example/points-log")
# The alliance's Ed25519 signer key (signed-note format), given inline or as a file path.
LOG_SIGNER_KEY = env("LOG_SIGNER_KEY", default="")
LOG_SIGNER_KEY_FILE = env("LOG_SIGNER_KEY_FILE", default=str(BASE_DIR / "var" / "log-signer.key"))
# Create the key file on first use when it is missing. Always so with DEBUG (the demo); a
# production log should be given its key, never make one up by itself.
LOG_SIGNER_KEY_AUTOCREATE = env.bool("LOG_SIGNER_KEY_AUTOCREATE", default=False)
# Holders (airdrop) or wallets (expiry) a scheduled job posts per database transaction: the
# work a crash can lose, and how long a shopper's purchase may wait on the job's locks.
POINTS_JOBS_BATCH = env.int("POINTS_JOBS_BATCH", default=128_000)
# Shoppers are told this many days before the expiry run that takes their points.
POINTS_EXPIRY_REMINDER_DAYS = env.int("POINTS_EXPIRY_REMINDER_DAYS", default=7)
# ALLY minted by the first yearly inflation, when there is no ALLY to inflate (major units).
ALLY_GENESIS_SUPPLY = env("ALLY_GENESIS_SUPPLY", default="1000000")
