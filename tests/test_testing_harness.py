"""Tests of the local test-server harness (``mongodb_session_manager.testing``) and its fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from mongodb_session_manager import testing
from mongodb_session_manager.testing import LocalMongoServer, running_servers, server_uri_from_env_or_start


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, owned by someone else
        return True
    return True


def ping(uri: str) -> float:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        return float(client.admin.command("ping")["ok"])
    finally:
        client.close()


def test_start_ping_and_stop_leave_nothing_behind() -> None:
    with LocalMongoServer() as server:
        assert server.uri == f"mongodb://127.0.0.1:{server.port}/"
        assert ping(server.uri) == 1.0
        pid = server.pid
        assert pid is not None
        assert pid_exists(pid)
        assert server in running_servers()
        assert server.log_path is not None
        run_dir = server.log_path.parent
        assert run_dir.is_dir()
    assert not pid_exists(pid)
    assert not run_dir.exists()
    assert server.pid is None
    assert not server.is_running
    assert server not in running_servers()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = server.uri


def test_restart_keeps_port_and_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = LocalMongoServer(data_dir=str(data_dir))
    try:
        uri = server.start()
        first_pid = server.pid
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
        try:
            client.harness.docs.insert_one({"_id": 1, "kept": True})
        finally:
            client.close()

        assert server.restart() == uri
        assert server.port == int(uri.rsplit(":", 1)[1].rstrip("/"))
        assert server.pid not in (None, first_pid)
        assert first_pid is not None
        assert not pid_exists(first_pid)

        client = MongoClient(uri, serverSelectionTimeoutMS=5000)
        try:
            assert client.harness.docs.find_one({"_id": 1}) == {"_id": 1, "kept": True}
        finally:
            client.close()
    finally:
        server.stop()
    assert data_dir.is_dir(), "a data_dir passed by the caller must not be deleted"


def test_uri_from_env_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://db.example:27017/?replicaSet=rs0")
    before = running_servers()
    uri, server = server_uri_from_env_or_start(enable_test_commands=True)
    assert uri == "mongodb://db.example:27017/?replicaSet=rs0"
    assert server is None
    assert running_servers() == before


def test_uri_without_env_starts_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "  ")  # blank counts as unset
    uri, server = server_uri_from_env_or_start()
    assert server is not None
    try:
        assert uri == server.uri
        assert ping(uri) == 1.0
    finally:
        server.stop()


def test_auth_mode_provisions_users() -> None:
    with LocalMongoServer(auth=True, users={"alice": "s3cret:/@"}) as server:
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        try:
            with pytest.raises(OperationFailure):
                client.admin.command("listDatabases")
        finally:
            client.close()
        client = MongoClient(server.uri_with_credentials("alice"), serverSelectionTimeoutMS=5000)
        try:
            assert client.admin.command("listDatabases")["ok"] == 1.0
        finally:
            client.close()


def test_missing_executable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[testserver\]'"):
        LocalMongoServer().start()
    with pytest.raises(RuntimeError, match="not found"):
        testing.find_server_executable(str(tmp_path / "no-such-server"))


def test_startup_failure_quotes_the_log() -> None:
    server = LocalMongoServer(extra_args=["--no-such-option"])
    with pytest.raises(RuntimeError, match="no-such-option"):
        server.start()
    assert not server.is_running
    assert server not in running_servers()


@pytest.mark.requires_local_server
def test_session_fixtures(mongodb_uri: str, local_server: LocalMongoServer | None, db_name: str) -> None:
    assert local_server is not None
    assert local_server.is_running
    assert mongodb_uri.startswith(local_server.uri)
    assert ping(mongodb_uri) == 1.0
    assert db_name.startswith("t_test_session_fixtures_")
    assert len(db_name.encode()) <= 63


@pytest.mark.parametrize("awkward", ["param/with.dots and $ spaces-" + "é" * 80], ids=lambda value: value)
def test_db_name_is_sanitized_and_bounded(awkward: str, db_name: str, request: pytest.FixtureRequest) -> None:
    # The test's own node name carries the awkward parameter; the fixture's name must stay valid.
    assert "param/with.dots and $ spaces-" in request.node.name
    assert len(db_name.encode()) <= 63
    assert all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in db_name)
    assert db_name.startswith("t_test_db_name_is_sanitized_and_bounded_param_")


@pytest.mark.anyio
async def test_anyio_backend_is_asyncio(anyio_backend: str) -> None:
    import asyncio

    assert anyio_backend == "asyncio"
    asyncio.get_running_loop()
