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

Library errors become HTTP answers (:data:`STATUS_CODES`): raised while a request holds a
:data:`SessionManagerDep`, they are translated by the dependency itself; for handlers that use the
factory directly, :func:`add_error_handlers` registers the same translation on the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from .errors import (
    AlreadyExistsError,
    ConcurrentModificationError,
    DocumentTooLargeError,
    InvalidInputError,
    MongoDBSessionError,
    NotFoundError,
    ServerUnavailableError,
    SessionBusyError,
    SessionExpiredError,
)
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
    """``Depends`` provider of a preloaded manager for the path's ``session_id``, closed after the request.

    Library errors raised while preloading or by the handler become HTTP errors (:func:`http_error`).
    """
    try:
        manager = await get_session_factory(request).create_session_manager(session_id, preload=True)
    except MongoDBSessionError as error:
        raise http_error(error) from error
    try:
        yield manager
    except MongoDBSessionError as error:
        raise http_error(error) from error
    finally:
        await manager.close_async()


# Most specific first: the first matching class decides.
STATUS_CODES: tuple[tuple[type[MongoDBSessionError], int], ...] = (
    (InvalidInputError, 422),  # invalid ids, metadata, feedback
    (SessionExpiredError, 410),  # the session expired (ttl_seconds) while the request held it
    (NotFoundError, 404),
    (SessionBusyError, 409),  # another turn of the conversation is running
    (ConcurrentModificationError, 409),
    (AlreadyExistsError, 409),
    (DocumentTooLargeError, 413),
    (ServerUnavailableError, 503),
)
"""HTTP status of each library error; any other :class:`MongoDBSessionError` answers 500."""

RETRY_AFTER_SECONDS: dict[type[MongoDBSessionError], int] = {ServerUnavailableError: 5, SessionBusyError: 1}
"""``Retry-After`` sent with these errors."""


def status_code_of(error: MongoDBSessionError) -> int:
    return next((status for kind, status in STATUS_CODES if isinstance(error, kind)), 500)


def http_error(error: MongoDBSessionError) -> HTTPException:
    """The ``HTTPException`` answering ``error`` (its message as ``detail``, ``Retry-After`` when useful)."""
    retry_after = next((seconds for kind, seconds in RETRY_AFTER_SECONDS.items() if isinstance(error, kind)), None)
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return HTTPException(status_code=status_code_of(error), detail=str(error), headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Answer library errors raised anywhere in the app's handlers as :func:`http_error` does."""

    async def handle(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, MongoDBSessionError)
        http = http_error(error)
        return JSONResponse({"detail": http.detail}, status_code=http.status_code, headers=http.headers)

    app.add_exception_handler(MongoDBSessionError, handle)


SessionFactoryDep = Annotated[AsyncMongoDBSessionManagerFactory, Depends(get_session_factory)]
"""Handler parameter type that receives the app's factory."""

SessionManagerDep = Annotated[MongoDBSessionManager, Depends(get_session_manager)]
"""Handler parameter type that receives a preloaded manager for the path's ``session_id``."""
