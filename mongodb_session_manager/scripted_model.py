"""A network-free Strands ``Model`` that replays canned responses.

:class:`ScriptedModel` is meant for tests, benchmarks and demos: it plays back a script of
responses, one per model call, emitting exactly the stream events a real provider emits
(``messageStart``, ``contentBlockStart``/``Delta``/``Stop``, ``messageStop`` and ``metadata``),
so :class:`strands.Agent` builds its conversation history the same way it would with a real
model. Every request it receives is recorded in :attr:`ScriptedModel.calls`.

Example::

    from strands import Agent, tool
    from mongodb_session_manager.scripted_model import ScriptedModel, tool_call

    @tool
    def add(a: int, b: int) -> int:
        return a + b

    model = ScriptedModel([tool_call("add", {"a": 1, "b": 2}), "The sum is 3."])
    agent = Agent(model=model, tools=[add], callback_handler=None)
    agent("What is 1 + 2?")
    # agent.messages: user, assistant(toolUse), user(toolResult), assistant(text)

Script entries are plain strings (a text reply) or :class:`ScriptedTurn` values built with the
helpers :func:`text`, :func:`tool_call` and :func:`redact`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import threading
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel
from strands.models.model import BaseModelConfig, Model
from strands.types.content import Message, Messages
from strands.types.event_loop import StopReason
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

__all__ = [
    "ScriptExhaustedError",
    "ScriptedModel",
    "ScriptedModelConfig",
    "ScriptedTurn",
    "TurnKind",
    "redact",
    "text",
    "tool_call",
]

_OutputT = TypeVar("_OutputT", bound=BaseModel)

TurnKind = Literal["text", "tool_call", "redact"]
"""The kinds of scripted response."""


class ScriptExhaustedError(RuntimeError):
    """Raised when a :class:`ScriptedModel` is called after its script ran out and it has no default."""


@dataclass(frozen=True)
class ScriptedTurn:
    """One scripted model response.

    Build instances with :func:`text`, :func:`tool_call` or :func:`redact` rather than directly.

    Attributes:
        kind: What the response is: a text reply, a tool call, or a guardrail-style redaction.
        text: Assistant text. For ``"tool_call"`` it is an optional text block emitted before the
            ``toolUse`` block; for ``"text"`` and ``"redact"`` it is the reply.
        tool_name: Name of the tool to call (``"tool_call"`` only).
        tool_input: Input of the tool call (``"tool_call"`` only); JSON-encoded in the stream.
        tool_use_id: Explicit ``toolUseId``; when ``None`` the model generates ``tooluse_<n>``.
        user_replacement: Text replacing the user's latest message (``"redact"`` only).
        assistant_replacement: Optional text replacing this assistant reply (``"redact"`` only).
        usage: Token counts reported in the ``metadata`` event, Strands' ``Usage`` keys
            (``inputTokens``, ``outputTokens``, ``totalTokens``, ``cacheReadInputTokens``,
            ``cacheWriteInputTokens``); missing token counts are estimated from the text.
        latency_ms: Latency reported in the ``metadata`` event; defaults to the model's ``delay``.
        guardrail_trace: A guardrail trace reported in the ``metadata`` event (``trace.guardrail``),
            as Bedrock reports it.
    """

    kind: TurnKind
    text: str | None = None
    tool_name: str | None = None
    tool_input: dict[str, Any] = field(default_factory=dict)
    tool_use_id: str | None = None
    user_replacement: str | None = None
    assistant_replacement: str | None = None
    usage: dict[str, int] | None = None
    latency_ms: int | None = None
    guardrail_trace: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        """Check the fields required by :attr:`kind` are present."""
        if self.kind == "text" and self.text is None:
            raise ValueError("a 'text' turn needs text")
        if self.kind == "tool_call" and not self.tool_name:
            raise ValueError("a 'tool_call' turn needs a tool_name")
        if self.kind == "redact" and (self.user_replacement is None or self.text is None):
            raise ValueError("a 'redact' turn needs user_replacement and text")
        if self.kind not in ("text", "tool_call", "redact"):
            raise ValueError(f"unknown scripted turn kind: {self.kind!r}")


def text(
    value: str,
    *,
    usage: dict[str, int] | None = None,
    latency_ms: int | None = None,
) -> ScriptedTurn:
    """Script an assistant text reply (same as passing the plain string).

    Args:
        value: The reply text.
        usage: Token counts to report (see :class:`ScriptedTurn`); estimated when omitted.
        latency_ms: Latency to report; the model's ``delay`` when omitted.

    Returns:
        The scripted turn.
    """
    return ScriptedTurn(kind="text", text=value, usage=usage, latency_ms=latency_ms)


def tool_call(
    name: str,
    input: dict[str, Any],
    tool_use_id: str | None = None,
    text: str | None = None,
    *,
    usage: dict[str, int] | None = None,
    latency_ms: int | None = None,
) -> ScriptedTurn:
    """Script a tool call: an optional text block followed by a ``toolUse`` block.

    The response ends with stop reason ``"tool_use"``, so the agent runs the tool and calls the
    model again; the next script entry is the model's answer after seeing the tool result.

    Args:
        name: Name of the tool to call.
        input: Tool input; must be JSON-serialisable.
        tool_use_id: ``toolUseId`` to use; generated as ``tooluse_<n>`` when omitted.
        text: Optional text emitted before the tool call.
        usage: Token counts to report (see :class:`ScriptedTurn`); estimated when omitted.
        latency_ms: Latency to report; the model's ``delay`` when omitted.

    Returns:
        The scripted turn.
    """
    json.dumps(input)  # fail early on non-JSON input rather than mid-stream
    return ScriptedTurn(
        kind="tool_call",
        text=text,
        tool_name=name,
        tool_input=dict(input),
        tool_use_id=tool_use_id,
        usage=usage,
        latency_ms=latency_ms,
    )


def redact(
    user_replacement: str,
    text: str,
    *,
    assistant_replacement: str | None = None,
    guardrail_trace: dict[str, Any] | None = None,
    usage: dict[str, int] | None = None,
    latency_ms: int | None = None,
) -> ScriptedTurn:
    """Script a guardrail intervention that redacts the user's latest message.

    The stream carries a ``redactContent`` chunk with ``redactUserContentMessage`` before the
    reply text, as Bedrock guardrails do; the agent then replaces the content of its latest user
    message (``agent.messages[-1]`` at that point) with ``user_replacement`` and, if it has a
    session manager, calls ``redact_latest_message``. The response stop reason is
    ``"guardrail_intervened"``.

    Args:
        user_replacement: Text replacing the user's latest message.
        text: The assistant reply.
        assistant_replacement: If given, a second ``redactContent`` chunk with
            ``redactAssistantContentMessage`` is emitted after the reply, so the stored assistant
            message holds this text instead of ``text``.
        guardrail_trace: The guardrail trace to report in the ``metadata`` event.
        usage: Token counts to report (see :class:`ScriptedTurn`); estimated when omitted.
        latency_ms: Latency to report; the model's ``delay`` when omitted.

    Returns:
        The scripted turn.
    """
    return ScriptedTurn(
        kind="redact",
        text=text,
        user_replacement=user_replacement,
        assistant_replacement=assistant_replacement,
        guardrail_trace=guardrail_trace,
        usage=usage,
        latency_ms=latency_ms,
    )


class ScriptedModelConfig(BaseModelConfig, total=False):
    """Configuration of a :class:`ScriptedModel`.

    Attributes:
        model_id: Informational model identifier.
    """

    model_id: str


def _as_turn(entry: ScriptedTurn | str) -> ScriptedTurn:
    if isinstance(entry, str):
        return text(entry)
    if isinstance(entry, ScriptedTurn):
        return entry
    raise TypeError(f"script entries must be str or ScriptedTurn, got {type(entry).__name__}")


def _estimate_tokens(payload: object) -> int:
    """Return a deterministic, rough token count (about four characters per token)."""
    return math.ceil(len(json.dumps(payload, default=str)) / 4)


class ScriptedModel(Model):
    """A Strands model that replays a script of canned responses without any network access.

    Each call to :meth:`stream` consumes the next script entry. When the script is exhausted the
    model replies with ``default_text``, or raises :class:`ScriptExhaustedError` if it is ``None``.
    Consuming the script is thread-safe, so the model can be shared by agents invoked from
    several threads (the synchronous ``Agent.__call__`` runs each invocation on a new thread).

    Attributes:
        calls: Deep copies of the messages passed to each model call, in call order. Strands strips
            messages to ``role`` and ``content`` before calling the model, so ``tracking_id`` and
            ``metadata`` never appear here.
        system_prompts: The system prompt passed to each model call, aligned with :attr:`calls`.
        tool_specs: The names of the tools offered on each model call, aligned with :attr:`calls`.
        delay: Seconds awaited (``asyncio.sleep``) before each response, to simulate a slow model.
    """

    def __init__(
        self,
        script: Sequence[ScriptedTurn | str] | None = None,
        *,
        default_text: str | None = "ok",
        delay: float = 0.0,
        **model_config: Any,
    ) -> None:
        """Create a scripted model.

        Args:
            script: Responses to replay in order, one per model call. A ``str`` is a text reply.
            default_text: Reply used once the script is exhausted; ``None`` makes an exhausted
                script raise :class:`ScriptExhaustedError` instead.
            delay: Seconds to sleep before each response.
            **model_config: Configuration stored in :meth:`get_config` (see
                :class:`ScriptedModelConfig`).
        """
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self._lock = threading.Lock()
        self._script: deque[ScriptedTurn] = deque(_as_turn(entry) for entry in script or ())
        self._generated_ids = 0
        self.default_text = default_text
        self.delay = delay
        self.config: ScriptedModelConfig = {"model_id": "scripted"}
        self.update_config(**model_config)
        self.calls: list[list[Message]] = []
        self.system_prompts: list[str | None] = []
        self.tool_specs: list[list[str]] = []

    # -- Model configuration -------------------------------------------------------------------

    def update_config(self, **model_config: Any) -> None:
        """Merge configuration values into the model configuration.

        Args:
            **model_config: Configuration overrides (see :class:`ScriptedModelConfig`).
        """
        self.config.update(cast(ScriptedModelConfig, model_config))

    def get_config(self) -> ScriptedModelConfig:
        """Return the model configuration.

        Returns:
            The model configuration.
        """
        return self.config

    # -- Script handling -----------------------------------------------------------------------

    def add(self, *entries: ScriptedTurn | str) -> None:
        """Append responses to the end of the script.

        Args:
            *entries: Responses to append; a ``str`` is a text reply.
        """
        turns = [_as_turn(entry) for entry in entries]
        with self._lock:
            self._script.extend(turns)

    @property
    def remaining(self) -> int:
        """Number of script entries not yet consumed."""
        with self._lock:
            return len(self._script)

    @property
    def call_count(self) -> int:
        """Number of model calls made so far."""
        with self._lock:
            return len(self.calls)

    def _next_turn(
        self,
        messages: Messages,
        system_prompt: str | None,
        tool_specs: Iterable[ToolSpec] | None,
    ) -> tuple[ScriptedTurn, str | None]:
        """Record one call and consume the next response atomically.

        Returns:
            The turn to play and, for a tool call, its ``toolUseId``.
        """
        recorded = copy.deepcopy(messages)
        tool_names = [spec["name"] for spec in tool_specs or ()]
        with self._lock:
            if self._script:
                turn = self._script.popleft()
            elif self.default_text is not None:
                turn = text(self.default_text)
            else:
                raise ScriptExhaustedError(
                    f"ScriptedModel script exhausted after {len(self.calls)} call(s) and default_text is None"
                )
            self.calls.append(recorded)
            self.system_prompts.append(system_prompt)
            self.tool_specs.append(tool_names)
            tool_use_id: str | None = None
            if turn.kind == "tool_call":
                if turn.tool_use_id is not None:
                    tool_use_id = turn.tool_use_id
                else:
                    self._generated_ids += 1
                    tool_use_id = f"tooluse_{self._generated_ids}"
            return turn, tool_use_id

    # -- Streaming -----------------------------------------------------------------------------

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Replay the next scripted response as Strands stream events.

        Args:
            messages: Conversation sent to the model (recorded in :attr:`calls`).
            tool_specs: Tools offered to the model (their names are recorded in :attr:`tool_specs`).
            system_prompt: System prompt (recorded in :attr:`system_prompts`).
            **kwargs: Other request options (``tool_choice``, ``invocation_state``, ...); ignored.

        Yields:
            Stream events in the order a Bedrock-style provider emits them.

        Raises:
            ScriptExhaustedError: If the script is exhausted and ``default_text`` is ``None``.
        """
        turn, tool_use_id = self._next_turn(messages, system_prompt, tool_specs)
        if self.delay:
            await asyncio.sleep(self.delay)
        for event in self._events(turn, tool_use_id, messages):
            yield event

    def _events(self, turn: ScriptedTurn, tool_use_id: str | None, messages: Messages) -> list[StreamEvent]:
        """Build the stream events for one response."""
        events: list[StreamEvent] = [{"messageStart": {"role": "assistant"}}]
        index = 0
        output: list[object] = []
        stop_reason: StopReason = "end_turn"

        if turn.kind == "redact":
            events.append({"redactContent": {"redactUserContentMessage": turn.user_replacement}})
            stop_reason = "guardrail_intervened"

        if turn.text:
            events.extend(
                [
                    {"contentBlockStart": {"contentBlockIndex": index, "start": {}}},
                    {"contentBlockDelta": {"contentBlockIndex": index, "delta": {"text": turn.text}}},
                    {"contentBlockStop": {"contentBlockIndex": index}},
                ]
            )
            output.append(turn.text)
            index += 1

        if turn.kind == "tool_call":
            if turn.tool_name is None or tool_use_id is None:  # pragma: no cover - ScriptedTurn guarantees it
                raise AssertionError("tool call without a name or id")
            encoded = json.dumps(turn.tool_input)
            events.extend(
                [
                    {
                        "contentBlockStart": {
                            "contentBlockIndex": index,
                            "start": {"toolUse": {"name": turn.tool_name, "toolUseId": tool_use_id}},
                        }
                    },
                    {
                        "contentBlockDelta": {
                            "contentBlockIndex": index,
                            "delta": {"toolUse": {"input": encoded}},
                        }
                    },
                    {"contentBlockStop": {"contentBlockIndex": index}},
                ]
            )
            output.append({"name": turn.tool_name, "input": turn.tool_input})
            stop_reason = "tool_use"

        events.append({"messageStop": {"stopReason": stop_reason}})
        input_tokens = _estimate_tokens(messages)
        output_tokens = _estimate_tokens(output) if output else 0
        usage: dict[str, int] = {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        }
        if turn.usage:
            usage.update(turn.usage)
            if "totalTokens" not in turn.usage:
                usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
        latency_ms = round(self.delay * 1000) if turn.latency_ms is None else turn.latency_ms
        metadata: dict[str, Any] = {"usage": usage, "metrics": {"latencyMs": latency_ms}}
        if turn.guardrail_trace is not None:
            metadata["trace"] = {"guardrail": copy.deepcopy(turn.guardrail_trace)}
        events.append(cast(StreamEvent, {"metadata": metadata}))
        if turn.kind == "redact" and turn.assistant_replacement is not None:
            # Must follow the content blocks: Strands replaces the message content it has built so far.
            events.append({"redactContent": {"redactAssistantContentMessage": turn.assistant_replacement}})
        return events

    # -- Structured output ---------------------------------------------------------------------

    async def structured_output(
        self,
        output_model: type[_OutputT],
        prompt: Messages,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[dict[str, _OutputT | Any], None]:
        """Consume the next script entry and parse it as ``output_model``.

        A text (or redact) entry is parsed as JSON; a tool call entry's ``input`` is used as the
        object. (``Agent(structured_output_model=...)`` does not call this method: it goes through
        :meth:`stream`, so script a :func:`tool_call` of the structured output tool instead.)

        Args:
            output_model: Pydantic model to validate the scripted payload against.
            prompt: Conversation sent to the model (recorded in :attr:`calls`).
            system_prompt: System prompt (recorded in :attr:`system_prompts`).
            **kwargs: Ignored.

        Yields:
            A single ``{"output": <output_model instance>}`` event.

        Raises:
            ScriptExhaustedError: If the script is exhausted and ``default_text`` is ``None``.
            pydantic.ValidationError: If the scripted payload does not match ``output_model``.
        """
        turn, _ = self._next_turn(prompt, system_prompt, None)
        if self.delay:
            await asyncio.sleep(self.delay)
        if turn.kind == "tool_call":
            yield {"output": output_model.model_validate(turn.tool_input)}
        else:
            yield {"output": output_model.model_validate_json(turn.text or "")}
