"""Reads never write: reading a session that does not exist, or one the original manager (v0.9)
stored and nobody restored yet, leaves the database as it was.

Which operations create a session: an agent's initialization (``Agent(...)`` with a manager that
was not preloaded; with ``preload=True``, the agent's first write), ``update_metadata``,
``add_feedback`` and a multi-agent orchestrator's initialization. Nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest
from legacy_documents import conversation_session
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    AsyncMongoDBSessionRepository,
    AsyncSessionCatalog,
)
from mongodb_session_manager.scripted_model import ScriptedModel

pytestmark = pytest.mark.anyio


def documents(client: MongoClient[dict[str, Any]], db_name: str) -> dict[str, list[Any]]:
    db = client[db_name]
    found = {name: list(db[name].find()) for name in db.list_collection_names()}
    return {name: stored for name, stored in found.items() if stored}


async def test_reads_of_an_unknown_session_create_nothing(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name) as factory:
        for preload in (True, False):
            manager = await factory.create_session_manager("never-written", preload=preload)
            assert (await manager.get_metadata_async())["metadata"] == {}
            assert await manager.get_feedbacks_async() == []
            assert await manager.list_agents_async() == []
            assert await manager.get_message_count_async("default") == 0
            assert await manager.get_agent_config_async("default") is None
            await manager.close_async()
        repository = (await factory.create_session_manager("never-written")).repository
        assert await repository.read_message("never-written", "default", 0) is None
        assert await repository.count_messages("never-written", "default") == 0
        assert await repository.list_messages("never-written", "default") == []
        assert await repository.last_message_id("never-written", "default") is None
        assert await repository.get_feedbacks("never-written") == []
        assert await repository.read_session("never-written") is None
        assert await AsyncSessionCatalog(repository).get_session("never-written") is None
        assert await AsyncSessionCatalog(repository).read_session_document("never-written") is None
        assert documents(mongodb_client, db_name) == {}


async def test_reads_of_a_session_the_original_manager_stored_write_nothing(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    mongodb_client[db_name]["sessions"].insert_one(conversation_session("old").build())
    before = documents(mongodb_client, db_name)
    async with AsyncMongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions"
    ) as factory:
        manager = await factory.create_session_manager("old")
        assert len(await manager.get_feedbacks_async()) == 3
        assert await manager.get_message_count_async("support") == 8
        assert [agent["agent_id"] for agent in await manager.list_agents_async()] == ["support", "triage"]
        assert (await manager.get_agent_config_async("support") or {}).get("model") == "scripted-model"
        assert (await manager.get_metadata_async())["metadata"]["priority"] == "high"
        await manager.close_async()
    async with AsyncMongoDBSessionRepository(mongodb_uri, db_name, "sessions") as repository:
        assert (await repository.read_message("old", "triage", 5)) is not None
        assert await repository.count_messages("old", "triage") == 6
        assert len(await repository.list_messages("old", "support")) == 8
        assert await repository.last_message_id("old", "support") == 9
        assert (await repository.last_message("old", "triage") or [None])[0] is not None
        assert len(await repository.get_feedbacks("old")) == 3
        assert await repository.read_session("old") is not None
        catalog = AsyncSessionCatalog(repository)
        assert (await catalog.get_session("old") or pytest.fail("no summary")).agent_ids == ["support", "triage"]
        assert [summary.session_id for summary in (await catalog.list_sessions()).sessions] == ["old"]
        assert len((await catalog.read_session_document("old") or {})["agents"]) == 2
    assert documents(mongodb_client, db_name) == before


async def test_a_preloaded_agent_that_never_writes_creates_nothing(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name) as factory:
        manager = await factory.create_session_manager("read-only", preload=True)
        agent = Agent(model=ScriptedModel([]), session_manager=manager, callback_handler=None)
        assert agent.messages == []
        await manager.close_async()
        assert documents(mongodb_client, db_name) == {}

        # Its first turn creates the session, the agent and the messages.
        manager = await factory.create_session_manager("read-only", preload=True)
        agent = Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
        await agent.invoke_async("hello")
        restored = Agent(
            model=ScriptedModel([]),
            session_manager=await factory.create_session_manager("read-only", preload=True),
            callback_handler=None,
        )
        assert restored.messages == agent.messages
        assert [agent["agent_id"] for agent in await manager.list_agents_async()] == ["default"]


async def test_metadata_and_feedback_writes_store_what_they_write(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name) as factory:
        manager = await factory.create_session_manager("written", preload=True)
        await manager.add_feedback_async({"rating": "up"})
        # Feedback is its own document; it anchors a session document only for an application_name
        # or expiring sessions (see docs/concurrency.md).
        assert list(documents(mongodb_client, db_name)) == ["collection_name.feedback"]
        await manager.update_metadata_async({"topic": "x"})
        assert [document["_id"] for document in mongodb_client[db_name]["collection_name"].find()] == ["written"]
