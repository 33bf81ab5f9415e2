"""Session documents in the layout of the original manager (v0.9.1), for the migration tests.

Built from the original's documented schema (``docs/architecture/data-model.md``) and from what its
repository writes: ``_id`` and ``session_id``, ``application_name`` (None when not set),
``session_type``, ``session_viewer_password``, BSON dates, ``metadata``, ``feedbacks`` (each with a
``created_at`` date), ``guardrail_events``, and ``agents`` keyed by agent id, each with
``agent_data`` (the Strands ``SessionAgent`` fields, dates as BSON dates, plus the captured
``model``/``system_prompt``/``prompt_metadata``), agent-level dates and a ``messages`` array of
Strands ``SessionMessage`` fields plus ``event_loop_metrics`` and ``guardrail_event``.

:func:`original_restore` is what the original hands a restored agent: the agent's messages sorted
by ``created_at``, minus the conversation manager's removed count, each the redaction if any,
messages it cannot build a ``SessionMessage`` from dropped.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from strands.types.session import SessionMessage

Document = dict[str, Any]
BASE = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
_SESSION_MESSAGE_FIELDS = ("message", "message_id", "redact_message", "created_at", "updated_at")
INTERNAL_STATE = {"interrupt_state": {"interrupts": {}, "context": {}, "activated": False}, "model_state": {}}


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def png(size: int, seed: int = 0) -> bytes:
    """Bytes that look like an image (a PNG signature and deterministic filler)."""
    filler = bytes((seed + index) % 251 for index in range(min(size, 4096)))
    body = (filler * (size // len(filler) + 1))[: max(size - 8, 0)]
    return b"\x89PNG\r\n\x1a\n" + body


def encoded(data: bytes, how: str) -> Any:
    """Bytes as the original stored them: base64 text (older Strands) or BSON binary."""
    if how == "base64":
        return {"__bytes_encoded__": True, "data": base64.b64encode(data).decode()}
    return data


def text(value: str) -> Document:
    return {"text": value}


def image(data: bytes, how: str = "base64") -> Document:
    return {"image": {"format": "png", "source": {"bytes": encoded(data, how)}}}


def tool_use(tool_use_id: str, name: str, tool_input: Document) -> Document:
    return {"toolUse": {"toolUseId": tool_use_id, "name": name, "input": tool_input}}


def tool_result(tool_use_id: str, value: str) -> Document:
    return {"toolResult": {"toolUseId": tool_use_id, "status": "success", "content": [{"text": value}]}}


def metrics(latency_ms: int, input_tokens: int, output_tokens: int) -> Document:
    return {
        "accumulated_metrics": {"latencyMs": latency_ms, "timeToFirstByteMs": latency_ms // 3},
        "accumulated_usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
            "cacheReadInputTokens": 0,
            "cacheWriteInputTokens": 0,
        },
        "cycle_metrics": {"cycle_count": 1, "total_duration": latency_ms / 1000, "average_cycle_time": 0.1},
        "tool_usage": {},
    }


@dataclass
class LegacyAgent:
    agent_id: str
    clock: float
    state: Document = field(default_factory=dict)
    removed_message_count: int = 0
    model: str | None = None
    system_prompt: str | None = None
    prompt_metadata: Document | None = None
    messages: list[Any] = field(default_factory=list)
    next_id: int = 0

    def message(
        self,
        role: str,
        *content: Document,
        message_id: int | None = None,
        redact: list[Document] | None = None,
        event_loop_metrics: Document | None = None,
        guardrail_event: Document | None = None,
    ) -> int:
        """Append a message (ids follow on unless given: a gap is a skipped id). Returns its id."""
        self.clock += 1.5
        message_id = self.next_id if message_id is None else message_id
        self.next_id = message_id + 1
        stamp = at(self.clock)
        document: Document = {
            "message": {"role": role, "content": list(content)},
            "message_id": message_id,
            "redact_message": None if redact is None else {"role": role, "content": redact},
            "created_at": stamp,
            "updated_at": stamp,
        }
        if event_loop_metrics is not None:
            document["event_loop_metrics"] = event_loop_metrics
        if guardrail_event is not None:
            document["guardrail_event"] = guardrail_event
        self.messages.append(document)
        return message_id

    def raw(self, document: Any) -> None:
        """Append something the original may have left in the array, as is."""
        self.messages.append(document)

    def build(self) -> Document:
        agent_data: Document = {
            "agent_id": self.agent_id,
            "state": self.state,
            "conversation_manager_state": {
                "__name__": "SlidingWindowConversationManager",
                "removed_message_count": self.removed_message_count,
                "model_call_count": 0,
            },
            "_internal_state": INTERNAL_STATE,
            "created_at": at(0),
            "updated_at": at(self.clock),
        }
        for name in ("model", "system_prompt", "prompt_metadata"):
            if getattr(self, name) is not None:
                agent_data[name] = getattr(self, name)
        return {"agent_data": agent_data, "messages": self.messages, "created_at": at(0), "updated_at": at(self.clock)}


@dataclass
class LegacySession:
    session_id: str
    application_name: str | None = None
    session_type: str = "AGENT"
    metadata: Document = field(default_factory=dict)
    agents: dict[str, LegacyAgent] = field(default_factory=dict)
    feedbacks: list[Document] = field(default_factory=list)
    guardrail_events: list[Document] = field(default_factory=list)
    viewer_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def agent(self, agent_id: str, **fields: Any) -> LegacyAgent:
        agent = LegacyAgent(agent_id, clock=10.0 * len(self.agents), **fields)
        self.agents[agent_id] = agent
        return agent

    def feedback(self, rating: str | None, comment: str, seconds: float) -> None:
        self.feedbacks.append({"rating": rating, "comment": comment, "created_at": at(seconds)})

    def guardrail(self, agent_id: str, message_id: int, action: str = "BLOCKED") -> Document:
        """Record an intervention on a message, at both levels as the original does."""
        policies = {"contentPolicy": ["INSULTS/HIGH"]}
        self.guardrail_events.append(
            {
                "message_id": message_id,
                "agent_id": agent_id,
                "action": action,
                "timestamp": at(500),
                "stop_reason": "guardrail_intervened",
                "policies_triggered": policies,
            }
        )
        return {
            "action": action,
            "timestamp": at(500),
            "stop_reason": "guardrail_intervened",
            "policies_triggered": policies,
            "trace": {"inputAssessment": {"g1": {"contentPolicy": {"filters": [{"type": "INSULTS"}]}}}},
        }

    def build(self) -> Document:
        latest = max([agent.clock for agent in self.agents.values()] or [0.0])
        return {
            "_id": self.session_id,
            "session_id": self.session_id,
            "application_name": self.application_name,
            "session_type": self.session_type,
            "session_viewer_password": self.viewer_password,
            "created_at": at(0),
            "updated_at": at(latest),
            "agents": {agent_id: agent.build() for agent_id, agent in self.agents.items()},
            "metadata": self.metadata,
            "feedbacks": self.feedbacks,
            "guardrail_events": self.guardrail_events,
        }


def decode_bytes(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("__bytes_encoded__") is True:
            return base64.b64decode(value["data"])
        return {key: decode_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_bytes(item) for item in value]
    return value


def original_restore(document: Document, agent_id: str) -> list[Document]:
    """The messages the original manager restores into an agent from ``document``."""
    entry = document["agents"][agent_id]
    offset = entry["agent_data"]["conversation_manager_state"].get("removed_message_count", 0)
    ordered = sorted(entry["messages"], key=lambda item: item.get("created_at") or BASE)
    restored = []
    for item in ordered[offset:]:
        try:
            message = SessionMessage(**{key: value for key, value in item.items() if key in _SESSION_MESSAGE_FIELDS})
        except TypeError:
            continue  # the original logs and skips what it cannot build
        restored.append(decode_bytes(message.to_message()))
    return restored


def conversation_session(session_id: str, *, how: str = "base64", application_name: str | None = None) -> LegacySession:
    """A session with two agents, tool use, images, metrics, a guardrail redaction, feedback,
    metadata, an id gap, a removed-messages offset and one message the original could not read."""
    session = LegacySession(
        session_id,
        application_name=application_name,
        metadata={"user": {"plan": "pro", "id": 7}, "priority": "high", "tags": ["a", "b"]},
    )
    support = session.agent(
        "support",
        state={"visits": 3, "language": "eu"},
        model="scripted-model",
        system_prompt="You are helpful.",
        prompt_metadata={"prompt_id": "p-1", "prompt_version": "1.2.0"},
    )
    support.message("user", text("What is in this picture?"), image(png(3000, 1), how))
    support.message("assistant", text("A cat."), event_loop_metrics=metrics(420, 1200, 5))
    support.message("user", text("Add 2 and 3"))
    support.message("assistant", text("Let me add."), tool_use("tooluse_1", "add", {"a": 2, "b": 3}))
    support.message("user", tool_result("tooluse_1", "5"))
    support.message("assistant", text("2 + 3 = 5"), event_loop_metrics=metrics(300, 1500, 9))
    blocked = support.next_id + 2  # a gap of two ids, as failed writes of the original leave
    event = session.guardrail("support", blocked)
    support.message(
        "user", text("something nasty"), message_id=blocked, redact=[text("[blocked]")], guardrail_event=event
    )
    support.message("assistant", text("I cannot help with that."), event_loop_metrics=metrics(90, 40, 7))
    support.raw({"message_id": 99, "created_at": at(900), "updated_at": at(900)})  # no message: unreadable

    triage = session.agent("triage", state={"route": "billing"}, removed_message_count=2)
    for turn in range(3):
        triage.message("user", text(f"question {turn}"))
        triage.message("assistant", text(f"answer {turn}"), event_loop_metrics=metrics(50 + turn, 10, 3))
    session.feedback("up", "Very helpful", 950)
    session.feedback("down", "Too slow", 960)
    session.feedback(None, "just testing", 970)
    return session


def large_session(session_id: str, *, image_bytes: int = 15_800_000, small_messages: int = 200) -> LegacySession:
    """A session near the 16 MiB document limit: one huge image message and many small ones."""
    session = LegacySession(session_id, metadata={"kind": "large"})
    agent = session.agent("default")
    for turn in range(small_messages // 2):
        agent.message("user", text(f"q{turn} " + "x" * 40))
        agent.message("assistant", text(f"a{turn} " + "y" * 40), event_loop_metrics=metrics(10, 5, 5))
    agent.message("user", text("look"), image(png(image_bytes, 3), "binary"))
    agent.message("assistant", text("a very large picture"))
    return session
