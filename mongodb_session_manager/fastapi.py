"""FastAPI integration (``pip install 'mongodb-session-manager[fastapi]'``).

Use :func:`session_factory_lifespan` as the app's lifespan and the ``Depends`` providers in
handlers::

    app = FastAPI(lifespan=session_factory_lifespan(uri, database_name="chat"))

    @app.post("/chat/{session_id}")
    async def chat(session_id: str, manager: SessionManagerDep):
        agent = Agent(model=..., session_manager=manager)   # restores with no blocking I/O
        result = await agent.invoke_async("hello")          # persists without blocking the loop

The per-request manager is preloaded by an awaited call, so ``Agent(...)`` (whose initialization
Strands runs synchronously) needs no round trip, and it is closed when the request ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from .mongodb_session_factory import AsyncMongoDBSessionManagerFactory
from .session_manager import MongoDBSessionManager

STATE_ATTRIBUTE = "session_manager_factory"


def session_factory_lifespan(
    connection_string: str | None = None, **factory_kwargs: Any
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that opens an :class:`AsyncMongoDBSessionManagerFactory` at start-up, stores it on
    ``app.state``, and closes it at shutdown. ``factory_kwargs`` go to the factory."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncMongoDBSessionManagerFactory(connection_string, **factory_kwargs) as factory:
            setattr(app.state, STATE_ATTRIBUTE, factory)
            try:
                yield
            finally:
                delattr(app.state, STATE_ATTRIBUTE)

    return lifespan


def get_session_factory(request: Request) -> AsyncMongoDBSessionManagerFactory:
    """``Depends`` provider of the app's factory."""
    factory = getattr(request.app.state, STATE_ATTRIBUTE, None)
    if not isinstance(factory, AsyncMongoDBSessionManagerFactory):
        raise RuntimeError("no session manager factory: use session_factory_lifespan(...) as the app's lifespan")
    return factory


async def get_session_manager(session_id: str, request: Request) -> AsyncIterator[MongoDBSessionManager]:
    """``Depends`` provider of a preloaded manager for the path's ``session_id``, closed after the request."""
    manager = await get_session_factory(request).create_session_manager(session_id, preload=True)
    try:
        yield manager
    finally:
        await manager.close_async()


SessionFactoryDep = Annotated[AsyncMongoDBSessionManagerFactory, Depends(get_session_factory)]
"""Handler parameter type that receives the app's factory."""

SessionManagerDep = Annotated[MongoDBSessionManager, Depends(get_session_manager)]
"""Handler parameter type that receives a preloaded manager for the path's ``session_id``."""
