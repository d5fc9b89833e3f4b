"""Settings for the MCP site.

Every value comes from the environment (documented in docs/settings.md). With
nothing set, the project runs as a single development node: SQLite, Django's
local-memory cache and the in-memory channel layer, no Redis needed. Setting
REDIS_URL switches the cache and the channel layer to Redis, which is what a
cluster of nodes needs.
"""

import os
import secrets
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    # Development only: a fresh key per process, so no key ever lives in the repo.
    SECRET_KEY = secrets.token_urlsafe(50)

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", LOOPBACK_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # daphne first: `manage.py runserver` then serves the ASGI application.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "oauth2_provider",
    "sessions_app",
    "graphql_app",
    "oauth_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /static/...: answered here, before sessions and the rest (mcpsite/static_files.py).
    "mcpsite.static_files.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: the middleware above runs in the request's thread, not a hop per hook (mcpsite/request_threads.py).
    "mcpsite.request_threads.MiddlewareInRequestThread",
]

ROOT_URLCONF = "mcpsite.urls"
ASGI_APPLICATION = "mcpsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own pages (the front page); the apps keep theirs in <app>/templates.
        "DIRS": [BASE_DIR / "mcpsite" / "templates"],
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

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # e.g. postgres://user:password@host:5432/name. No persistent connections:
    # under ASGI every request may run its ORM calls in another thread, so kept
    # connections pile up instead of being reused (Django's async docs).
    DATABASES: dict[str, Any] = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    # PostgreSQL: a pool of open connections (psycopg_pool, through Django's
    # own support) instead of a new connection per request, which cost 3 ms or
    # more (a server process and the password check). The pool checks each
    # connection before handing it out, so a database restart costs no
    # request. 0: no pool.
    DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 10)
    if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": DATABASE_POOL_SIZE}
        # What makes the pool check each connection it hands out.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DJANGO_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Transactions take the write lock when they begin: concurrent writers
            # then wait their turn (up to the busy timeout) instead of failing with
            # "database is locked" when a read-then-write transaction upgrades.
            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
        },
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 defaults to a 5 s socket timeout, which kills the
                # layer's blocking receive while a channel is idle
                # (channels_redis#422): no timeout on the layer's sockets.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            },
        },
    }
    # The session registry's own alias: keys exactly `mcp:session:{id}` (no
    # django-redis prefix or version), JSON values, and short socket timeouts
    # so that a Redis outage fails fast instead of stalling the registry.
    CACHES["mcp_registry"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "sessions_app.cluster.registry.redis.raw_key",
        "REVERSE_KEY_FUNCTION": "sessions_app.cluster.registry.redis.raw_key_reversed",
        "OPTIONS": {
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            "SOCKET_CONNECT_TIMEOUT": 1.0,
            "SOCKET_TIMEOUT": 1.0,
        },
    }
    _DEFAULT_REGISTRY = "sessions_app.cluster.registry.redis.RedisSessionRegistry"
    _DEFAULT_REGISTRY_OPTIONS: dict[str, str] = {"cache_alias": "mcp_registry"}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    _DEFAULT_REGISTRY = "sessions_app.cluster.registry.locmem.LocMemSessionRegistry"
    _DEFAULT_REGISTRY_OPTIONS = {}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # GraphiQL's pinned npm files (graphql_app/graphiql/).
    "graphql_app.graphiql.finder.GraphiQLFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # collectstatic writes hashed names (and gzip copies) and a manifest that {% static %} reads
    # when DEBUG is off; the nodes serve them with WhiteNoise (mcpsite/static_files.py).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Source maps are for a browser's developer tools: no gzip copies of them (GraphiQL's weigh megabytes).
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")

# Production hardening, switched on by the environment (see docs/settings.md).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Redirect plain-HTTP requests to HTTPS (needs DJANGO_BEHIND_TLS_PROXY behind a
# proxy, or every request loops). /healthz is exempt: the balancer's health
# checks reach each node over plain HTTP and must see its real status.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Strict-Transport-Security on HTTPS answers; 0 sends none. Raise it only once
# the whole site (and, with INCLUDE_SUBDOMAINS, every subdomain) is HTTPS-only.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)

# Largest request body for every path but /mcp (GraphQL, the admin, OAuth), in
# bytes: Django's own limit, which mcpsite/http_server.py also enforces while
# the body is being read (on the whole body: nothing here takes file uploads).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_MAX_BODY_BYTES", 2_621_440)

# --- MCP endpoint -----------------------------------------------------------

# Dotted path to the SDK low-level `Server` this node hosts on /mcp.
MCP_SERVER = os.environ.get("MCP_SERVER", "graphql_app.mcp.server.server")
# This node's name in logs, /healthz and (later) the session registry.
MCP_NODE_ID = os.environ.get("MCP_NODE_ID", "") or f"{socket.gethostname()}-{os.getpid()}"
# The label session ids start with (`<route>.<random>`), so a proxy can route
# on Mcp-Session-Id; empty: derived from MCP_NODE_ID (see cluster/routing.py).
MCP_NODE_ROUTE = os.environ.get("MCP_NODE_ROUTE", "")
# Origins allowed to call /mcp from a browser; a request with another Origin gets 403.
MCP_ALLOWED_ORIGINS = env_list(
    "MCP_ALLOWED_ORIGINS",
    ["http://127.0.0.1", "http://localhost", "http://[::1]", "https://127.0.0.1", "https://localhost", "https://[::1]"],
)
# Host names /mcp answers to (port ignored); another Host gets 421 (DNS rebinding).
MCP_ALLOWED_HOSTS = env_list("MCP_ALLOWED_HOSTS", LOOPBACK_HOSTS)
# Live handshake sessions one process holds; past it a new session gets 503.
MCP_MAX_SESSIONS = env_int("MCP_MAX_SESSIONS", 10_000)
# Seconds a session may stay idle (no request in flight, no open stream) before it is closed.
MCP_SESSION_IDLE_TIMEOUT = env_float("MCP_SESSION_IDLE_TIMEOUT", 1800.0)
# Shorter timers for sessions nobody uses: one that made no request after
# `initialize`, and one whose client dropped its streams and sent nothing since.
MCP_SESSION_UNUSED_TIMEOUT = env_float("MCP_SESSION_UNUSED_TIMEOUT", 60.0)
MCP_SESSION_ABANDONED_TIMEOUT = env_float("MCP_SESSION_ABANDONED_TIMEOUT", 300.0)
# One client's share of a process (0: no limit): sessions, and 2026-07-28
# `subscriptions/listen` streams. A client is its token's principal, else its address.
MCP_MAX_SESSIONS_PER_CLIENT = env_int("MCP_MAX_SESSIONS_PER_CLIENT", 100)
MCP_MAX_LISTEN_STREAMS_PER_CLIENT = env_int("MCP_MAX_LISTEN_STREAMS_PER_CLIENT", 16)
# Trusted proxies in front of the nodes (Traefik: 1). 0: a client's address is
# the socket's peer; n: the n-th X-Forwarded-For entry from the right.
MCP_PROXY_HOPS = env_int("MCP_PROXY_HOPS", 0)
# Largest accepted POST body in bytes; larger bodies get 413.
MCP_MAX_BODY_BYTES = env_int("MCP_MAX_BODY_BYTES", 4 * 1024 * 1024)
# Requests one session may have in flight at once; past it a POST gets 429.
MCP_MAX_REQUESTS_PER_SESSION = env_int("MCP_MAX_REQUESTS_PER_SESSION", 64)
# Per-session replay log for Last-Event-ID: at most this many events and bytes.
MCP_EVENT_LOG_MAX_EVENTS = env_int("MCP_EVENT_LOG_MAX_EVENTS", 256)
MCP_EVENT_LOG_MAX_BYTES = env_int("MCP_EVENT_LOG_MAX_BYTES", 1024 * 1024)
# `retry:` hint (milliseconds) sent in the priming event of every SSE stream.
MCP_SSE_RETRY_MS = env_int("MCP_SSE_RETRY_MS", 1000)
# Bytes an SSE answer may have waiting unsent in its connection (a client that
# stopped reading) before the production server ends it; the client resumes.
MCP_SSE_MAX_UNSENT_BYTES = env_int("MCP_SSE_MAX_UNSENT_BYTES", 1024 * 1024)
# Seconds such a client gets to bring it back under the bound.
MCP_SSE_SLOW_READER_GRACE = env_float("MCP_SSE_SLOW_READER_GRACE", 10.0)
# Prometheus metrics on a port of their own, never routed by the balancer
# (sessions_app/metrics.py); 0: not served. The host to bind (0.0.0.0 in a
# container, where Prometheus comes over the internal network).
MCP_METRICS_PORT = env_int("MCP_METRICS_PORT", 0)
MCP_METRICS_HOST = os.environ.get("MCP_METRICS_HOST", "127.0.0.1")
# Seconds between keep-alive comments on an otherwise silent SSE stream.
MCP_SSE_KEEPALIVE = env_float("MCP_SSE_KEEPALIVE", 15.0)
# Answer requests with one JSON body instead of an SSE stream (handshake era).
MCP_JSON_RESPONSE = env_bool("MCP_JSON_RESPONSE", False)
# The canonical URI of /mcp as clients reach it: the audience (RFC 8707
# `resource`) of the tokens this site accepts and issues.
MCP_RESOURCE_URI = os.environ.get("MCP_RESOURCE_URI", "http://127.0.0.1:8000/mcp")
# The scopes that allow reading and changing through /mcp and /graphql.
MCP_AUTH_READ_SCOPE = os.environ.get("MCP_AUTH_READ_SCOPE", "mcp:read")
MCP_AUTH_WRITE_SCOPE = os.environ.get("MCP_AUTH_WRITE_SCOPE", "mcp:write")

# --- Cluster: the session registry, node liveness, shutdown ------------------

# Registry backend (dotted path); Redis when REDIS_URL is set, else in-process.
MCP_SESSION_REGISTRY = os.environ.get("MCP_SESSION_REGISTRY", _DEFAULT_REGISTRY)
MCP_REGISTRY_OPTIONS = _DEFAULT_REGISTRY_OPTIONS
# Seconds a session record lives in the registry if nothing deletes it.
MCP_SESSION_TTL = env_float("MCP_SESSION_TTL", 30 * 24 * 3600.0)
# Seconds a node's heartbeat lasts; it is refreshed every third of that.
MCP_NODE_HEARTBEAT_TTL = env_float("MCP_NODE_HEARTBEAT_TTL", 10.0)
# Seconds between reaper passes, and how long an owner must be gone before its records go.
MCP_REAPER_INTERVAL = env_float("MCP_REAPER_INTERVAL", 30.0)
MCP_STALE_GRACE = env_float("MCP_STALE_GRACE", 60.0)
# On SIGTERM: seconds /healthz reports 503 before sessions are closed, and the
# most the whole shutdown may take.
MCP_SHUTDOWN_DRAIN_DELAY = env_float("MCP_SHUTDOWN_DRAIN_DELAY", 2.0)
MCP_SHUTDOWN_GRACE = env_float("MCP_SHUTDOWN_GRACE", 10.0)
# Forward a request for a session held by another live node to that node
# (over Redis pub/sub) instead of answering 404. Needs REDIS_URL.
MCP_RELAY = env_bool("MCP_RELAY", True)
# A request for a session whose owner node is gone is served by the node it
# reaches, which adopts the session from its registry record (when the hosted
# server allows it, see MCP_SERVER_ADOPTABLE).
MCP_ADOPTION = env_bool("MCP_ADOPTION", True)
# Whether MCP_SERVER's sessions may be adopted: unset asks the server's module
# (`ADOPTABLE = True`); 1 or 0 overrides it.
# The SDK wraps every request in an OpenTelemetry span: a no-op until an OTel
# SDK and exporter are installed, yet 25-35 us of CPU per call (a seventh of
# the application's own; benchmark, applications alone). Off unless you
# install them (sessions_app/session/hosted_server.py).
MCP_OTEL_SPANS = env_bool("MCP_OTEL_SPANS", False)
MCP_SERVER_ADOPTABLE = (
    env_bool("MCP_SERVER_ADOPTABLE", False) if os.environ.get("MCP_SERVER_ADOPTABLE", "") != "" else None
)
# On SIGTERM, leave sessions to be adopted by the other nodes (records kept)
# instead of closing them (records deleted, clients get 404).
MCP_SHUTDOWN_HANDOFF = env_bool("MCP_SHUTDOWN_HANDOFF", True)
# Registry lookups per second (per process) for session ids this process does
# not hold; past it such a request gets 404 without one (sessions_app/cluster/misroute.py).
MCP_MISS_LOOKUPS_PER_SECOND = env_float("MCP_MISS_LOOKUPS_PER_SECOND", 500.0)

# --- Authorization: /mcp and /graphql as an OAuth 2.1 resource server ----------

# Who issues the tokens /mcp and /graphql accept: `embedded` (oauth_app on these
# nodes), `jwt` (an external issuer's JWTs, checked with its published keys),
# `introspection` (an external issuer's RFC 7662 endpoint) or `off`. Required
# (embedded) unless DJANGO_DEBUG is on; `off` in production must be written out.
MCP_AUTH = os.environ.get("MCP_AUTH", "") or ("off" if DEBUG else "embedded")
# The external issuer's URL (jwt, introspection); its keys are discovered from
# its metadata unless MCP_AUTH_JWKS_URL names them.
MCP_AUTH_ISSUER = os.environ.get("MCP_AUTH_ISSUER", "")
MCP_AUTH_JWKS_URL = os.environ.get("MCP_AUTH_JWKS_URL", "")
MCP_AUTH_JWKS_CACHE_SECONDS = env_float("MCP_AUTH_JWKS_CACHE_SECONDS", 3600.0)
MCP_AUTH_ALGORITHMS = env_list("MCP_AUTH_ALGORITHMS", ["RS256", "PS256", "ES256"])
# Clock skew allowed when checking a token's expiry, in seconds.
MCP_AUTH_LEEWAY = env_float("MCP_AUTH_LEEWAY", 10.0)
# introspection: the endpoint, and this resource server's client credentials there.
MCP_AUTH_INTROSPECTION_URL = os.environ.get("MCP_AUTH_INTROSPECTION_URL", "")
MCP_AUTH_CLIENT_ID = os.environ.get("MCP_AUTH_CLIENT_ID", "")
MCP_AUTH_CLIENT_SECRET = os.environ.get("MCP_AUTH_CLIENT_SECRET", "")
# Seconds a verified token is trusted before it is checked again: the most a
# revocation can take to be noticed; entries kept per process.
MCP_AUTH_CACHE_SECONDS = env_float("MCP_AUTH_CACHE_SECONDS", 30.0)
MCP_AUTH_CACHE_ENTRIES = env_int("MCP_AUTH_CACHE_ENTRIES", 10_000)
# GraphQL queries without a token (mutations always need the write scope).
GRAPHQL_PUBLIC_QUERIES = env_bool("GRAPHQL_PUBLIC_QUERIES", False)

# --- GraphQL: what one operation may cost (graphql_app/api/limits.py) ----------
# Checked on the document before it runs: lexical tokens, aliases, nesting depth.
GRAPHQL_MAX_TOKENS = env_int("GRAPHQL_MAX_TOKENS", 1000)
GRAPHQL_MAX_ALIASES = env_int("GRAPHQL_MAX_ALIASES", 20)
GRAPHQL_MAX_DEPTH = env_int("GRAPHQL_MAX_DEPTH", 8)
# Checked while it runs: records loaded by one operation, and the encoded answer.
GRAPHQL_MAX_ROWS = env_int("GRAPHQL_MAX_ROWS", 500)
GRAPHQL_MAX_RESPONSE_BYTES = env_int("GRAPHQL_MAX_RESPONSE_BYTES", 8 * 1024 * 1024)
# Introspection and "Did you mean ...?" hints in errors (graphql_app/api/visibility.py).
GRAPHQL_INTROSPECTION = env_bool("GRAPHQL_INTROSPECTION", DEBUG)
# GraphiQL for a browser's GET of /graphql, from the node's own static files (graphql_app/graphiql/).
# It reads the schema by introspection, so it needs GRAPHQL_INTROSPECTION too.
GRAPHQL_GRAPHIQL = env_bool("GRAPHQL_GRAPHIQL", DEBUG)
# Seconds an Idempotency-Key (and the answer kept for it) lasts (graphql_app/api/idempotency.py).
GRAPHQL_IDEMPOTENCY_TTL = env_int("GRAPHQL_IDEMPOTENCY_TTL", 24 * 3600)

# --- Embedded authorization server ------------------------------------------
# oauth_app on top of django-oauth-toolkit; see docs/authorization.md.

# Serve the authorization server's endpoints (/oauth/..., the RFC 8414 metadata).
OAUTH_SERVER = env_bool("OAUTH_SERVER", True)
# The issuer (`iss` of tokens and authorization responses, RFC 8414 `issuer`):
# the origin of MCP_RESOURCE_URI unless set.
_resource = urlsplit(MCP_RESOURCE_URI)
OAUTH_ISSUER = os.environ.get("OAUTH_ISSUER", "").rstrip("/") or f"{_resource.scheme}://{_resource.netloc}"
# Resources a token may be issued for (RFC 8707); anything else is `invalid_target`.
OAUTH_RESOURCES = env_list("OAUTH_RESOURCES", [MCP_RESOURCE_URI])
# The RSA private key (PEM) access tokens are signed with: a file, or the PEM itself.
OAUTH_SIGNING_KEY_FILE = os.environ.get("OAUTH_SIGNING_KEY_FILE", "")
OAUTH_SIGNING_KEY = os.environ.get("OAUTH_SIGNING_KEY", "")
if OAUTH_SERVER and not (OAUTH_SIGNING_KEY_FILE or OAUTH_SIGNING_KEY):
    if not DEBUG:
        raise ImproperlyConfigured(
            "OAUTH_SIGNING_KEY_FILE (or OAUTH_SIGNING_KEY) must be set when DJANGO_DEBUG is off and "
            "OAUTH_SERVER is on: every node needs the same RSA private key (see docs/authorization.md)"
        )
    # Development only: one key made on first use and shared by every manage.py
    # command and runserver of this checkout (git-ignored, mode 0600).
    OAUTH_SIGNING_KEY_FILE = str(BASE_DIR / ".oauth" / "signing-key.pem")
    OAUTH_CREATE_SIGNING_KEY = True
else:
    OAUTH_CREATE_SIGNING_KEY = False
# Public keys (PEM, concatenated) still published and accepted after a rotation.
OAUTH_PREVIOUS_SIGNING_KEYS_FILE = os.environ.get("OAUTH_PREVIOUS_SIGNING_KEYS_FILE", "")
OAUTH_ACCESS_TOKEN_SECONDS = env_int("OAUTH_ACCESS_TOKEN_SECONDS", 3600)
OAUTH_REFRESH_TOKEN_SECONDS = env_int("OAUTH_REFRESH_TOKEN_SECONDS", 30 * 24 * 3600)
# Dynamic client registration (RFC 7591) and Client ID Metadata Documents.
OAUTH_DCR = env_bool("OAUTH_DCR", True)
OAUTH_CIMD = env_bool("OAUTH_CIMD", True)
# Let CIMD fetch client_id URLs on loopback addresses (tests only; in production
# every private address is refused, so a client_id cannot probe the network).
OAUTH_CIMD_ALLOW_LOOPBACK = env_bool("OAUTH_CIMD_ALLOW_LOOPBACK", False)

# Any active user may log in to give consent (the admin's login takes staff only).
LOGIN_URL = "oauth-login"

OAUTH2_PROVIDER: dict[str, Any] = {
    "SCOPES": {
        MCP_AUTH_READ_SCOPE: "Read your decisions through the MCP server and GraphQL",
        MCP_AUTH_WRITE_SCOPE: "Record and change decisions through the MCP server and GraphQL",
    },
    # A client that asks for no scope gets read access only.
    "DEFAULT_SCOPES": [MCP_AUTH_READ_SCOPE],
    "READ_SCOPE": MCP_AUTH_READ_SCOPE,
    "WRITE_SCOPE": MCP_AUTH_WRITE_SCOPE,
    "ACCESS_TOKEN_EXPIRE_SECONDS": OAUTH_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": OAUTH_REFRESH_TOKEN_SECONDS,
    # Access tokens are RS256 JWTs (docs/authorization.md); refresh tokens stay opaque.
    "ACCESS_TOKEN_GENERATOR": "oauth_app.tokens.generate_access_token",
    "REFRESH_TOKEN_GENERATOR": "oauth_app.tokens.generate_refresh_token",
    "OAUTH2_SERVER_CLASS": "oauth_app.server.Server",
    "OAUTH2_VALIDATOR_CLASS": "oauth_app.validators.Validator",
    "OIDC_ISS_ENDPOINT": OAUTH_ISSUER,
    "PKCE_REQUIRED": True,
    "ROTATE_REFRESH_TOKEN": True,
    # A refresh token used twice revokes its whole family (RFC 9700 4.14.2).
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # RFC 9700 gates: refuse PKCE plain, implicit and password grants and tokens
    # in query strings; send RFC 9207 `iss`; keep only token checksums at rest.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    # "none" (public clients) is not listed: clients holding a secret, the
    # conformance suite among them, pick "none" whenever it is listed and then
    # fail to authenticate. Public clients still authenticate with client_id only.
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post"],
    "DCR_ENABLED": OAUTH_DCR,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth_app.registration.SafeRedirectURIs",),
    "CIMD_ENABLED": OAUTH_CIMD,
    "CIMD_METADATA_FETCHER": "oauth_app.cimd.MetadataFetcher",
}
# http redirect URIs stay allowed for loopback callbacks of native clients
# (RFC 8252); dynamic registration refuses http anywhere else.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]

# `text`: one line per record for people; `json`: one JSON object per line for a log
# pipeline, with the node and the MCP request it was written for (docs/operations.md).
LOG_FORMAT = os.environ.get("DJANGO_LOG_FORMAT", "") or "text"
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")

LOGGING: dict[str, Any] = {
    "version": 1,
    # Keep daphne's and Django's own loggers: disabling them hides daphne's warnings.
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {
        "draining_health_check": {"()": "sessions_app.log_filters.DrainingHealthCheck"},
        "without_traceback": {"()": "sessions_app.log_filters.WithoutTraceback"},
        # Records anyone can cause (a bogus session id, a bad Host): a few per
        # minute of each kind, then a count (sessions_app/log_rate_limit.py).
        "rate_limited": {"()": "sessions_app.log_rate_limit.RateLimited", "window": 60.0, "burst": 5},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # The SDK logs every request at INFO; keep it to warnings.
        "mcp": {"level": "WARNING"},
        # A draining node's 503 on /healthz is news for the balancer, not an error.
        "django.request": {"filters": ["draining_health_check"]},
        "sessions_app.misroute": {"filters": ["rate_limited"]},
        # Django logs every bad Host with its traceback: one line is enough.
        "django.security.DisallowedHost": {"filters": ["without_traceback", "rate_limited"]},
        # runserver prints its own access log; do not print it twice.
        "django.channels.server": {"propagate": False},
    },
}
if LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        # "time" is listed first so that it leads each line; `timestamp` then fills it
        # in (ISO 8601, UTC). A traceback is one string: JSON escapes its line breaks.
        "fmt": ["time", "levelname", "name", "message"],
        "timestamp": "time",
        "rename_fields": {"levelname": "level", "name": "logger", "exc_info": "exception", "stack_info": "stack"},
        "static_fields": {"node": MCP_NODE_ID},
    }
    # The era, method, session hash and trace id of the MCP request a record was written for.
    LOGGING["filters"]["mcp_request"] = {"()": "sessions_app.http.log_context.RequestFields"}
    LOGGING["handlers"]["console"] = {"class": "logging.StreamHandler", "formatter": "json", "filters": ["mcp_request"]}
    # daphne's access log, which the production server sends through logging in this format
    # (mcpsite/http_server.py): printed whatever DJANGO_LOG_LEVEL says, as in the text format.
    LOGGING["loggers"]["mcpsite.access"] = {"level": "INFO"}
