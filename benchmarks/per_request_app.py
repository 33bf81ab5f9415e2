"""The example chat app without a factory: a new ``MongoDBSessionManager`` (and client) per request.

The HTTP benchmark's "per-request client" variant. Same routes and work as
``examples/fastapi_app.py``, but each request builds
``MongoDBSessionManager(session_id, connection_string=uri, ...)`` -- its own ``AsyncMongoClient``
on its own loop thread -- loads the session with an awaited call, runs the agent, and closes the
manager (and so the client) at the end.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager
from mongodb_session_manager.scripted_model import ScriptedModel


class ChatRequest(BaseModel):
    message: str


def create_app(connection_string: str, database_name: str = "chat_db", collection_name: str = "sessions") -> FastAPI:
    app = FastAPI(title="per-request client variant")

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, request: ChatRequest) -> dict[str, Any]:
        manager = MongoDBSessionManager(
            session_id,
            connection_string=connection_string,
            database_name=database_name,
            collection_name=collection_name,
            metadata_fields=["status"],
        )
        try:
            await manager.load_async()
            agent = Agent(
                model=ScriptedModel(default_text="Noted. (scripted reply)"),
                session_manager=manager,
                callback_handler=None,
            )
            result = await agent.invoke_async(request.message)
            await manager.update_metadata_async({"status": "active"})
            return {"session_id": session_id, "response": str(result), "messages": len(agent.messages)}
        finally:
            await manager.close_async()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "healthy"}

    return app
