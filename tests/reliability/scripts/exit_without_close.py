"""Use the library, close nothing, and exit: the interpreter must exit at once, silently.

Usage: python exit_without_close.py URI DATABASE [--wait]

Opens a blocking factory (agent turn, metadata, feedback), a standalone manager owning its client,
an awaitable factory used under ``asyncio.run`` and the connection pool's default client; closes
none of them. With ``--wait`` it prints ``ready`` and waits for a line on stdin before exiting (the
test stops the server in between). Then logging goes to stdout, as in an application that configured
it: PyMongo reports the outage it may notice meanwhile (its background pool maintenance failing to
connect) as a log record, which Python would otherwise print on stderr.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from strands import Agent

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    MongoDBConnectionPool,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
)
from mongodb_session_manager.scripted_model import ScriptedModel


def with_option(uri: str, option: str) -> str:
    return uri + ("&" if "?" in uri else "?") + option


async def use_async_factory(uri: str, database: str) -> AsyncMongoDBSessionManagerFactory:
    factory = AsyncMongoDBSessionManagerFactory(with_option(uri, "appname=exit-async"), database_name=database)
    manager = await factory.create_session_manager("exit-async", preload=True)
    await Agent(model=ScriptedModel(["yes"]), session_manager=manager, callback_handler=None).invoke_async("async?")
    return factory


def main(argv: list[str]) -> None:
    uri, database, *flags = argv
    if "--wait" in flags:
        logging.basicConfig(stream=sys.stdout, level=logging.WARNING)
    factory = MongoDBSessionManagerFactory(uri, database_name=database)
    manager = factory.create_session_manager("exit")
    Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)("hello")
    manager.update_metadata({"left": "open"})
    manager.add_feedback({"rating": "up"})
    standalone = MongoDBSessionManager("exit-standalone", connection_string=uri, database_name=database)
    standalone.update_metadata({"owns": "its client"})
    async_factory = asyncio.run(use_async_factory(uri, database))
    MongoDBConnectionPool.initialize(with_option(uri, "appname=exit-pool"))
    assert MongoDBConnectionPool.health_check()
    if "--wait" in flags:
        print("ready", flush=True)
        sys.stdin.readline()
    print("exiting without closing", factory, standalone, async_factory, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
