from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model
from rest_framework import serializers
from rest_framework.relations import ManyRelatedField

from msp.api.fields import PrimaryKeyRelatedField, max_list_length

_LIST_FIELDS = (serializers.ListField, serializers.ListSerializer, ManyRelatedField)


class StrictSerializerMixin:
    """Refuse input the serializer would otherwise drop or choke on, naming each field.

    - a key the serializer does not know ("Unknown field.": typos must not pass);
    - a read-only field ("Read-only field."), unless it repeats the object's current value,
      so a client may send back what it read;
    - a list longer than its field allows (``API_MAX_LIST_LENGTH`` unless it says otherwise),
      checked before any item is converted or looked up.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            fields = self.fields
            errors = {name: ["Unknown field."] for name in set(data) - set(fields)}
            for name in set(data) & set(fields):
                field, value = fields[name], data[name]
                if field.read_only:
                    if not self._repeats_current_value(field, value):
                        errors[name] = ["Read-only field."]
                elif isinstance(field, _LIST_FIELDS) and isinstance(value, list):
                    limit = getattr(field, "max_length", None) or max_list_length()
                    if len(value) > limit:
                        errors[name] = [f"Ensure this field has no more than {limit} elements."]
            if errors:
                raise serializers.ValidationError(dict(sorted(errors.items())))
        return super().to_internal_value(data)

    def _repeats_current_value(self, field, value) -> bool:
        instance = getattr(self, "instance", None)
        if not isinstance(instance, Model):  # a create, or a list serializer's queryset
            return False
        try:
            current = field.get_attribute(instance)
            current = None if current is None else field.to_representation(current)
        except (AttributeError, KeyError, TypeError, ValueError, ObjectDoesNotExist):
            return False
        return current == value


class StrictSerializer(StrictSerializerMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    # Foreign keys check their ids before querying; many=True resolves a capped list at once.
    serializer_related_field = PrimaryKeyRelatedField
