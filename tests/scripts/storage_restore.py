"""Restore a ``SnapshotSessionManager`` agent from ``MongoDBStorage`` in a fresh process, continue it, print JSON.

Usage: python storage_restore.py URI DATABASE COLLECTION SESSION_ID

The agent is built exactly like the one in ``tests/test_storage.py`` (same tool, prompt and agent id).
Its model is scripted with the second turn only: a tool call ``add(5, 10)`` and a text reply. The
script prints one line: ``{"restored": ..., "restored_state": ..., "messages": ..., "model_calls": ...}``
(``restored`` is the conversation right after ``Agent(...)``, before the second turn).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from strands import Agent
from strands.session import SnapshotSessionManager

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.storage import MongoDBStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' shared helpers
from support import add

AGENT_ID = "calculator"
SYSTEM_PROMPT = "You add numbers with the add tool."
SECOND_TURN = [tool_call("add", {"a": 5, "b": 10}, tool_use_id="t2"), "5 + 10 = 15."]
SECOND_PROMPT = "And 5 + 10?"


def main(argv: list[str]) -> None:
    uri, database, collection, session_id = argv
    factory = MongoDBSessionManagerFactory(uri, database_name=database)
    try:
        storage = MongoDBStorage.from_factory(factory, collection_name=collection)
        manager = SnapshotSessionManager(session_id, storage=storage, snapshot_trigger=lambda **_: True)
        model = ScriptedModel(SECOND_TURN, default_text=None)
        # Sync construction: Strands restores the snapshot through its sync->async bridge.
        agent = Agent(
            model=model,
            tools=[add],
            agent_id=AGENT_ID,
            system_prompt=SYSTEM_PROMPT,
            session_manager=manager,
            callback_handler=None,
        )
        restored = copy.deepcopy(agent.messages)
        restored_state = agent.state.get()
        agent(SECOND_PROMPT)
        print(
            json.dumps(
                {
                    "restored": restored,
                    "restored_state": restored_state,
                    "messages": agent.messages,
                    "model_calls": model.calls,
                }
            )
        )
    finally:
        factory.close()


if __name__ == "__main__":
    main(sys.argv[1:])
