from rest_framework.throttling import SimpleRateThrottle


class PerTokenRateThrottle(SimpleRateThrottle):
    """One bucket per API token; session users by user id, anonymous callers by address."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "pk", None):
            ident = f"token:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


#: Used while settings name no "ingest" rate (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]).
DEFAULT_INGEST_RATE = "6000/minute"


class IngestRateThrottle(PerTokenRateThrottle):
    """Telemetry ingest: a bucket of its own per token, so an agent pushing samples does not
    spend the token's API budget (``token`` scope), nor API calls the agent's."""

    scope = "ingest"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope, DEFAULT_INGEST_RATE)
