"""The example chat app with the factory borrowing an ``AsyncMongoClient`` that lives on the app's loop.

A diagnostic variant for the HTTP benchmark. ``examples/fastapi_app.py`` gives the factory a
connection string, so the client runs on the library's own loop thread and every awaited call hops
there and back. Here the factory borrows a ``pymongo.AsyncMongoClient``, which binds to uvicorn's
event loop on first use: the same work with no thread hop. Routes and work are the same as the
example's ``/chat`` and ``/health``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from strands import Agent

from mongodb_session_manager.fastapi import SessionFactoryDep, SessionManagerDep, session_factory_lifespan
from mongodb_session_manager.scripted_model import ScriptedModel


class ChatRequest(BaseModel):
    message: str


def create_app(connection_string: str, database_name: str = "chat_db", collection_name: str = "sessions") -> FastAPI:
    client: AsyncMongoClient[Any] = AsyncMongoClient(connection_string)
    app = FastAPI(
        title="factory with a borrowed client on the app's loop",
        lifespan=session_factory_lifespan(
            client=client, database_name=database_name, collection_name=collection_name, metadata_fields=["status"]
        ),
    )

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, request: ChatRequest, manager: SessionManagerDep) -> dict[str, Any]:
        agent = Agent(
            model=ScriptedModel(default_text="Noted. (scripted reply)"), session_manager=manager, callback_handler=None
        )
        result = await agent.invoke_async(request.message)
        await manager.update_metadata_async({"status": "active"})
        return {"session_id": session_id, "response": str(result), "messages": len(agent.messages)}

    @app.get("/health")
    async def health(factory: SessionFactoryDep) -> dict[str, Any]:
        stats = await factory.get_connection_stats()
        return {"status": "healthy", "mongodb": stats}

    return app
