"""A FastAPI chat service whose agents persist their sessions in MongoDB.

Run it from the root of a clone (docs/fastapi.md walks through it)::

    pip install -e '.[fastapi]' uvicorn
    mongodb-session-manager dev-server        # in another terminal, or export MONGODB_URI=...
    uvicorn examples.fastapi_app:app --port 8000

No LLM is needed: the default model is a scripted one that echoes. Pass ``model_factory`` to
:func:`create_app` to use a real Strands model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from strands import Agent
from strands.models import Model

from mongodb_session_manager.fastapi import SessionFactoryDep, SessionManagerDep, session_factory_lifespan
from mongodb_session_manager.scripted_model import ScriptedModel


class ChatRequest(BaseModel):
    message: str


class FeedbackRequest(BaseModel):
    rating: str
    comment: str = ""


def echo_model() -> Model:
    """A stand-in model that answers every prompt with a fixed text."""
    return ScriptedModel(default_text="Noted. (scripted reply)")


def create_app(
    connection_string: str,
    database_name: str = "chat_db",
    collection_name: str = "sessions",
    model_factory: Callable[[], Model] = echo_model,
    tools: Sequence[Any] = (),
) -> FastAPI:
    """The chat app: one factory for the app's lifetime, one preloaded manager per request."""
    app = FastAPI(
        title="mongodb-session-manager example",
        lifespan=session_factory_lifespan(
            connection_string,
            database_name=database_name,
            collection_name=collection_name,
            metadata_fields=["status"],
        ),
    )

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, request: ChatRequest, manager: SessionManagerDep) -> dict[str, Any]:
        agent = Agent(model=model_factory(), tools=list(tools), session_manager=manager, callback_handler=None)
        result = await agent.invoke_async(request.message)
        await manager.update_metadata_async({"status": "active"})
        return {"session_id": session_id, "response": str(result), "messages": len(agent.messages)}

    @app.get("/sessions/{session_id}/metadata")
    async def metadata(manager: SessionManagerDep) -> dict[str, Any]:
        return (await manager.get_metadata_async())["metadata"]

    @app.post("/feedback/{session_id}")
    async def feedback(request: FeedbackRequest, manager: SessionManagerDep) -> dict[str, str]:
        await manager.add_feedback_async(request.model_dump())
        return {"status": "success"}

    @app.get("/health")
    async def health(factory: SessionFactoryDep) -> dict[str, Any]:
        stats = await factory.get_connection_stats()
        return {"status": "healthy" if stats["status"] == "connected" else "unhealthy", "mongodb": stats}

    return app


app = create_app(os.environ.get("MONGODB_URI", "mongodb://localhost:27017/"))
