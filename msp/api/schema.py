"""The published contract's error responses, documented once for every operation.

A drf-spectacular postprocessing hook: each operation gets the error statuses it can answer
with, all pointing at one ``Error`` component (the body ``msp.api.errors.error_body`` builds).
"""

from __future__ import annotations

ERROR_COMPONENT = "Error"

#: The one error body of ``msp.api.errors.error_body``.
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error body every 4xx (and a 503) answers with.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status, repeated."},
                "code": {"type": "string", "description": "Machine-readable, e.g. not_found."},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Each offending input (dotted path) and its messages.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["status", "code", "message"],
        }
    },
    "required": ["error"],
}

_DESCRIPTIONS = {
    "400": "Invalid input (body, filter, query parameter) or a write the object's state refuses; "
    "`fields` names each offender.",
    "401": "No credentials, or an invalid, expired or revoked token.",
    "403": "Authenticated, but the role or the token's scopes do not allow this.",
    "404": "No such object here: missing and another tenant's give the same answer.",
    "409": "Conflicts with the current state (a transition not allowed now, still in use).",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
    "429": "Too many requests for this token; retry after `Retry-After` seconds.",
    "503": "The database cannot be reached for a moment; retry after `Retry-After` seconds.",
}

_WRITES = {"post", "put", "patch", "delete"}
_METHODS = _WRITES | {"get", "head", "options", "trace"}


def _error_statuses(path: str, method: str, operation: dict) -> list[str]:
    """The error statuses this operation can answer with, by what it takes."""
    statuses = ["401", "403", "429", "503"]
    has_body = "requestBody" in operation
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    if has_body or has_query or method in _WRITES:  # services refuse a write in the wrong state
        statuses.append("400")
    has_page = any(p.get("name") == "page" for p in operation.get("parameters", []))
    if "{" in path or has_page:  # a page past the last is a 404, as DRF's pagination answers
        statuses.append("404")
    if method in _WRITES:
        statuses.append("409")
    if has_body:
        statuses += ["413", "415"]
    return sorted(statuses)


def document_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add the ``Error`` component and the error responses."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(path, method, operation):
                responses.setdefault(
                    status,
                    {
                        "description": _DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result


def csv_list_schema(rows: str):
    """``extend_schema`` for a list that answers CSV too (``msp.api.csv_download``)."""
    from drf_spectacular.utils import OpenApiParameter, extend_schema

    return extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=["json", "csv"],
                description=(
                    f"`csv` (or `Accept: text/csv`): every page of the {rows} the filters, "
                    "search and ordering select, streamed as one CSV attachment; `page` and "
                    "`page_size` are ignored. Cells a spreadsheet would run as a formula start "
                    "with an apostrophe."
                ),
            )
        ]
    )


CSV_SCHEMA = {
    "type": "string",
    "description": "CSV with a header row, every matching row (all pages), streamed.",
}


def document_csv_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: a ``text/csv`` answer is CSV text, not the JSON page that
    drf-spectacular copies to every media type the renderers offer."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if "text/csv" in content:
                    content["text/csv"] = {"schema": dict(CSV_SCHEMA)}
    return result
