"""The replay cache of chat-model answers, keyed by prompt hash, and the tokens spent per day."""

import json

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.hashing import canonical_json
from core.model_replies import StoredReply
from storage.engine import Database
from storage.models import ModelReplyRow


class ModelReplyStore:
    """A ``core.model_replies.ReplyStore`` in the database: shared by every process on it."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def get(self, prompt_hash: str) -> StoredReply | None:
        with self._database.session_factory() as session:
            row = session.get(ModelReplyRow, prompt_hash)
            return None if row is None else _reply(row)

    def put(self, reply: StoredReply) -> None:
        """Store ``reply`` unless the prompt is answered already (the first answer stays)."""
        row = ModelReplyRow(
            **reply.model_dump(exclude={"message"}),
            message=None if reply.message is None else canonical_json(reply.message).decode(),
        )
        try:
            with self._database.guarded_session_factory.begin() as session:
                if session.get(ModelReplyRow, reply.prompt_hash) is None:
                    session.add(row)
        except IntegrityError:
            return  # another process stored the same prompt's answer first

    def tokens_since(self, since_ms: int) -> int:
        query = sa.select(
            sa.func.coalesce(
                sa.func.sum(ModelReplyRow.input_tokens + ModelReplyRow.output_tokens), 0
            )
        ).where(ModelReplyRow.created_at >= since_ms)
        with self._database.engine.connect() as connection:
            return int(connection.scalar(query) or 0)


def _reply(row: ModelReplyRow) -> StoredReply:
    return StoredReply(
        prompt_hash=row.prompt_hash,
        backend=row.backend,
        status="failed" if row.status == "failed" else "answered",
        message=None if row.message is None else json.loads(row.message),
        reason=row.reason,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        tokens_estimated=row.tokens_estimated,
        latency_ms=row.latency_ms,
        attempts=row.attempts,
        created_at=row.created_at,
    )
