"""The FastAPI integration answers library errors like a web API, over real HTTP (uvicorn + httpx)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pymongo import MongoClient
from strands import Agent, tool

from examples.fastapi_app import create_app
from mongodb_session_manager.fastapi import (
    SessionFactoryDep,
    SessionManagerDep,
    add_error_handlers,
    session_factory_lifespan,
)
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call

pytestmark = pytest.mark.anyio

# A bound for a request (httpx's default is 5 s: a first request, which connects and creates the
# indexes, can take longer on a loaded machine). A failure if exceeded, never a timing assertion.
HTTP_TIMEOUT = 30.0


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port, in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def with_test_routes(app: FastAPI) -> FastAPI:
    """Routes that reach the library's not-found and metadata errors through the dependency."""

    @app.put("/sessions/{session_id}/metadata")
    async def put_metadata(metadata: dict[str, Any], manager: SessionManagerDep) -> dict[str, str]:
        await manager.update_metadata_async(metadata)
        return {"status": "ok"}

    @app.post("/sessions/{session_id}/redact/{message_id}")
    async def redact(message_id: int, manager: SessionManagerDep) -> dict[str, str]:
        redaction = {"role": "user", "content": [{"text": "[redacted]"}]}
        await manager.repository.redact_message(manager.session_id, "default", message_id, redaction)  # type: ignore[arg-type]
        return {"status": "ok"}

    add_error_handlers(app)
    return app


async def test_invalid_ids_and_metadata_answer_422_and_write_nothing(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    app = with_test_routes(create_app(mongodb_uri, database_name=db_name))
    with served(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
            too_long = await client.post("/chat/" + "x" * 257, json={"message": "hi"})
            nul = await client.post("/chat/a%00b", json={"message": "hi"})
            bad_key = await client.put("/sessions/alice/metadata", json={"$where": "1"})
            ok = await client.post("/chat/alice", json={"message": "hi"})
    for response in (too_long, nul, bad_key):
        assert response.status_code == 422, response.text
        assert "session" in response.json()["detail"] or "metadata" in response.json()["detail"]
    assert ok.status_code == 200
    assert [document["_id"] for document in mongodb_client[db_name]["sessions"].find()] == ["alice"]


async def test_unknown_message_answers_404(mongodb_uri: str, db_name: str) -> None:
    app = with_test_routes(create_app(mongodb_uri, database_name=db_name))
    with served(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
            assert (await client.post("/chat/bob", json={"message": "hi"})).status_code == 200
            missing = await client.post("/sessions/bob/redact/99")
            found = await client.post("/sessions/bob/redact/0")
    assert missing.status_code == 404, missing.text
    assert "does not exist" in missing.json()["detail"]
    assert found.status_code == 200


async def test_server_unavailable_answers_503_with_retry_after() -> None:
    unreachable = "mongodb://user:hunter22@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
    app = with_test_routes(create_app(unreachable, database_name="unreachable"))
    with served(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
            chat, metadata = await asyncio.gather(
                client.post("/chat/carol", json={"message": "hi"}), client.get("/sessions/carol/metadata")
            )
    for response in (chat, metadata):
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "5"
        assert "127.0.0.1:1" in response.json()["detail"]
        assert "hunter22" not in response.text


async def test_a_second_turn_on_a_busy_conversation_answers_409_with_retry_after(
    mongodb_uri: str, db_name: str
) -> None:
    release = threading.Event()
    holding = threading.Event()

    @tool
    def slow() -> str:
        """Hold the turn until released."""
        holding.set()
        release.wait(30)
        return "done"

    app = FastAPI(lifespan=session_factory_lifespan(mongodb_uri, database_name=db_name))
    add_error_handlers(app)

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, factory: SessionFactoryDep) -> dict[str, str]:
        manager = await factory.create_session_manager(session_id, preload=True, turn_wait=0.3)
        model = ScriptedModel([tool_call("slow", {}), "finished"])
        agent = Agent(model=model, tools=[slow], session_manager=manager, callback_handler=None)
        result = await agent.invoke_async("hello")
        return {"response": str(result)}

    with served(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT) as client:
            first = asyncio.create_task(client.post("/chat/dana"))
            await asyncio.to_thread(holding.wait, 30)
            second = await client.post("/chat/dana")
            release.set()
            assert (await first).status_code == 200
    assert second.status_code == 409, second.text
    assert second.headers["Retry-After"] == "1"
    assert "still running" in second.json()["detail"]
