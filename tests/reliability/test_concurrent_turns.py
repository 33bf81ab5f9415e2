"""One conversation, one turn at a time: concurrent turns on one session and agent leave a
conversation providers accept (roles alternate, every toolUse answered by its toolResult in the next
message, every acknowledged turn stored once with its answer right after its prompt)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent, tool

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    MongoDBSessionManagerFactory,
    SessionBusyError,
)
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call

WRITERS = 6
COLLECTION = "sessions"


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return f"order {order_id}: shipped"


def stored(client: MongoClient[dict[str, Any]], db_name: str, session_id: str) -> list[dict[str, Any]]:
    documents = client[db_name][COLLECTION + ".messages"].find({"session_id": session_id}).sort("message_id", 1)
    return list(documents)


def assert_acceptable(messages: list[dict[str, Any]]) -> None:
    """What providers such as Bedrock's Converse API require of a conversation."""
    roles = [message["role"] for message in messages]
    assert roles[0] == "user", roles
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    for index, message in enumerate(messages):
        uses = [block["toolUse"]["toolUseId"] for block in message["content"] if "toolUse" in block]
        if uses:
            answered = [
                block["toolResult"]["toolUseId"] for block in messages[index + 1]["content"] if "toolResult" in block
            ]
            assert sorted(uses) == sorted(answered), (uses, answered)


def texts(message: dict[str, Any]) -> list[str]:
    return [block["text"] for block in message["content"] if "text" in block]


def assert_each_turn_once_with_its_answer(messages: list[dict[str, Any]], prompts: list[str]) -> None:
    for prompt in prompts:
        positions = [index for index, message in enumerate(messages) if texts(message) == [prompt]]
        assert len(positions) == 1, (prompt, positions)
        # Its answer follows (directly, or after its own tool round trip).
        answer = messages[positions[0] + 1]
        assert answer["role"] == "assistant"


@pytest.mark.anyio
async def test_six_concurrent_invocations_on_one_session_take_turns(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mongodb_session_manager")
    prompts = [f"question {n}" for n in range(WRITERS)]
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        # The session exists with one turn; every request restores it and then runs its turn at once.
        first = Agent(model=ScriptedModel(["hello"]), session_manager=await f.create_session_manager("s", preload=True))
        await first.invoke_async("hi")

        async def request(n: int) -> Any:
            manager = await f.create_session_manager("s", preload=True)
            script: list[Any] = [tool_call("lookup", {"order_id": str(n)}), f"answer {n}"] if n % 2 else [f"answer {n}"]
            agent = Agent(model=ScriptedModel(script), tools=[lookup], session_manager=manager, callback_handler=None)
            result = await agent.invoke_async(prompts[n])
            assert_acceptable(agent.messages)  # the model saw an acceptable conversation too
            return result

        results = await asyncio.gather(*(request(n) for n in range(WRITERS)))
        assert len(results) == WRITERS
        documents = stored(mongodb_client, db_name, "s")
        messages = [document["message"] for document in documents]
        assert [document["message_id"] for document in documents] == list(range(len(documents)))
        assert_acceptable(messages)
        assert_each_turn_once_with_its_answer(messages, prompts)
        assert len(messages) == 2 + 2 * WRITERS + 2 * (WRITERS // 2)  # no repairs: every turn completed
        restored = Agent(model=ScriptedModel([]), session_manager=await f.create_session_manager("s", preload=True))
        assert [m["content"] for m in restored.messages] == [m["content"] for m in messages]
    # Waiting for a turn and catching up are expected events: quiet logs (DEBUG/INFO), no WARNING.
    ours = [record for record in caplog.records if record.name.startswith("mongodb_session_manager")]
    assert ours
    assert all(record.levelno < logging.WARNING for record in ours), [record.getMessage() for record in ours]


def test_six_threads_calling_agents_on_one_session_take_turns(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    prompts = [f"thread question {n}" for n in range(WRITERS)]
    errors: list[BaseException] = []
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
        agents = [
            Agent(
                model=ScriptedModel([f"thread answer {n}"]),
                session_manager=factory.create_session_manager("threads"),
                callback_handler=None,
            )
            for n in range(WRITERS)
        ]
        start = threading.Barrier(WRITERS)

        def run(n: int) -> None:
            try:
                start.wait()
                agents[n](prompts[n])
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    messages = [document["message"] for document in stored(mongodb_client, db_name, "threads")]
    assert_acceptable(messages)
    assert_each_turn_once_with_its_answer(messages, prompts)
    assert len(messages) == 2 * WRITERS


@pytest.mark.anyio
async def test_a_turn_that_cannot_get_the_conversation_in_time_raises_session_busy(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        release = asyncio.Event()
        holding = asyncio.Event()

        @tool
        async def slow() -> str:
            """Wait until released."""
            holding.set()
            await release.wait()
            return "done"

        holder = Agent(
            model=ScriptedModel([tool_call("slow", {}), "finished"]),
            tools=[slow],
            session_manager=await f.create_session_manager("busy", preload=True),
            callback_handler=None,
        )
        running = asyncio.create_task(holder.invoke_async("long task"))
        await asyncio.wait_for(holding.wait(), 30)
        waiter = Agent(
            model=ScriptedModel(["never"]),
            session_manager=await f.create_session_manager("busy", preload=True, turn_wait=0.3),
            callback_handler=None,
        )
        with pytest.raises(SessionBusyError):
            await waiter.invoke_async("me too")
        release.set()
        await running
        messages = [document["message"] for document in stored(mongodb_client, db_name, "busy")]
        assert_acceptable(messages)
        assert "me too" not in [text for message in messages for text in texts(message)]  # nothing of it stored
        # Once the turn ended, a new request gets the conversation at once.
        later = Agent(
            model=ScriptedModel(["now"]),
            session_manager=await f.create_session_manager("busy", preload=True, turn_wait=0.3),
            callback_handler=None,
        )
        await later.invoke_async("me now")
        assert_acceptable([document["message"] for document in stored(mongodb_client, db_name, "busy")])


def test_a_turn_after_a_crash_mid_turn_answers_what_the_crash_left(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    script = Path(__file__).parent / "scripts" / "crash_mid_turn.py"
    crashed = subprocess.run(
        [sys.executable, str(script), mongodb_uri, db_name, COLLECTION, "crash"], capture_output=True, timeout=60
    )
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    before = stored(mongodb_client, db_name, "crash")
    assert [document["message"]["role"] for document in before] == ["user", "assistant"]  # toolUse, no result

    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
        # The dead holder's marker lapses after its turn_lease (1 s); this turn waits for that.
        agent = Agent(model=ScriptedModel(["fresh answer"]), session_manager=factory.create_session_manager("crash"))
        agent("after the crash")
        assert_acceptable(agent.messages)
    after = stored(mongodb_client, db_name, "crash")
    messages = [document["message"] for document in after]
    assert_acceptable(messages)
    assert [document["message_id"] for document in after] == list(range(6))
    assert after[:2] == before  # nothing stored was deleted or changed
    assert messages[2]["content"][0]["toolResult"]["status"] == "error"  # Strands answers the lost toolUse
    assert after[3]["turn"] == {"repair": "interrupted"}  # then a stored note keeps the roles alternating
    assert texts(messages[4]) == ["after the crash"]
    assert texts(messages[5]) == ["fresh answer"]


def test_a_pipelined_turn_after_a_crash_mid_turn_answers_the_prefix_the_crash_left(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    script = Path(__file__).parent / "scripts" / "crash_mid_turn.py"
    crashed = subprocess.run(
        [sys.executable, str(script), mongodb_uri, db_name, COLLECTION, "crash-pipelined", "pipelined"],
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    before = stored(mongodb_client, db_name, "crash-pipelined")
    # A prefix of the turn: its claim (stored before the tool ran), and the toolUse if it got out in time.
    assert [document["message"]["role"] for document in before] in (["user"], ["user", "assistant"])
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
        agent = Agent(
            model=ScriptedModel(["fresh answer"]),
            session_manager=factory.create_session_manager("crash-pipelined"),
            callback_handler=None,
        )
        agent("after the crash")
        assert_acceptable(agent.messages)
    after = stored(mongodb_client, db_name, "crash-pipelined")
    messages = [document["message"] for document in after]
    assert_acceptable(messages)
    assert after[: len(before)] == before  # nothing stored was deleted or changed
    assert [document["message_id"] for document in after] == list(range(len(after)))
    assert texts(messages[-2]) == ["after the crash"]
    assert texts(messages[-1]) == ["fresh answer"]
