"""API keys: made with a random secret shown once, kept as its SHA-256, checked in constant time.

A key reads ``sgx_<id>_<secret>``. The id finds the row; the secret's digest is compared with
``hmac.compare_digest``. The secret carries 256 random bits, so a plain SHA-256 suffices:
no dictionary or brute force reaches it, and checking stays cheap on every request.
"""

import hashlib
import hmac
import secrets
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session, sessionmaker

from storage.models import ApiKeyRow

Scope = Literal["read", "trade", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "trade", "admin")
KEY_PREFIX = "sgx"
MAX_LABEL = 64


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
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

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
            return _key(row)

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
        with self.session_factory() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                # Spend the same work as a known id, so timing says nothing about which exist.
                hmac.compare_digest(_digest(secret), _digest(""))
                return None
            matches = hmac.compare_digest(_digest(secret), row.secret_sha256)
            if not matches or row.revoked_at is not None:
                return None
            return _key(row)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey.model_validate(
        {
            "id": row.id,
            "scope": row.scope,
            "label": row.label,
            "created_at": row.created_at,
            "revoked_at": row.revoked_at,
        }
    )
