"""Graph and Swarm orchestrators persist through MongoDBSessionManager and resume from MongoDB.

Each scenario runs an orchestrator until it stops after its first node, then builds a brand-new
orchestrator (new agents, new models, new manager) that restores from MongoDB alone and finishes
the run without calling the first node's model again.
"""

from __future__ import annotations

from typing import Any

import pytest
from strands import Agent
from strands.hooks import BeforeNodeCallEvent, HookProvider, HookRegistry
from strands.multiagent import GraphBuilder, Swarm
from strands.multiagent.base import Status
from strands.multiagent.graph import Graph

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel, ScriptExhaustedError, tool_call

COLLECTION = "sessions"


def stored_state(db: Any, session_id: str, multi_agent_id: str) -> dict[str, Any]:
    document = db[COLLECTION].find_one({"_id": session_id})
    assert document is not None
    records = [record for record in document["multi_agents"] if record["multi_agent_id"] == multi_agent_id]
    assert len(records) == 1
    state: dict[str, Any] = records[0]["state"]
    return state


class ApprovalGate(HookProvider):
    """Interrupts (Strands' human-in-the-loop mechanism) before ``node_id`` runs, until approved."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.approvals: list[Any] = []

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        registry.add_callback(BeforeNodeCallEvent, self.before_node)

    def before_node(self, event: BeforeNodeCallEvent) -> None:
        if event.node_id == self.node_id:
            self.approvals.append(event.interrupt("approval", reason=f"{self.node_id} needs approval"))


def build_graph(
    first: ScriptedModel, second: ScriptedModel, manager: MongoDBSessionManager, *, gate: bool = False
) -> Graph:
    builder = GraphBuilder()
    builder.add_node(Agent(name="research", model=first, callback_handler=None), "research")
    builder.add_node(Agent(name="write", model=second, callback_handler=None), "write")
    builder.add_edge("research", "write")
    builder.set_entry_point("research")
    builder.set_max_node_executions(10)
    builder.set_session_manager(manager)
    if gate:
        builder.set_hook_providers([ApprovalGate("write")])
    return builder.build()


def build_swarm(first: ScriptedModel, second: ScriptedModel, manager: MongoDBSessionManager) -> Swarm:
    triage = Agent(name="triage", model=first, callback_handler=None)
    expert = Agent(name="expert", model=second, callback_handler=None)
    return Swarm([triage, expert], session_manager=manager, hooks=[ApprovalGate("expert")])


def never_called() -> ScriptedModel:
    """A model that fails the run if it is ever called."""
    return ScriptedModel([], default_text=None)


def interrupt_responses(result: Any) -> list[dict[str, Any]]:
    assert result.status == Status.INTERRUPTED
    assert len(result.interrupts) == 1
    return [{"interruptResponse": {"interruptId": result.interrupts[0].id, "response": "approved"}}]


def test_graph_resumes_after_a_failed_node_without_rerunning_the_first(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    research = ScriptedModel(["Findings: MongoDB stores BSON."], default_text=None)
    failing_writer = never_called()  # raises ScriptExhaustedError on its first call
    graph = build_graph(research, failing_writer, factory.create_session_manager("graph-fail"))
    with pytest.raises(ScriptExhaustedError):
        graph("Write a note about MongoDB.")
    assert research.call_count == 1

    state = stored_state(db, "graph-fail", graph.id)
    assert state["completed_nodes"] == ["research"]
    assert state["failed_nodes"] == ["write"]
    assert state["next_nodes_to_execute"] == ["write"]

    untouchable = never_called()
    writer = ScriptedModel(["Note: MongoDB stores BSON."], default_text=None)
    resumed = build_graph(untouchable, writer, factory.create_session_manager("graph-fail"))
    result = resumed("Write a note about MongoDB.")

    assert untouchable.call_count == 0
    assert writer.call_count == 1
    # The restored result of the first node is what the second node received.
    assert "Findings: MongoDB stores BSON." in str(writer.calls[0])
    assert [node.node_id for node in result.execution_order] == ["research", "write"]
    assert result.results["research"].status == Status.COMPLETED
    assert result.results["write"].status == Status.COMPLETED
    assert str(result.results["write"].result).strip() == "Note: MongoDB stores BSON."
    # (Strands keeps the node in failed_nodes after a successful retry, so it still reports the run as
    # failed; its FileSessionManager behaves the same. That is Strands' restore logic, not persistence.)
    state = stored_state(db, "graph-fail", graph.id)
    assert sorted(state["completed_nodes"]) == ["research", "write"]
    assert state["next_nodes_to_execute"] == []


@pytest.mark.anyio
async def test_graph_interrupted_before_its_second_node_resumes_from_mongodb(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    research = ScriptedModel(["Findings."], default_text=None)
    graph = build_graph(research, never_called(), factory.create_session_manager("graph-int"), gate=True)
    first = await graph.invoke_async("Summarise.")
    responses = interrupt_responses(first)
    assert research.call_count == 1
    state = stored_state(db, "graph-int", graph.id)
    assert state["status"] == "interrupted"
    assert state["interrupted_nodes"] == ["write"]

    untouchable = never_called()
    writer = ScriptedModel(["Summary."], default_text=None)
    resumed = build_graph(untouchable, writer, factory.create_session_manager("graph-int"), gate=True)
    result = await resumed.invoke_async(responses)

    assert result.status == Status.COMPLETED
    assert untouchable.call_count == 0
    assert writer.call_count == 1
    assert "Findings." in str(writer.calls[0])
    assert [node.node_id for node in result.execution_order] == ["research", "write"]
    assert stored_state(db, "graph-int", graph.id)["status"] == "completed"


def test_swarm_interrupted_after_a_handoff_resumes_from_mongodb(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    triage = ScriptedModel(
        [
            tool_call("handoff_to_agent", {"agent_name": "expert", "message": "Billing question, over to you."}),
            "Handed off to the expert.",
        ],
        default_text=None,
    )
    swarm = build_swarm(triage, never_called(), factory.create_session_manager("swarm"))
    first = swarm("Why was I charged twice?")
    responses = interrupt_responses(first)
    assert triage.call_count == 2

    state = stored_state(db, "swarm", swarm.id)
    assert state["status"] == "interrupted"
    assert state["node_history"] == ["triage"]
    assert state["next_nodes_to_execute"] == ["expert"]

    untouchable = never_called()
    expert = ScriptedModel(["You were charged twice because of a retry; refunded."], default_text=None)
    resumed = build_swarm(untouchable, expert, factory.create_session_manager("swarm"))
    result = resumed(responses)

    assert result.status == Status.COMPLETED
    assert untouchable.call_count == 0
    assert expert.call_count == 1
    # The handoff message persisted in MongoDB reached the expert.
    assert "Billing question, over to you." in str(expert.calls[0])
    assert [node.node_id for node in result.node_history] == ["triage", "expert"]
    assert set(result.results) == {"triage", "expert"}
    state = stored_state(db, "swarm", swarm.id)
    assert state["status"] == "completed"
    assert state["node_history"] == ["triage", "expert"]


def test_completed_orchestrator_state_is_stored_once_per_id(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    manager = factory.create_session_manager("both")
    graph = build_graph(ScriptedModel(["r"]), ScriptedModel(["w"]), manager)
    assert graph("go").status == Status.COMPLETED
    swarm_manager = factory.create_session_manager("both")
    swarm = Swarm(
        [Agent(name="solo", model=ScriptedModel(["done"]), callback_handler=None)],
        session_manager=swarm_manager,
        id="helpdesk",
    )
    assert swarm("go").status == Status.COMPLETED

    document = db[COLLECTION].find_one({"_id": "both"})
    assert sorted(record["multi_agent_id"] for record in document["multi_agents"]) == [graph.id, "helpdesk"]
    assert stored_state(db, "both", graph.id)["status"] == "completed"
    assert stored_state(db, "both", "helpdesk")["status"] == "completed"


def test_same_manager_resumes_a_new_orchestrator_with_the_latest_state(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    """A long-lived manager (one per conversation) builds a new Graph per request: each must see the
    state the previous one stored, not what the manager read when it first loaded the session."""
    manager = factory.create_session_manager("long-lived")
    research = ScriptedModel(["Findings."], default_text=None)
    first = build_graph(research, never_called(), manager, gate=True)
    responses = interrupt_responses(first("Summarise."))

    untouchable = never_called()
    writer = ScriptedModel(["Summary."], default_text=None)
    second = build_graph(untouchable, writer, manager, gate=True)
    result = second(responses)
    assert result.status == Status.COMPLETED
    assert untouchable.call_count == 0
    assert writer.call_count == 1

    # A third graph on the same manager starts over from the completed state (Strands' reset rule).
    third_research = ScriptedModel(["More findings."], default_text=None)
    third_writer = ScriptedModel(["Another summary."], default_text=None)
    third = build_graph(third_research, third_writer, manager)
    assert third("Summarise again.").status == Status.COMPLETED
    assert (third_research.call_count, third_writer.call_count) == (1, 1)
    assert stored_state(db, "long-lived", third.id)["status"] == "completed"
