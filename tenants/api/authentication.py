from __future__ import annotations

import datetime
import hmac

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from tenants.audit import set_actor_token
from tenants.models import ApiToken
from tenants.selectors import api_token_by_prefix
from tenants.services import token_hash, token_parse


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer gw_<prefix>_<secret>``: one query, by the indexed prefix (with
    the user's role in a bound token's tenant: ``tenants.selectors.api_token_by_prefix``)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword != self.keyword:
            return None
        parsed = token_parse(raw.strip())
        if parsed is None:
            raise exceptions.AuthenticationFailed("Malformed API token.")
        prefix, plaintext = parsed
        token = api_token_by_prefix(prefix)
        if token is None or not hmac.compare_digest(token.secret_hash, token_hash(plaintext)):
            raise exceptions.AuthenticationFailed("Invalid API token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token has been revoked.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("This API token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is inactive.")
        self._touch(token)
        set_actor_token(token)
        return token.user, token

    def _touch(self, token: ApiToken) -> None:
        # At most one write a minute per token: last-used time is for humans, not accounting.
        now = timezone.now()
        interval = datetime.timedelta(seconds=settings.API_TOKEN_LAST_USED_INTERVAL_SECONDS)
        if token.last_used_at is None or now - token.last_used_at >= interval:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now

    def authenticate_header(self, request):
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
