"""Reads never write: reading a session that does not exist leaves the database as it was.

Which operations create a session: an agent's initialization (``Agent(...)`` with a manager that
was not preloaded; with ``preload=True``, the agent's first write), ``update_metadata``,
``add_feedback`` and a multi-agent orchestrator's initialization. Nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import AsyncMongoDBSessionManagerFactory
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
        assert documents(mongodb_client, db_name) == {}


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
