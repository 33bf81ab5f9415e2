"""Tests for the network-free ScriptedModel, driven through a real ``strands.Agent``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pydantic import BaseModel
from strands import Agent, tool

from mongodb_session_manager.scripted_model import (
    ScriptedModel,
    ScriptedTurn,
    ScriptExhaustedError,
    redact,
    text,
    tool_call,
)


def _strip(messages: list[Any]) -> list[dict[str, Any]]:
    """Keep only role and content, the parts a model provider sees."""
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def test_plain_text_turn() -> None:
    model = ScriptedModel(["hello there"])
    agent = Agent(model=model, callback_handler=None)

    result = agent("hi")

    assert str(result).strip() == "hello there"
    assert result.stop_reason == "end_turn"
    assert _strip(agent.messages) == [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"text": "hello there"}]},
    ]
    assert model.calls == [[{"role": "user", "content": [{"text": "hi"}]}]]


def test_explicit_text_helper_and_default_text() -> None:
    model = ScriptedModel([text("first")], default_text="fallback")
    agent = Agent(model=model, callback_handler=None)

    agent("one")
    agent("two")

    replies = [m["content"] for m in agent.messages if m["role"] == "assistant"]
    assert replies == [[{"text": "first"}], [{"text": "fallback"}]]
    assert model.remaining == 0
    assert model.call_count == 2


def test_exhausted_script_without_default_raises() -> None:
    model = ScriptedModel(["only"], default_text=None)
    agent = Agent(model=model, callback_handler=None)
    agent("one")

    with pytest.raises(ScriptExhaustedError, match="exhausted"):
        agent("two")


def test_tool_turn_runs_tool() -> None:
    seen: list[tuple[str, int]] = []

    @tool
    def lookup(city: str, days: int) -> str:
        """Look up the weather.

        Args:
            city: City name.
            days: Number of days.
        """
        seen.append((city, days))
        return f"sunny in {city} for {days} days"

    model = ScriptedModel(
        [
            tool_call("lookup", {"city": "Paris", "days": 3}, text="Let me check."),
            "It will be sunny.",
        ]
    )
    agent = Agent(model=model, tools=[lookup], callback_handler=None)

    result = agent("weather?")

    assert seen == [("Paris", 3)]
    assert str(result).strip() == "It will be sunny."
    assert [m["role"] for m in agent.messages] == ["user", "assistant", "user", "assistant"]
    assert agent.messages[1]["content"] == [
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "lookup", "input": {"city": "Paris", "days": 3}}},
    ]
    tool_result = agent.messages[2]["content"][0]["toolResult"]
    assert tool_result["toolUseId"] == "tooluse_1"
    assert tool_result["status"] == "success"
    assert tool_result["content"] == [{"text": "sunny in Paris for 3 days"}]
    assert agent.messages[3]["content"] == [{"text": "It will be sunny."}]

    # The second model call saw the tool round trip; the tool was offered on both calls.
    assert len(model.calls) == 2
    assert _strip(model.calls[1]) == _strip(agent.messages[:3])
    assert model.tool_specs == [["lookup"], ["lookup"]]


def test_tool_use_ids_are_deterministic_unless_given() -> None:
    @tool
    def noop() -> str:
        """Do nothing."""
        return "done"

    model = ScriptedModel([tool_call("noop", {}), tool_call("noop", {}, tool_use_id="custom"), tool_call("noop", {})])
    agent = Agent(model=model, tools=[noop], callback_handler=None)

    agent("go")

    ids = [
        block["toolUse"]["toolUseId"]
        for m in agent.messages
        if m["role"] == "assistant"
        for block in m["content"]
        if "toolUse" in block
    ]
    assert ids == ["tooluse_1", "custom", "tooluse_2"]
    # Without text the toolUse block stands alone.
    assert agent.messages[1]["content"] == [{"toolUse": {"toolUseId": "tooluse_1", "name": "noop", "input": {}}}]


def test_redact_replaces_user_message() -> None:
    model = ScriptedModel([redact("[User input redacted.]", "I can't help with that.")])
    agent = Agent(model=model, callback_handler=None)

    result = agent("something secret")

    assert result.stop_reason == "guardrail_intervened"
    assert agent.messages[0]["content"] == [{"text": "[User input redacted.]"}]
    assert agent.messages[1]["content"] == [{"text": "I can't help with that."}]
    # The model itself saw the original input.
    assert model.calls[0][0]["content"] == [{"text": "something secret"}]


def test_redact_can_also_replace_assistant_reply() -> None:
    model = ScriptedModel([redact("[in]", "raw reply", assistant_replacement="[out]")])
    agent = Agent(model=model, callback_handler=None)

    agent("hello")

    assert _strip(agent.messages) == [
        {"role": "user", "content": [{"text": "[in]"}]},
        {"role": "assistant", "content": [{"text": "[out]"}]},
    ]


def test_invoke_async() -> None:
    model = ScriptedModel(["async reply"])
    agent = Agent(model=model, callback_handler=None)

    result = asyncio.run(agent.invoke_async("hi"))

    assert str(result).strip() == "async reply"
    assert _strip(agent.messages) == [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"text": "async reply"}]},
    ]


def test_delay_is_applied_without_breaking_the_turn() -> None:
    model = ScriptedModel(["slow"], delay=0.01)
    agent = Agent(model=model, callback_handler=None)

    assert str(agent("hi")).strip() == "slow"


def test_restored_history_is_sent_to_model() -> None:
    first = Agent(model=ScriptedModel(["A1"]), callback_handler=None)
    first("Q1")

    model = ScriptedModel(["A2"])
    second = Agent(model=model, messages=first.messages, callback_handler=None)
    second("Q2")

    assert model.calls[0] == [
        {"role": "user", "content": [{"text": "Q1"}]},
        {"role": "assistant", "content": [{"text": "A1"}]},
        {"role": "user", "content": [{"text": "Q2"}]},
    ]


def test_agent_adds_tracking_ids_and_usage_metadata_but_model_never_sees_them() -> None:
    model = ScriptedModel(["x", "y"])
    agent = Agent(model=model, callback_handler=None)
    agent("a")
    agent("b")

    assert all(m.get("tracking_id") for m in agent.messages)
    usage = agent.messages[1]["metadata"]["usage"]
    assert usage["inputTokens"] > 0
    assert usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    for call in model.calls:
        for message in call:
            assert set(message) == {"role", "content"}


def test_calls_are_deep_copies() -> None:
    model = ScriptedModel(["x"])
    agent = Agent(model=model, callback_handler=None)
    agent("original")

    agent.messages[0]["content"][0]["text"] = "mutated"

    assert model.calls[0][0]["content"] == [{"text": "original"}]


def test_script_is_consumed_safely_from_many_threads() -> None:
    n = 40
    model = ScriptedModel([f"r{i}" for i in range(n)], default_text=None)
    replies: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        agent = Agent(model=model, callback_handler=None)
        reply = str(agent("hi")).strip()
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(replies) == sorted(f"r{i}" for i in range(n))
    assert model.remaining == 0
    assert len(model.calls) == n


def test_add_extends_script() -> None:
    model = ScriptedModel(default_text=None)
    model.add("later", text("even later"))
    agent = Agent(model=model, callback_handler=None)

    assert str(agent("1")).strip() == "later"
    assert str(agent("2")).strip() == "even later"


def test_structured_output_parses_scripted_payloads() -> None:
    class Point(BaseModel):
        x: int
        y: int

    model = ScriptedModel(['{"x": 1, "y": 2}', tool_call("Point", {"x": 3, "y": 4})])

    async def collect() -> list[Point]:
        points: list[Point] = []
        for _ in range(2):
            async for event in model.structured_output(Point, [{"role": "user", "content": [{"text": "p"}]}]):
                points.append(event["output"])
        return points

    assert asyncio.run(collect()) == [Point(x=1, y=2), Point(x=3, y=4)]
    assert len(model.calls) == 2


def test_config_round_trip() -> None:
    model = ScriptedModel(model_id="fake-1")
    assert model.get_config()["model_id"] == "fake-1"
    model.update_config(context_window_limit=1000)
    assert model.get_config() == {"model_id": "fake-1", "context_window_limit": 1000}
    assert model.context_window_limit == 1000


def test_invalid_entries_are_rejected() -> None:
    with pytest.raises(TypeError):
        ScriptedModel([42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="tool_name"):
        ScriptedTurn(kind="tool_call")
    with pytest.raises(ValueError, match="delay"):
        ScriptedModel(delay=-1)
