"""Portal forms for incidents. They validate input; the services do the writing."""

from __future__ import annotations

from django import forms

from operations.incidents.models import IncidentCategory
from operations.inventory.models import AISystem
from tenants.form_fields import BoundedModelMultipleChoiceField
from tenants.models import Severity
from tenants.portal.forms import ServiceErrorsMixin


class IncidentRaiseForm(ServiceErrorsMixin, forms.Form):
    title = forms.CharField(
        max_length=200,
        help_text="What is wrong, in a line, e.g. “Fraud scoring answers slowly since 09:10”.",
    )
    description = forms.CharField(
        required=False,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="What you see, since when, who is affected.",
    )
    severity = forms.ChoiceField(
        choices=Severity.choices,
        initial=Severity.SEV3,
        help_text="SEV1: a production service is down; SEV4: a question or a small defect.",
    )
    category = forms.ChoiceField(choices=IncidentCategory.choices)
    ai_systems = BoundedModelMultipleChoiceField(
        queryset=AISystem.objects.none(),
        required=False,
        label="Affected AI systems",
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        # Built inside the request's tenant scope: only this tenant's systems can be chosen.
        self.fields["ai_systems"].queryset = AISystem.objects.filter(tenant=tenant).order_by("name")


class IncidentCommentForm(ServiceErrorsMixin, forms.Form):
    body = forms.CharField(
        label="Add a comment",
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Your MSP team and everyone in your organisation can read it.",
    )


class StaffNoteForm(ServiceErrorsMixin, forms.Form):
    """An engineer's reply to the client, or a note only the MSP reads."""

    body = forms.CharField(
        label="Reply or note", max_length=10000, widget=forms.Textarea(attrs={"rows": 3})
    )
    visibility = forms.ChoiceField(
        choices=[("client", "Reply to the client"), ("internal", "Internal note (MSP only)")],
        initial="client",
        widget=forms.RadioSelect,
    )


class WorkflowNoteForm(forms.Form):
    """The optional note beside a workflow button (acknowledge, resolve, close, reopen, …), in
    the portal and the admin alike: validated here (length, no NUL byte) before a service
    writes it to the timeline."""

    note = forms.CharField(required=False, max_length=10000)
    note_visibility = forms.ChoiceField(
        choices=[("client", "Client"), ("internal", "Internal")], required=False
    )

    @property
    def note_internal(self) -> bool:
        return self.cleaned_data.get("note_visibility") != "client"

    def problems(self) -> str:
        return " ".join(f"{name}: {' '.join(errors)}" for name, errors in self.errors.items())


class StaffSeverityForm(ServiceErrorsMixin, forms.Form):
    severity = forms.ChoiceField(choices=Severity.choices)
    reason = forms.CharField(
        max_length=2000,
        help_text="Why: the client reads it on the timeline.",
    )
