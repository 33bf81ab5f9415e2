"""The CLI takes its connection, namespace, application and metadata fields from the environment.

A flag wins over its variable; the variable over the library's default namespace, which is the
factory's own (``database_name.collection_name``).
"""

from __future__ import annotations

import inspect
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from mongodb_session_manager import MongoDBSessionManagerFactory, MongoDBSessionRepository
from mongodb_session_manager.cli import main
from mongodb_session_manager.cli.environment import VARIABLES

COLLECTION = "sessions"


@pytest.fixture
def database(mongodb_uri: str, mongodb_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    """A database with two sessions of application ``app-a``, one of ``app-b``, one of none; the
    factory indexes ``status`` and ``priority``, as an app with ``metadata_fields`` does."""
    name = f"t_cli_env_{secrets.token_hex(4)}"
    with MongoDBSessionManagerFactory(mongodb_uri, name, COLLECTION, metadata_fields=["status", "priority"]) as factory:
        for session_id, application in (("a1", "app-a"), ("a2", "app-a"), ("b1", "app-b"), ("n1", None)):
            manager = factory.create_session_manager(session_id, application_name=application)
            manager.update_metadata({"status": "active"})
            manager.close()
    try:
        yield name
    finally:
        mongodb_client.drop_database(name)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``run(env, *argv)``: ``main(argv)`` with exactly the CLI's variables in ``env`` set; ``(code, out, err)``."""

    def run_main(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run_main


def session_ids(out: str) -> list[str]:
    return [summary["session_id"] for summary in json.loads(out)["sessions"]]


def test_namespace_and_application_from_the_environment(mongodb_uri: str, database: str, run: Any) -> None:
    env = {"MONGODB_URI": mongodb_uri, "MONGODB_SESSION_DATABASE": database, "MONGODB_SESSION_COLLECTION": COLLECTION}

    code, out, err = run(env, "sessions", "list", "--json")
    assert code == 0, err
    assert session_ids(out) == ["a1", "a2", "b1", "n1"]

    code, out, err = run({**env, "MONGODB_SESSION_APPLICATION": "app-a"}, "sessions", "list", "--json")
    assert code == 0, err
    assert session_ids(out) == ["a1", "a2"]

    # Flags win over the variables.
    code, out, err = run({**env, "MONGODB_SESSION_APPLICATION": "app-a"}, "--application", "app-b", "--json", "stats")
    assert code == 0, err
    assert json.loads(out)["sessions"] == 1
    code, out, err = run(env, "--collection", "elsewhere", "sessions", "list", "--json")
    assert code == 0, err
    assert session_ids(out) == []


def test_the_default_namespace_is_the_factory_default(mongodb_uri: str, run: Any) -> None:
    factory_defaults = inspect.signature(MongoDBSessionManagerFactory).parameters
    code, out, err = run({"MONGODB_URI": mongodb_uri, "MONGODB_SESSION_DATABASE": " "}, "--json", "stats")
    assert code == 0, err
    stats = json.loads(out)
    assert stats["database"] == factory_defaults["database_name"].default
    assert stats["collection"] == factory_defaults["collection_name"].default


def test_indexes_verify_takes_the_metadata_fields_from_the_environment(
    mongodb_uri: str, database: str, run: Any
) -> None:
    env = {"MONGODB_URI": mongodb_uri, "MONGODB_SESSION_DATABASE": database, "MONGODB_SESSION_COLLECTION": COLLECTION}

    def statuses(code: int, out: str, err: str) -> dict[str, str]:
        assert code == 0, err
        return {
            status["name"]: "missing" if not status["present"] else ("ok" if status["expected"] else "extra")
            for status in json.loads(out)["indexes"]
            if status["name"].startswith("metadata_")
        }

    # Without the fields, the app's own metadata indexes look foreign.
    assert statuses(*run(env, "--json", "indexes", "verify")) == {
        "metadata_status": "extra",
        "metadata_priority": "extra",
    }
    fields = {**env, "MONGODB_SESSION_METADATA_FIELDS": "status, priority,"}
    assert statuses(*run(fields, "--json", "indexes", "verify")) == {
        "metadata_status": "ok",
        "metadata_priority": "ok",
    }
    # --metadata-field replaces the variable's list.
    assert statuses(*run(fields, "--json", "indexes", "verify", "--metadata-field", "status")) == {
        "metadata_status": "ok",
        "metadata_priority": "extra",
    }


def test_a_bad_metadata_field_from_the_environment_is_a_usage_error(mongodb_uri: str, database: str, run: Any) -> None:
    env = {
        "MONGODB_URI": mongodb_uri,
        "MONGODB_SESSION_DATABASE": database,
        "MONGODB_SESSION_METADATA_FIELDS": "$where",
    }
    code, _, err = run(env, "indexes", "create")
    assert code == 2
    assert "$where" in err
    with MongoDBSessionRepository(mongodb_uri, database, COLLECTION) as repository:
        assert repository.get_metadata("a1") is not None  # nothing was dropped or broken


def test_no_uri_points_at_dev_server(run: Any) -> None:
    code, _, err = run({}, "stats")
    assert code == 2
    assert "set MONGODB_URI" in err
    assert "dev-server" in err
