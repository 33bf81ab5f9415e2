"""``mongodb-session-manager usage`` and ``guardrails``: tables, JSON and the day/hour chart (issue 15)."""

from __future__ import annotations

import contextlib
import io
import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.cli import main
from mongodb_session_manager.cli._charts import bar, chart, compact
from mongodb_session_manager.scripted_model import ScriptedModel, redact, text

DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)
TRACE = {"inputAssessment": {"g": {"topicPolicy": {"topics": [{"name": "medical", "action": "BLOCKED"}]}}}}


def run(uri: str, database: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--uri", uri, "--database", database, "--collection", "sessions", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def namespace(mongodb_uri: str, mongodb_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    database = f"t_cli_usage_{secrets.token_hex(4)}"
    with MongoDBSessionManagerFactory(mongodb_uri, database, "sessions") as factory:
        # Three days of seeded calls: day d has d+1 calls of 1000 tokens, each ending a turn.
        manager = factory.create_session_manager("seeded")
        Agent(model=ScriptedModel([]), session_manager=manager, callback_handler=None)
        core = manager.repository
        messages, fields = [], []
        for day in range(3):
            for call in range(day + 1):
                usage = {
                    "at": DAY + timedelta(days=day, hours=call),
                    "model": "model-a",
                    "stop_reason": "end_turn",
                    "input_tokens": 800,
                    "output_tokens": 200,
                    "total_tokens": 1000,
                    "latency_ms": 100 * (call + 1),
                }
                messages.append(SessionMessage({"role": "assistant", "content": [{"text": "a"}]}, len(messages)))
                fields.append({"usage": usage, "invocation": {"tool_calls": 1, "tool_errors": 0}})
        core.runtime.run_blocking(core.create_messages, "seeded", "default", messages, fields=fields)

        # A real agent with a guardrail intervention, now.
        live = factory.create_session_manager("live")
        agent = Agent(
            model=ScriptedModel([text("ok", usage={"inputTokens": 5, "outputTokens": 5}), redact("[x]", "no")]),
            session_manager=live,
            callback_handler=None,
        )
        agent("hello")
        agent("tell me about my diagnosis")
        live.redact_latest_message(
            {"role": "assistant", "content": [{"text": "[removed]"}]},
            agent,
            stop_reason="guardrail_intervened",
            guardrail_trace=TRACE,
        )
    yield database
    mongodb_client.drop_database(database)


def test_usage_by_day_prints_a_table_a_total_and_a_chart(mongodb_uri: str, namespace: str) -> None:
    code, out, err = run(mongodb_uri, namespace, "usage", "--by", "day", "--until", "2026-10-04")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "DAY",
        "CALLS",
        "TURNS",
        "IN",
        "OUT",
        "TOKENS",
        "P50",
        "MS",
        "P95",
        "MS",
        "TOOLS",
        "ERR",
    ]
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["2026-10-01", "1", "1"],
        ["2026-10-02", "2", "2"],
        ["2026-10-03", "3", "3"],
    ]
    total = next(line for line in lines if line.startswith("TOTAL")).split()
    assert total[:6] == ["TOTAL", "6", "6", "4.8k", "1.2k", "6.0k"]
    chart_lines = [line for line in lines if "tokens" in line and "turns" in line]
    assert len(chart_lines) == 3
    # The largest day fills the bar; the others are proportional.
    bars = [line.split("tokens ")[1].split()[0] for line in chart_lines]
    assert [len(b) for b in bars] == [8, 16, 24]


def test_usage_json_is_the_report(mongodb_uri: str, namespace: str) -> None:
    code, out, _ = run(mongodb_uri, namespace, "--json", "usage", "--by", "model", "--since", "2026-10-01")
    assert code == 0
    report = json.loads(out)
    rows = {row["key"]: row for row in report["rows"]}
    assert rows["model-a"]["total_tokens"] == 6000
    assert rows["model-a"]["latency_p95_ms"] == 300
    assert rows["scripted"]["calls"] == 2
    assert report["total"]["calls"] == 8
    assert report["by"] == "model"


def test_usage_relative_since_and_bad_input(mongodb_uri: str, namespace: str) -> None:
    code, out, _ = run(mongodb_uri, namespace, "--json", "usage", "--since", "1h")
    assert code == 0
    assert json.loads(out)["total"]["calls"] == 2  # only the live agent's calls
    code, _, err = run(mongodb_uri, namespace, "usage", "--since", "yesterday")
    assert code == 2
    assert "duration like 7d" in err
    code, _, err = run(mongodb_uri, namespace, "usage", "--since", "2026-10-03", "--until", "2026-10-02")
    assert code == 2
    assert "since must be before until" in err


def test_guardrails_by_policy_and_over_time(mongodb_uri: str, namespace: str) -> None:
    code, out, err = run(mongodb_uri, namespace, "guardrails")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["POLICY", "INTERVENTIONS", "LAST"]
    keys = {line.split()[0]: line.split()[1] for line in lines[1:] if line and not line.startswith("total")}
    assert keys == {"topicPolicy": "1", "(none)": "1"}
    assert lines[-1] == "total interventions: 2"

    code, out, _ = run(mongodb_uri, namespace, "--json", "guardrails", "--by", "session")
    [row] = json.loads(out)["rows"]
    assert row["key"] == "live"
    assert row["interventions"] == 2
    assert row["policies"] == {"topicPolicy": 1}

    code, out, _ = run(mongodb_uri, namespace, "guardrails", "--by", "day")
    assert code == 0
    assert "█" in out


def test_chart_helpers() -> None:
    assert bar(0, 10) == ""
    assert bar(10, 10, width=4) == "████"
    assert bar(1, 16, width=4) == "▎"
    assert compact(1234) == "1.2k"
    assert compact(None) == "-"
    assert compact(12) == "12"
    assert chart([], [("x", [])]) == []
