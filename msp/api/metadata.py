"""``OPTIONS``: DRF's metadata, for views with and without a serializer."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class ApiMetadata(SimpleMetadata):
    """Views that read their own body (telemetry ingest, inventory import) have no serializer
    to describe; DRF's metadata would ask for one and fail (a 500 on ``OPTIONS``)."""

    def determine_actions(self, request, view):
        # Imported here: DRF reads this class while rest_framework.views is still loading.
        from rest_framework.generics import GenericAPIView

        no_serializer = (
            getattr(view, "serializer_class", None) is None
            and type(view).get_serializer_class is GenericAPIView.get_serializer_class
        )
        if no_serializer:
            return {}
        return super().determine_actions(request, view)
