"""Lists without model instances: rows from ``.values()``, each field's own representation.

A 100-row list spent most of its time building model instances and walking DRF's per-field
machinery (``get_attribute``, ``SkipField``, ``PKOnlyObject``) for each of 100 × 18 cells.
``ValuesPlan`` reads a serializer class once and, where every readable field maps to a
column, answers a list from ``queryset.values(...)``: a column's value goes through the same
field's ``to_representation`` (identity where DRF's is), ``None`` stays ``None`` as DRF
leaves it. The answer is the serializer's, byte for byte (``tests/api/test_values_lists.py``
compares both paths on every list route that takes this one).

A field takes the path when it is a model column or annotation (``source`` one name or a
chain of foreign keys ending in a column), a primary-key or slug relation to one object, or a
``ComputedField``. Anything else (nested serializers, many-to-many, method fields, properties,
``source="*"``, a serializer that overrides ``to_representation``) leaves the whole list on
DRF's path. ``API_VALUES_LISTS = False`` turns the path off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from rest_framework import ISO_8601, mixins, serializers
from rest_framework import fields as drf_fields
from rest_framework.relations import ManyRelatedField, PrimaryKeyRelatedField, SlugRelatedField
from rest_framework.response import Response
from rest_framework.settings import api_settings

_DATETIME = drf_fields.DateTimeField()
# Fields whose to_representation of a column value is the value itself: no call needed.
_IDENTITY = (
    drf_fields.BooleanField,
    drf_fields.JSONField,
    drf_fields.ReadOnlyField,
)
# DRF's str() / int() of a value the column already gives as a str / an int.
_SAME_TYPE = (
    (drf_fields.CharField, (models.CharField, models.TextField)),
    (drf_fields.IntegerField, (models.IntegerField, models.AutoField)),
)


class ComputedField(serializers.CharField):
    """A read-only string (or null) computed by ``function`` from ``paths`` (``__``-separated,
    through foreign keys): on the instance path from the object's attributes, on the values
    path from the same columns, so both give the same answer by construction."""

    def __init__(self, *, paths: tuple[str, ...], function: Callable[..., Any], **kwargs):
        kwargs.update(source="*", read_only=True, allow_null=True)
        super().__init__(**kwargs)
        self.paths = paths
        self.function = function

    def to_representation(self, instance):
        return self.function(*(_attribute_path(instance, path) for path in self.paths))


def _attribute_path(instance, path: str):
    for name in path.split("__"):
        if instance is None:
            return None
        instance = getattr(instance, name)
    return instance


@dataclass(frozen=True)
class _Column:
    name: str
    paths: tuple[str, ...]
    # None: the value as read; otherwise called with the path values (never with None for a
    # single-path field, as DRF skips to_representation for None).
    convert: Callable[..., Any] | None
    computed: bool = False
    # Not a column: the view's queryset must carry this annotation (checked per request).
    annotation: bool = False
    # An ISO 8601 DateTimeField: converted with the request's time zone, looked up once a list
    # rather than once a cell as DRF does.
    iso_datetime: bool = False


@dataclass(frozen=True)
class ValuesPlan:
    columns: tuple[_Column, ...]
    annotations: frozenset[str]  # single-name sources that must be the queryset's annotations

    def applies_to(self, queryset: models.QuerySet) -> bool:
        return self.annotations <= set(queryset.query.annotations)

    def rows(self, queryset: models.QuerySet) -> models.QuerySet:
        paths = dict.fromkeys(path for column in self.columns for path in column.paths)
        return queryset.prefetch_related(None).values(*paths)

    def represent(self, rows: Iterable[dict]) -> list[dict]:
        iso = _iso_datetime(timezone.get_current_timezone() if settings.USE_TZ else None)
        cells = [
            (c.name, c.paths, iso if c.iso_datetime else c.convert, c.computed)
            for c in self.columns
        ]
        answer = []
        for row in rows:
            item = {}
            for name, paths, convert, computed in cells:
                if computed:
                    item[name] = convert(*(row[path] for path in paths))
                    continue
                value = row[paths[0]]
                item[name] = value if value is None or convert is None else convert(value)
            answer.append(item)
        return answer


def _iso_datetime(zone):
    """DRF's DateTimeField.to_representation for ISO 8601 output, the zone fixed."""

    def convert(value):
        if zone is not None and timezone.is_aware(value):
            text = value.astimezone(zone).isoformat()
        else:
            return _DATETIME.to_representation(value)
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return convert


def values_plan(serializer_class: type[serializers.BaseSerializer]) -> ValuesPlan | None:
    """The serializer's values path, or None where a field needs model instances."""
    if not settings.API_VALUES_LISTS:
        return None
    return _plan(serializer_class)


@cache
def _plan(serializer_class) -> ValuesPlan | None:
    if not issubclass(serializer_class, serializers.ModelSerializer):
        return None
    if serializer_class.to_representation is not serializers.Serializer.to_representation:
        return None
    model = serializer_class.Meta.model
    # A context-free instance: the plan keeps its fields, whose representation of a column
    # value needs no request (fields that would are refused below).
    serializer = serializer_class(context={})
    columns, annotations = [], set()
    for field in serializer._readable_fields:
        column = _column(model, field)
        if column is None:
            return None
        if column.annotation:
            annotations.add(column.paths[0])
        columns.append(column)
    return ValuesPlan(tuple(columns), frozenset(annotations))


def _column(model: type[models.Model], field) -> _Column | None:
    name = field.field_name
    if isinstance(field, ComputedField):
        return _Column(name, field.paths, field.function, computed=True)
    if isinstance(field, (serializers.BaseSerializer, ManyRelatedField)):
        return None
    if isinstance(field, (serializers.SerializerMethodField, serializers.HiddenField)):
        return None
    if field.source == "*" or getattr(field, "write_only", False):
        return None
    attrs = field.source_attrs
    if isinstance(field, PrimaryKeyRelatedField):
        if field.pk_field is not None or _overrides(field, PrimaryKeyRelatedField):
            return None
        target, _ = _model_path(model, attrs, relation_last=True)
        return None if target is None else _Column(name, (target,), None)
    if isinstance(field, SlugRelatedField):
        if _overrides(field, SlugRelatedField):
            return None
        target, _ = _model_path(model, [*attrs, *field.slug_field.split("__")])
        return None if target is None else _Column(name, (target,), None)
    if isinstance(field, serializers.RelatedField):
        return None
    target, model_field = _model_path(model, attrs)
    convert = None if _is_identity(field, model_field) else field.to_representation
    if target is not None:
        if len(attrs) > 1 and not (field.allow_null and field.default is drf_fields.empty):
            # A null link in the chain: DRF answers the default or skips the field; the
            # values path cannot tell a null link from a null column.
            return None
        return _Column(name, (target,), convert, iso_datetime=_plain_iso_datetime(field))
    if len(attrs) == 1:
        # Not a column: an annotation of the view's queryset (checked per request).
        return _Column(name, (attrs[0],), convert, annotation=True)
    return None


def _is_identity(field, model_field) -> bool:
    """Whether the field's representation of this column's values is the value itself."""
    if isinstance(field, _IDENTITY):
        return True
    for drf_type, column_types in _SAME_TYPE:
        if type(field) is drf_type and isinstance(model_field, column_types):
            return True
    # A choice's representation is the choice itself when every choice is a string and the
    # column holds one of them (a value outside the choices is answered as it is, too).
    return (
        isinstance(field, drf_fields.ChoiceField)
        and not _overrides(field, drf_fields.ChoiceField)
        and isinstance(model_field, (models.CharField, models.TextField))
        and all(isinstance(key, str) for key in field.choices)
    )


def _plain_iso_datetime(field) -> bool:
    return (
        isinstance(field, drf_fields.DateTimeField)
        and not _overrides(field, drf_fields.DateTimeField)
        and not hasattr(field, "timezone")
        and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == ISO_8601
    )


def _overrides(field, base: type) -> bool:
    return any(
        getattr(type(field), method) is not getattr(base, method)
        for method in ("to_representation", "get_attribute", "enforce_timezone", "default_timezone")
        if hasattr(base, method)
    )


def _model_path(model, attrs, *, relation_last: bool = False):
    """(``a__b__c``, the model field) if ``attrs`` walk foreign keys to a concrete column (to
    a foreign key itself with ``relation_last``), else (None, None)."""
    current = model
    for position, attr in enumerate(attrs):
        try:
            model_field = current._meta.get_field(attr)
        except FieldDoesNotExist:
            return None, None
        last = position == len(attrs) - 1
        if not getattr(model_field, "concrete", False):
            return None, None
        if model_field.is_relation:
            if model_field.many_to_many:
                return None, None
            if last:
                return ("__".join(attrs), model_field) if relation_last else (None, None)
            current = model_field.related_model
        elif not last or relation_last:
            return None, None
    return "__".join(attrs), model_field


class ValuesListModelMixin(mixins.ListModelMixin):
    """``list`` from ``.values()`` rows where the serializer allows it (see the module)."""

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        plan = values_plan(self.get_serializer_class())
        if plan is None or not plan.applies_to(queryset):
            # DRF's own list, on the queryset already built.
            page = self.paginate_queryset(queryset)
            if page is not None:
                return self.get_paginated_response(self.get_serializer(page, many=True).data)
            return Response(self.get_serializer(queryset, many=True).data)
        rows = plan.rows(queryset)
        page = self.paginate_queryset(rows)
        if page is not None:
            return self.get_paginated_response(plan.represent(page))
        return Response(plan.represent(rows))
