"""One of several processes appending to the same session and agent at the same time.

Usage: python concurrent_writer.py URI DATABASE COLLECTION SESSION_ID WRITER TURNS

Prints ``ready`` once imported and connected, waits for a line on stdin (the start signal shared by
all writers), then builds the agent (all writers initialize the same, possibly new, agent at once)
and runs TURNS turns: prompt ``<WRITER>-q<i>``, reply ``<WRITER>-a<i>``. Prints a JSON summary.
"""

from __future__ import annotations

import json
import sys

from strands import Agent
from strands.agent.conversation_manager import NullConversationManager

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel


def main(argv: list[str]) -> None:
    uri, database, collection, session_id, writer, turns = argv
    factory = MongoDBSessionManagerFactory(uri, database_name=database, collection_name=collection)
    try:
        factory.get_connection_stats()  # connect before the start signal
        print("ready", flush=True)
        sys.stdin.readline()
        count = int(turns)
        agent = Agent(
            model=ScriptedModel([f"{writer}-a{turn}" for turn in range(count)]),
            session_manager=factory.create_session_manager(session_id),
            # Trimming the window is an agent-state change, which concurrent writers may not both make
            # (docs/concurrency.md); this test is about appending messages.
            conversation_manager=NullConversationManager(),
            callback_handler=None,
        )
        restored = len(agent.messages)
        for turn in range(count):
            agent(f"{writer}-q{turn}")
        print(json.dumps({"writer": writer, "restored": restored, "in_memory": len(agent.messages)}), flush=True)
    finally:
        factory.close()


if __name__ == "__main__":
    main(sys.argv[1:])
