"""A factory used before ``os.fork()`` keeps working in the child and in the parent.

Usage: python fork_child.py URI DATABASE COLLECTION

The parent uses a blocking and an awaitable factory, forks, and the child uses both again (new
managers and a manager created before the fork), then exits normally without closing anything.
The parent waits for the child (bounded), uses the factories again, and prints a JSON report.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback

from strands import Agent

from mongodb_session_manager import AsyncMongoDBSessionManagerFactory, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel


def turn(factory: MongoDBSessionManagerFactory, session_id: str, prompt: str) -> int:
    agent = Agent(
        model=ScriptedModel(["ok"]), session_manager=factory.create_session_manager(session_id), callback_handler=None
    )
    agent(prompt)
    return len(agent.messages)


async def async_turn(factory: AsyncMongoDBSessionManagerFactory, session_id: str) -> int:
    manager = await factory.create_session_manager(session_id, preload=True)
    agent = Agent(model=ScriptedModel(["ok"]), session_manager=manager, callback_handler=None)
    await agent.invoke_async("async hello")
    return await manager.get_message_count_async("default")


def child(
    factory: MongoDBSessionManagerFactory, async_factory: AsyncMongoDBSessionManagerFactory, early: object
) -> None:
    assert turn(factory, "child", "hello from the child") == 2
    assert turn(factory, "parent", "the child continues the parent's session") == 4
    early.update_metadata({"written_by": "child"})  # type: ignore[attr-defined]
    assert early.get_metadata()["metadata"] == {"written_by": "child"}  # type: ignore[attr-defined]
    assert asyncio.run(async_turn(async_factory, "child-async")) == 2
    assert factory.get_connection_stats()["status"] == "connected"


def main(argv: list[str]) -> None:
    uri, database, collection = argv
    factory = MongoDBSessionManagerFactory(uri, database_name=database, collection_name=collection)
    async_factory = AsyncMongoDBSessionManagerFactory(
        uri + ("&" if "?" in uri else "?") + "appname=fork-async", database_name=database, collection_name=collection
    )
    turn(factory, "parent", "hello from the parent")
    assert asyncio.run(async_turn(async_factory, "parent-async")) == 2
    early = factory.create_session_manager("early")
    early.update_metadata({"written_by": "parent"})

    pid = os.fork()
    if pid == 0:
        try:
            child(factory, async_factory, early)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        sys.exit(0)  # a normal interpreter exit, with the factories still open

    deadline = time.monotonic() + 60
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            child_exit = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            child_exit = "hung"
            break
        time.sleep(0.01)

    # The parent's client was not disturbed by the child's.
    parent_messages = turn(factory, "parent", "the parent again")
    parent_async = asyncio.run(async_turn(async_factory, "parent-async"))
    print(
        json.dumps(
            {
                "child_exit": child_exit,
                "parent_messages": parent_messages,
                "parent_async_messages": parent_async,
                "early_metadata": early.get_metadata()["metadata"],
            }
        )
    )
    factory.close()
    asyncio.run(async_factory.close())


if __name__ == "__main__":
    main(sys.argv[1:])
