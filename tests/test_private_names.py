"""Each private Strands, PyMongo, Motor or asyncio name the library uses (all in ``_compat``), checked
against the installed versions: an upstream release that renames or changes one fails here, by name.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from strands import Agent
from strands.agent.state import AgentState
from strands.types.content import Message
from strands.types.session import SessionAgent

from mongodb_session_manager import _compat
from mongodb_session_manager.scripted_model import ScriptedModel


def test_the_strands_bridge_is_detected_from_inside_and_not_outside() -> None:
    from strands._async import run_async  # the private module itself must still exist

    async def probe() -> bool:
        return _compat.in_strands_bridge()

    assert run_async(probe) is True
    assert asyncio.run(probe()) is False


def test_a_loop_whose_thread_waits_in_the_strands_bridge_is_recognised() -> None:
    from strands._async import run_async

    async def blocked_in_bridge() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()

        async def probe() -> bool:
            return _compat.thread_waits_in_strands_bridge(loop)

        waiting = run_async(probe)  # blocks this loop's thread in Strands' bridge, as Agent(...) does
        return waiting, _compat.thread_waits_in_strands_bridge(loop)

    assert asyncio.run(blocked_in_bridge()) == (True, False)


def test_a_marked_view_is_used_as_is_by_strands() -> None:
    from strands.storage.storage import _NAMESPACED, _resolve_namespace

    class View:
        def namespace(self, prefix: str) -> Any:
            raise AssertionError("Strands namespaced a view that is marked as namespaced already")

    view = View()
    _compat.mark_namespaced(view)
    assert view._namespaced is _NAMESPACED  # type: ignore[attr-defined]
    assert _resolve_namespace(view, "session/") is view  # type: ignore[arg-type]


def test_state_version_counts_changes() -> None:
    state = AgentState()
    before = _compat.state_version(state)
    state.set("k", "v")
    assert _compat.state_version(state) > before


def test_interrupt_and_model_state_of_an_agent() -> None:
    agent = Agent(model=ScriptedModel(["hi"]), callback_handler=None)
    assert _compat.interrupt_state(agent) == agent._interrupt_state.to_dict()
    assert isinstance(_compat.interrupt_state(agent), dict)
    agent._model_state["x"] = 1
    assert _compat.model_state(agent)["x"] == 1


def test_internal_state_of_a_session_agent_round_trips() -> None:
    agent = _compat.session_agent(
        agent_id="a", state={}, conversation_manager_state={}, internal_state={"interrupt_state": {"a": 1}}
    )
    assert isinstance(agent, SessionAgent)
    assert _compat.internal_state(agent) == {"interrupt_state": {"a": 1}}
    assert agent.to_dict()["_internal_state"] == {"interrupt_state": {"a": 1}}


def test_strands_repairs_a_tool_use_left_without_its_result() -> None:
    messages: list[Message] = [
        {"role": "user", "content": [{"text": "What is 2 + 3?"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "add", "input": {}}}]},
        {"role": "user", "content": [{"text": "and then?"}]},
    ]
    repaired = _compat.repair_tool_pairs([dict(message) for message in messages])  # type: ignore[misc]
    results = [block["toolResult"] for message in repaired for block in message["content"] if "toolResult" in block]
    assert [result["toolUseId"] for result in results] == ["t1"]


@pytest.mark.anyio
async def test_the_loop_an_async_pymongo_client_is_bound_to(mongodb_uri: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        assert _compat.pymongo_async_client_loop(client) in (None, asyncio.get_running_loop())
        await client.admin.command("ping")
        assert _compat.pymongo_async_client_loop(client) is asyncio.get_running_loop()
    finally:
        await client.close()


@pytest.mark.anyio
async def test_the_loop_a_motor_client_is_bound_to(mongodb_uri: str) -> None:
    motor = pytest.importorskip("motor.motor_asyncio")
    client = motor.AsyncIOMotorClient(mongodb_uri)
    try:
        await client.admin.command("ping")
        assert _compat.motor_client_loop(client) is asyncio.get_running_loop()
    finally:
        client.close()
