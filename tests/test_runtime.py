"""Loops and threads: the sync facade from threads and loops, home-loop misuse, fork, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient, monitoring
from support import fail_point, unique_app, with_options

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    WrongLoopError,
)

THREAD_PREFIX = "mongodb-session-manager"


def library_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith(THREAD_PREFIX)}


def test_sync_api_from_16_threads_at_once(mongodb_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name)
    barrier = threading.Barrier(16)

    def work(worker: int) -> list[dict[str, Any]]:
        barrier.wait()
        results = []
        for round_ in range(8):
            manager = factory.create_session_manager(f"thread-{worker}-{round_}")
            manager.update_metadata({"worker": worker, "round": round_})
            manager.update_metadata({"nested": {"thread": threading.get_ident()}})
            results.append(manager.get_metadata()["metadata"])
        return results

    try:
        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(work, range(16)))
        for worker, results in enumerate(outcomes):
            assert [(result["worker"], result["round"]) for result in results] == [(worker, r) for r in range(8)]
            assert all(set(result) == {"worker", "round", "nested"} for result in results)
        # Every session stored exactly once.
        reader = factory.create_session_manager("thread-3-5")
        assert reader.get_metadata()["metadata"]["worker"] == 3
    finally:
        factory.close()


@pytest.mark.anyio
async def test_sync_api_inside_a_running_event_loop(mongodb_uri: str, db_name: str) -> None:
    # The factory API's documented FastAPI examples call the blocking API from `async def` endpoints.
    factory = MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name)
    try:
        manager = factory.create_session_manager("inside-loop")
        manager.update_metadata({"priority": "high"})
        assert manager.get_metadata()["metadata"] == {"priority": "high"}
        manager.add_feedback({"rating": "up"})
        assert len(manager.get_feedbacks()) == 1
        assert factory.get_connection_stats()["status"] == "connected"
        # The awaitable twins work on the same manager from this loop too.
        assert (await manager.get_metadata_async())["metadata"] == {"priority": "high"}
    finally:
        factory.close()


@pytest.mark.anyio
async def test_blocking_call_on_the_clients_home_loop_raises_wrong_loop_error(mongodb_uri: str, db_name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        await client.admin.command("ping")  # binds the client to this test's loop
        factory = MongoDBSessionManagerFactory(client=client, database_name=db_name)
        manager = factory.create_session_manager("home-loop")
        with pytest.raises(WrongLoopError, match="get_metadata_async") as raised:
            manager.get_metadata()
        assert isinstance(raised.value, RuntimeError)
        assert "await" in str(raised.value)
        with pytest.raises(WrongLoopError, match="update_metadata_async"):
            manager.update_metadata({"a": 1})
        # Nothing was written by the rejected call; the awaitable API works.
        assert (await manager.get_metadata_async())["metadata"] == {}
        await manager.update_metadata_async({"a": 2})
        assert (await manager.get_metadata_async())["metadata"] == {"a": 2}
        factory.close()

        # The blocking repository names its awaitable twin too.
        repository = MongoDBSessionRepository(client=client, database_name=db_name)
        with pytest.raises(WrongLoopError, match=r"await AsyncMongoDBSessionRepository\.read_session"):
            repository.read_session("home-loop")
        session = await repository.core.read_session("home-loop")
        assert session is not None
        assert session.session_id == "home-loop"
    finally:
        await client.close()


def test_a_forked_child_can_use_the_parents_factory(mongodb_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(connection_string=mongodb_uri, database_name=db_name)
    try:
        parent = factory.create_session_manager("parent")
        parent.update_metadata({"who": "parent"})
        assert parent.get_metadata()["metadata"] == {"who": "parent"}

        with warnings.catch_warnings():
            # Python 3.12+ warns about forking a multi-threaded process; that is what is tested here.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                # PyMongo's own after-fork reset drops the parent's connections; collecting them warns.
                warnings.simplefilter("ignore", ResourceWarning)
                child = factory.create_session_manager("child")
                child.update_metadata({"who": "child", "pid": os.getpid()})
                ok = child.get_metadata()["metadata"] == {"who": "child", "pid": os.getpid()}
                ok = ok and parent.get_metadata()["metadata"] == {"who": "parent"}
                ok = ok and factory.get_connection_stats()["status"] == "connected"
                factory.close()
                code = 0 if ok else 2
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

        # The parent's client is untouched by the child.
        assert parent.get_metadata()["metadata"] == {"who": "parent"}
        child_seen = factory.create_session_manager("child").get_metadata()["metadata"]
        assert child_seen["who"] == "child"
        assert child_seen["pid"] == pid
    finally:
        factory.close()


def test_closing_leaves_no_thread_loop_or_client_behind(
    mongodb_uri: str, db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    before = library_threads()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        owned = MongoDBSessionManagerFactory(connection_string=with_options(mongodb_uri, "appname=owned-x"))
        borrowed_client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
        borrowed = MongoDBSessionManagerFactory(client=borrowed_client, database_name=db_name)

        async def use_async_factory() -> None:
            async with AsyncMongoDBSessionManagerFactory(
                connection_string=with_options(mongodb_uri, "appname=async-x"), database_name=db_name
            ) as factory:
                manager = await factory.create_session_manager("async", preload=True)
                await manager.update_metadata_async({"a": 1})

        for factory in (owned, borrowed):
            manager = factory.create_session_manager(f"cleanup-{secrets.token_hex(3)}", database_name=db_name)
            manager.update_metadata({"x": 1})
            assert manager.get_metadata()["metadata"] == {"x": 1}
            manager.close()
        asyncio.run(use_async_factory())
        assert library_threads() - before, "the sync facade runs on library loop threads"

        owned.close()
        borrowed.close()
        borrowed_client.close()
        gc.collect()

    assert library_threads() - before == set()
    problems = [
        str(warning.message)
        for warning in caught
        if issubclass(warning.category, ResourceWarning) or "unclosed" in str(warning.message).lower()
    ]
    assert problems == []
    assert not [record for record in caplog.records if record.name == "asyncio"], caplog.text


@pytest.fixture
def blocked_finds() -> str:
    """An app name whose next ``find`` the server is to hold for 400 ms (``failCommand`` fail point)."""
    return unique_app("blocked")


class FindTicks(monitoring.CommandListener):
    """For each ``find``: the value of :attr:`ticks` (advanced by the test's loop) when the command
    started and when its reply came (listeners run on the thread that runs the client)."""

    def __init__(self) -> None:
        self.ticks = 0
        self.spans: list[tuple[int, int]] = []
        self._at_start: dict[int, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self._at_start[event.request_id] = self.ticks

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._finished(event.request_id)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._finished(event.request_id)

    def _finished(self, request_id: int) -> None:
        if request_id in self._at_start:
            self.spans.append((self._at_start.pop(request_id), self.ticks))


@pytest.mark.anyio
async def test_an_awaited_call_from_a_foreign_loop_does_not_block_it(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]], blocked_finds: str
) -> None:
    finds = FindTicks()
    factory = AsyncMongoDBSessionManagerFactory(
        connection_string=with_options(mongodb_uri, f"appname={blocked_finds}"),
        database_name=db_name,
        event_listeners=[finds],
    )
    try:
        manager = await factory.create_session_manager("ticking")
        await manager.update_metadata_async({"v": 1})  # connects and creates indexes before the fail point
        test_loop_thread = threading.current_thread()
        with fail_point(
            mongodb_client,
            blocked_finds,
            {"times": 1},
            failCommands=["find"],
            blockConnection=True,
            blockTimeMS=400,
        ):
            call = asyncio.ensure_future(manager.get_metadata_async())
            while not call.done():
                finds.ticks += 1
                await asyncio.sleep(0.002)
            assert (await call)["metadata"] == {"v": 1}
            # The server held the find's reply for 400 ms; this loop kept running meanwhile (a blocked
            # loop could not have ticked while the find was in flight). Counts, not timings.
            assert len(finds.spans) == 1, finds.spans
            at_start, at_reply = finds.spans[0]
            assert at_reply > at_start, finds.spans
            assert threading.current_thread() is test_loop_thread
            # The client does not live on this loop: it is served by the library's own loop thread.
            assert any(thread.name.startswith(THREAD_PREFIX) for thread in threading.enumerate())
    finally:
        await factory.close()


def test_stopping_a_loop_thread_unwinds_what_still_runs_on_it() -> None:
    # What can be left on a library loop thread when it stops (e.g. the background tasks of a borrowed async
    # client that bound itself to it) is cancelled and unwound, not destroyed pending.
    from mongodb_session_manager._runtime import LoopThread

    loop_thread = LoopThread(f"{THREAD_PREFIX}-test")
    unwound = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.set()

    async def start() -> None:
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)  # let it reach its first await

    loop_thread.submit(start()).result()
    loop_thread.stop()
    assert unwound.is_set()
    assert not loop_thread.is_alive()
    assert loop_thread.loop.is_closed()
