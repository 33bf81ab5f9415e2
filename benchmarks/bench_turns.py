"""Agent turns with a scripted model: a plain text turn and a tool turn, sync API and ``invoke_async``.

Each case runs one agent for many turns (its conversation grows); a sample is one turn, and the
cases take turns round-robin (one turn of each per round) so that load from elsewhere on the
machine hits them alike. The baseline of each case is the same agent and script without a session
manager, in the same run.
A text turn adds 2 messages (user, assistant); a tool turn adds 4 (user, assistant tool use, user
tool result, assistant text).

The agents use a sliding window large enough that no message is dropped during the run, so a turn
changes nothing but the conversation. One more case shows the steady state of Strands' default
window (40 messages) once it is full: every turn then drops messages, which changes the
conversation manager's state, and that state is written too.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.hooks import MessageAddedEvent
from strands.types.content import Message

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call

from ._common import (
    Case,
    CommandCounter,
    Context,
    Report,
    Row,
    ainterleave,
    interleave,
    per_op,
    relate,
    run_async,
    summarize,
)
from ._data import conversation, lookup

NAME = "turns"
GROUP = "turns"
COLLECTION = "sessions"
WINDOW = 10_000


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        _run(ctx, uri, database)


def _script_turn(model: ScriptedModel, kind: str) -> None:
    if kind == "tool":
        model.add(tool_call("lookup", {"order_id": "42"}), "Order 42 has shipped.")


class _MessageCount:
    def __init__(self) -> None:
        self.added = 0

    def __call__(self, event: MessageAddedEvent) -> None:
        self.added += 1


def _new_agent(
    manager: MongoDBSessionManager | None,
    window: int = WINDOW,
    messages: list[Message] | None = None,
    model_delay: float = 0.0,
) -> tuple[Agent, ScriptedModel, _MessageCount]:
    model = ScriptedModel(default_text="Noted. (scripted reply)", delay=model_delay)
    agent = Agent(
        model=model,
        tools=[lookup],
        messages=messages,
        conversation_manager=SlidingWindowConversationManager(window_size=window),
        session_manager=manager,
        callback_handler=None,
    )
    counter = _MessageCount()
    agent.hooks.add_callback(MessageAddedEvent, counter)
    return agent, model, counter


def _run(ctx: Context, uri: str, database: str) -> None:
    report = ctx.report
    turns = 20 if ctx.quick else 80
    budget = 4.0 if ctx.quick else 20.0
    commands = CommandCounter()
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name=COLLECTION, event_listeners=[commands]
    )
    sessions = itertools.count()
    managers: list[MongoDBSessionManager] = []
    keys = [(kind, persisted) for kind in ("text", "tool") for persisted in (False, True)]
    rows: dict[tuple[str, str, bool], Row] = {}
    try:
        # Sync API: one agent per case, one turn of each case per round.
        sync_cases: dict[tuple[str, bool], tuple[Case, _MessageCount]] = {}
        for kind, persisted in keys:
            manager = factory.create_session_manager(f"turns-{next(sessions)}") if persisted else None
            if manager is not None:
                managers.append(manager)
            agent, model, counter = _new_agent(manager)
            sync_cases[(kind, persisted)] = (
                Case(
                    _case_name("sync", kind, persisted), _sync_turn(agent, model, kind), commands if persisted else None
                ),
                counter,
            )
        full_manager = factory.create_session_manager(f"turns-{next(sessions)}")
        managers.append(full_manager)
        full_agent, full_model, full_counter = _new_agent(full_manager, window=40, messages=conversation(40))
        full_case = Case(FULL_WINDOW, _sync_turn(full_agent, full_model, "text"), commands)
        cases = [case for case, _ in sync_cases.values()] + [full_case]
        _interleave_counted(cases, [counter for _, counter in sync_cases.values()] + [full_counter], turns, budget)
        for (kind, persisted), (case, counter) in sync_cases.items():
            rows[("sync", kind, persisted)] = _row(report, case, counter)
        full = _row(report, full_case, full_counter)

        # invoke_async: the same on one event loop.
        async_rows = run_async(_async_cases(report, factory, commands, sessions, keys, turns, budget))
        rows.update({("async", kind, persisted): row for (kind, persisted), row in async_rows.items()})
    finally:
        for manager in managers:
            manager.close()
        factory.close()

    for api in ("sync", "async"):
        for kind in ("text", "tool"):
            relate(rows[(api, kind, True)], rows[(api, kind, False)], "no session manager")
    relate(full, rows[("sync", "text", False)], "no session manager")
    text = [rows[(api, "text", True)].commands for api in ("sync", "async")]
    tool = [rows[(api, "tool", True)].commands for api in ("sync", "async")]
    report.target(
        "plain text turn",
        "<= 2 round trips (at most one per new message)",
        f"sync {text[0]:.2f}, invoke_async {text[1]:.2f} round trips per turn",
        all(count is not None and count <= 2 for count in text),
    )
    report.target(
        "tool turn",
        "<= 5 round trips",
        f"sync {tool[0]:.2f}, invoke_async {tool[1]:.2f} round trips per turn",
        all(count is not None and count <= 5 for count in tool),
    )


FULL_WINDOW = "text turn, agent(...), factory manager, default window (40) full"


def _case_name(api: str, kind: str, persisted: bool) -> str:
    call = "agent(...)" if api == "sync" else "await agent.invoke_async(...)"
    store = "factory manager" if persisted else "no session manager"
    return f"{kind} turn, {call}, {store}"


def _sync_turn(agent: Agent, model: ScriptedModel, kind: str) -> Callable[[], None]:
    def turn() -> None:
        _script_turn(model, kind)
        agent("Where is my order?")

    return turn


def _interleave_counted(cases: list[Case], counters: list[_MessageCount], turns: int, budget: float) -> None:
    for case in cases:  # warm-up (the window-full agent's first turn also stores its 40 initial messages)
        case.operation()
    for counter in counters:
        counter.added = 0
    interleave(cases, repeats=turns, warmup=0, budget=budget)


async def _async_cases(
    report: Report,
    factory: MongoDBSessionManagerFactory,
    commands: CommandCounter,
    sessions: Any,
    keys: list[tuple[str, bool]],
    turns: int,
    budget: float,
) -> dict[tuple[str, bool], Row]:
    managers = []
    cases: dict[tuple[str, bool], tuple[Case, _MessageCount]] = {}
    for kind, persisted in keys:
        manager = None
        if persisted:
            manager = factory.create_session_manager(f"turns-{next(sessions)}")
            await manager.load_async()
            managers.append(manager)
        agent, model, counter = _new_agent(manager)

        def turn(agent: Agent = agent, model: ScriptedModel = model, kind: str = kind) -> Awaitable[Any]:
            _script_turn(model, kind)
            return agent.invoke_async("Where is my order?")

        cases[(kind, persisted)] = (
            Case(_case_name("async", kind, persisted), turn, commands if persisted else None),
            counter,
        )
    try:
        for case, _ in cases.values():
            await case.operation()  # warm-up
        for _, counter in cases.values():
            counter.added = 0
        await ainterleave([case for case, _ in cases.values()], repeats=turns, warmup=0, budget=budget)
    finally:
        for manager in managers:
            await manager.close_async()
    return {key: _row(report, case, counter) for key, (case, counter) in cases.items()}


def _row(report: Report, case: Case, counter: _MessageCount) -> Row:
    notes: dict[str, Any] = {"messages_per_turn": per_op(counter.added, len(case.samples))}
    if case.commands is not None:
        notes["commands"] = case.commands_by_name()
    return report.add(Row(GROUP, case.name, time=summarize(case.samples), commands=case.commands_per_op(), notes=notes))
