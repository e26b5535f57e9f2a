"""Model choice fields that refuse an out-of-range id before it reaches the database.

Django's own fields pass any digits to the query; SQLite cannot bind an integer past 64 bits
and raises ``OverflowError`` (a 500), where PostgreSQL would merely find nothing. These answer
"not one of the choices", as for any other unknown id. Portal forms declare them; the admin
uses them for every foreign key and many-to-many (``tenants.admin.base``).
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.db import models

BIGINT_RANGE = range(-(2**63), 2**63)


def _fits_the_key(field: forms.ModelChoiceField, value) -> bool:
    """False for an integer key the database could not bind; other keys are left to Django."""
    key = field.to_field_name or "pk"
    model_field = field.queryset.model._meta.get_field(key) if key != "pk" else None
    model_field = model_field or field.queryset.model._meta.pk
    if not isinstance(model_field, models.IntegerField | models.AutoField):
        return True
    return _bindable(value)  # not a number at all: Django's own check answers that


def _bindable(value) -> bool:
    """False only for a whole number the database could not bind."""
    try:
        return int(str(value).strip()) in BIGINT_RANGE
    except ValueError:
        return True


def _whole_bindable_number(value) -> bool:
    try:
        return int(str(value).strip()) in BIGINT_RANGE
    except ValueError:
        return False


class _BoundedAutocompleteMixin:
    """The admin's autocomplete widget looks up the submitted ids to show them again beside
    the form's errors, and Django's raises on one that is not a number or that no database
    could bind: those are left out of that look-up (the field reports them)."""

    def optgroups(self, name, value, attr=None):
        remote = self.field.remote_field
        key = remote.model._meta.get_field(getattr(remote, "field_name", None) or "id")
        if isinstance(key, models.IntegerField | models.AutoField):
            value = [each for each in value if _whole_bindable_number(each)]
        return super().optgroups(name, value, attr)


class BoundedAutocompleteSelect(_BoundedAutocompleteMixin, AutocompleteSelect):
    pass


class BoundedAutocompleteSelectMultiple(_BoundedAutocompleteMixin, AutocompleteSelectMultiple):
    pass


class BoundedModelChoiceField(forms.ModelChoiceField):
    def to_python(self, value):
        if value not in self.empty_values and not _fits_the_key(self, value):
            raise ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )
        return super().to_python(value)


class BoundedModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    def _check_values(self, value):
        for each in value if isinstance(value, list | tuple | set) else ():
            if not _fits_the_key(self, each):
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": each},
                )
        return super()._check_values(value)
