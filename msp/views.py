"""Project-level views: health and the JSON error pages for paths under /api/."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import bad_request, page_not_found, permission_denied, server_error

from msp.api.errors import NOT_FOUND_MESSAGE, DependencyUnavailable, json_error_response
from msp.api.throttling import CACHE_ERRORS, throttle_mode

logger = logging.getLogger(__name__)

# Raised when PostgreSQL cannot be reached or drops the connection (and for a deadlock or a
# cancelled statement, which a retry also fixes).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        logger.warning("healthz: database check failed: %s", exc)
        return {"ok": False, "vendor": connection.vendor, "error": exc.__class__.__name__}
    return {"ok": True, "vendor": connection.vendor}


def _check_broker() -> dict:
    from msp.celery import app

    url = settings.CELERY_BROKER_URL
    transport = url.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:  # noqa: BLE001
        logger.warning("healthz: broker check failed: %s", exc)
        return {"ok": False, "transport": transport, "error": exc.__class__.__name__}
    return {"ok": True, "transport": transport}


def _check_cache() -> dict:
    """The shared cache, and where API rate limits are counted (per process while it is down)."""
    backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    try:
        cache.get("healthz-probe")
    except CACHE_ERRORS as exc:
        logger.warning("healthz: cache check failed: %s", exc)
        return {
            "ok": False,
            "backend": backend,
            "error": exc.__class__.__name__,
            "throttling": "local",
        }
    return {"ok": True, "backend": backend, "throttling": throttle_mode()["mode"]}


@never_cache
@require_GET
def healthz(request):
    """200 when the database, the broker and the cache answer, 503 otherwise."""
    checks = {"database": _check_database(), "broker": _check_broker(), "cache": _check_cache()}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler400(request, exception=None):
    if _is_api(request):
        return json_error_response(400, "bad_request", "Bad request.")
    return bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return json_error_response(403, "permission_denied", "Permission denied.")
    return permission_denied(request, exception)


def handler404(request, exception=None):
    if _is_api(request):
        return json_error_response(404, "not_found", NOT_FOUND_MESSAGE)
    return page_not_found(request, exception)


#: What a client should wait before retrying while the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = 5


def handler500(request):
    # Django calls this inside its except block, for an error in a view or a middleware.
    error = sys.exc_info()[1]
    if isinstance(error, DATABASE_UNAVAILABLE):
        return _database_unavailable(request)
    if isinstance(error, DependencyUnavailable):
        return _dependency_unavailable(request, error)
    if _is_api(request):
        return json_error_response(500, "server_error", "Internal server error.")
    return server_error(request)


def _database_unavailable(request):
    """503 with Retry-After: the database went away (restart, failover, network). The broken
    connection is dropped at the end of the request, so the next one connects afresh."""
    if _is_api(request):
        response = json_error_response(
            503, "service_unavailable", "The database cannot be reached; try again shortly."
        )
    else:
        response = render(request, "503.html", status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _dependency_unavailable(request, error: DependencyUnavailable):
    """503 with Retry-After: a service other than the database did not answer (a page that
    reads it without a degraded view of its own; the API maps it in its exception handler)."""
    if _is_api(request):
        response = json_error_response(503, "service_unavailable", str(error))
    else:
        response = render(request, "503.html", {"reason": str(error)}, status=503)
    response["Retry-After"] = str(error.retry_after)
    return response
