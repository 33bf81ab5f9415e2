"""An agent turn under ``invoke_async`` never blocks its event loop on MongoDB I/O.

The server is made slow with a ``failCommand`` fail point (``blockConnection``), scoped by
``appName`` to this test's client: it holds each ``insert`` for BLOCK_MS. A ticking coroutine on the
agent's loop counts, for each insert, how many times it ran while the server held that insert: a
loop blocked on the insert cannot run it even once. Counts, not timings: a loaded machine slows the
ticks down, it cannot stop them for a whole hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient, monitoring
from pymongo.errors import OperationFailure
from strands import Agent, tool

from mongodb_session_manager import AsyncMongoDBSessionManagerFactory, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel, redact, tool_call

BLOCK_MS = 200
COLLECTION = "sessions"


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return f"order {order_id}: shipped"


@contextlib.contextmanager
def slow_inserts(admin: MongoClient[dict[str, Any]], app_name: str, times: int) -> Iterator[None]:
    """Every ``insert`` of the client named ``app_name`` waits BLOCK_MS on the server, ``times`` times."""
    try:
        admin.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": times},
                "data": {
                    "failCommands": ["insert"],
                    "blockConnection": True,
                    "blockTimeMS": BLOCK_MS,
                    "appName": app_name,
                },
            }
        )
    except OperationFailure as error:  # a server started without test commands (MONGODB_URI)
        pytest.skip(f"the server does not allow fail points: {error}")
    try:
        yield
    finally:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


class LoopTicks(monitoring.CommandListener):
    """While :meth:`watching`, a coroutine ticks on the test's loop every 1 ms; for each ``insert`` of
    the client this listener is registered with, :attr:`per_insert` gets the number of ticks between
    the command's start and its reply (listeners run on the thread that runs the client)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.per_insert: list[int] = []
        self._at_start: dict[int, int] = {}
        self._watching = False

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        self.per_insert = []
        stop = asyncio.Event()

        async def tick() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.001)
                self.ticks += 1

        ticking = asyncio.create_task(tick())
        self._watching = True
        try:
            yield
        finally:
            self._watching = False
            stop.set()
            await ticking

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert" and self._watching:
            self._at_start[event.request_id] = self.ticks

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._finished(event.request_id)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._finished(event.request_id)

    def _finished(self, request_id: int) -> None:
        at_start = self._at_start.pop(request_id, None)
        if at_start is not None:
            self.per_insert.append(self.ticks - at_start)


async def timed_turn(agent: Agent, prompt: str, loop_ticks: LoopTicks) -> float:
    async with loop_ticks.watching():
        started = time.perf_counter()
        await agent.invoke_async(prompt)
        return time.perf_counter() - started


@pytest.mark.anyio
async def test_turn_does_not_block_the_loop_with_the_factory_client(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    app_name = f"nonblocking-{uuid.uuid4().hex[:8]}"
    loop_ticks = LoopTicks()
    async with AsyncMongoDBSessionManagerFactory(
        mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        appname=app_name,
        event_listeners=[loop_ticks],
    ) as factory:
        manager = await factory.create_session_manager("slow", preload=True)
        agent = Agent(
            model=ScriptedModel(["warm-up", tool_call("lookup", {"order_id": "7"}), "Order 7 has shipped."]),
            tools=[lookup],
            session_manager=manager,
            callback_handler=None,
        )
        await agent.invoke_async("warm up")  # first-use costs (imports, connections) are not what we measure

        # The turn makes at most 4 inserts (one per message): the server holds every one of them.
        with slow_inserts(mongodb_client, app_name, times=4):
            elapsed = await timed_turn(agent, "Where is order 7?", loop_ticks)

        # Pipelined writes group what waits: at least two inserts in sequence (the claim, then the rest).
        assert elapsed >= 2 * BLOCK_MS / 1000 * 0.95, "the fail point did not slow the inserts"
        assert len(loop_ticks.per_insert) >= 2, loop_ticks.per_insert
        assert all(loop_ticks.per_insert), f"the loop stood still while an insert was held: {loop_ticks.per_insert}"
        assert await manager.get_message_count_async("default") == 6

        # Control: the loop cannot tick while the sync API, called here, waits for its held insert.
        with slow_inserts(mongodb_client, app_name, times=1):
            async with loop_ticks.watching():
                manager.add_feedback({"rating": 1})
        assert loop_ticks.per_insert == [0]


@pytest.mark.anyio
async def test_turn_does_not_block_the_loop_with_a_borrowed_async_client(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    app_name = f"nonblocking-{uuid.uuid4().hex[:8]}"
    loop_ticks = LoopTicks()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_uri, appname=app_name, event_listeners=[loop_ticks]
    )
    try:
        factory = AsyncMongoDBSessionManagerFactory(client=client, database_name=db_name, collection_name=COLLECTION)
        # The client lives on this loop: preload so that Agent(...) needs no blocking I/O here.
        manager = await factory.create_session_manager("slow-borrowed", preload=True)
        agent = Agent(
            model=ScriptedModel(["warm-up", "Second answer."]), session_manager=manager, callback_handler=None
        )
        await agent.invoke_async("warm up")

        # The turn makes at most 2 inserts (the prompt, the answer): the server holds both.
        with slow_inserts(mongodb_client, app_name, times=2):
            elapsed = await timed_turn(agent, "Second question", loop_ticks)

        assert elapsed >= BLOCK_MS / 1000 * 0.95, "the fail point did not slow the inserts"
        assert loop_ticks.per_insert, "no insert during the turn"
        assert all(loop_ticks.per_insert), f"the loop stood still while an insert was held: {loop_ticks.per_insert}"
        assert await manager.get_message_count_async("default") == 4
        await factory.close()
    finally:
        await client.close()


# -- the sync and async paths store the same documents ----------------------------------------------

VOLATILE = ("created_at", "updated_at", "_id", "session_id", "turn")  # turn: a random holder token


def _stable_message(message: dict[str, Any] | None) -> dict[str, Any] | None:
    if message is None:
        return None
    message = copy.deepcopy(message)
    message.pop("tracking_id", None)
    (message.get("metadata") or {}).pop("metrics", None)  # latencyMs, timeToFirstByteMs
    return message


def _drop_timings(document: dict[str, Any]) -> None:
    """Remove the clock readings of the usage and audit fields (docs/usage-and-audit.md); keep the counts."""
    for name in ("at", "time_to_first_byte_ms"):
        (document.get("usage") or {}).pop(name, None)
    (document.get("redaction") or {}).pop("timestamp", None)
    invocation = document.get("invocation") or {}
    for name in ("started_at", "duration_ms", "tool_time_ms"):
        invocation.pop(name, None)
    for totals in invocation.get("tools") or ():
        totals.pop("time_ms", None)


def stable_documents(database: Any, session_id: str) -> dict[str, Any]:
    messages = []
    for document in (
        database[f"{COLLECTION}.messages"].find({"session_id": session_id}).sort([("agent_id", 1), ("message_id", 1)])
    ):
        stable = {key: value for key, value in document.items() if key not in VOLATILE}
        stable["message"] = _stable_message(document["message"])
        stable["redact_message"] = _stable_message(document["redact_message"])
        _drop_timings(stable)
        messages.append(stable)
    session = database[COLLECTION].find_one({"_id": session_id})
    agents = [{key: value for key, value in record.items() if key not in VOLATILE} for record in session["agents"]]
    return {"messages": messages, "agents": agents, "metadata": session["metadata"]}


def script() -> ScriptedModel:
    return ScriptedModel(
        [
            tool_call("lookup", {"order_id": "9"}),
            "Order 9 has shipped.",
            redact("[removed]", "I cannot store card numbers."),
            "Anything else?",
        ]
    )


# The whole number: a random id in a message (tracking_id, a UUID) may contain "4111".
CARD = "4111 1111 1111 1111"
PROMPTS = ["Where is order 9?", f"My card is {CARD}", "Thanks"]


def test_sync_and_async_invocations_store_the_same_documents(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    factory = MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION)
    try:
        sync_agent = Agent(
            model=script(), tools=[lookup], session_manager=factory.create_session_manager("s"), callback_handler=None
        )
        async_agent = Agent(
            model=script(), tools=[lookup], session_manager=factory.create_session_manager("a"), callback_handler=None
        )
        for turn, prompt in enumerate(PROMPTS):
            sync_agent.state.set("turn", turn)
            sync_agent(prompt)
            async_agent.state.set("turn", turn)
            asyncio.run(async_agent.invoke_async(prompt))

        database = mongodb_client[db_name]
        sync_stored = stable_documents(database, "s")
        async_stored = stable_documents(database, "a")
        assert len(sync_stored["messages"]) == 8
        assert [document["message_id"] for document in sync_stored["messages"]] == list(range(8))
        assert sync_stored == async_stored
        assert sync_stored["agents"][0]["state"] == {"turn": 2}

        # Continuing one session alternately through both APIs keeps the ids contiguous.
        mixed = Agent(
            model=ScriptedModel(["x", "y"]),
            tools=[lookup],
            session_manager=factory.create_session_manager("s"),
            callback_handler=None,
        )
        mixed("sync turn")
        asyncio.run(mixed.invoke_async("async turn"))
        ids = [document["message_id"] for document in stable_documents(database, "s")["messages"]]
        assert ids == list(range(12))
    finally:
        factory.close()


@pytest.mark.anyio
async def test_redaction_on_the_clients_own_loop_is_stored(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    """Strands calls ``redact_latest_message`` synchronously mid-turn; with a client bound to the agent's
    loop the write cannot block there, and must still be stored, in order, by the end of the turn."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        factory = AsyncMongoDBSessionManagerFactory(client=client, database_name=db_name, collection_name=COLLECTION)
        manager = await factory.create_session_manager("redact-on-loop", preload=True)
        agent = Agent(
            model=ScriptedModel(["hello", redact("[removed]", "I cannot store that.")]),
            session_manager=manager,
            callback_handler=None,
        )
        await agent.invoke_async("hi")
        await agent.invoke_async(f"my card is {CARD}")

        stored = list(
            mongodb_client[db_name][f"{COLLECTION}.messages"].find({"session_id": "redact-on-loop"}).sort("message_id")
        )
        assert [document["message_id"] for document in stored] == [0, 1, 2, 3]
        assert stored[2]["redact_message"]["content"] == [{"text": "[removed]"}]
        restored_manager = await factory.create_session_manager("redact-on-loop", preload=True)
        restored = Agent(model=ScriptedModel([]), session_manager=restored_manager, callback_handler=None)
        assert restored.messages == agent.messages
        assert CARD not in str(restored.messages)
        await factory.close()
    finally:
        await client.close()
