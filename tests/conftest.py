"""Shared pytest fixtures: one local MongoDB-compatible server per test session.

Fixtures
--------
``mongodb_uri`` (session)
    URI of the server for the tests. When the ``MONGODB_URI`` environment variable is set it is
    returned unchanged and no server is started. Otherwise one :class:`LocalMongoServer` (with test
    commands enabled, e.g. ``configureFailPoint``) is started lazily for the whole session and
    stopped at the end; its URI carries ``?serverMonitoringMode=poll`` (plain request/response
    heartbeats instead of streaming ``hello``), so add further options with ``&``.
``local_server`` (session)
    The :class:`LocalMongoServer` behind ``mongodb_uri``, or ``None`` when ``MONGODB_URI`` is set.
    Mark tests that need it with ``@pytest.mark.requires_local_server``: they are skipped when
    ``MONGODB_URI`` is set. Tests that restart or stop a server should prefer their own
    ``LocalMongoServer`` so they cannot disturb other tests.
``mongodb_client`` (session)
    A synchronous ``MongoClient`` on ``mongodb_uri``, for inspection and clean-up.
``db_name`` (function)
    A database name unique to the test (derived from its name, plus a random suffix); the database
    is dropped after the test (best effort).
``db`` (function)
    The test's database (``db_name``) through ``mongodb_client``, to inspect what was stored.
``factory`` (function)
    A :class:`MongoDBSessionManagerFactory` on ``db_name`` and the ``sessions`` collection, closed
    after the test. Modules that need other options define their own ``factory``.
``anyio_backend`` (session)
    ``"asyncio"``: write async tests as ``async def`` marked ``@pytest.mark.anyio``.

Markers: ``requires_local_server`` (above) and ``slow`` (tests that take tens of seconds, e.g.
waiting for the server's TTL monitor; CI runs them, ``pytest -m "not slow"`` skips them locally).
Shared helpers (the ``add`` tool, fail points) are in ``support.py``.

At the end of the session, a server started through :mod:`mongodb_session_manager.testing` that is
still running is stopped and reported, and the session fails.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.testing import LocalMongoServer, running_servers

ENV_VAR = "MONGODB_URI"
#: Options appended to the URI of the session's local server.
LOCAL_URI_OPTIONS = "serverMonitoringMode=poll"
_MAX_DB_NAME_BYTES = 63


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_local_server: needs the session's LocalMongoServer (skipped when MONGODB_URI is set)",
    )
    config.addinivalue_line(
        "markers", 'slow: takes tens of seconds; CI runs it, `pytest -m "not slow"` skips it for a quick local run'
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("requires_local_server") is not None and os.environ.get(ENV_VAR, "").strip():
        pytest.skip(f"needs the local test server, but {ENV_VAR} is set")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if a server started by it is still running (after stopping it)."""
    leftovers = running_servers()
    if not leftovers:
        return
    descriptions = ", ".join(repr(server) for server in leftovers)
    for server in leftovers:
        server.stop()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"test servers still running at the end of the session (now stopped): {descriptions}"
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:  # pragma: no cover - terminal reporter disabled
        print(message)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def _mongodb_server() -> Iterator[tuple[str, LocalMongoServer | None]]:
    """``(uri, server)``: ``MONGODB_URI`` and ``None``, or a local server started for the session."""
    uri = os.environ.get(ENV_VAR, "").strip()
    if uri:
        yield uri, None
        return
    server = LocalMongoServer(enable_test_commands=True)
    try:
        base_uri = server.start()
        yield f"{base_uri}?{LOCAL_URI_OPTIONS}", server
    finally:
        # Also reached on failures and KeyboardInterrupt; the atexit hook of the testing module is
        # the last resort.
        server.stop()


@pytest.fixture(scope="session")
def mongodb_uri(_mongodb_server: tuple[str, LocalMongoServer | None]) -> str:
    return _mongodb_server[0]


@pytest.fixture(scope="session")
def local_server(_mongodb_server: tuple[str, LocalMongoServer | None]) -> LocalMongoServer | None:
    return _mongodb_server[1]


@pytest.fixture(scope="session")
def mongodb_client(mongodb_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri, serverSelectionTimeoutMS=10_000)
    try:
        yield client
    finally:
        client.close()


def unique_db_name(test_name: str) -> str:
    """``t_<sanitized test name>_<random hex>``, at most 63 bytes, valid as a MongoDB database name."""
    suffix = secrets.token_hex(4)
    sanitized = re.sub(r"[^A-Za-z0-9_]+", "_", test_name).strip("_") or "test"
    room = _MAX_DB_NAME_BYTES - len("t__") - len(suffix)
    return f"t_{sanitized[:room]}_{suffix}"


@pytest.fixture
def db_name(request: pytest.FixtureRequest, mongodb_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    name = unique_db_name(request.node.name)
    yield name
    try:
        with pymongo.timeout(5.0):
            mongodb_client.drop_database(name)
    except PyMongoError as exc:  # best effort: the server may be down on purpose
        print(f"could not drop test database {name!r}: {exc}")


@pytest.fixture
def db(mongodb_client: MongoClient[dict[str, Any]], db_name: str) -> Any:
    """The test's database, through the session's inspection client."""
    return mongodb_client[db_name]


@pytest.fixture
def factory(mongodb_uri: str, db_name: str) -> Iterator[MongoDBSessionManagerFactory]:
    """A factory on the test's database and the ``sessions`` collection."""
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name="sessions") as shared:
        yield shared
