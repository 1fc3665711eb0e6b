"""The replay cache's vocabulary: one stored answer per prompt, and the store it lives in.

A chat model's answer to a prompt is kept under the prompt's hash, so a rerun or a backtest
with the same model and inputs is answered from the store: the same decision, at no cost.
"""

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

# "answered": the model's last message is kept (a malformed one too: it is judged again, the
# same way, on replay); "failed": the call raised or timed out, with the reason.
ReplyStatus = Literal["answered", "failed"]


class StoredReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt_hash: str
    backend: str
    status: ReplyStatus
    # The model's last message: its text content and tool calls (None when it failed).
    message: dict[str, Any] | None
    reason: str | None
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    tokens_estimated: bool
    latency_ms: float = Field(ge=0.0)
    attempts: int = Field(ge=1)
    created_at: int  # wall clock, epoch ms: the day whose token budget the call spent


class ReplyStore(Protocol):
    def get(self, prompt_hash: str) -> StoredReply | None: ...

    def put(self, reply: StoredReply) -> None: ...

    def tokens_since(self, since_ms: int) -> int:
        """Tokens of the calls made at or after ``since_ms`` (wall clock): what was spent."""
        ...
