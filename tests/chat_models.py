"""A scripted chat model for the model-backed agents' tests: langchain-core's fake chat model
with tool binding, so the agents' structured output is parsed from real AIMessage tool calls.
"""

import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

# How long a hung call waits for the test to let it go, at most.
HANG_LIMIT_SECONDS = 5.0


class ScriptedChatModel(GenericFakeChatModel):
    """Answers each request with the next scripted message; binding tools returns the model
    itself (the script already holds the tool calls), remembering which tools were bound.

    ``raises``: every request raises it instead. ``hang``: every request waits until the
    event is set (a provider that does not answer).
    """

    raises: Exception | None = None
    hang: threading.Event | None = None
    requests: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[Any] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "ScriptedChatModel":
        del kwargs  # tool_choice: the script decides what is called
        self.bound_tools = list(tools)
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.requests.append(list(messages))
        if self.hang is not None:
            self.hang.wait(HANG_LIMIT_SECONDS)
        if self.raises is not None:
            raise self.raises
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*answers: AIMessage, **fields: Any) -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter(answers), **fields)


def tool_answer(
    tool: str, args: dict[str, Any], input_tokens: int = 300, output_tokens: int = 60
) -> AIMessage:
    """A model's answer calling ``tool`` with ``args``, with the usage a provider reports."""
    return AIMessage(
        content="",
        tool_calls=[{"name": tool, "args": args, "id": "call_1", "type": "tool_call"}],
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    )
