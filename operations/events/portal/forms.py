from __future__ import annotations

from django import forms

from operations.events.catalogue import CATALOGUE
from operations.events.models import EndpointKind
from tenants.portal.forms import ServiceErrorsMixin


class WebhookEndpointForm(ServiceErrorsMixin, forms.Form):
    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="Where Groundwork POSTs events. Public addresses only.",
    )
    kind = forms.ChoiceField(choices=EndpointKind.choices, initial=EndpointKind.WEBHOOK)
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        choices=[(name, name) for name in CATALOGUE if name != "webhook.test"],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to receive every event type.",
    )


def _emailable_events():
    return [(e.name, f"{e.name}: {e.description}") for e in CATALOGUE.values() if e.emitted]


class EmailSettingsForm(ServiceErrorsMixin, forms.Form):
    email = forms.BooleanField(label="Email me about this tenant's events", required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=_emailable_events,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
