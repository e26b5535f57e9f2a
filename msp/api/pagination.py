from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """Page-number pagination; callers may ask for up to ``API_MAX_PAGE_SIZE`` rows a page."""

    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
