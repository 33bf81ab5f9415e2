"""The server's TTL monitor removes an expired session with everything stored for it.

The monitor of MongoDB (and of the test server) runs once a minute, so this test waits up to two
minutes for it: it proves that ``expires_at`` is stored as a BSON date under a TTL index in every
collection, which no read-side check can show.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

COLLECTION = "sessions"
_MONITOR_BOUND_SECONDS = 150.0


@pytest.mark.slow
def test_the_ttl_monitor_removes_an_expired_session_its_messages_and_feedback(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    db = mongodb_client[db_name]
    # A session without expiry in the same collections must stay. It is stored first: the short-lived
    # one expires a second after its last write, and the monitor may remove it any time after that,
    # so its documents are counted right after that write.
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as keeper:
        Agent(
            model=ScriptedModel(["Here to stay"]),
            session_manager=keeper.create_session_manager("kept"),
            callback_handler=None,
        )("Hello")
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, ttl_seconds=1, touch_after=0
    ) as factory:
        manager = factory.create_session_manager("short-lived")
        Agent(model=ScriptedModel(["Bye soon"]), session_manager=manager, callback_handler=None)("Hello")
        manager.add_feedback({"rating": 4})

    collections = [db[COLLECTION], db[f"{COLLECTION}.messages"], db[f"{COLLECTION}.feedback"]]
    assert [collection.count_documents({}) for collection in collections] == [2, 4, 1]

    deadline = time.monotonic() + _MONITOR_BOUND_SECONDS
    while [collection.count_documents({}) for collection in collections] != [1, 2, 0]:
        assert time.monotonic() < deadline, "the TTL monitor did not remove the expired session in time"
        time.sleep(0.5)
    assert db[COLLECTION].find_one({}, {"_id": 1}) == {"_id": "kept"}
    assert {message["session_id"] for message in collections[1].find()} == {"kept"}
