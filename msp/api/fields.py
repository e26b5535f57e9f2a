"""Serializer fields that stay cheap and clean on hostile input.

``PrimaryKeyRelatedField`` checks an id is a sane integer before any query (``1e400``, ``true``
or ``"x"`` are 400s, not database errors), and with ``many=True`` becomes
``BoundedManyRelatedField``: at most ``API_MAX_LIST_LENGTH`` ids, resolved in one query, every
bad one named in the field's messages. ``StrictModelSerializer`` uses it for every foreign key.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from rest_framework import serializers
from rest_framework.relations import MANY_RELATION_KWARGS, ManyRelatedField

_MAX_ID = 2**63 - 1


def max_list_length() -> int:
    return settings.API_MAX_LIST_LENGTH


class PrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A related object by id; the id is checked to be a plausible integer before the query."""

    def integer_keys(self) -> bool:
        if self.pk_field is not None:
            return False
        queryset = self.get_queryset()
        # AutoField and BigAutoField are IntegerFields; other keys keep DRF's own lookup.
        return queryset is not None and isinstance(queryset.model._meta.pk, models.IntegerField)

    def checked_pk(self, data) -> int:
        """``data`` as an id, or ``ValidationError`` (wrong type, or no row can have it)."""
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, str):
            text = data.strip()
            if not (text.isascii() and text.isdigit() and len(text) <= 19):
                self.fail("incorrect_type", data_type="str")
            data = int(text)
        if not 1 <= data <= _MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return data

    def to_internal_value(self, data):
        if self.integer_keys():
            data = self.checked_pk(data)
        return super().to_internal_value(data)

    @classmethod
    def many_init(cls, *args, **kwargs):
        child_kwargs = {key: value for key, value in kwargs.items() if key != "max_length"}
        list_kwargs = {"child_relation": cls(*args, **child_kwargs)}
        for key in kwargs:
            if key in (*MANY_RELATION_KWARGS, "max_length"):
                list_kwargs[key] = kwargs[key]
        return BoundedManyRelatedField(**list_kwargs)


class BoundedManyRelatedField(ManyRelatedField):
    """A list of related ids: capped in length, resolved in one query, every bad id named."""

    default_error_messages = {
        "max_length": "Ensure this field has no more than {max_length} elements.",
    }

    def __init__(self, *, max_length: int | None = None, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, (str, dict)) or not hasattr(data, "__iter__"):
            self.fail("not_a_list", input_type=type(data).__name__)
        data = list(data)
        if not self.allow_empty and not data:
            self.fail("empty")
        max_length = self.max_length or max_list_length()
        if len(data) > max_length:
            self.fail("max_length", max_length=max_length)
        child = self.child_relation
        if not (isinstance(child, PrimaryKeyRelatedField) and child.integer_keys()):
            return super().to_internal_value(data)

        errors: list[str] = []
        pks: list[int | None] = []
        for item in data:
            try:
                pks.append(child.checked_pk(item))
            except serializers.ValidationError as exc:
                errors.extend(str(message) for message in exc.detail)
                pks.append(None)
        wanted = {pk for pk in pks if pk is not None}
        # One query for the whole list (in_bulk would split it in batches on SQLite).
        found = {obj.pk: obj for obj in child.get_queryset().filter(pk__in=wanted)}
        missing = [pk for pk in dict.fromkeys(pks) if pk is not None and pk not in found]
        errors.extend(child.error_messages["does_not_exist"].format(pk_value=pk) for pk in missing)
        if errors:
            raise serializers.ValidationError(errors, code="does_not_exist")
        return [found[pk] for pk in pks]
