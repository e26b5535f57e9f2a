"""API rate limits, counted in the shared cache (Redis in production).

While that cache does not answer, the limits are counted per process instead (an in-memory
cache of the process's own), so a Redis outage slows no request and fails none; the switch is
logged once each way and ``/healthz`` reports it (``throttle_mode``).
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

#: What a cache backend raises when its server is unreachable (Redis; the file cache: OSError).
CACHE_ERRORS = (RedisError, OSError)
# After a failure, requests go straight to the local buckets for a while instead of each one
# trying Redis again first.
SHARED_CACHE_RETRY_SECONDS = 5.0

_local_buckets = LocMemCache("groundwork-throttle-local", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
_state_lock = threading.Lock()
_shared_down_since: float | None = None  # time.time() of the first failure of this outage
_shared_retry_at = 0.0


def throttle_mode() -> dict:
    """``{"mode": "shared"}``, or ``{"mode": "local", "since": <unix time>}`` in an outage."""
    since = _shared_down_since
    return {"mode": "shared"} if since is None else {"mode": "local", "since": since}


def throttle_mode_reset() -> None:
    """Back to the shared cache (tests, and the first answer from it after an outage)."""
    global _shared_down_since, _shared_retry_at
    with _state_lock:
        _shared_down_since, _shared_retry_at = None, 0.0
        _local_buckets.clear()  # the next outage counts afresh


def _note_shared_down(error: Exception) -> None:
    global _shared_down_since, _shared_retry_at
    with _state_lock:
        _shared_retry_at = time.monotonic() + SHARED_CACHE_RETRY_SECONDS
        if _shared_down_since is not None:
            return
        _shared_down_since = time.time()
    logger.warning(
        "throttle: the shared cache is unreachable (%s: %s); rate limits are counted per "
        "process until it answers again",
        type(error).__name__,
        error,
    )


def _note_shared_up() -> None:
    if _shared_down_since is None:
        return
    throttle_mode_reset()
    logger.warning("throttle: the shared cache answers again; rate limits are shared again")


class PerTokenRateThrottle(SimpleRateThrottle):
    """One bucket per API token; session users by user id, anonymous callers by address."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "pk", None):
            ident = f"token:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        if _shared_down_since is not None and time.monotonic() < _shared_retry_at:
            self.cache = _local_buckets
            return super().allow_request(request, view)
        try:
            allowed = super().allow_request(request, view)
        except CACHE_ERRORS as error:
            _note_shared_down(error)
            self.cache = _local_buckets
            return super().allow_request(request, view)
        _note_shared_up()
        return allowed


#: Used while settings name no "ingest" rate (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]).
DEFAULT_INGEST_RATE = "6000/minute"


class IngestRateThrottle(PerTokenRateThrottle):
    """Telemetry ingest: a bucket of its own per token, so an agent pushing samples does not
    spend the token's API budget (``token`` scope), nor API calls the agent's."""

    scope = "ingest"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope, DEFAULT_INGEST_RATE)
