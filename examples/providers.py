"""Pick the Strands model of an example: the scripted model, or a real provider.

    make_model("scripted", script=[...])   # no LLM, no network (the default, and what CI runs)
    make_model("bedrock")                  # Amazon Bedrock: AWS credentials as boto3 finds them
    make_model("openai")                   # OpenAI: OPENAI_API_KEY (and OPENAI_BASE_URL, if set)
    make_model("ollama")                   # a local Ollama server: OLLAMA_HOST

Each real provider is checked before it is used: its Python package must be installed and its
credentials (or server) present. When they are not, :class:`ProviderUnavailable` says what is
missing and how to fix it.
"""

from __future__ import annotations

import importlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from strands.models import Model

from mongodb_session_manager.scripted_model import ScriptedModel

PROVIDERS = ("scripted", "bedrock", "openai", "ollama")
DEFAULT_MODEL_IDS = {"openai": "gpt-4o-mini", "ollama": "llama3.2"}  # Bedrock: Strands' own default
DEFAULT_OLLAMA_HOST = "http://localhost:11434"


class ProviderUnavailable(Exception):
    """The requested provider cannot be used here; the message says why and what to do."""


def _require_module(module: str, provider: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ProviderUnavailable(
            f"the {provider} provider needs the Python package {module!r}, which is not installed: {install}"
        ) from None


def _bedrock(model_id: str | None) -> Model:
    boto3 = _require_module("boto3", "bedrock", "pip install boto3")
    session = boto3.Session()
    if session.get_credentials() is None:
        raise ProviderUnavailable(
            "no AWS credentials found for Bedrock: set AWS_PROFILE (a profile from ~/.aws), or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); the region comes from "
            "AWS_REGION or the profile"
        )
    from strands.models.bedrock import BedrockModel

    return BedrockModel(model_id=model_id) if model_id else BedrockModel()


def _openai(model_id: str | None) -> Model:
    _require_module("openai", "openai", "pip install 'strands-agents[openai]'")
    api_key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not api_key:
        raise ProviderUnavailable(
            "the openai provider needs an API key: export OPENAI_API_KEY=... "
            "(OPENAI_BASE_URL selects an OpenAI-compatible endpoint)"
        )
    from strands.models.openai import OpenAIModel

    return OpenAIModel(client_args={"api_key": api_key}, model_id=model_id or DEFAULT_MODEL_IDS["openai"])


def _ollama(model_id: str | None) -> Model:
    _require_module("ollama", "ollama", "pip install 'strands-agents[ollama]'")
    host = os.environ.get("OLLAMA_HOST", "").strip() or DEFAULT_OLLAMA_HOST
    if "://" not in host:
        host = "http://" + host
    try:
        with urllib.request.urlopen(f"{host.rstrip('/')}/api/tags", timeout=3):
            pass
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ProviderUnavailable(
            f"no Ollama server answers at {host} ({error}): start one with `ollama serve` "
            f"(and `ollama pull {model_id or DEFAULT_MODEL_IDS['ollama']}`), or set OLLAMA_HOST"
        ) from None
    from strands.models.ollama import OllamaModel

    return OllamaModel(host, model_id=model_id or DEFAULT_MODEL_IDS["ollama"])


def make_model(provider: str, *, script: Sequence[Any] = (), model_id: str | None = None) -> Model:
    """The model for ``provider``; ``script`` is what the scripted model answers.

    Raises:
        ProviderUnavailable: the provider's package, credentials or server are missing.
        ValueError: ``provider`` is not one of :data:`PROVIDERS`.
    """
    if provider == "scripted":
        return ScriptedModel(list(script))
    if provider == "bedrock":
        return _bedrock(model_id)
    if provider == "openai":
        return _openai(model_id)
    if provider == "ollama":
        return _ollama(model_id)
    raise ValueError(f"unknown model provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
