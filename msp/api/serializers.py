from rest_framework import serializers


class StrictSerializerMixin:
    """Refuse input keys the serializer does not know, naming them (typos must not pass)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            # Read-only names are tolerated (clients echo objects back); anything else is a typo.
            known = set(self.fields)
            unknown = sorted(set(data) - known)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}, code="unknown_field"
                )
        return super().to_internal_value(data)


class StrictSerializer(StrictSerializerMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    pass
