"""API keys at rest: only a digest is stored, the secret is checked, revocation holds."""

import pytest
import sqlalchemy as sa

from storage.api_keys import ApiKeyError, ApiKeyStore
from storage.engine import Database
from storage.models import ApiKeyRow


def test_only_the_digest_is_stored_and_the_token_verifies(database: Database) -> None:
    store = ApiKeyStore(database)
    made = store.create("trade", "desk", now_ms=1_000)
    with database.session_factory() as session:
        stored = session.scalars(sa.select(ApiKeyRow)).one()
    secret = made.token.split("_", 2)[2]
    assert secret not in stored.secret_sha256
    assert made.token not in str(vars(stored))
    assert store.verify(made.token) == made.key
    assert made.key.scope == "trade"


def test_wrong_malformed_and_unknown_tokens_are_refused(database: Database) -> None:
    store = ApiKeyStore(database)
    made = store.create("admin", "ops", now_ms=1_000)
    key_id = made.key.id
    for token in (
        f"sgx_{key_id}_wrong-secret",
        f"sgx_ffffffffffff_{made.token.split('_', 2)[2]}",
        made.token.replace("sgx_", "xyz_"),
        "",
        "Bearer",
        f"sgx_{key_id}_",
    ):
        assert store.verify(token) is None, token


def test_a_revoked_key_is_refused_at_once_by_the_store_that_revoked_it(
    database: Database,
) -> None:
    store = ApiKeyStore(database)
    made = store.create("read", "dashboard", now_ms=1_000)
    assert store.verify(made.token) is not None  # now trusted for a second
    revoked = store.revoke(made.key.id, now_ms=2_000)
    assert revoked.revoked_at == 2_000
    assert store.verify(made.token) is None
    assert ApiKeyStore(database).verify(made.token) is None
    assert store.active_count() == 0
    assert [key.revoked_at for key in store.list()] == [2_000]


def test_bad_key_operations_say_what_to_fix(database: Database) -> None:
    store = ApiKeyStore(database)
    with pytest.raises(ApiKeyError, match="no API key with id 'nope'"):
        store.revoke("nope", 1)
    with pytest.raises(ApiKeyError, match="label must be 1 to 64 characters"):
        store.create("read", "", 1)
    with pytest.raises(ApiKeyError, match="scope must be one of read, trade, admin"):
        store.create("root", "x", 1)  # type: ignore[arg-type]
    made = store.create("read", "once", 1)
    store.revoke(made.key.id, 2)
    with pytest.raises(ApiKeyError, match="already revoked"):
        store.revoke(made.key.id, 3)
