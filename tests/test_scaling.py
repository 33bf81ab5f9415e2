"""What matters when a deployment outgrows one server (see docs/sharding.md).

Every command the library sends for one session's work carries that session's id in its filter
(``_id`` on the sessions collection, ``session_id`` on the others), so on a sharded cluster it
targets one shard; and read/write concern and read preference options reach the client.
"""

from __future__ import annotations

from typing import Any

from pymongo.read_preferences import SecondaryPreferred
from strands import Agent, tool

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel, redact, tool_call
from mongodb_session_manager.testing import CommandRecorder

COLLECTION = "sessions"
SESSION = "shard-key-session"


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return f"order {order_id}: shipped"


def _filters(command: dict[str, Any]) -> list[dict[str, Any]]:
    """The query filters of a CRUD command (one per statement for batched writes)."""
    name = next(iter(command))
    if name in ("find", "count", "findAndModify"):
        return [command.get("filter") or command.get("query") or {}]
    if name == "update":
        return [statement["q"] for statement in command["updates"]]
    if name == "delete":
        return [statement["q"] for statement in command["deletes"]]
    if name == "aggregate":
        return [stage["$match"] for stage in command["pipeline"] if "$match" in stage][:1] or [{}]
    return []


def test_every_session_command_targets_the_session(mongodb_uri: str, db_name: str) -> None:
    recorder = CommandRecorder()
    factory = MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, event_listeners=[recorder]
    )
    try:
        manager = factory.create_session_manager(SESSION)
        model = ScriptedModel([tool_call("lookup", {"order_id": "1"}), "Shipped.", redact("[removed]", "No.")])
        agent = Agent(model=model, tools=[lookup], session_manager=manager, callback_handler=None)
        agent("Where is order 1?")
        agent("card 4111")
        agent.state.set("k", "v")
        agent("again")
        manager.update_metadata({"priority": "high"})
        manager.get_metadata()
        manager.delete_metadata(["priority"])
        manager.add_feedback({"rating": "up"})
        manager.get_feedbacks()
        manager.list_agents()
        manager.get_message_count("default")
        restored = factory.create_session_manager(SESSION)
        Agent(model=ScriptedModel(), tools=[lookup], session_manager=restored, callback_handler=None)
        inserts = [command for command in recorder.commands if "insert" in command]
        crud = [command for command in recorder.commands if _filters(command)]
        factory.get_connection_stats()
    finally:
        factory.close()

    assert len(crud) >= 10
    for command in crud:
        collection = next(iter(command.values()))
        for query in _filters(command):
            key = "_id" if collection == COLLECTION else "session_id"
            assert query.get(key) == SESSION, (collection, command)
    for command in inserts:
        assert all(document["session_id"] == SESSION for document in command["documents"]), command


def test_read_and_write_concern_and_read_preference_reach_the_client(mongodb_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(
        mongodb_uri,
        database_name=db_name,
        w="majority",
        journal=True,
        readConcernLevel="majority",
        readPreference="secondaryPreferred",
        maxStalenessSeconds=120,
    )
    try:
        client = factory._runtime.port.client
        assert client.write_concern.document == {"w": "majority", "j": True}
        assert client.read_concern.level == "majority"
        assert isinstance(client.read_preference, SecondaryPreferred)
        assert client.read_preference.max_staleness == 120
        manager = factory.create_session_manager("concerns")
        manager.update_metadata({"ok": True})
        assert manager.get_metadata()["metadata"] == {"ok": True}
    finally:
        factory.close()
