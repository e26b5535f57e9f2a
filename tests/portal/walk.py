"""Every portal page with its parameters filled, for the tests that walk the portal (hostile
input, telemetry outages): routes come from the URL resolver, so a new page is walked unlisted."""

from __future__ import annotations

import re

from operations.readiness.catalogue import PILLAR_KEYS
from tests.factories import make_webhook_endpoint
from tests.incidents.factories import make_incident
from tests.inventory.estate import make_deployment
from tests.isolation import MISSING_ID
from tests.optimisation.test_api import make_recommendation
from tests.routes import url_routes

#: Routes not worth a walk: sign-out and password-reset links that need a real token.
SKIPPED = ("portal/logout/", "portal/reset/<uidb64>/<token>/")

# Each kind of action a URL's <action> takes, one of each kind of view.
ACTIONS = {
    "operations.incidents.portal.views.incident_staff_act": ("acknowledge", "wait-on-client"),
    "operations.optimisation.portal.views.recommendation_act": ("accept", "dismiss"),
    "operations.events.portal.views.webhook_action": ("rotate", "disable"),
}


def portal_routes() -> list[tuple[str, str]]:
    """(route, view dotted name) of every page under /portal/."""
    found = []
    for route, pattern in url_routes():
        if not route.startswith("portal/") or route in SKIPPED:
            continue
        callback = pattern.callback
        found.append((route, f"{callback.__module__}.{getattr(callback, '__name__', '')}"))
    return found


def portal_estate(tenant, *, member, compute) -> dict:
    """One object of each kind the portal's routes name, in ``tenant``: ``member`` (with an API
    token) and ``compute`` are the caller's, the rest is made here."""
    return {
        "slug": tenant.slug,
        "number": make_incident(tenant).number,
        "membership_id": member.membership.pk,
        "token_id": member.api_tokens.first().pk,
        "endpoint_id": make_webhook_endpoint(tenant).pk,
        "pillar": PILLAR_KEYS[0],
        "compute": compute.pk,
        "deployment": make_deployment(tenant, compute=compute).pk,
        "recommendation": make_recommendation(tenant).pk,
    }


def portal_urls(route: str, view: str, estate: dict) -> list[str]:
    """The route with its parameters filled from the estate, one URL per action kind."""

    def fill(action: str) -> str:
        def value(match: re.Match) -> str:
            name = match.group(1)
            if name == "pk":
                if "compute" in route:
                    return str(estate["compute"])
                if "deployments" in route:
                    return str(estate["deployment"])
                if "reports" in route:
                    return str(MISSING_ID)  # a download: no body is read, 404 is the answer
                return str(estate["recommendation"])
            if name == "action":
                return action
            if name == "fmt":
                return "pdf"
            return str(estate[name])

        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", value, route)

    return [fill(action) for action in ACTIONS.get(view, ("",))]
