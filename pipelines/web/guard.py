"""Who is asking and what they may read: the token, from a header or the dashboard cookie.

``Authorization: Bearer <token>`` is what API clients send. Browsers cannot set headers on an
``EventSource``, so the dashboards trade a ``?token=`` for an HttpOnly, SameSite=Strict cookie
once (:mod:`pipelines.web.pages`) and the API accepts that cookie as well. Tokens are never
logged; the access log writes paths without query strings.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pipelines.access import (
    AccessTokenError,
    SigningKeys,
    looks_like_access_token,
    verify_access_token,
)
from pipelines.web.auth import Grant, TokenRegistry, bearer_token
from pipelines.web.errors import ApiError
from pipelines.web.queries import Queries

COOKIE = "nq_token"


class Guard:
    """Authenticates requests and checks that a room or region is within the token's scope."""

    def __init__(
        self, tokens: TokenRegistry, queries: Queries, access_keys: SigningKeys | None = None
    ) -> None:
        self.tokens = tokens
        self.queries = queries
        self.access_keys = access_keys

    def presented(self, request: Request) -> str | None:
        """Header, then cookie, then ``?access_token=`` (RFC 6750 section 2.3), which is
        accepted for short-lived participant access tokens only: an ``EventSource`` cannot send
        headers, and an operator token must never travel in a URL."""
        token = bearer_token(request.headers.get("authorization")) or request.cookies.get(COOKIE)
        if token is None:
            query = request.query_params.get("access_token")
            if looks_like_access_token(query):
                token = query
        return token

    def grant(self, request: Request) -> Grant:
        """The caller's grant, or 401 (no token, or one that is not configured)."""
        token = self.presented(request)
        if token is None:
            raise ApiError(401, "authentication required: send Authorization: Bearer <token>")
        if looks_like_access_token(token):
            return self._access_grant(token)
        grant = self.tokens.lookup(token)
        if grant is None:
            raise ApiError(401, "the token is not valid")
        return grant

    def _access_grant(self, token: str) -> Grant:
        if self.access_keys is None:
            raise ApiError(401, "access tokens are not enabled here (NETQUALITY_ACCESS_KEYS)")
        try:
            access = verify_access_token(self.access_keys, token)
        except AccessTokenError as exc:
            raise ApiError(401, str(exc)) from None
        return Grant(f"access:{access.key_id}", rooms=frozenset({access.room_sid}),
                     participant=access.participant_sid)

    async def room(self, request: Request, room_sid: str) -> tuple[Grant, str | None]:
        """Grant and region of a room the token covers; 403 when out of scope."""
        grant = self.grant(request)
        if grant.everything or room_sid in grant.rooms:
            return grant, None
        if grant.regions:
            region = await run_in_threadpool(self.queries.room_region, room_sid)
            if grant.covers_room(room_sid, region):
                return grant, region
        raise ApiError(403, f"this token does not cover room {room_sid}")

    def region(self, request: Request, region: str) -> Grant:
        grant = self.grant(request)
        if not grant.covers_region(region):
            raise ApiError(403, f"this token does not cover region {region}")
        return grant
