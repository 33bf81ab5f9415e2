"""Per-call usage and per-invocation totals, turned into top-level fields of message documents.

Strands attaches each model call's token counts and latency to the assistant message it produces
(``message["metadata"]``); the stop reason and the model id travel in ``AfterModelCallEvent``,
tool outcomes in ``AfterToolCallEvent``. :class:`UsageTracker` listens to those events (through the
session manager's hooks) and hands the manager, for each assistant message it stores, the fields
written with that same insert:

* ``usage``: that model call's numbers (see :func:`call_usage`);
* ``invocation``: the invocation's totals so far, on a message that ends the invocation (a stop
  reason other than ``tool_use``).

When an invocation ends without such a message (an interrupt, an error after a tool call, a hook
that asked for another model call), :meth:`UsageTracker.finish` returns the one update that puts
the final totals on the invocation's last message with usage. Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from strands.hooks import AfterModelCallEvent, AfterToolCallEvent, BeforeInvocationEvent
from strands.types.content import Message

from ._types import Document

__all__ = ["INVOCATION_FIELD", "USAGE_FIELD", "InvocationUpdate", "UsageTracker", "call_usage", "model_id_of"]

#: Top-level field of a message document holding its model call's usage.
USAGE_FIELD = "usage"
#: Top-level field of the message document that ends an invocation, holding the invocation's totals.
INVOCATION_FIELD = "invocation"

# Strands' Usage / Metrics keys -> our field names.
_TOKEN_FIELDS = {
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "totalTokens": "total_tokens",
    "cacheReadInputTokens": "cache_read_input_tokens",
    "cacheWriteInputTokens": "cache_write_input_tokens",
}
_METRIC_FIELDS = {"latencyMs": "latency_ms", "timeToFirstByteMs": "time_to_first_byte_ms"}
# Stop reasons after which the event loop runs tools and calls the model again.
_CONTINUING = frozenset({"tool_use"})


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def model_id_of(model: object) -> str | None:
    """The model id a Strands model reports in its configuration (``model_id``), else its class name."""
    get_config = getattr(model, "get_config", None)
    config = get_config() if callable(get_config) else None
    if isinstance(config, Mapping):
        model_id = config.get("model_id") or config.get("model")
        if isinstance(model_id, str) and model_id:
            return model_id
    return None if model is None else type(model).__name__


def call_usage(
    metadata: Mapping[str, Any] | None,
    *,
    at: datetime,
    model: str | None,
    stop_reason: str | None,
    application: str | None = None,
) -> Document:
    """The ``usage`` field of one model call's message.

    Token counts and latency come from Strands' message metadata (``usage``, ``metrics``); cache
    counts and time to first byte only when the provider reported them.
    """
    usage = (metadata or {}).get("usage") or {}
    metrics = (metadata or {}).get("metrics") or {}
    document: Document = {"at": at, "model": model, "stop_reason": stop_reason}
    if application is not None:
        document["application"] = application
    for source, fields in ((usage, _TOKEN_FIELDS), (metrics, _METRIC_FIELDS)):
        for key, name in fields.items():
            value = _number(source.get(key)) if isinstance(source, Mapping) else None
            if value is not None:
                document[name] = value
    for name in ("input_tokens", "output_tokens", "total_tokens", "latency_ms"):
        document.setdefault(name, 0)
    return document


@dataclass
class _ToolTotals:
    calls: int = 0
    successes: int = 0
    errors: int = 0
    time_ms: float = 0.0


@dataclass
class _Invocation:
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended: float | None = None
    model_calls: int = 0
    cycles: int = 0
    tokens: dict[str, int | float] = field(default_factory=dict)
    latency_ms: int | float = 0
    tools: dict[str, _ToolTotals] = field(default_factory=dict)
    # The stored message ids of this invocation's messages with usage, the last one last.
    last_usage_message: int | None = None
    # Where the totals were written and what they were.
    stamped: tuple[int, Document] | None = None

    def totals(self) -> Document:
        tools = [
            {"name": name, "calls": t.calls, "successes": t.successes, "errors": t.errors, "time_ms": round(t.time_ms)}
            for name, t in sorted(self.tools.items())
        ]
        ended = self.ended if self.ended is not None else self.started
        return {
            "started_at": self.started_at,
            "duration_ms": round((ended - self.started) * 1000),
            "cycles": self.cycles,
            "model_calls": self.model_calls,
            **{name: self.tokens.get(name, 0) for name in ("input_tokens", "output_tokens", "total_tokens")},
            **{
                name: self.tokens[name]
                for name in ("cache_read_input_tokens", "cache_write_input_tokens")
                if name in self.tokens
            },
            "latency_ms": self.latency_ms,
            "tool_calls": sum(t.calls for t in self.tools.values()),
            "tool_successes": sum(t.successes for t in self.tools.values()),
            "tool_errors": sum(t.errors for t in self.tools.values()),
            "tool_time_ms": round(sum(t.time_ms for t in self.tools.values())),
            "tools": tools,
        }


@dataclass
class _Call:
    """A model response not yet stored as a message (the next assistant message of its agent)."""

    usage: Document


@dataclass(frozen=True)
class InvocationUpdate:
    """The write :meth:`UsageTracker.finish` asks for: set ``totals`` as the ``invocation`` field of
    message ``message_id`` and, if ``stale_message_id`` is set, remove it from that earlier message."""

    message_id: int
    totals: Document
    stale_message_id: int | None = None


class UsageTracker:
    """Collects one manager's agents' model calls and tool calls (see the module documentation).

    Args:
        application: Stored in each ``usage`` field (``usage.application``), so usage can be grouped
            and filtered by application without reading session documents.
    """

    def __init__(self, application: str | None = None) -> None:
        self.application = application
        self._invocations: dict[str, _Invocation] = {}
        self._pending: dict[str, _Call] = {}

    def _invocation(self, agent_id: str) -> _Invocation:
        invocation = self._invocations.get(agent_id)
        if invocation is None:
            invocation = self._invocations[agent_id] = _Invocation()
        return invocation

    # -- events -----------------------------------------------------------------------------------

    def on_invocation_start(self, event: BeforeInvocationEvent) -> None:
        """A new invocation: totals start from zero."""
        self._invocations[event.agent.agent_id] = _Invocation()
        self._pending.pop(event.agent.agent_id, None)

    def on_model_call(self, event: AfterModelCallEvent) -> None:
        """Remember a model response until its message is stored; add it to the invocation's totals."""
        response = event.stop_response
        if response is None:
            return
        agent = event.agent
        invocation = self._invocation(agent.agent_id)
        invocation.ended = time.monotonic()
        usage = call_usage(
            response.message.get("metadata"),
            at=datetime.now(timezone.utc),
            model=model_id_of(getattr(agent, "model", None)),
            stop_reason=str(response.stop_reason),
            application=self.application,
        )
        invocation.model_calls += 1
        for name in _TOKEN_FIELDS.values():
            if name in usage:
                invocation.tokens[name] = invocation.tokens.get(name, 0) + usage[name]
        invocation.latency_ms += usage["latency_ms"]
        self._pending[agent.agent_id] = _Call(usage)

    def on_tool_call(self, event: AfterToolCallEvent) -> None:
        """Count a tool call, its outcome and its duration."""
        name = str(event.tool_use.get("name", "unknown"))
        totals = self._invocation(event.agent.agent_id).tools.setdefault(name, _ToolTotals())
        totals.calls += 1
        failed = event.exception is not None or (event.result or {}).get("status") == "error"
        if failed:
            totals.errors += 1
        else:
            totals.successes += 1
        if event.duration is not None:
            totals.time_ms += event.duration * 1000

    def in_invocation(self, agent_id: str) -> bool:
        """Whether the agent is inside an invocation (between its start and :meth:`finish`)."""
        return agent_id in self._invocations

    # -- what the manager writes ------------------------------------------------------------------

    def fields_for(self, agent_id: str, message: Message) -> Document:
        """The usage fields to store with ``message`` (empty unless it is the pending model response)."""
        call = self._pending.get(agent_id)
        if call is None or message.get("role") != "assistant":
            return {}
        fields: Document = {USAGE_FIELD: call.usage}
        invocation = self._invocation(agent_id)
        if call.usage.get("stop_reason") not in _CONTINUING:
            fields[INVOCATION_FIELD] = invocation.totals() | {"cycles": invocation.cycles + 1}
        return fields

    def stored(self, agent_id: str, message_id: int, fields: Mapping[str, Any]) -> None:
        """Record that a message was stored with ``fields`` (from :meth:`fields_for`) as ``message_id``."""
        if USAGE_FIELD not in fields:
            return
        self._pending.pop(agent_id, None)
        invocation = self._invocation(agent_id)
        invocation.cycles += 1
        invocation.last_usage_message = message_id
        if INVOCATION_FIELD in fields:
            invocation.stamped = (message_id, fields[INVOCATION_FIELD])

    def renumbered(self, agent_id: str, ids: Mapping[int, int]) -> None:
        """Messages recorded by :meth:`stored` were stored under other ids (old id -> new id)."""
        invocation = self._invocations.get(agent_id)
        if invocation is None:
            return
        if invocation.last_usage_message is not None:
            invocation.last_usage_message = ids.get(invocation.last_usage_message, invocation.last_usage_message)
        if invocation.stamped is not None:
            invocation.stamped = (ids.get(invocation.stamped[0], invocation.stamped[0]), invocation.stamped[1])

    def finish(self, agent_id: str) -> InvocationUpdate | None:
        """At the end of an invocation: the update still needed to store its final totals, if any.

        None when the totals were written with the invocation's last message and have not changed
        since (the usual case), or when no model call of the invocation produced a stored message.
        """
        invocation = self._invocations.pop(agent_id, None)
        self._pending.pop(agent_id, None)
        if invocation is None or invocation.last_usage_message is None:
            return None
        totals = invocation.totals()
        stamped = invocation.stamped
        if stamped is not None and stamped == (invocation.last_usage_message, totals):
            return None
        stale = stamped[0] if stamped is not None and stamped[0] != invocation.last_usage_message else None
        return InvocationUpdate(invocation.last_usage_message, totals, stale)
