"""Restore an agent from MongoDB in a fresh process and print what it restored, as JSON.

Usage: python restore_agent.py URI DATABASE COLLECTION SESSION_ID AGENT_ID [WINDOW_SIZE]

Prints ``{"messages": ..., "state": ..., "conversation_manager_state": ...}`` on one line. The agent
is built with a model that must not be called: restoring never talks to the model.
"""

from __future__ import annotations

import json
import sys

from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel


def main(argv: list[str]) -> None:
    uri, database, collection, session_id, agent_id, *rest = argv
    conversation_manager = SlidingWindowConversationManager(window_size=int(rest[0])) if rest else None
    factory = MongoDBSessionManagerFactory(uri, database_name=database, collection_name=collection)
    try:
        manager = factory.create_session_manager(session_id)
        agent = Agent(
            model=ScriptedModel([], default_text=None),
            agent_id=agent_id,
            session_manager=manager,
            conversation_manager=conversation_manager,
            callback_handler=None,
        )
        print(
            json.dumps(
                {
                    "messages": agent.messages,
                    "state": agent.state.get(),
                    "conversation_manager_state": agent.conversation_manager.get_state(),
                }
            )
        )
    finally:
        factory.close()


if __name__ == "__main__":
    main(sys.argv[1:])
