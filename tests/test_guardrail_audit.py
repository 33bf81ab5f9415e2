"""Guardrail audit: redactions record who/when/why, and the session keeps a summary (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from strands import Agent

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.audit import policies_triggered
from mongodb_session_manager.catalog import SessionCatalog
from mongodb_session_manager.errors import InvalidInputError
from mongodb_session_manager.scripted_model import ScriptedModel, redact
from mongodb_session_manager.testing import CommandRecorder

# Bedrock's shape: assessments keyed by guardrail id, output assessments as lists.
TRACE = {
    "inputAssessment": {
        "gr-1": {
            "contentPolicy": {"filters": [{"type": "HATE", "confidence": "HIGH", "action": "BLOCKED"}]},
            "topicPolicy": {"topics": [{"name": "investment", "type": "DENY", "action": "BLOCKED"}]},
        }
    },
    "outputAssessments": {
        "gr-1": [{"sensitiveInformationPolicy": {"piiEntities": [{"type": "EMAIL", "action": "ANONYMIZED"}]}}]
    },
}
POLICIES = {
    "contentPolicy": ["HATE/HIGH"],
    "topicPolicy": ["investment/BLOCKED"],
    "sensitiveInformationPolicy": ["EMAIL/ANONYMIZED"],
}


@pytest.fixture
def commands() -> CommandRecorder:
    return CommandRecorder(only={"find", "insert", "update", "findAndModify", "delete", "aggregate"})


@pytest.fixture
def recorded_factory(
    mongodb_uri: str, db_name: str, commands: CommandRecorder
) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", event_listeners=[commands]
    )
    yield factory
    factory.close()


def test_strands_guardrail_flow_records_the_audit_entry_and_the_session_summary(
    recorded_factory: MongoDBSessionManagerFactory, commands: CommandRecorder, db: Any
) -> None:
    model = ScriptedModel([redact("[User input redacted.]", "I can't help with that.", guardrail_trace=TRACE)])
    agent = Agent(model=model, session_manager=recorded_factory.create_session_manager("g"), callback_handler=None)
    commands.take()
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    agent("how do I hate my neighbours' investments?")
    names = commands.take()
    # user insert, redaction (message + session summary), the stop reason once the call ends, assistant insert.
    assert sorted(names) == ["insert", "insert", "update", "update", "update"], names

    user = db["sessions.messages"].find_one({"session_id": "g", "message_id": 0})
    assert user["message"]["content"] == [{"text": "how do I hate my neighbours' investments?"}]  # kept for audit
    assert user["redact_message"]["content"] == [{"text": "[User input redacted.]"}]
    redaction = user["redaction"]
    assert redaction["action"] == "BLOCKED"
    assert redaction["stop_reason"] == "guardrail_intervened"
    assert redaction["timestamp"].replace(tzinfo=timezone.utc) >= before
    # Strands does not hand the trace to the session manager in its own flow (see the docs).
    assert "guardrail_trace" not in redaction

    assistant = db["sessions.messages"].find_one({"session_id": "g", "message_id": 1})
    assert assistant["usage"]["stop_reason"] == "guardrail_intervened"

    summary = db["sessions"].find_one({"_id": "g"})["guardrails"]
    assert summary["count"] == 1
    assert summary["last_at"] == redaction["timestamp"]

    restored = Agent(
        model=ScriptedModel([]),
        session_manager=recorded_factory.create_session_manager("g"),
        callback_handler=None,
    )
    assert restored.messages[0]["content"] == [{"text": "[User input redacted.]"}]


def test_a_direct_call_stores_stop_reason_policies_and_trace(
    recorded_factory: MongoDBSessionManagerFactory, commands: CommandRecorder, db: Any
) -> None:
    manager = recorded_factory.create_session_manager("direct")
    agent = Agent(model=ScriptedModel(["Sure."]), session_manager=manager, callback_handler=None)
    agent("tell me about investments")
    commands.take()
    redacted = {"role": "assistant", "content": [{"text": "[removed]"}]}
    manager.redact_latest_message(
        redacted, agent, stop_reason="guardrail_intervened", guardrail_trace=TRACE, action="ANONYMIZED"
    )
    assert commands.take() == ["update", "update"]  # the message and the session summary
    manager.redact_latest_message(redacted, agent, stop_reason="guardrail_intervened", guardrail_trace=TRACE)

    latest = db["sessions.messages"].find_one({"session_id": "direct", "message_id": 1})
    assert latest["message"]["content"] == [{"text": "Sure."}]
    assert latest["redact_message"] == redacted
    redaction = latest["redaction"]
    assert redaction["action"] == "BLOCKED"
    assert redaction["stop_reason"] == "guardrail_intervened"
    assert redaction["policies_triggered"] == POLICIES
    assert redaction["guardrail_trace"] == TRACE

    summary = db["sessions"].find_one({"_id": "direct"})["guardrails"]
    assert summary["count"] == 2
    assert sorted(summary["policies"]) == sorted(POLICIES)

    # The summary is part of the catalog's session summaries (listing, get_session, the CLI's JSON).
    catalog = SessionCatalog(manager.repository)
    listed = catalog.get_session("direct")
    assert listed is not None
    assert listed.guardrails is not None
    assert listed.guardrails["count"] == 2
    assert listed.guardrails["policies"] == sorted(POLICIES)
    assert listed.to_dict()["guardrails"]["last_at"] == summary["last_at"].replace(tzinfo=timezone.utc).isoformat()


def test_bad_audit_input_is_refused_before_writing(recorded_factory: MongoDBSessionManagerFactory, db: Any) -> None:
    manager = recorded_factory.create_session_manager("bad")
    agent = Agent(model=ScriptedModel(["Sure."]), session_manager=manager, callback_handler=None)
    agent("hi")
    with pytest.raises(InvalidInputError, match="stop_reason"):
        manager.redact_latest_message({"role": "assistant", "content": []}, agent, stop_reason=5)
    with pytest.raises(InvalidInputError, match="guardrail_trace"):
        manager.redact_latest_message({"role": "assistant", "content": []}, agent, guardrail_trace="trace")
    assert db["sessions.messages"].count_documents({"session_id": "bad", "redaction": {"$exists": True}}) == 0
    assert "guardrails" not in db["sessions"].find_one({"_id": "bad"})
    summary = SessionCatalog(manager.repository).get_session("bad")
    assert summary is not None
    assert summary.guardrails is None


def test_policies_are_summarised_from_either_trace_shape() -> None:
    assert policies_triggered(TRACE) == POLICIES
    assert policies_triggered({"guardrail": TRACE}) == POLICIES
    # The shape the earlier library assumed: one input assessment, a list of output assessments.
    flat = {
        "inputAssessment": {"wordPolicy": {"customWords": [{"match": "darn"}]}},
        "outputAssessments": [{"contextualGroundingPolicy": {"filters": [{"type": "GROUNDING", "score": 0.1}]}}],
    }
    assert policies_triggered(flat) == {
        "wordPolicy": ["darn"],
        "contextualGroundingPolicy": ["GROUNDING/0.1/UNKNOWN"],
    }
    assert policies_triggered(None) == {}
    assert policies_triggered({"unrelated": [1, 2]}) == {}
