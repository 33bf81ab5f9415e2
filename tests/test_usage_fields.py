"""Per-call usage and per-invocation totals stored with the message documents (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from strands import Agent, tool
from strands.hooks import AfterModelCallEvent, HookProvider, HookRegistry

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.errors import InvalidInputError
from mongodb_session_manager.scripted_model import ScriptedModel, text, tool_call
from mongodb_session_manager.testing import CommandRecorder
from mongodb_session_manager.usage import call_usage, model_id_of

COUNTED = {"find", "insert", "update", "findAndModify", "getMore", "delete", "aggregate", "count"}


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    if order_id == "bad":
        raise ValueError("no such order")
    return f"order {order_id}: shipped"


@pytest.fixture
def commands() -> CommandRecorder:
    return CommandRecorder(only=COUNTED)


@pytest.fixture
def recorded_factory(
    mongodb_uri: str, db_name: str, commands: CommandRecorder
) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(
        mongodb_uri,
        database_name=db_name,
        collection_name="sessions",
        event_listeners=[commands],
    )
    yield factory
    factory.close()


def stored(db: Any, session_id: str) -> list[dict[str, Any]]:
    return list(db["sessions.messages"].find({"session_id": session_id}, {"_id": 0}).sort("message_id", 1))


def test_a_text_turn_stores_the_call_usage_with_the_message_and_keeps_its_round_trips(
    recorded_factory: MongoDBSessionManagerFactory, commands: CommandRecorder, db: Any
) -> None:
    model = ScriptedModel(
        [
            text(
                "Hello!",
                usage={"inputTokens": 120, "outputTokens": 30, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 7},
                latency_ms=850,
            )
        ],
        model_id="anthropic.claude-test",
    )
    agent = Agent(
        model=model,
        session_manager=recorded_factory.create_session_manager("s1", application_name="support-bot"),
        callback_handler=None,
    )
    commands.take()
    before = datetime.now(timezone.utc)
    agent("hi")
    # Unchanged budget: the usage and the invocation totals ride on the inserts (two, or one grouped).
    names = commands.take()
    assert set(names) == {"insert"}
    assert len(names) <= 2

    user, assistant = stored(db, "s1")
    assert "usage" not in user
    assert "invocation" not in user
    usage = assistant["usage"]
    at = usage.pop("at").replace(tzinfo=timezone.utc)
    assert before - timedelta(seconds=1) <= at <= datetime.now(timezone.utc)
    assert usage == {
        "model": "anthropic.claude-test",
        "stop_reason": "end_turn",
        "application": "support-bot",
        "input_tokens": 120,
        "output_tokens": 30,
        "total_tokens": 150,
        "cache_read_input_tokens": 100,
        "cache_write_input_tokens": 7,
        "latency_ms": 850,
    }
    invocation = assistant["invocation"]
    assert invocation["cycles"] == 1
    assert invocation["model_calls"] == 1
    assert invocation["total_tokens"] == 150
    assert invocation["cache_read_input_tokens"] == 100
    assert invocation["latency_ms"] == 850
    assert invocation["tool_calls"] == 0
    assert invocation["tools"] == []
    assert invocation["duration_ms"] >= 0


def test_a_tool_turn_stores_usage_per_call_and_totals_on_the_final_message(
    recorded_factory: MongoDBSessionManagerFactory, commands: CommandRecorder, db: Any
) -> None:
    model = ScriptedModel(
        [
            tool_call("lookup", {"order_id": "42"}, usage={"inputTokens": 50, "outputTokens": 10}, latency_ms=300),
            tool_call("lookup", {"order_id": "bad"}, usage={"inputTokens": 70, "outputTokens": 10}, latency_ms=200),
            text("Order 42 shipped; the other does not exist.", usage={"inputTokens": 90, "outputTokens": 20}),
        ]
    )
    agent = Agent(
        model=model,
        tools=[lookup],
        session_manager=recorded_factory.create_session_manager("tools"),
        callback_handler=None,
    )
    commands.take()
    agent("Where are my orders?")
    names = commands.take()
    assert set(names) == {"insert"}, names  # 6 awaited; pipelined, grouped: never more, no update
    assert len(names) <= 6, names

    documents = stored(db, "tools")
    assert [d["message"]["role"] for d in documents] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    calls = [d["usage"] for d in documents if "usage" in d]
    assert [(c["stop_reason"], c["total_tokens"], c["latency_ms"]) for c in calls] == [
        ("tool_use", 60, 300),
        ("tool_use", 80, 200),
        ("end_turn", 110, 0),
    ]
    assert all(c["model"] == "scripted" for c in calls)
    with_totals = [d for d in documents if "invocation" in d]
    assert [d["message_id"] for d in with_totals] == [5]
    totals = with_totals[0]["invocation"]
    assert (totals["cycles"], totals["model_calls"]) == (3, 3)
    assert (totals["input_tokens"], totals["output_tokens"], totals["total_tokens"]) == (210, 40, 250)
    assert totals["latency_ms"] == 500
    assert (totals["tool_calls"], totals["tool_successes"], totals["tool_errors"]) == (2, 1, 1)
    [lookup_totals] = totals["tools"]
    assert lookup_totals["name"] == "lookup"
    assert (lookup_totals["calls"], lookup_totals["successes"], lookup_totals["errors"]) == (2, 1, 1)
    assert totals["tool_time_ms"] == lookup_totals["time_ms"] >= 0


def test_restore_is_unchanged_by_usage_fields(recorded_factory: MongoDBSessionManagerFactory, db: Any) -> None:
    model = ScriptedModel([tool_call("lookup", {"order_id": "1"}), "Shipped."])
    agent = Agent(
        model=model, tools=[lookup], session_manager=recorded_factory.create_session_manager("r"), callback_handler=None
    )
    agent("where?")
    assert sum("usage" in d for d in stored(db, "r")) == 2

    restored = Agent(
        model=ScriptedModel(["again"]),
        tools=[lookup],
        session_manager=recorded_factory.create_session_manager("r"),
        callback_handler=None,
    )
    assert restored.messages == agent.messages
    for message in restored.messages:
        assert set(message) <= {"role", "content", "tracking_id", "metadata"}
    restored("and now?")
    assert len(stored(db, "r")) == 6


class _RetryOnce(HookProvider):
    """Asks Strands to call the model again after the first response (a retrying hook)."""

    def __init__(self) -> None:
        self.retried = False

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(AfterModelCallEvent, self.retry_once)

    def retry_once(self, event: AfterModelCallEvent) -> None:
        if not self.retried and event.stop_response is not None:
            self.retried = True
            event.retry = True


def test_a_retried_model_call_counts_in_the_totals_but_not_as_a_message(
    recorded_factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    model = ScriptedModel(
        [text("discarded", usage={"inputTokens": 5, "outputTokens": 5}), text("kept", usage={"inputTokens": 7})]
    )
    agent = Agent(
        model=model,
        session_manager=recorded_factory.create_session_manager("retry"),
        hooks=[_RetryOnce()],
        callback_handler=None,
    )
    agent("hi")
    _, assistant = stored(db, "retry")
    assert assistant["message"]["content"] == [{"text": "kept"}]
    assert assistant["usage"]["input_tokens"] == 7
    assert assistant["invocation"]["model_calls"] == 2
    assert assistant["invocation"]["cycles"] == 1
    assert assistant["invocation"]["input_tokens"] == 12


def test_an_invocation_ending_without_a_final_answer_costs_one_update(
    recorded_factory: MongoDBSessionManagerFactory, commands: CommandRecorder, db: Any
) -> None:
    # The second model call fails: the invocation ends with the tool result as last message.
    model = ScriptedModel([tool_call("lookup", {"order_id": "9"}, usage={"inputTokens": 11, "outputTokens": 1})])
    model.default_text = None
    agent = Agent(
        model=model, tools=[lookup], session_manager=recorded_factory.create_session_manager("e"), callback_handler=None
    )
    commands.take()
    with pytest.raises(Exception, match="exhausted"):
        agent("where?")
    names = commands.take()
    # One update for the invocation totals, one releasing the conversation the unfinished turn held
    # (docs/concurrency.md; the two ride on one update when they concern the same message).
    assert names.count("update") == 2, names
    documents = stored(db, "e")
    [with_totals] = [d for d in documents if "invocation" in d]
    assert with_totals["usage"]["stop_reason"] == "tool_use"
    assert with_totals["invocation"]["tool_calls"] == 1
    assert with_totals["invocation"]["total_tokens"] == 12


def test_extra_message_fields_are_checked_before_writing(
    recorded_factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    from strands.types.session import SessionMessage

    manager = recorded_factory.create_session_manager("x")
    Agent(model=ScriptedModel([]), session_manager=manager, callback_handler=None)
    repository = manager.repository
    message = SessionMessage({"role": "user", "content": [{"text": "hi"}]}, 0)
    with pytest.raises(InvalidInputError, match="unknown extra message fields"):
        repository.runtime.run_blocking(repository.create_message, "x", "default", message, fields={"message_id": 9})
    assert stored(db, "x") == []


def test_call_usage_maps_strands_keys_and_defaults_missing_counts() -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert call_usage(None, at=at, model="m", stop_reason="end_turn") == {
        "at": at,
        "model": "m",
        "stop_reason": "end_turn",
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "latency_ms": 0,
    }
    usage = call_usage(
        {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}, "metrics": {"timeToFirstByteMs": 40}},
        at=at,
        model=None,
        stop_reason=None,
    )
    assert usage["time_to_first_byte_ms"] == 40
    assert usage["total_tokens"] == 3
    assert model_id_of(ScriptedModel([], model_id="x.y")) == "x.y"
    assert model_id_of(object()) == "object"


@pytest.mark.anyio
async def test_async_agent_on_the_home_loop_records_usage_and_the_guardrail_audit(mongodb_uri: str, db: Any) -> None:
    from mongodb_session_manager import AsyncMongoDBSessionManagerFactory, AsyncSessionCatalog
    from mongodb_session_manager.scripted_model import redact

    commands = CommandRecorder(only=COUNTED)
    async with AsyncMongoDBSessionManagerFactory(
        mongodb_uri, database_name=db.name, collection_name="sessions", event_listeners=[commands]
    ) as factory:
        manager = await factory.create_session_manager("async", preload=True)
        model = ScriptedModel(
            [text("one", usage={"inputTokens": 3, "outputTokens": 4}, latency_ms=20), redact("[x]", "no")]
        )
        agent = Agent(model=model, session_manager=manager, callback_handler=None)
        commands.take()
        await agent.invoke_async("first")
        names = commands.take()
        assert names.count("insert") == 2, names
        assert names.count("update") <= 1, names  # the agent record deferred by preload; nothing for usage
        await agent.invoke_async("second")
        await manager.close_async()

        documents = stored(db, "async")
        assert documents[1]["usage"]["total_tokens"] == 7
        assert documents[1]["invocation"]["latency_ms"] == 20
        assert documents[2]["redaction"]["stop_reason"] == "guardrail_intervened"
        assert documents[3]["usage"]["stop_reason"] == "guardrail_intervened"

        catalog = AsyncSessionCatalog(manager.repository)
        report = await catalog.usage(session_id="async")
        assert report.total.calls == 2
        assert report.total.turns == 2
        guardrails = await catalog.guardrail_interventions(by="session")
        assert [(row.key, row.interventions) for row in guardrails.rows] == [("async", 1)]
