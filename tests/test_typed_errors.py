"""Typed errors, early: connection-string syntax at construction, unreachable servers at first use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError
from strands import Agent
from strands.types.exceptions import SessionException

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    AsyncMongoDBSessionRepository,
    InvalidInputError,
    MongoDBConnectionPool,
    MongoDBSessionError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    ServerUnavailableError,
)
from mongodb_session_manager.scripted_model import ScriptedModel

PASSWORD = "s3cr3t-Pa55"

MALFORMED = [
    pytest.param(f"mongodb://user:{PASSWORD}@localhost:notaport/", id="port-not-a-number"),
    pytest.param(f"mongodb://user:{PASSWORD}@localhost:99999/", id="port-out-of-range"),
    pytest.param(f"mongodbx://user:{PASSWORD}@localhost/", id="unknown-scheme"),
    pytest.param(f"mongodb://user:{PASSWORD}@localhost/?maxPoolSize=many", id="malformed-option-value"),
    pytest.param(f"mongodb://user:{PASSWORD}@localhost/?readPreference=fastest", id="unknown-option-value"),
    pytest.param(f"mongodb+srv://user:{PASSWORD}@cluster.example.net:27017/", id="srv-with-port"),
]

BUILDERS: list[Any] = [
    pytest.param(lambda uri: MongoDBSessionManagerFactory(uri), id="factory"),
    pytest.param(lambda uri: AsyncMongoDBSessionManagerFactory(uri), id="async-factory"),
    pytest.param(lambda uri: MongoDBSessionManager("s", connection_string=uri), id="manager"),
    pytest.param(lambda uri: AsyncMongoDBSessionRepository(uri), id="async-repository"),
    pytest.param(lambda uri: MongoDBSessionRepository(uri), id="repository"),
    pytest.param(lambda uri: MongoDBConnectionPool.initialize(uri), id="pool"),
]


@pytest.mark.parametrize("uri", MALFORMED)
@pytest.mark.parametrize("build", BUILDERS)
def test_a_malformed_connection_string_is_refused_when_built(uri: str, build: Callable[[str], Any]) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInputError) as raised:
        build(uri)
    assert time.monotonic() - started < 1.0  # refused by parsing, not by a connection attempt
    assert isinstance(raised.value, MongoDBSessionError)
    assert PASSWORD not in str(raised.value)
    assert raised.value.__cause__ is None or PASSWORD not in str(raised.value.__cause__)


def test_srv_connection_strings_are_checked_without_a_dns_lookup() -> None:
    # No DNS in the test machine: a well-formed SRV URI is accepted at construction all the same.
    factory = MongoDBSessionManagerFactory("mongodb+srv://user:pw@cluster0.example.invalid/?retryWrites=true")
    factory.close()


UNREACHABLE = f"mongodb://admin:{PASSWORD}@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"


def assert_unavailable(error: ServerUnavailableError) -> None:
    assert isinstance(error, MongoDBSessionError)
    assert isinstance(error, SessionException)
    assert isinstance(error.__cause__, ServerSelectionTimeoutError)
    assert "127.0.0.1:1" in str(error)
    assert PASSWORD not in str(error)
    assert PASSWORD not in repr(error)


def test_an_unreachable_server_raises_server_unavailable_from_sync_calls() -> None:
    with MongoDBSessionManagerFactory(UNREACHABLE, database_name="unreachable") as factory:
        with pytest.raises(ServerUnavailableError) as raised:
            Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("s"), callback_handler=None)
        assert_unavailable(raised.value)
        with pytest.raises(ServerUnavailableError) as raised:
            factory.create_session_manager("s").get_metadata()
        assert_unavailable(raised.value)


@pytest.mark.anyio
async def test_an_unreachable_server_raises_server_unavailable_from_async_calls() -> None:
    async with AsyncMongoDBSessionManagerFactory(UNREACHABLE, database_name="unreachable") as factory:
        with pytest.raises(ServerUnavailableError) as raised:
            await factory.create_session_manager("s", preload=True)
        assert_unavailable(raised.value)
        manager = await factory.create_session_manager("s")
        with pytest.raises(ServerUnavailableError) as raised:
            await manager.update_metadata_async({"a": 1})
        assert_unavailable(raised.value)
    async with AsyncMongoDBSessionRepository(UNREACHABLE, database_name="unreachable") as repository:
        with pytest.raises(ServerUnavailableError) as raised:
            await repository.read_session("s")
        assert_unavailable(raised.value)
