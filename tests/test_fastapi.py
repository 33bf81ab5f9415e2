"""The FastAPI integration and the example app, in-process (httpx ASGI transport, real lifespan)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo import MongoClient
from strands import Agent
from test_nonblocking import COLLECTION, PROMPTS, lookup, script, stable_documents

from examples.fastapi_app import create_app
from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.fastapi import get_session_factory
from mongodb_session_manager.scripted_model import ScriptedModel

pytestmark = pytest.mark.anyio


def factory_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("mongodb-session-manager")]


async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


async def test_example_app_lifecycle_requests_and_health(mongodb_uri: str, db_name: str) -> None:
    before = factory_threads()
    app = create_app(mongodb_uri, database_name=db_name, collection_name=COLLECTION)
    async for client in serve(app):
        first, second = await asyncio.gather(
            client.post("/chat/alice", json={"message": "hi"}), client.post("/chat/bob", json={"message": "hello"})
        )
        assert first.status_code == second.status_code == 200
        assert first.json()["messages"] == second.json()["messages"] == 2

        again = await client.post("/chat/alice", json={"message": "still there?"})
        assert again.json()["messages"] == 4  # restored the first turn, added two messages

        health = (await client.get("/health")).json()
        assert health["status"] == "healthy"
        assert health["mongodb"]["status"] == "connected"
        assert set(health["mongodb"]) >= {"connection_string", "server_version", "pool_config", "pool_stats"}

        assert (await client.get("/sessions/alice/metadata")).json() == {"status": "active"}
        feedback = await client.post("/feedback/bob", json={"rating": "up", "comment": "nice"})
        assert feedback.json() == {"status": "success"}
    # Shutdown closed the factory: its loop thread is gone, and the app no longer has a factory.
    assert factory_threads() == before
    with pytest.raises(AttributeError):
        _ = app.state.session_manager_factory


async def test_factory_dependency_without_lifespan_is_a_clear_error() -> None:
    class RequestOfAnAppWithoutLifespan:
        app = FastAPI()

    with pytest.raises(RuntimeError, match="session_factory_lifespan"):
        get_session_factory(RequestOfAnAppWithoutLifespan())  # type: ignore[arg-type]


async def test_fastapi_dependency_stores_the_same_documents_as_the_sync_api(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    # The sync API, as a script would use it.
    def run_sync() -> None:
        with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
            model = script()
            for prompt in PROMPTS:
                manager = factory.create_session_manager("sync")
                agent = Agent(model=model, tools=[lookup], session_manager=manager, callback_handler=None)
                agent(prompt)
                manager.update_metadata({"status": "active"})

    await asyncio.to_thread(run_sync)

    # The same conversation through the example app's async dependency, one request per turn.
    model = script()
    app = create_app(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, model_factory=lambda: model, tools=[lookup]
    )
    async for client in serve(app):
        for prompt in PROMPTS:
            response = await client.post("/chat/web", json={"message": prompt})
            assert response.status_code == 200

    database = mongodb_client[db_name]
    web, sync = stable_documents(database, "web"), stable_documents(database, "sync")
    assert len(web["messages"]) == 8
    assert web == sync


async def test_each_request_restores_only_its_own_session(mongodb_uri: str, db_name: str) -> None:
    models: dict[str, ScriptedModel] = {}

    def model_for_request() -> ScriptedModel:
        model = ScriptedModel(default_text=f"reply {len(models)}")
        models[str(len(models))] = model
        return model

    app = create_app(mongodb_uri, database_name=db_name, collection_name=COLLECTION, model_factory=model_for_request)
    async for client in serve(app):
        await client.post("/chat/one", json={"message": "first"})
        await client.post("/chat/two", json={"message": "second"})
        await client.post("/chat/one", json={"message": "third"})
    # The third request's model saw only session "one"'s history, restored from MongoDB.
    seen = [[block["text"] for message in call for block in message["content"]] for call in models["2"].calls]
    assert seen == [["first", "reply 0", "third"]]
