"""srmos settings: one flat file, read from the environment.

With no environment at all this is the embedded default: SQLite in ./data, a filesystem Celery
broker in ./data/broker (a real worker process, no server needed), media in ./data/media, and a
secret key generated once into ./data/secret_key. Set DATABASE_URL=postgres://... and
CELERY_BROKER_URL=redis://... for a real deployment.
"""

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no, on/off"
    )


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_limit(name, default, unit=1):
    """A positive integer times `unit` (e.g. megabytes to bytes)."""
    value = env_int(name, default)
    if value < 1:
        raise ImproperlyConfigured(f"{name}={value} must be at least 1")
    return value * unit


def env_list(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DATA_DIR = Path(env_str("SRMOS_DATA_DIR", str(BASE_DIR / "data"))).resolve()

DEBUG = env_bool("DEBUG", default=True)


def _secret_key():
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # The embedded default keeps one generated key so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "study",
]

MIDDLEWARE = [
    # Outermost: a rater request that lost the database or broker gets 503 (config/outage.py).
    "config.outage.OutageMiddleware",
    # Then: a body over the limit is refused before anything reads it (config/limits.py).
    "config.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during the login into its page.
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
            ],
        },
    },
]


def _database():
    url = env_str("DATABASE_URL")
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{DATA_DIR / 'srmos.sqlite3'}"
    try:
        db = dj_database_url.parse(
            url,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
            # A kept connection the database dropped (a restart) is replaced before the request
            # uses it, instead of failing that request.
            conn_health_checks=True,
        )
    except Exception as exc:
        raise ImproperlyConfigured(
            f"DATABASE_URL={url!r} is not a valid database URL: {exc}"
        ) from None
    if not db.get("ENGINE"):
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no supported database engine")
    if db["ENGINE"] == "django.db.backends.postgresql":
        # The same backend, with a health check that skips SELECT 1 on a quiet socket.
        db["ENGINE"] = "config.postgresql"
    if db["ENGINE"].endswith("sqlite3"):
        # A file, not :memory:, so worker processes started by the tests see the test database.
        db["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
        # A worker process writes while the web process reads: wait for locks instead of failing.
        db.setdefault("OPTIONS", {})["timeout"] = 30
        db["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        # Take the write lock at BEGIN: a deferred transaction that reads, then writes, fails at
        # once ("database is locked") when another connection wrote in between.
        db["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
STORAGES = {
    # Every file written whole or not at all (temporary name, fsync, rename): study/storage.py.
    "default": {"BACKEND": "study.storage.AtomicFileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Large zip uploads of datasets go to disk, not memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000
# Bounded input (config/limits.py, study/datasets/archives.py). Request bodies: the small limit
# for everyone (votes and logins are tiny; kept under FILE_UPLOAD_MAX_MEMORY_SIZE so no anonymous
# body reaches the temporary directory), the large one for staff on admin pages (zips, models).
SRMOS_MAX_REQUEST_BYTES = env_limit("SRMOS_MAX_REQUEST_MB", 2, unit=2**20)
SRMOS_MAX_UPLOAD_BYTES = env_limit("SRMOS_MAX_UPLOAD_MB", 1024, unit=2**20)
# Imports: pixels per image (Pillow's MAX_IMAGE_PIXELS is set from it, and refuses rather than
# warns), bytes per zip member (128 MB holds a BMP of the most pixels) and per zip once
# uncompressed.
SRMOS_MAX_IMAGE_PIXELS = env_limit("SRMOS_MAX_IMAGE_PIXELS", 40_000_000)
SRMOS_MAX_ZIP_MEMBER_BYTES = env_limit("SRMOS_MAX_ZIP_MEMBER_MB", 128, unit=2**20)
SRMOS_MAX_ZIP_BYTES = env_limit("SRMOS_MAX_ZIP_MB", 2048, unit=2**20)

# Several machines (docs/deployment.md): with SRMOS_S3_BUCKET set, every file (images, candidates,
# imported results, model files, uploaded zips) lives in that S3-compatible bucket, the only
# storage web and workers share; each process's MEDIA_ROOT then stays empty. Keys are private:
# raters get images streamed by the web server under opaque URLs (study.rating.images), never a
# bucket URL, so no ACL is set and signed URLs, should anything ask for one, last a minute.
# Names are kept as FileSystemStorage keeps them (an existing key is not overwritten by `save`:
# a replaced imported result is written beside the old one, which is then deleted).
SRMOS_S3_BUCKET = env_str("SRMOS_S3_BUCKET")
if SRMOS_S3_BUCKET:
    _s3_endpoint = env_str("SRMOS_S3_ENDPOINT_URL") or None
    # MinIO, Ceph and moto want path-style addressing; AWS itself takes either.
    _s3_style = env_str("SRMOS_S3_ADDRESSING_STYLE", "path" if _s3_endpoint else "") or None
    STORAGES["default"] = {
        "BACKEND": "study.storage_s3.S3Storage",
        "OPTIONS": {
            "bucket_name": SRMOS_S3_BUCKET,
            "endpoint_url": _s3_endpoint,
            "region_name": env_str("SRMOS_S3_REGION", "us-east-1"),
            # Credentials: these two, or boto3's own chain (AWS_ACCESS_KEY_ID..., an instance role).
            "access_key": env_str("SRMOS_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("SRMOS_S3_SECRET_ACCESS_KEY") or None,
            "addressing_style": _s3_style,
            "signature_version": "s3v4",
            "location": env_str("SRMOS_S3_PREFIX").strip("/"),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 60,
            "file_overwrite": False,
            # A file read from the bucket is held in memory up to this size, then in a temporary
            # file (FILE_UPLOAD_TEMP_DIR or the system's), never under MEDIA_ROOT.
            "max_memory_size": 32 * 2**20,
        },
    }
# A worker's local copies of registered model files (torch loads from a path), one per content
# hash, filled from storage and checked against the hash: deletable at any time.
SRMOS_MODEL_FILE_CACHE = Path(
    env_str("SRMOS_MODEL_FILE_CACHE", str(DATA_DIR / "cache" / "models"))
).resolve()

LOGIN_URL = "admin:login"

# Behind a TLS-terminating proxy (the usual deployment): secure cookies, https:// links, and
# plain http redirected to https (except the container's own health check, which has no TLS).
# HSTS is off unless asked for: browsers remember it, so the operator turns it on deliberately
# (here or at the proxy; docs/deployment.md, "Security").
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SRMOS_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SRMOS_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SRMOS_HSTS_PRELOAD", False)

# Scripts and everything else from this site only; inline styles stay allowed (the progress bar's
# width, matplotlib's SVG figures). No frame-ancestors: MTurk frames the join page, and
# X-Frame-Options guards the rest. Images may come from a storage host (S3) named here.
SRMOS_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:", *env_list("SRMOS_CSP_IMG_SRC", [])],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
}

# Admin login throttling (django-axes): after SRMOS_LOGIN_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is refused for SRMOS_LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "config.security.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("SRMOS_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SRMOS_LOGIN_COOLOFF_MINUTES", 15))
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME <= timedelta(0):
    raise ImproperlyConfigured(
        "SRMOS_LOGIN_FAILURE_LIMIT and SRMOS_LOGIN_COOLOFF_MINUTES must be at least 1"
    )
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_LOCKOUT_TEMPLATE = "admin/login_locked.html"
AXES_RESET_ON_SUCCESS = True

# Celery. The embedded default is kombu's filesystem transport: a real worker process, no server.
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.split("://", 1)[0] not in (
    "filesystem",
    "redis",
    "rediss",
    "amqp",
    "pyamqp",
    "memory",
    "sqla+sqlite",
    "sqla+postgresql",
):
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={CELERY_BROKER_URL!r}: use redis://host:6379/0, amqp://... "
        "or filesystem:// (the embedded default)"
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem"):
    for sub in ("out", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    # Longer than the longest job, so a slow task is never handed to a second worker. A task
    # whose worker died comes back after this long (the lease in study.generation.tasks makes it safe).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": env_int("CELERY_RESTORE_THROTTLE", 10),
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1700)
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Generation: a running candidate's lease (seconds, renewed by its worker's heartbeat) and how
# many equal-size candidates of one network method a GPU worker runs as one batch.
SRMOS_GENERATION_LEASE = env_int("SRMOS_GENERATION_LEASE", 60)
# Longest a web request may spend computing a live report (well under gunicorn's 30 s timeout);
# beyond it the page answers from the cache, or "computing", while a cpu worker computes.
SRMOS_REPORT_BUDGET_S = env_int("SRMOS_REPORT_BUDGET_S", 5)
# A cpu worker's process forks children for parts of the live report (the second core): parts
# of a rating report's tables, then one of its figures; a paired report's figures. Off: all in
# the same process, one after the other (the same report).
SRMOS_REPORT_DRAW_BESIDE = env_bool("SRMOS_REPORT_DRAW_BESIDE", True)
# PostgreSQL: the vote's two statements are prepared once per connection (half PostgreSQL's CPU
# per vote). Turn off behind a transaction-mode pooler that predates prepared statements
# (pgbouncer < 1.21).
SRMOS_PREPARED_VOTES = env_bool("SRMOS_PREPARED_VOTES", True)
SRMOS_GPU_BATCH = env_int("SRMOS_GPU_BATCH", 8)
# Registered models (docs/models.md): the most one forward on a tile may take, checked when a
# model is registered; the LRU budget of models a worker keeps loaded is SRMOS_MODEL_CACHE_MB,
# read by sr_models.model_cache in the worker.
SRMOS_MODEL_MEMORY_MB = env_int("SRMOS_MODEL_MEMORY_MB", 4096)
if SRMOS_GENERATION_LEASE < 1 or SRMOS_GPU_BATCH < 1:
    raise ImproperlyConfigured("SRMOS_GENERATION_LEASE and SRMOS_GPU_BATCH must be at least 1")
# The reconciler (study.generation.reconcile, study.datasets.tasks), run by Celery beat every
# SRMOS_RECONCILE_INTERVAL seconds: it queues again the jobs whose worker died (lease run out) and
# those whose message was lost (queued, the broker's queue empty, nothing taken for
# SRMOS_REQUEUE_AFTER seconds: a broker restarted without persistence). The scheduler keeps its
# schedule in memory: no file to write, and a restart simply runs the reconciler again.
SRMOS_RECONCILE_INTERVAL = env_int("SRMOS_RECONCILE_INTERVAL", 30)
SRMOS_REQUEUE_AFTER = env_int("SRMOS_REQUEUE_AFTER", 60)
if SRMOS_RECONCILE_INTERVAL < 1 or SRMOS_REQUEUE_AFTER < 1:
    raise ImproperlyConfigured(
        "SRMOS_RECONCILE_INTERVAL and SRMOS_REQUEUE_AFTER must be at least 1"
    )
CELERY_BEAT_SCHEDULER = "celery.beat:Scheduler"
CELERY_BEAT_SCHEDULE = {
    # The runs go to the cpu queue, behind any backlog there; a run that waited over an hour is
    # skipped on delivery (a later one follows), so runs piled up while no cpu worker ran are
    # not all run one after another.
    name: {
        "task": task,
        "schedule": float(SRMOS_RECONCILE_INTERVAL),
        "options": {"expires": float(max(3600, SRMOS_RECONCILE_INTERVAL))},
    }
    for name, task in [
        ("reconcile-jobs", "study.tasks.reconcile_jobs"),
        ("reconcile-imports", "study.tasks.reconcile_imports"),
    ]
}

SRMOS_DEFAULT_SCALE = 4
SRMOS_DEFAULT_KERNEL = "matlab-bicubic"
# VGG19 weights for the VGG content losses (torchvision's download is tried when this is empty).
SRMOS_VGG19_WEIGHTS = env_str("SRMOS_VGG19_WEIGHTS")
# Weight files of the learned metrics (LPIPS, DISTS, BRISQUE; docs/analysis.md), never
# downloaded: a JSON object of key -> path, e.g. {"vgg16": "/w/vgg16-397923af.pth", "lpips": ...}.
try:
    SRMOS_METRIC_WEIGHTS = json.loads(env_str("SRMOS_METRIC_WEIGHTS") or "{}")
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"SRMOS_METRIC_WEIGHTS is not JSON: {exc}") from None
if not isinstance(SRMOS_METRIC_WEIGHTS, dict):
    raise ImproperlyConfigured('SRMOS_METRIC_WEIGHTS must be a JSON object, e.g. {"lpips": PATH}')

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
