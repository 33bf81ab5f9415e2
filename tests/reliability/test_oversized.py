"""Data larger than one 16 MiB BSON document.

* A message with a 20 MB image goes through GridFS (``<collection>.blobs``) and comes back byte-exact.
* Metadata, agent state or feedback that cannot fit raises ``DocumentTooLargeError`` naming the
  session and the size, writes nothing, and leaves the session readable. This holds for values
  refused by the driver before sending (over 16 MiB on their own) and for writes the server refuses
  because the session document would grow past the limit.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from reliability_support import COLLECTION, snapshot
from strands import Agent

from mongodb_session_manager import DocumentTooLargeError, MongoDBSessionError, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

MB = 1024 * 1024
SIZE = re.compile(r"\(\d{1,3}(,\d{3})+ bytes of BSON\)")


def assert_names_session_and_size(error: BaseException, session_id: str) -> None:
    assert isinstance(error, MongoDBSessionError)
    message = str(error)
    assert repr(session_id) in message, message
    assert SIZE.search(message), f"no size in: {message}"
    assert "nothing was written" in message
    assert len(message) < 1000, "the error message quotes the value"


def test_a_20_mb_image_round_trips_byte_exact_through_an_agent_session(
    factory: MongoDBSessionManagerFactory, mongodb_uri: str, db_name: str, db: Any
) -> None:
    image = os.urandom(20 * MB)
    agent = Agent(
        model=ScriptedModel(["A large picture.", "Still here."]),
        session_manager=factory.create_session_manager("big-image"),
        callback_handler=None,
    )
    agent([{"text": "What is this?"}, {"image": {"format": "png", "source": {"bytes": image}}}])

    stored = db[COLLECTION + ".messages"].find_one({"session_id": "big-image", "message_id": 0})
    assert stored["message"] is None  # offloaded to GridFS
    assert stored["message_blob"] is not None
    assert db[COLLECTION + ".blobs.files"].count_documents({}) == 1

    # A different client (a new factory) restores it, and the conversation continues.
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as other:
        restored = Agent(
            model=ScriptedModel(["Still here."]), session_manager=other.create_session_manager("big-image")
        )
        assert restored.messages == agent.messages
        restored_image = restored.messages[0]["content"][1]["image"]["source"]["bytes"]
        assert isinstance(restored_image, bytes)
        assert restored_image == image
        restored("and now?")
    ids = [document["message_id"] for document in db[COLLECTION + ".messages"].find({"session_id": "big-image"})]
    assert sorted(ids) == [0, 1, 2, 3]


@pytest.mark.parametrize("new_session", [False, True], ids=["existing-session", "new-session"])
def test_metadata_over_16_mb_is_refused_before_anything_is_written(
    factory: MongoDBSessionManagerFactory, db: Any, new_session: bool
) -> None:
    session_id = "meta-new" if new_session else "meta"
    manager = factory.create_session_manager(session_id)
    if not new_session:
        manager.update_metadata({"kept": 1})
    before = snapshot(db)

    with pytest.raises(DocumentTooLargeError) as raised:
        manager.update_metadata({"blob": "x" * (17 * MB)})

    assert_names_session_and_size(raised.value, session_id)
    assert snapshot(db) == before
    assert manager.get_metadata()["metadata"] == ({} if new_session else {"kept": 1})


@pytest.mark.anyio
async def test_metadata_that_would_grow_the_session_past_16_mb_is_refused_by_the_server(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    manager = factory.create_session_manager("grows")
    await manager.update_metadata_async({"first": "a" * (9 * MB)})
    before = snapshot(db)

    with pytest.raises(DocumentTooLargeError) as raised:
        await manager.update_metadata_async({"second": "b" * (9 * MB)})  # fine alone, too much together

    assert_names_session_and_size(raised.value, "grows")
    assert isinstance(raised.value.__cause__, Exception)
    assert getattr(raised.value.__cause__, "code", None) in {10334, 17419, 17420}
    assert snapshot(db) == before
    assert set((await manager.get_metadata_async())["metadata"]) == {"first"}
    Agent(model=ScriptedModel(["fine"]), session_manager=manager)("still usable")


def test_agent_state_over_16_mb_is_refused_and_the_stored_state_kept(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    manager = factory.create_session_manager("state")
    agent = Agent(model=ScriptedModel(["one", "two"]), state={"small": True}, session_manager=manager)
    agent("hello")
    before = snapshot(db)

    agent.state.set("blob", "y" * (17 * MB))
    with pytest.raises(DocumentTooLargeError) as raised:
        manager.sync_agent(agent)
    assert_names_session_and_size(raised.value, "state")
    assert "agent 'default'" in str(raised.value)
    assert snapshot(db) == before

    # Through a turn: the turn fails on the state write; the stored state is the last good one.
    with pytest.raises(DocumentTooLargeError):
        agent("again")
    stored = db[COLLECTION].find_one({"_id": "state"})["agents"][0]["state"]
    assert stored == {"small": True}
    restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("state"))
    assert restored.state.get() == {"small": True}
    assert restored.messages[:2] == agent.messages[:2]


def test_agent_state_that_would_grow_the_session_past_16_mb_is_refused(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    manager = factory.create_session_manager("state-grows")
    agent = Agent(model=ScriptedModel(["one"]), session_manager=manager)
    agent("hello")
    manager.update_metadata({"notes": "n" * (9 * MB)})
    before = snapshot(db)

    agent.state.set("blob", "s" * (9 * MB))
    with pytest.raises(DocumentTooLargeError) as raised:
        manager.sync_agent(agent)

    assert_names_session_and_size(raised.value, "state-grows")
    assert snapshot(db) == before
    assert Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("state-grows")).messages


def test_feedback_over_16_mb_is_refused_before_anything_is_written(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    manager = factory.create_session_manager("feedback")
    manager.add_feedback({"rating": "up"})
    before = snapshot(db)
    with pytest.raises(DocumentTooLargeError) as raised:
        manager.add_feedback({"comment": "z" * (17 * MB)})
    assert_names_session_and_size(raised.value, "feedback")
    assert snapshot(db) == before
    assert [feedback["rating"] for feedback in manager.get_feedbacks()] == ["up"]
