"""The base of every API filterset: a filter value the database cannot hold is a 400.

Python parses values PostgreSQL or SQLite refuse (``?site=1e30``, a date-time in year 1288 at
UTC−16:32, one in 9999 that UTC pushes into year 10000); sent on, they end as a 500. The form of
every filterset checks its cleaned values once, whatever the filter.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache

import django_filters
from django import forms
from django_filters.filters import QuerySetRequestMixin
from django_filters.rest_framework import DjangoFilterBackend

#: The widest integer column (bigint); the ids and counts a filter compares with fit in it.
_LARGEST = 2**63 - 1


def _storable(value):
    """``value`` as the database can take it, or raise ``forms.ValidationError``."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        try:
            # UTC first: PostgreSQL refuses offsets past ±15:59 that Python accepts.
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError("Date-time out of range.", code="out_of_range") from None
    number = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    if number and not abs(value) <= _LARGEST:
        raise forms.ValidationError("Number out of range.", code="out_of_range")
    return value


class _StorableValuesForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            try:
                cleaned[name] = _storable(value)
            except forms.ValidationError as error:
                self.add_error(name, error)
        return cleaned


class FilterSet(django_filters.FilterSet):
    """Every API list's filterset inherits this (instead of ``django_filters.FilterSet``).

    Its form class is built once per filterset class, not per request (django-filter makes
    every filter's form field, labels and all, for each request: a fifth of a detail GET).
    A filter whose choices come from the request (``ModelChoiceFilter`` and kin) would make
    the class differ per request, so such a filterset builds it each time as before.
    """

    _form_classes: dict[type, type[forms.Form]] = {}

    def get_form_class(self):
        cls = type(self)
        cached = cls._form_classes.get(cls)
        if cached is None:
            form = super().get_form_class()
            cached = type(form.__name__, (_StorableValuesForm, form), {})
            if not any(isinstance(f, QuerySetRequestMixin) for f in self.filters.values()):
                cls._form_classes[cls] = cached
        return cached


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipping the filterset when the query names none of its
    parameters: there it would deep-copy every filter and validate an empty form to change
    nothing (a tenth of an unfiltered 100-row list)."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None or not _names_a_filter(filterset_class, request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _names_a_filter(filterset_class, params) -> bool:
    # A range filter reads ``<name>_min``/``_max``, a date range ``<name>_after``/``_before``:
    # any parameter that starts with a filter's name counts.
    names = _filter_names(filterset_class)
    return any(param.startswith(names) for param in params)


@cache
def _filter_names(filterset_class) -> tuple[str, ...]:
    return tuple(filterset_class.base_filters)
