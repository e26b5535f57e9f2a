"""The event catalogue: every topic the outbox may carry, its version, and its payload's schema.

A topic's payload only grows (new optional fields) within a version; a change that removes or
retypes a field is a new version. ``event_record`` refuses a topic not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_TIME = {"type": ["string", "null"], "format": "date-time"}

INCIDENT_PAYLOAD = {
    "type": "object",
    "required": ["id", "reference", "title", "severity", "status"],
    "properties": {
        "id": {"type": "integer"},
        "number": {"type": "integer"},
        "reference": {"type": "string", "description": "Per-tenant number, e.g. ACME-12."},
        "title": {"type": "string"},
        "severity": {"type": "string", "enum": ["SEV1", "SEV2", "SEV3", "SEV4"]},
        "category": {"type": "string"},
        "status": {"type": "string"},
        "source": {"type": "string"},
        "created_at": _TIME,
        "acknowledged_at": _TIME,
        "resolved_at": _TIME,
        "closed_at": _TIME,
        "ack_due_at": _TIME,
        "resolve_due_at": _TIME,
        "ack_breached_at": _TIME,
        "resolve_breached_at": _TIME,
        "waiting_on_client": {"type": "boolean"},
        "serious": {"type": "boolean"},
        "regulator_deadline": _TIME,
    },
}


def _incident_with(**extra) -> dict:
    return {
        **INCIDENT_PAYLOAD,
        "required": [*INCIDENT_PAYLOAD["required"], *extra],
        "properties": {**INCIDENT_PAYLOAD["properties"], **extra},
    }


_CLOCK = {"type": "string", "enum": ["ack", "resolve"], "description": "Which SLA clock."}

FINDING_PAYLOAD = {
    "type": "object",
    "required": ["check", "subject_type", "subject_id", "status"],
    "properties": {
        "check": {"type": "string", "description": "Compliance check code."},
        "severity": {"type": "string"},
        "subject_type": {"type": "string"},
        "subject_id": {"type": "integer"},
        "subject_label": {"type": "string"},
        "status": {"type": "string", "enum": ["pass", "fail", "not_applicable"]},
        "detail": {"type": "string"},
    },
}

RECOMMENDATION_PAYLOAD = {
    "type": "object",
    "required": ["id", "kind", "title"],
    "properties": {
        "id": {"type": "integer"},
        "kind": {"type": "string"},
        "title": {"type": "string"},
        "subject_label": {"type": "string"},
        "estimated_monthly_saving": {"type": ["string", "null"], "description": "Decimal."},
    },
}

TENANT_PAYLOAD = {
    "type": "object",
    "required": ["slug", "status"],
    "properties": {
        "slug": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string"},
    },
}

TOKEN_PAYLOAD = {
    "type": "object",
    "required": ["id", "prefix", "scopes"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "The visible prefix, never the secret."},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "expires_at": _TIME,
        "created_by": {"type": ["string", "null"]},
    },
}

JOB_PAYLOAD = {
    "type": "object",
    "required": ["id", "kind", "status", "attempts"],
    "properties": {
        "id": {"type": "integer", "description": "The JobRun's id."},
        "kind": {"type": "string", "description": "The job kind, e.g. compliance_scan."},
        "status": {"type": "string", "enum": ["failed"]},
        "attempts": {"type": "integer", "description": "Attempts made, the last one included."},
        "error": {"type": "string", "description": "Why the last attempt failed."},
        "finished_at": _TIME,
    },
}

READINESS_PAYLOAD = {
    "type": "object",
    "required": ["score_id", "level", "previous_level", "overall"],
    "properties": {
        "score_id": {"type": "integer", "description": "The new score snapshot."},
        "previous_level": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
        "level": {"type": "integer", "minimum": 1, "maximum": 5},
        "overall": {"type": "string", "description": "Decimal, 0–100."},
        "previous_overall": {"type": ["string", "null"], "description": "Decimal, 0–100."},
        "framework": {"type": "string", "description": "Framework code and version."},
        "computed_at": _TIME,
    },
}

REPORT_PAYLOAD = {
    "type": "object",
    "required": ["id", "kind", "period_start", "period_end", "version", "download_url"],
    "properties": {
        "id": {"type": "integer", "description": "The report's id."},
        "tenant": {"type": "string", "description": "The tenant's slug."},
        "kind": {"type": "string", "description": "monthly, quarterly or evidence_pack."},
        "period_start": {"type": "string", "format": "date"},
        "period_end": {"type": "string", "format": "date"},
        "period": {"type": "string", "description": "The period as people say it, e.g. 2026-11."},
        "version": {"type": "integer", "description": "1, then 2… when regenerated."},
        "download_url": {
            "type": "string",
            "format": "uri",
            "description": "The API's download (a token with read scope; ?format=pdf|html|zip).",
        },
        "url": {
            "type": "string",
            "format": "uri",
            "description": "The tenant's reports page in the portal.",
        },
    },
}

TEST_PAYLOAD = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}, "endpoint": {"type": "integer"}},
}


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    description: str
    schema: dict
    #: False: catalogued so receivers can prepare, not yet written by any service.
    emitted: bool = True
    #: Where the payload's object lives in the portal (``{tenant}`` and payload keys filled).
    link: str = ""
    tags: tuple[str, ...] = field(default=())


_INCIDENT_LINK = "/portal/{tenant}/incidents/{number}/"

CATALOGUE: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "incident.opened",
            1,
            "An incident was raised (by a person, an alert rule or a check).",
            INCIDENT_PAYLOAD,
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.acknowledged",
            1,
            "Someone acknowledged the incident; escalation stops.",
            INCIDENT_PAYLOAD,
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.escalated",
            1,
            "An escalation policy step fired because the incident was not acknowledged in time.",
            _incident_with(
                step={"type": "integer"}, notified={"type": "array", "items": {"type": "string"}}
            ),
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.resolved",
            1,
            "The incident was resolved.",
            INCIDENT_PAYLOAD,
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.reopened",
            1,
            "A resolved incident was reopened.",
            INCIDENT_PAYLOAD,
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.closed",
            1,
            "The incident was closed.",
            INCIDENT_PAYLOAD,
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.sla_at_risk",
            1,
            "75 % of an SLA clock (acknowledge or resolve) has run.",
            _incident_with(clock=_CLOCK),
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.sla_breached",
            1,
            "An SLA clock ran out before the incident was acknowledged or resolved.",
            _incident_with(clock=_CLOCK),
            link=_INCIDENT_LINK,
        ),
        EventType(
            "incident.regulator_deadline_near",
            1,
            "A serious AI incident's regulator report (EU AI Act Art. 73) is due within a day.",
            INCIDENT_PAYLOAD,
            link=_INCIDENT_LINK,
        ),
        EventType(
            "finding.opened",
            1,
            "A compliance check started failing for a subject.",
            FINDING_PAYLOAD,
            link="/portal/{tenant}/compliance/",
        ),
        EventType(
            "finding.resolved",
            1,
            "A failing compliance check passes again (or its subject left).",
            FINDING_PAYLOAD,
            link="/portal/{tenant}/compliance/",
        ),
        EventType(
            "recommendation.opened",
            1,
            "The optimisation scan found something worth changing.",
            RECOMMENDATION_PAYLOAD,
            link="/portal/{tenant}/recommendations/",
        ),
        EventType(
            "readiness.level_changed",
            1,
            "A new readiness score snapshot's maturity level differs from the previous one.",
            READINESS_PAYLOAD,
            link="/portal/{tenant}/readiness/",
        ),
        EventType(
            "job.failed",
            1,
            "A background job of the tenant failed after its last attempt.",
            JOB_PAYLOAD,
        ),
        EventType(
            "report.ready",
            1,
            "A report finished generating and can be downloaded (a regenerated report is a "
            "new version).",
            REPORT_PAYLOAD,
            link="/portal/{tenant}/reports/",
        ),
        EventType(
            "tenant.status_changed",
            1,
            "The tenant moved in its lifecycle "
            "(prospect, onboarding, active, suspended, offboarded).",
            TENANT_PAYLOAD,
        ),
        EventType(
            "token.created",
            1,
            "An API token was issued in the tenant (prefix only).",
            TOKEN_PAYLOAD,
        ),
        EventType(
            "webhook.test",
            1,
            'Sent by "send test event" to one endpoint only.',
            TEST_PAYLOAD,
        ),
    )
}


class UnknownEventType(ValueError):
    pass


def event_type(name: str) -> EventType:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownEventType(f"{name!r} is not in the event catalogue") from None


def envelope_schema() -> dict:
    """The JSON schema of every delivered body: the envelope, ``data`` one of the payloads."""
    return {
        "type": "object",
        "required": ["type", "version", "timestamp", "tenant", "data"],
        "properties": {
            "type": {"type": "string", "enum": sorted(CATALOGUE)},
            "version": {"type": "integer"},
            "timestamp": {"type": "string", "format": "date-time"},
            "tenant": {"type": "string", "description": "The tenant's slug."},
            "data": {"type": "object"},
        },
    }
