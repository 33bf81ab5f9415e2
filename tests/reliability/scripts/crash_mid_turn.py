"""Run a turn whose tool kills the process (``os._exit``): the toolUse is stored, its result never is.

Usage: crash_mid_turn.py URI DATABASE COLLECTION SESSION_ID [pipelined]
"""

from __future__ import annotations

import os
import sys

from strands import Agent, tool

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call


@tool
def die() -> str:
    """Kill the process."""
    os._exit(3)


def main() -> None:
    uri, database, collection, session_id = sys.argv[1:5]
    pipelined = sys.argv[5:] == ["pipelined"]
    factory = MongoDBSessionManagerFactory(uri, database_name=database, collection_name=collection)
    # Awaited writes: the toolUse is acknowledged before the tool runs. Pipelined, it may still be queued
    # when the process dies, and the crash leaves only the prompt (the claim is stored before tools run).
    manager = factory.create_session_manager(session_id, turn_lease=1, pipelined_writes=pipelined)
    agent = Agent(model=ScriptedModel([tool_call("die", {}), "never"]), tools=[die], session_manager=manager)
    agent("please crash")


if __name__ == "__main__":
    main()
