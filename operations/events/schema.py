"""The event catalogue in the OpenAPI document: one component per event type's payload, and
the envelope every webhook body has (a drf-spectacular postprocessing hook)."""

from __future__ import annotations

import copy

from operations.events.catalogue import CATALOGUE, envelope_schema


def _openapi_30(schema):
    # The catalogue speaks JSON Schema ("type": [x, "null"]); OpenAPI 3.0 says "nullable".
    if isinstance(schema, dict):
        schema = {key: _openapi_30(value) for key, value in schema.items()}
        kinds = schema.get("type")
        if isinstance(kinds, list):
            others = [kind for kind in kinds if kind != "null"]
            schema["type"] = others[0]
            if "null" in kinds:
                schema["nullable"] = True
        return schema
    if isinstance(schema, list):
        return [_openapi_30(item) for item in schema]
    return schema


def event_component_name(name: str, version: int) -> str:
    return "Event_" + name.replace(".", "_") + f"_v{version}"


def add_event_schemas(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    envelope = _openapi_30(envelope_schema())
    envelope["description"] = (
        "The body of every webhook delivery, signed per Standard Webhooks (webhook-id, "
        "webhook-timestamp, webhook-signature headers). `data` is one of the Event_* schemas."
    )
    schemas["WebhookEnvelope"] = envelope
    for event in CATALOGUE.values():
        schema = _openapi_30(copy.deepcopy(event.schema))
        schema["description"] = f"`{event.name}` v{event.version}: {event.description}"
        schemas[event_component_name(event.name, event.version)] = schema
    return result
