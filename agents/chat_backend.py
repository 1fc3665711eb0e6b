"""One agent's chat model: a prompt in, an answer in the agent's schema out — or the reason not.

The answer comes through tool calling (langchain-core's structured output: the schema bound
as the one tool, parsed back with ``PydanticToolsParser``) and is then converted by the
caller, whose checks (evidence only by the names given, …) count as part of the schema.
Before a request: the replay cache (an answered prompt is never asked again), the decision's
token budget and the day's. A request: bounded attempts, each with a timeout and each checked
against the budgets first (the prompt plus the longest answer asked for). An answer — one
that fits or a malformed one — is stored under the prompt's hash and returned with a
``ModelCall`` for the record; a call that failed (an error, a timeout) is recorded in the
decision but not stored: the failure was the provider's, so a rerun asks again.
"""

import functools
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers.openai_tools import PydanticToolsParser
from pydantic import BaseModel

from core.decision import ModelCall
from core.hashing import hash_json
from core.model_replies import ReplyStore, StoredReply
from core.settings import LLMSettings
from core.timeframes import TIMEFRAME_MS, now_ms

Draft = TypeVar("Draft", bound=BaseModel)
Result = TypeVar("Result")

# Providers that report no usage are charged by text length: about four characters a token.
CHARS_PER_TOKEN = 4
DAY_MS = TIMEFRAME_MS["1d"]
# An error's text is cut to this many characters before it is recorded.
REASON_CHARS = 300


@dataclass(frozen=True)
class Prompt:
    """A system message (the role and the rules) and the data, as one JSON text."""

    system: str
    data: str

    def messages(self) -> list[BaseMessage]:
        return [SystemMessage(content=self.system), HumanMessage(content=self.data)]

    def estimated_tokens(self) -> int:
        return math.ceil((len(self.system) + len(self.data)) / CHARS_PER_TOKEN)


@dataclass
class TokenLedger:
    """Tokens one decision has used so far. Replayed answers count at what they first cost,
    so a rerun meets the decision's budget at the same call as the original run did."""

    spent: int = 0


@dataclass(frozen=True)
class ModelAnswer(Generic[Result]):
    """The converted answer (None: fall back to the rules) and the call's record."""

    value: Result | None
    call: ModelCall


@dataclass
class ChatBackend:
    """The chat model behind one agent (``model`` None: it could not be built, and why)."""

    spec: str
    model: BaseChatModel | None
    settings: LLMSettings
    replies: ReplyStore
    unavailable: str | None = None

    def ask(
        self,
        prompt: Prompt,
        schema: type[Draft],
        convert: Callable[[Draft], Result],
        ledger: TokenLedger,
    ) -> ModelAnswer[Result]:
        """The model's answer to ``prompt`` in ``schema``, converted; on any failure a
        ``ModelAnswer`` with no value and the reason in its call."""
        prompt_hash = self._prompt_hash(prompt, schema)
        if self.model is None:
            return self._skipped(prompt_hash, f"backend unavailable: {self.unavailable}")
        # Checked before the cache, on what the decision has used and the prompt alone, so a
        # rerun (replayed answers count at what they first cost) stops at the same call.
        over = self._over_decision_budget(ledger.spent, prompt)
        if over is not None:
            return self._skipped(prompt_hash, over)
        reply = self.replies.get(prompt_hash)
        if reply is None:
            over = self._over_daily_budget(prompt)
            if over is not None:
                return self._skipped(prompt_hash, over)
            reply = self._request(self.model, prompt, prompt_hash, schema, convert, ledger.spent)
            if reply.status == "answered":
                self.replies.put(reply)
                # The stored answer, not ours: when another process answered the same prompt
                # first, a rerun will be given that one, so this decision must say it too.
                reply = self.replies.get(prompt_hash) or reply
        ledger.spent += reply.input_tokens + reply.output_tokens
        return self._answer(reply, schema, convert)

    def _attempt_tokens(self, prompt: Prompt) -> int:
        """What one attempt is charged before it is sent: the prompt and the longest answer."""
        return prompt.estimated_tokens() + self.settings.max_answer_tokens

    def _over_decision_budget(self, spent: int, prompt: Prompt) -> str | None:
        needed, budget = self._attempt_tokens(prompt), self.settings.decision_token_budget
        if spent + needed <= budget:
            return None
        return (
            f"over the decision's token budget: {spent} used + up to {needed} for this "
            f"attempt > {budget}"
        )

    def _over_daily_budget(self, prompt: Prompt) -> str | None:
        needed, daily = self._attempt_tokens(prompt), self.settings.daily_token_budget
        spent_today = self.replies.tokens_since(now_ms() // DAY_MS * DAY_MS)
        if spent_today + needed <= daily:
            return None
        return (
            f"over the day's token budget: {spent_today} spent today + up to {needed} for "
            f"this attempt > {daily}"
        )

    def _prompt_hash(self, prompt: Prompt, schema: type[BaseModel]) -> str:
        return hash_json(
            {
                "backend": self.spec,
                "temperature": self.settings.temperature,
                "max_answer_tokens": self.settings.max_answer_tokens,
                "retries": self.settings.retries,  # the stored answer is the last attempt's
                "tool": tool_schema(schema),
                "system": prompt.system,
                "data": prompt.data,
            }
        )

    def _skipped(self, prompt_hash: str, reason: str) -> ModelAnswer[Any]:
        call = ModelCall(
            backend=self.spec,
            prompt_hash=prompt_hash,
            input_tokens=0,
            output_tokens=0,
            tokens_estimated=False,
            latency_ms=0.0,
            attempts=0,
            fallback=True,
            reason=reason,
        )
        return ModelAnswer(value=None, call=call)

    def _request(
        self,
        model: BaseChatModel,
        prompt: Prompt,
        prompt_hash: str,
        schema: type[Draft],
        convert: Callable[[Draft], Result],
        spent: int,
    ) -> StoredReply:
        """Up to 1 + retries attempts, each within the budgets; the last message (or the
        error) is the reply."""
        started = time.perf_counter()
        input_tokens = output_tokens = attempts = 0
        estimated = False
        message: AIMessage | None = None
        reason: str | None = None
        try:
            bound = model.bind_tools([schema], tool_choice="any")
        except Exception as error:  # a model without tool calling: it cannot answer here
            reason = f"cannot call tools: {self._error_text(error)}"
            attempts = 1
        else:
            messages = prompt.messages()
            for _ in range(1 + self.settings.retries):
                so_far = spent + input_tokens + output_tokens
                if attempts and (
                    self._over_decision_budget(so_far, prompt) or self._over_daily_budget(prompt)
                ):
                    break  # what was asked so far stands; no further attempt is paid for
                attempts += 1
                try:
                    message = _invoke(bound, messages, self.settings.timeout_seconds)
                except TimeoutError:
                    message = None
                    reason = f"no answer within {self.settings.timeout_seconds:g} s"
                    break  # another attempt would cost the whole wait again
                except Exception as error:  # any provider error: recorded, then tried again
                    message, reason = None, self._error_text(error)
                    continue
                used, counted = _usage(message, prompt)
                input_tokens, output_tokens = input_tokens + used[0], output_tokens + used[1]
                estimated = estimated or counted
                reason = _parse(message, schema, convert)[1]
                if reason is None:
                    break
        return StoredReply(
            prompt_hash=prompt_hash,
            backend=self.spec,
            status="failed" if message is None else "answered",
            message=None if message is None else _stored_message(message),
            reason=reason if message is None else None,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_estimated=estimated,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            attempts=attempts,
            created_at=now_ms(),
        )

    def _error_text(self, error: Exception) -> str:
        # Blanked before the cut: a key cut in half would no longer be found.
        text = f"{type(error).__name__}: {error}"
        for secret in self.settings.secrets():
            text = text.replace(secret, "[key]")
        return text[:REASON_CHARS]

    def _answer(
        self, reply: StoredReply, schema: type[Draft], convert: Callable[[Draft], Result]
    ) -> ModelAnswer[Result]:
        """The same judgement of a stored reply, fresh or replayed: equal records."""
        value: Result | None = None
        reason = reply.reason
        if reply.message is not None:
            value, reason = _parse(_restored_message(reply.message), schema, convert)
        call = ModelCall(
            backend=reply.backend,
            prompt_hash=reply.prompt_hash,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            tokens_estimated=reply.tokens_estimated,
            latency_ms=reply.latency_ms,
            attempts=reply.attempts,
            fallback=value is None,
            reason=reason,
        )
        return ModelAnswer(value=value, call=call)


def _invoke(bound: Any, messages: list[BaseMessage], timeout: float) -> AIMessage:
    """``bound.invoke(messages)`` on a thread of its own, given up after ``timeout`` seconds
    (TimeoutError). The thread is a daemon: a request that never returns is left behind and
    holds up neither the next request nor the process's exit."""
    answers: queue.Queue[tuple[AIMessage | None, Exception | None]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            answers.put((bound.invoke(messages), None))
        except Exception as error:
            answers.put((None, error))

    threading.Thread(target=run, name="sigmax-model", daemon=True).start()
    try:
        message, error = answers.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError from None
    if error is not None:
        raise error
    if not isinstance(message, AIMessage):
        raise TypeError(f"the model answered a {type(message).__name__}, not an AIMessage")
    return message


@functools.cache
def tool_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The tool's JSON schema, built once per schema: building it cost more than the rest of
    a replayed answer."""
    return schema.model_json_schema()


def _parse(
    message: AIMessage, schema: type[Draft], convert: Callable[[Draft], Result]
) -> tuple[Result | None, str | None]:
    """(the converted answer, None) or (None, why the answer does not fit)."""
    parser = PydanticToolsParser(tools=[schema], first_tool_only=True)
    try:
        draft = parser.invoke(message)
        if not isinstance(draft, schema):
            return None, f"malformed answer: no {schema.__name__} tool call"
        return convert(draft), None
    except ValueError as error:  # pydantic's ValidationError and the parser's errors too
        return None, f"malformed answer: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:3])[:REASON_CHARS]


def _usage(message: AIMessage, prompt: Prompt) -> tuple[tuple[int, int], bool]:
    """(input, output) tokens as the provider reported them, or counted from the text."""
    usage = message.usage_metadata
    if usage is not None:
        return (usage["input_tokens"], usage["output_tokens"]), False
    answered = len(str(message.content)) + len(str(message.tool_calls))
    return (prompt.estimated_tokens(), math.ceil(answered / CHARS_PER_TOKEN)), True


def _stored_message(message: AIMessage) -> dict[str, Any]:
    return {
        "content": message.content,
        "tool_calls": [dict(call) for call in message.tool_calls],
        "invalid_tool_calls": [dict(call) for call in message.invalid_tool_calls],
    }


def _restored_message(stored: dict[str, Any]) -> AIMessage:
    return AIMessage(
        content=stored["content"],
        tool_calls=stored["tool_calls"],
        invalid_tool_calls=stored["invalid_tool_calls"],
    )
