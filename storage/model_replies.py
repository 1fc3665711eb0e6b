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
        # A plain connection, not an ORM session: a replayed decision asks this per agent.
        query = sa.select(*_COLUMNS).where(ModelReplyRow.prompt_hash == prompt_hash)
        with self._database.engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else _reply(row._mapping)

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


_COLUMNS = tuple(getattr(ModelReplyRow, name) for name in StoredReply.model_fields)


def _reply(row: sa.RowMapping) -> StoredReply:
    message = row["message"]
    return StoredReply.model_validate(
        {**row, "message": None if message is None else json.loads(message)}
    )
