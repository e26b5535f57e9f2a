"""One error body for every 4xx the API returns (and the 503 of a dependency out of reach).

    {"error": {"status": 400, "code": "invalid", "message": "...", "fields": {"name": ["..."]}}}

``fields`` names every offending field (dotted paths for nested input), the first
``MAX_REPORTED_FIELDS`` of them (the message says how many there are), each message cut to
``MAX_MESSAGE_CHARS`` and made encodable, so hostile input cannot blow up or break the body.
The request id travels in the ``X-Request-ID`` header rather than the body, so that two 404s
are byte-identical whether the object is missing or belongs to another tenant.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response

NOT_FOUND_MESSAGE = "Not found."
# Bounds the body (a 5 MB import once answered 37 MB) and stays above what views that cap
# their own lists report (telemetry: the first 100 samples, several fields each).
MAX_REPORTED_FIELDS = 1000
MAX_MESSAGE_CHARS = 500


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class DependencyUnavailable(Exception):
    """A service Groundwork depends on, other than its database, did not answer (the telemetry
    store, ...). Raised by services and selectors, never a DRF exception: the API answers 503
    ``service_unavailable`` with ``Retry-After``, a page the 503 page (``msp.views``), a task
    fails and its next run catches up."""

    message = "A service Groundwork depends on cannot be reached; try again shortly."
    #: What a client should wait before retrying (seconds).
    retry_after = 5

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = DependencyUnavailable.message
    default_code = "service_unavailable"

    def __init__(self, detail=None, code=None, *, wait: int | None = None):
        super().__init__(detail, code)
        self.wait = wait


class Conflict(exceptions.APIException):
    """409; ``fields`` (name → messages) says what stands in the way, in the one error body."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"

    def __init__(self, detail=None, code=None, *, fields: dict[str, list[str]] | None = None):
        super().__init__(detail, code)
        self.fields = fields


def _text(message) -> str:
    """A message safe to render: UTF-8 encodable (messages echo input) and of bounded size."""
    text = str(message)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(*, status_code: int, code: str, message: str, fields: dict | None = None) -> dict:
    body = {"status": status_code, "code": code, "message": _text(message)}
    if fields:
        body["fields"] = {
            _text(name): [_text(line) for line in messages] for name, messages in fields.items()
        }
    return {"error": body}


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into ``{"a.b.0.c": ["message", ...]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, path))
        return flat
    if isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        flat = {}
        for index, value in enumerate(detail):
            if value:
                flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(message) for message in messages]}


def _codes(detail) -> str | None:
    if isinstance(detail, dict):
        for value in detail.values():
            return _codes(value)
    if isinstance(detail, list):
        return _codes(detail[0]) if detail else None
    return getattr(detail, "code", None)


def api_exception_handler(exc, context):
    """DRF exception handler producing the one error body."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(NOT_FOUND_MESSAGE)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        blockers = sorted(
            {obj._meta.verbose_name for obj in exc.protected_objects}
            if isinstance(exc, ProtectedError)
            else {obj._meta.verbose_name for obj in exc.restricted_objects}
        )
        exc = Conflict(f"Still in use by: {', '.join(blockers)}. Remove those first.")
    elif isinstance(exc, DependencyUnavailable):
        exc = ServiceUnavailable(str(exc), wait=exc.retry_after)
    elif isinstance(exc, DjangoValidationError):
        # Services validate with Django's ValidationError; show it like any other bad input.
        exc = exceptions.ValidationError(detail=get_error_detail(exc))
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "Invalid input."
        if list(fields) == ["non_field_errors"]:
            message = fields["non_field_errors"][0]
        elif len(fields) > MAX_REPORTED_FIELDS:
            message = (
                f"Invalid input: {len(fields)} fields have errors; "
                f"the first {MAX_REPORTED_FIELDS} are listed."
            )
            fields = dict(list(fields.items())[:MAX_REPORTED_FIELDS])
        code = "invalid"
    else:
        fields = getattr(exc, "fields", None)
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Error."
        code = _codes(exc.detail) or exc.default_code
        if isinstance(exc, exceptions.NotFound):
            message, code = NOT_FOUND_MESSAGE, "not_found"

    # Imported here: DRF's views module loads the parser classes, which import this module.
    from rest_framework.views import set_rollback

    set_rollback()
    _answer_in_json(context)
    body = error_body(status_code=exc.status_code, code=code, message=message, fields=fields)
    return Response(body, status=exc.status_code, headers=headers)


def _answer_in_json(context) -> None:
    # A CSV download that fails answers the one error body in JSON, not as a CSV of it.
    request = (context or {}).get("request")
    if getattr(getattr(request, "accepted_renderer", None), "format", None) == "csv":
        from rest_framework.renderers import JSONRenderer

        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(
        error_body(status_code=status_code, code=code, message=message), status=status_code
    )
