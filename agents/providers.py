"""Chat models from backend specs (``openai:gpt-4o-mini``, ``anthropic:…``, ``ollama:…``).

The provider packages are optional extras (``pip install 'sigmax[openai]'`` …), imported
only when a spec names them. A missing package or key does not stop anything: the backend
is built without a model, and each of its turns falls back to the rules saying why.
"""

import importlib
import logging
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from agents.chat_backend import ChatBackend
from core.model_replies import ReplyStore
from core.settings import LLMSettings, ModelRole

log = logging.getLogger(__name__)

# provider → (module, class, the extra that installs it)
_PROVIDERS: dict[str, tuple[str, str, str]] = {
    "openai": ("langchain_openai", "ChatOpenAI", "openai"),
    "anthropic": ("langchain_anthropic", "ChatAnthropic", "anthropic"),
    "ollama": ("langchain_ollama", "ChatOllama", "ollama"),
}


class BackendUnavailableError(RuntimeError):
    """The spec's model cannot be built here: the reason says what to install or set."""


def chat_backends(
    settings: LLMSettings,
    replies: ReplyStore,
    given: Mapping[ModelRole, BaseChatModel] | None = None,
) -> dict[ModelRole, ChatBackend]:
    """A backend for each role whose spec is not ``rules``; ``given`` supplies a role's chat
    model ready-made (a local model object, a test's scripted one) instead of the provider's."""
    backends: dict[ModelRole, ChatBackend] = {}
    for role in settings.model_backed():
        spec = settings.backend(role)
        model = (given or {}).get(role)
        unavailable = None
        if model is None:
            try:
                model = chat_model(spec, settings)
            except BackendUnavailableError as error:
                unavailable = str(error)
                log.warning("%s backend %s unavailable: %s", role, spec, unavailable)
        backends[role] = ChatBackend(
            spec=spec, model=model, settings=settings, replies=replies, unavailable=unavailable
        )
    return backends


def chat_model(spec: str, settings: LLMSettings) -> BaseChatModel:
    """The provider's chat model for ``spec``, with the settings' key, timeout, temperature."""
    provider, _, name = spec.partition(":")
    module_name, class_name, extra = _PROVIDERS[provider]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise BackendUnavailableError(
            f"{module_name} is not installed (pip install 'sigmax[{extra}]')"
        ) from None
    model_class: Any = getattr(module, class_name)
    model: BaseChatModel = model_class(**_arguments(provider, name, settings))
    return model


def _arguments(provider: str, name: str, settings: LLMSettings) -> dict[str, Any]:
    # The client's own retries are off: attempts are counted, and bounded, by ChatBackend.
    common: dict[str, Any] = {"model": name, "temperature": settings.temperature}
    if provider == "ollama":
        timeout = {"timeout": settings.timeout_seconds}
        return {
            **common,
            "base_url": settings.ollama_base_url,
            "client_kwargs": timeout,
            "num_predict": settings.max_answer_tokens,
        }
    key = settings.openai_api_key if provider == "openai" else settings.anthropic_api_key
    if key is None:
        variable = f"SIGMAX_LLM__{provider.upper()}_API_KEY"
        raise BackendUnavailableError(f"no {provider} API key: set {variable}")
    arguments = {
        **common,
        "api_key": key,
        "timeout": settings.timeout_seconds,
        "max_retries": 0,
        "max_tokens": settings.max_answer_tokens,
    }
    if provider == "openai" and settings.openai_base_url:
        arguments["base_url"] = settings.openai_base_url
    return arguments
