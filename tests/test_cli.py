"""The admin command line against the test server: ``main`` called in-process, plus one subprocess smoke test
(``python -m mongodb_session_manager``).

The data is written by real Strands agents (``ScriptedModel``: a tool call, a guardrail redaction of
a message carrying an image) through ``MongoDBSessionManagerFactory``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bson import json_util
from pymongo import MongoClient
from strands import Agent
from support import add

from mongodb_session_manager import MongoDBSessionManagerFactory, MongoDBSessionRepository
from mongodb_session_manager.catalog import SessionCatalog
from mongodb_session_manager.cli import main
from mongodb_session_manager.cli.environment import VARIABLES
from mongodb_session_manager.scripted_model import ScriptedModel, redact, tool_call

COLLECTION = "sessions"
TRASH = "trash"
IMAGE = b"\x89PNG\r\n\x1a\n\x00\x01binary"


@dataclass
class Result:
    args: Sequence[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Namespace:
    uri: str
    database: str
    client: MongoClient[dict[str, Any]]

    def cli(self, *commands: Sequence[str], env: dict[str, str] | None = None, uri: bool = True) -> list[Result]:
        """Run each command (``--uri/--database/--collection`` prepended) in this process; results in order.

        ``main`` is called as the console script calls it, with standard output and error captured and
        the environment of a shell without ``MONGODB_URI`` (plus ``env``).
        """
        results = []
        for command in commands:
            prefix = ["--uri", self.uri] if uri else []
            args = [*prefix, "--database", self.database, "--collection", COLLECTION, *command]
            results.append(run_main(args, env or {}))
        return results

    def cursor_after(self, session_id: str) -> str:
        """The listing cursor pointing after ``session_id``, as the Python API returns it."""
        with MongoDBSessionRepository(self.uri, self.database, COLLECTION) as repository:
            page = SessionCatalog(repository).list_sessions(limit=1, cursor=None)
            while page.sessions[-1].session_id != session_id:
                page = SessionCatalog(repository).list_sessions(limit=1, cursor=page.next_cursor)
            assert page.next_cursor is not None
            return page.next_cursor

    def one(self, *command: str) -> Result:
        [result] = self.cli(command)
        return result


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` without the CLI's variables (``MONGODB_URI``...) and with ``env``, restored afterwards."""
    saved = dict(os.environ)
    for name in VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_main(args: Sequence[str], env: dict[str, str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Result(args, code, out.getvalue(), err.getvalue())


def converse(factory: MongoDBSessionManagerFactory, session_id: str, *turns: Any, **options: Any) -> None:
    """Run an agent with a scripted model over ``turns`` (prompts), persisted through ``factory``."""
    script = options.pop("script")
    metadata = options.pop("metadata", None)
    manager = factory.create_session_manager(session_id, **options)
    agent = Agent(model=ScriptedModel(script), tools=[add], session_manager=manager, callback_handler=None)
    for turn in turns:
        agent(turn)
    if metadata:
        manager.update_metadata(metadata)
    manager.close()


@pytest.fixture(scope="module")
def ns(mongodb_uri: str, mongodb_client: MongoClient[dict[str, Any]]) -> Iterator[Namespace]:
    database = f"t_cli_{secrets.token_hex(4)}"
    with MongoDBSessionManagerFactory(mongodb_uri, database, COLLECTION, metadata_fields=["priority"]) as factory:
        converse(
            factory,
            "alpha",
            "What is 2 + 3?",
            [{"text": "Look at this"}, {"image": {"format": "png", "source": {"bytes": IMAGE}}}],
            script=[tool_call("add", {"a": 2, "b": 3}), "2 + 3 = 5.", redact("[input blocked]", "I cannot help.")],
            metadata={"priority": "high", "seats": 3},
            application_name="support-bot",
        )
        manager = factory.create_session_manager("alpha", application_name="support-bot")
        manager.add_feedback({"rating": "up", "comment": "quick"})
        manager.close()
        converse(
            factory,
            "beta",
            "Hello",
            script=["Hi!"],
            metadata={"priority": "low"},
            application_name="support-bot",
        )
        converse(factory, "gamma", "Hello", script=["Hi there."], metadata={"priority": "high"})
    try:
        yield Namespace(mongodb_uri, database, mongodb_client)
    finally:
        mongodb_client.drop_database(database)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["sessions"],
        ["sessions", "list"],
        ["sessions", "show"],
        ["sessions", "export"],
        ["sessions", "delete"],
        ["stats"],
        ["indexes"],
        ["indexes", "verify"],
        ["indexes", "create"],
    ],
)
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    assert "--uri" in capsys.readouterr().out


def test_list_show_stats_and_errors(ns: Namespace) -> None:
    (
        table,
        high,
        first_page,
        everything,
        scoped,
        typed,
        show,
        show_json,
        stats,
        stats_json,
        missing,
        bad_key,
        bad_date,
        second_page,
    ) = ns.cli(
        ["sessions", "list"],
        ["sessions", "list", "--json", "--metadata", "priority=high"],
        ["sessions", "list", "--json", "--limit", "2"],
        ["sessions", "list", "--json", "--all", "--limit", "1"],
        ["sessions", "list", "--application", "support-bot", "--json", "--active-after", "2000-01-01"],
        ["sessions", "list", "--json", "--metadata", "seats:=3", "--active-before", "2999-01-02T00:00:00Z"],
        ["sessions", "show", "alpha"],
        ["sessions", "show", "alpha", "--json"],
        ["stats"],
        ["--json", "stats"],
        ["sessions", "show", "nobody", "--json"],
        ["sessions", "list", "--metadata", "$where=1"],
        ["sessions", "list", "--active-after", "yesterday"],
        ["sessions", "list", "--json", "--limit", "2", "--cursor", ns.cursor_after("beta")],
    )

    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["SESSION", "APPLICATION", "LAST", "ACTIVITY", "AGENTS", "METADATA"]
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "beta", "gamma"]
    assert "support-bot" in lines[1]
    assert '"priority": "high"' in lines[1]
    assert lines[3].split()[1] == "-"  # gamma has no application

    assert [s["session_id"] for s in high.json()["sessions"]] == ["alpha", "gamma"]
    assert high.json()["sessions"][0]["agent_ids"] == ["default"]
    page = first_page.json()
    assert [s["session_id"] for s in page["sessions"]] == ["alpha", "beta"]
    assert page["next_cursor"]
    assert [s["session_id"] for s in everything.json()["sessions"]] == ["alpha", "beta", "gamma"]
    assert everything.json()["next_cursor"] is None
    assert [s["session_id"] for s in scoped.json()["sessions"]] == ["alpha", "beta"]
    assert [s["session_id"] for s in typed.json()["sessions"]] == ["alpha"]

    assert show.code == 0, show.err
    transcript = show.out
    assert "session      alpha" in transcript
    assert "application  support-bot" in transcript
    assert "== agent default (6 messages) ==" in transcript
    assert "#0 user" in transcript
    assert "What is 2 + 3?" in transcript
    assert 'tool call add {"a": 2, "b": 3}' in transcript
    assert "tool result (id tooluse_1, success):" in transcript
    assert "      5" in transcript.splitlines()
    assert "2 + 3 = 5." in transcript
    assert "[redacted] [input blocked]" in transcript
    original = transcript.split("[redacted] [input blocked]", 1)[1]
    assert original.splitlines()[1:4] == [
        "    original:",
        "      Look at this",
        f"      <image png, {len(IMAGE)} bytes>",
    ]
    assert "I cannot help." in transcript
    assert "== feedback (1) ==" in transcript
    assert '"rating": "up"' in transcript

    shown = json_util.loads(show_json.out)
    messages = shown["agents"][0]["messages"]
    assert shown["session"]["session_id"] == "alpha"
    assert [message["message"]["role"] for message in messages] == ["user", "assistant"] * 3
    assert messages[4]["message"]["content"][1]["image"]["source"]["bytes"] == IMAGE
    assert messages[4]["redact_message"]["content"] == [{"text": "[input blocked]"}]
    assert shown["feedback"][0]["rating"] == "up"

    assert stats.code == 0, stats.err
    assert f"namespace    {ns.database}.{COLLECTION}" in stats.out
    assert "server       ok, MongoDB" in stats.out
    assert "sessions     3" in stats.out
    assert f"{COLLECTION}.messages" in stats.out
    report = stats_json.json()
    assert report["status"] == "ok"
    assert report["sessions"] == 3
    counts = {collection["name"]: collection["count"] for collection in report["collections"]}
    assert counts == {COLLECTION: 3, f"{COLLECTION}.messages": 10, f"{COLLECTION}.feedback": 1}
    assert report["server"]["ping_ms"] >= 0

    assert (missing.code, missing.out) == (1, "")
    assert json.loads(missing.err) == {"error": "session 'nobody' not found", "exit_code": 1}
    for usage_error in (bad_key, bad_date):
        assert usage_error.code == 2, (usage_error.args, usage_error.err)
        assert usage_error.out == ""
    assert "must not start with '$'" in bad_key.err
    assert "not an ISO 8601" in bad_date.err

    # The next page, through the cursor of the first one.
    assert page["next_cursor"] == ns.cursor_after("beta")
    assert [s["session_id"] for s in second_page.json()["sessions"]] == ["gamma"]
    assert second_page.json()["next_cursor"] is None


def test_export(ns: Namespace, tmp_path: Path) -> None:
    target = tmp_path / "alpha.jsonl"
    to_file, to_stdout, missing = ns.cli(
        ["sessions", "export", "alpha", "--output", str(target), "--progress"],
        ["sessions", "export", "alpha"],
        ["sessions", "export", "nobody", "--output", str(tmp_path / "nobody.jsonl")],
    )

    assert to_file.code == 0, to_file.err
    assert to_file.out == ""
    assert "exporting alpha: 6 messages" in to_file.err
    assert f"exported session alpha: 6 messages, 1 feedback to {target}" in to_file.err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["alpha.jsonl"]
    text = target.read_text(encoding="utf-8")
    assert to_stdout.code == 0
    assert to_stdout.err == ""
    assert to_stdout.out == text

    records = [json_util.loads(line) for line in text.splitlines()]
    assert [record["type"] for record in records] == ["session"] + ["message"] * 6 + ["feedback"]
    session = records[0]["document"]
    assert session["_id"] == "alpha"
    assert session["metadata"] == {"priority": "high", "seats": 3}
    assert [agent["agent_id"] for agent in session["agents"]] == ["default"]
    messages = records[1:7]
    assert [message["message_id"] for message in messages] == list(range(6))
    assert {message["agent_id"] for message in messages} == {"default"}
    assert messages[1]["message"]["content"][0]["toolUse"]["input"] == {"a": 2, "b": 3}
    # Bytes are Extended JSON binary: a marker with base64 text, decoded back to the same bytes.
    assert '"$binary": {"base64": ' in text.splitlines()[5]
    assert messages[4]["message"]["content"][1]["image"]["source"]["bytes"] == IMAGE
    assert messages[4]["redact_message"]["content"] == [{"text": "[input blocked]"}]
    assert records[-1]["feedback"]["comment"] == "quick"

    assert missing.code == 1
    assert not (tmp_path / "nobody.jsonl").exists()


def test_delete(ns: Namespace, mongodb_uri: str) -> None:
    with MongoDBSessionManagerFactory(mongodb_uri, ns.database, TRASH) as factory:
        for session_id, tier in (("trash-1", "trash"), ("trash-2", "trash"), ("keep-1", "keep")):
            converse(factory, session_id, "Hi", script=["Hello."], metadata={"tier": tier})
    db = ns.client[ns.database]
    trash = ["--collection", TRASH]

    # Refused before connecting: no --yes, or both an id and filters.
    unconfirmed, both, one, missing, by_filter = ns.cli(
        [*trash, "sessions", "delete", "trash-2"],
        [*trash, "sessions", "delete", "trash-2", "--metadata", "tier=trash", "--yes"],
        [*trash, "sessions", "delete", "trash-1", "--yes"],
        [*trash, "sessions", "delete", "nobody", "--yes"],
        [*trash, "--json", "sessions", "delete", "--metadata", "tier=keep", "--yes"],
    )
    assert unconfirmed.code == 2
    assert "--yes" in unconfirmed.err
    assert both.code == 2
    assert "not both" in both.err
    assert (one.code, one.out) == (0, "deleted session trash-1\n")
    assert missing.code == 1
    assert "session 'nobody' not found" in missing.err
    assert by_filter.json() == {"deleted": 1}
    for session_id in ("trash-1", "keep-1"):
        assert db[TRASH].count_documents({"_id": session_id}) == 0
        assert db[TRASH + ".messages"].count_documents({"session_id": session_id}) == 0
    assert [document["_id"] for document in db[TRASH].find()] == ["trash-2"]
    assert db[TRASH + ".messages"].count_documents({}) == 2


def test_indexes_verify_and_create(ns: Namespace) -> None:
    def indexes(action: str) -> Result:
        return ns.one("--collection", "fresh", "--json", "indexes", action, "--metadata-field", "priority")

    before = indexes("verify")
    assert before.code == 1
    assert json.loads(before.out)["missing"] == 6
    assert "indexes create" in before.err

    created = indexes("create")
    assert created.code == 0, created.err
    report = json.loads(created.out)
    assert report["missing"] == 0
    assert {index["name"] for index in report["indexes"]} == {
        "metadata_priority",
        "session_agent_message",
        "session_created_at",
        "usage_at",
        "usage_application_at",
        "redaction_timestamp",
    }
    unique = {index["name"]: index["unique"] for index in report["indexes"]}
    assert unique["session_agent_message"] is True

    after = ns.one("--collection", "fresh", "indexes", "verify", "--metadata-field", "priority")
    assert after.code == 0
    assert after.out.splitlines()[0].split() == ["COLLECTION", "INDEX", "KEYS", "UNIQUE", "TTL", "STATUS"]
    assert [line.split()[-1] for line in after.out.splitlines()[1:]] == ["ok"] * 6


def test_ttl_indexes_verify_and_create(ns: Namespace) -> None:
    without = ns.one("--collection", "ttl", "indexes", "create")
    assert without.code == 0, without.err
    missing = ns.one("--collection", "ttl", "--json", "indexes", "verify", "--ttl")
    assert missing.code == 1
    assert json.loads(missing.out)["missing"] == 3  # one TTL index per collection

    created = ns.one("--collection", "ttl", "indexes", "create", "--ttl")
    assert created.code == 0, created.err
    ttl_rows = [line.split() for line in created.out.splitlines() if "expires_at_ttl" in line]
    assert len(ttl_rows) == 3
    assert all(row[-2:] == ["0s", "ok"] for row in ttl_rows)


def test_purge_expired(ns: Namespace, mongodb_uri: str) -> None:
    collection = "expiring"
    # No TTL index: the server's TTL monitor would race the purge for the expired documents.
    with MongoDBSessionManagerFactory(
        mongodb_uri, ns.database, collection, ttl_seconds=3600, ensure_indexes=False
    ) as factory:
        for session_id in ("old-1", "old-2", "current"):
            converse(factory, session_id, "Hi", script=["Hello."])
    db = ns.client[ns.database]
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    for session_id in ("old-1", "old-2"):
        db[collection].update_one({"_id": session_id}, {"$set": {"expires_at": past}})
        db[collection + ".messages"].update_many({"session_id": session_id}, {"$set": {"expires_at": past}})

    listed = ns.one("--collection", collection, "--json", "sessions", "list")
    table = ns.one("--collection", collection, "sessions", "list")
    assert table.out.splitlines()[0].split()[:5] == ["SESSION", "APPLICATION", "LAST", "ACTIVITY", "EXPIRES"]
    assert [line.split()[0] for line in table.out.splitlines()[1:]] == ["current"]
    purged = ns.one("--collection", collection, "sessions", "purge-expired")
    again = ns.one("--collection", collection, "--json", "sessions", "purge-expired")
    assert [session["session_id"] for session in listed.json()["sessions"]] == ["current"]  # expired: invisible
    assert (purged.code, purged.out) == (0, "purged 2 expired session(s), 4 message(s), 0 feedback, 0 blob(s)\n")
    assert again.json() == {"purged": {"sessions": 0, "messages": 0, "feedback": 0, "blobs": 0}}
    assert [document["_id"] for document in db[collection].find()] == ["current"]
    assert {message["session_id"] for message in db[collection + ".messages"].find()} == {"current"}


def test_connection_errors_and_masked_credentials(ns: Namespace) -> None:
    password = "s3cr%40t-Pa55"
    unreachable = f"mongodb://admin:{password}@127.0.0.1:1/?authSource=admin"
    refused, malformed, not_mongodb, empty, from_env = ns.cli(
        ["--uri", unreachable, "--timeout-ms", "300", "--json", "stats"],
        ["--uri", f"mongodb://admin:{password}@host:port/", "sessions", "list"],
        ["--uri", f"https://admin:{password}@example.com/", "stats"],
        ["--uri", "", "stats"],
        ["sessions", "list", "--json"],
        env={"MONGODB_URI": ns.uri},
        uri=False,
    )
    for result in (refused, malformed, not_mongodb):
        assert result.code == 3, (result.args, result.err)
        assert result.out == ""
        for secret in (password, "s3cr@t-Pa55", "s3cr"):
            assert secret not in result.err, result.err
        assert "admin:***@" in result.err
    error = json.loads(refused.err)
    assert error["exit_code"] == 3
    assert error["error"].startswith("cannot reach MongoDB at mongodb://admin:***@127.0.0.1:1/?authSource=admin: ")
    assert "invalid MongoDB URI" in malformed.err
    assert "invalid MongoDB URI" in not_mongodb.err
    # An empty URI (and no MONGODB_URI) is a usage error.
    assert empty.code == 2
    assert "MONGODB_URI" in empty.err
    # MONGODB_URI is used when --uri is not given.
    assert from_env.code == 0, from_env.err
    assert [s["session_id"] for s in from_env.json()["sessions"]] == ["alpha", "beta", "gamma"]


LIST_JSON = ["--collection", COLLECTION, "sessions", "list", "--json"]


def test_the_module_runs_as_a_command(ns: Namespace) -> None:
    """One real process: ``python -m mongodb_session_manager`` (what the console script runs)."""
    environment = {key: value for key, value in os.environ.items() if key != "MONGODB_URI"}
    completed = subprocess.run(
        [sys.executable, "-m", "mongodb_session_manager", "--uri", ns.uri, "--database", ns.database, *LIST_JSON],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert [s["session_id"] for s in json.loads(completed.stdout)["sessions"]] == ["alpha", "beta", "gamma"]
