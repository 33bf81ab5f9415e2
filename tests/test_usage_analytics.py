"""Usage and guardrail analytics on seeded data: exact totals and percentiles, computed server-side
with an index (issue 15)."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionRepository
from mongodb_session_manager.analytics import guardrail_match, guardrail_pipeline, usage_match, usage_pipeline
from mongodb_session_manager.catalog import SessionCatalog
from mongodb_session_manager.errors import InvalidInputError
from mongodb_session_manager.testing import CommandRecorder

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
SESSIONS = 40
AGENTS = ("planner", "writer")
MODELS = ("model-a", "model-b", "model-c")
CALLS_PER_AGENT = 30  # 40 sessions x 2 agents x 30 calls = 2400 model calls, 4800 messages
POLICIES = ("contentPolicy", "topicPolicy", "wordPolicy")


@dataclass(frozen=True)
class Call:
    session: str
    agent: str
    model: str
    application: str
    at: datetime
    input_tokens: int
    output_tokens: int
    latency_ms: int
    turn: bool
    tool_calls: int
    tool_errors: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Redaction:
    session: str
    agent: str
    at: datetime
    policies: tuple[str, ...]


def session_id(index: int) -> str:
    return f"s{index:03d}"


def tier(index: int) -> str:
    return "gold" if index % 3 == 0 else "free"


def seed_calls() -> tuple[list[Call], list[Redaction]]:
    calls, redactions = [], []
    n = 0
    for s in range(SESSIONS):
        for agent in AGENTS:
            for c in range(CALLS_PER_AGENT):
                n += 1
                at = START + timedelta(days=(s + c) % 7, hours=(n * 5) % 24, minutes=n % 60)
                calls.append(
                    Call(
                        session=session_id(s),
                        agent=agent,
                        model=MODELS[(s + c) % 3],
                        application="app-x" if s % 2 == 0 else "app-y",
                        at=at,
                        input_tokens=10 + (n * 7) % 100,
                        output_tokens=5 + (n * 3) % 50,
                        latency_ms=100 + (n * 37) % 900,
                        turn=c % 3 == 2,
                        tool_calls=(n % 4) if c % 3 == 2 else 0,
                        tool_errors=(n % 2) if c % 3 == 2 else 0,
                    )
                )
                if c % 10 == 4:
                    redactions.append(Redaction(session_id(s), agent, at, POLICIES[: 1 + (n % 3)] if n % 5 else ()))
    return calls, redactions


CALLS, REDACTIONS = seed_calls()


@pytest.fixture(scope="module")
def seeded(mongodb_uri: str) -> Iterator[tuple[SessionCatalog, Any]]:
    """Module-scoped: the seeded namespace is read-only for the tests below."""
    from pymongo import MongoClient

    db_name = f"t_usage_analytics_{secrets.token_hex(4)}"
    repository = MongoDBSessionRepository(mongodb_uri, db_name, "sessions")
    core = repository.core
    by_agent: dict[tuple[str, str], list[tuple[SessionMessage, dict[str, Any]]]] = defaultdict(list)
    redacted = {(r.session, r.agent, r.at): r for r in REDACTIONS}
    for call in CALLS:
        records = by_agent[(call.session, call.agent)]
        user: dict[str, Any] = {}
        redaction = redacted.get((call.session, call.agent, call.at))
        if redaction is not None:
            user["redaction"] = {
                "action": "BLOCKED",
                "timestamp": redaction.at,
                **(
                    {"policies_triggered": {p: [f"{p}-item"] for p in redaction.policies}} if redaction.policies else {}
                ),
            }
        records.append((SessionMessage({"role": "user", "content": [{"text": "q"}]}, len(records)), user))
        usage = {
            "at": call.at,
            "model": call.model,
            "stop_reason": "end_turn",
            "application": call.application,
            "input_tokens": call.input_tokens,
            "output_tokens": call.output_tokens,
            "total_tokens": call.total_tokens,
            "latency_ms": call.latency_ms,
        }
        fields: dict[str, Any] = {"usage": usage}
        if call.turn:
            fields["invocation"] = {"tool_calls": call.tool_calls, "tool_errors": call.tool_errors}
        records.append((SessionMessage({"role": "assistant", "content": [{"text": "a"}]}, len(records)), fields))
    for s in range(SESSIONS):
        repository.update_metadata(session_id(s), {"tier": tier(s)})
    for (session, agent), records in by_agent.items():
        core.runtime.run_blocking(
            core.create_messages, session, agent, [m for m, _ in records], fields=[f for _, f in records]
        )
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        assert client[db_name]["sessions.messages"].count_documents({}) == 2 * len(CALLS) >= 4800
        yield SessionCatalog(repository), client[db_name]
    finally:
        client.drop_database(db_name)
        client.close()
        repository.close()


def nearest_rank(values: list[int], p: int) -> int:
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def expected_rows(calls: list[Call], key: Callable[[Call], str]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        groups[key(call)].append(call)
    return {name: expected_row(group) for name, group in groups.items()}


def expected_row(group: list[Call]) -> dict[str, Any]:
    return {
        "calls": len(group),
        "turns": sum(c.turn for c in group),
        "input_tokens": sum(c.input_tokens for c in group),
        "output_tokens": sum(c.output_tokens for c in group),
        "total_tokens": sum(c.total_tokens for c in group),
        "latency_ms": sum(c.latency_ms for c in group),
        "latency_p50_ms": nearest_rank([c.latency_ms for c in group], 50),
        "latency_p95_ms": nearest_rank([c.latency_ms for c in group], 95),
        "latency_p99_ms": nearest_rank([c.latency_ms for c in group], 99),
        "tokens_p50": nearest_rank([c.total_tokens for c in group], 50),
        "tokens_p95": nearest_rank([c.total_tokens for c in group], 95),
        "tool_calls": sum(c.tool_calls for c in group),
        "tool_errors": sum(c.tool_errors for c in group),
        "first_at": min(c.at for c in group),
        "last_at": max(c.at for c in group),
    }


def actual(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in expected_row(CALLS[:1])}


GROUP_KEYS: dict[str, Callable[[Call], str]] = {
    "session": lambda c: c.session,
    "agent": lambda c: c.agent,
    "model": lambda c: c.model,
    "application": lambda c: c.application,
    "day": lambda c: c.at.strftime("%Y-%m-%d"),
    "hour": lambda c: c.at.strftime("%Y-%m-%dT%H:00Z"),
}


@pytest.mark.parametrize("by", list(GROUP_KEYS))
def test_usage_grouped_totals_and_percentiles_are_exact(seeded: tuple[SessionCatalog, Any], by: str) -> None:
    catalog, _ = seeded
    started = time.perf_counter()
    report = catalog.usage(by=by)
    elapsed = time.perf_counter() - started
    print(f"usage(by={by}) over {len(CALLS)} calls: {elapsed * 1000:.0f} ms")
    expected = expected_rows(CALLS, GROUP_KEYS[by])
    assert {row.key: actual(row) for row in report.rows} == expected
    assert actual(report.total) == expected_row(CALLS)
    if by in ("day", "hour"):
        assert [row.key for row in report.rows] == sorted(expected)
    else:
        assert [row.total_tokens for row in report.rows] == sorted(
            (r["total_tokens"] for r in expected.values()), reverse=True
        )


def test_usage_over_a_time_range_with_catalog_filters(seeded: tuple[SessionCatalog, Any]) -> None:
    catalog, _ = seeded
    since, until = START + timedelta(days=2), START + timedelta(days=4, hours=12)
    in_range = [c for c in CALLS if since <= c.at < until]

    report = catalog.usage(by="model", since=since, until=until)
    assert {row.key: actual(row) for row in report.rows} == expected_rows(in_range, GROUP_KEYS["model"])

    gold = {session_id(s) for s in range(SESSIONS) if tier(s) == "gold"}
    report = catalog.usage(by="agent", since=since, until=until, metadata={"tier": "gold"})
    assert {row.key: actual(row) for row in report.rows} == expected_rows(
        [c for c in in_range if c.session in gold], GROUP_KEYS["agent"]
    )

    report = catalog.usage(by="day", application_name="app-y", agent_id="writer", model="model-b")
    assert {row.key: actual(row) for row in report.rows} == expected_rows(
        [c for c in CALLS if (c.application, c.agent, c.model) == ("app-y", "writer", "model-b")], GROUP_KEYS["day"]
    )

    report = catalog.usage(session_id="s007")
    assert report.rows == [] or report.by is None
    assert actual(report.total) == expected_row([c for c in CALLS if c.session == "s007"])


def test_usage_limit_marks_truncation_and_empty_ranges_are_zero(seeded: tuple[SessionCatalog, Any]) -> None:
    catalog, _ = seeded
    report = catalog.usage(by="session", limit=5)
    assert len(report.rows) == 5
    assert report.truncated
    assert report.total.calls == len(CALLS)
    empty = catalog.usage(by="day", since=START - timedelta(days=30), until=START - timedelta(days=20))
    assert empty.rows == []
    assert empty.total.calls == 0
    assert empty.total.latency_p50_ms is None
    assert json.loads(json.dumps(report.to_dict()))["total"]["calls"] == len(CALLS)


def test_usage_queries_use_an_index(seeded: tuple[SessionCatalog, Any]) -> None:
    _, db = seeded
    since = START + timedelta(days=1)
    cases = [
        (usage_match(since, None), "usage_at"),
        (usage_match(since, None, application_name="app-x"), "usage_application_at"),
        (guardrail_match(since, None), "redaction_timestamp"),
    ]
    for match, index in cases:
        pipeline = usage_pipeline(match, "day") if index != "redaction_timestamp" else guardrail_pipeline(match, "day")
        plan = db.command(
            {
                "explain": {"aggregate": "sessions.messages", "pipeline": pipeline, "cursor": {}},
                "verbosity": "queryPlanner",
            }
        )
        text = json.dumps(plan, default=str)
        assert "IXSCAN" in text, text[:2000]
        assert f'"{index}"' in text, text[:2000]
        assert "COLLSCAN" not in text


def test_usage_costs_one_aggregate_round_trip(mongodb_uri: str, seeded: tuple[SessionCatalog, Any]) -> None:
    _catalog, db = seeded
    recorder = CommandRecorder(only={"aggregate", "find", "getMore"})
    repository = MongoDBSessionRepository(mongodb_uri, db.name, "sessions", event_listeners=[recorder])
    try:
        SessionCatalog(repository).usage(by="hour")
        assert recorder.take() == ["aggregate"]
        SessionCatalog(repository).usage(by="agent", metadata={"tier": "free"})
        assert recorder.take() == ["find", "aggregate"]
    finally:
        repository.close()


def test_guardrail_interventions_by_policy_and_over_time(seeded: tuple[SessionCatalog, Any]) -> None:
    catalog, _ = seeded
    report = catalog.guardrail_interventions()
    assert report.total == len(REDACTIONS)
    per_policy: dict[str | None, int] = defaultdict(int)
    for redaction in REDACTIONS:
        for policy in redaction.policies or (None,):
            per_policy[policy] += 1
    assert {row.key: row.interventions for row in report.rows} == per_policy

    by_day = catalog.guardrail_interventions(by="day", metadata={"tier": "gold"})
    gold = [r for r in REDACTIONS if tier(int(r.session[1:])) == "gold"]
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[str, int] = defaultdict(int)
    for redaction in gold:
        day = redaction.at.strftime("%Y-%m-%d")
        counts[day] += 1
        for policy in redaction.policies:
            expected[day][policy] += 1
    assert {row.key: row.interventions for row in by_day.rows} == counts
    assert {row.key: row.policies for row in by_day.rows if row.policies} == {k: dict(v) for k, v in expected.items()}
    assert by_day.total == len(gold)
    assert [row.key for row in by_day.rows] == sorted(counts)


def test_bad_analytics_input_is_refused(seeded: tuple[SessionCatalog, Any]) -> None:
    catalog, _ = seeded
    with pytest.raises(InvalidInputError, match="by must be one of"):
        catalog.usage(by="week")
    with pytest.raises(InvalidInputError, match="since must be before until"):
        catalog.usage(since=START, until=START)
    with pytest.raises(InvalidInputError, match="limit"):
        catalog.usage(limit=0)
    with pytest.raises(InvalidInputError, match="by must be one of"):
        catalog.guardrail_interventions(by=None)  # type: ignore[arg-type]


def test_an_application_isolated_catalog_sees_its_own_usage_only(
    mongodb_uri: str, seeded: tuple[SessionCatalog, Any]
) -> None:
    _, db = seeded
    repository = MongoDBSessionRepository(
        mongodb_uri, db.name, "sessions", application_name="app-x", isolate_application=True
    )
    try:
        report = SessionCatalog(repository).usage(by="agent")
        assert actual(report.total) == expected_row([c for c in CALLS if c.application == "app-x"])
    finally:
        repository.close()
