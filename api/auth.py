"""Bearer API keys with scopes, and the rate limit on mutating routes.

The checks run on the event loop (one indexed read): see api/app.py for why.

Scopes nest: ``admin`` may do what ``trade`` may, ``trade`` what ``read`` may. ``read``: every
GET; ``trade``: POST /decisions (it can place paper orders); ``admin``: pause, resume, panic.
"""

import math
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.service import service_of
from storage.api_keys import ApiKey, Scope

SCOPE_RANK: dict[Scope, int] = {"read": 0, "trade": 1, "admin": 2}

_bearer = HTTPBearer(auto_error=False, description="An API key: `sigmax keys create --scope …`")


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency: the presented key, which must hold ``scope`` (or a wider one)."""

    async def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> ApiKey:
        if credentials is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing API key: send `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        service = service_of(request)
        key = await service.read(service.api_keys.verify, credentials.credentials)
        if key is None:
            raise ApiError(
                401,
                "unauthorized",
                "unknown or revoked API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if SCOPE_RANK[key.scope] < SCOPE_RANK[scope]:
            raise ApiError(
                403, "forbidden", f"this route needs a {scope} key; key {key.id} is {key.scope}"
            )
        return key

    return dependency


def limited(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """``require(scope)`` plus the per-key rate limit of mutating routes."""
    authorised = require(scope)

    async def dependency(request: Request, key: ApiKey = Depends(authorised)) -> ApiKey:  # noqa: B008
        wait = service_of(request).rate_limiter.take(key.id)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"too many changes from key {key.id}: retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        return key

    return dependency


def actor(key: ApiKey) -> str:
    """Who a change is recorded as: the key's id and label (the actor column holds 64)."""
    return f"api:{key.id}:{key.label}"[:64]
