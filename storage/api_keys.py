"""API keys: made with a random secret shown once, kept as its SHA-256, checked in constant time.

A key reads ``sgx_<id>_<secret>``. The id finds the row; the secret's digest is compared with
``hmac.compare_digest``. The secret carries 256 random bits, so a plain SHA-256 suffices:
no dictionary or brute force reaches it, and checking stays cheap on every request.

A key found good is trusted for ``VERIFIED_FOR_SECONDS`` without asking the database again
(the check was a third of a listing request's cost): a revocation, from any process, takes
effect within that second; one made through this store takes effect at once.
"""

import hashlib
import hmac
import secrets
import time
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from storage.engine import Database
from storage.models import ApiKeyRow

Scope = Literal["read", "trade", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "trade", "admin")
KEY_PREFIX = "sgx"
MAX_LABEL = 64
VERIFIED_FOR_SECONDS = 1.0


class ApiKey(BaseModel):
    """A key as listed: never its secret."""

    model_config = ConfigDict(frozen=True)

    id: str
    scope: Scope
    label: str
    created_at: int
    revoked_at: int | None


class NewApiKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: ApiKey
    # The whole bearer token; not stored anywhere, shown once.
    token: str


class ApiKeyError(ValueError):
    """A key operation refused: unknown id, already revoked, bad label."""


class ApiKeyStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        self.session_factory = database.session_factory
        # (key id, secret digest) → the key and until when (monotonic) it is trusted.
        self._verified: dict[tuple[str, str], tuple[ApiKey, float]] = {}

    def create(self, scope: Scope, label: str, now_ms: int) -> NewApiKey:
        if scope not in SCOPES:
            raise ApiKeyError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if not label.strip() or len(label) > MAX_LABEL:
            raise ApiKeyError(f"label must be 1 to {MAX_LABEL} characters")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=key_id,
            secret_sha256=_digest(secret),
            scope=scope,
            label=label,
            created_at=now_ms,
            revoked_at=None,
        )
        with self.session_factory.begin() as session:
            session.add(row)
        return NewApiKey(key=_key(row), token=f"{KEY_PREFIX}_{key_id}_{secret}")

    def list(self) -> list[ApiKey]:
        with self.session_factory() as session:
            rows = session.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at)).all()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str, now_ms: int) -> ApiKey:
        with self.session_factory.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise ApiKeyError(f"no API key with id {key_id!r} (see `sigmax keys list`)")
            if row.revoked_at is not None:
                raise ApiKeyError(f"API key {key_id} is already revoked")
            row.revoked_at = now_ms
            revoked = _key(row)
        for cached in [entry for entry in self._verified if entry[0] == key_id]:
            del self._verified[cached]
        return revoked

    def active_count(self) -> int:
        query = sa.select(sa.func.count()).where(ApiKeyRow.revoked_at.is_(None))
        with self.session_factory() as session:
            return session.scalar(query) or 0

    def verify(self, token: str) -> ApiKey | None:
        """The live key this token is, or None (malformed, unknown, wrong secret, revoked)."""
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not key_id or not secret:
            return None
        digest = _digest(secret)
        cached = self._verified.get((key_id, digest))
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        # A plain Core query: the ORM's identity load cost four times as much.
        with self._database.engine.connect() as connection:
            row = connection.execute(_BY_ID, {"id": key_id}).one_or_none()
        if row is None:
            # Spend the same work as a known id, so timing says nothing about which exist.
            hmac.compare_digest(digest, _digest(""))
            return None
        if not hmac.compare_digest(digest, row.secret_sha256) or row.revoked_at is not None:
            return None
        key = _key(row)
        self._verified[(key_id, digest)] = (key, time.monotonic() + VERIFIED_FOR_SECONDS)
        return key


_BY_ID = sa.select(
    ApiKeyRow.id,
    ApiKeyRow.secret_sha256,
    ApiKeyRow.scope,
    ApiKeyRow.label,
    ApiKeyRow.created_at,
    ApiKeyRow.revoked_at,
).where(ApiKeyRow.id == sa.bindparam("id"))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: ApiKeyRow | sa.Row[str, str, str, str, int, int | None]) -> ApiKey:
    return ApiKey.model_validate(
        {
            "id": row.id,
            "scope": row.scope,
            "label": row.label,
            "created_at": row.created_at,
            "revoked_at": row.revoked_at,
        }
    )
