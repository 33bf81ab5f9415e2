"""The cost of ``encryption=``: a turn, a restore, and CPU per message, with and without encryption.

* turn: ``agent("...")`` on a warm session (two messages stored: the prompt and the answer).
* restore: ``create_session_manager`` + ``Agent(session_manager=...)`` of a 100-message session,
  warm (data key cached) and, with encryption, cold (a new factory each time: its first decrypt
  fetches the data key from the key vault).
* CPU per message: this process's CPU time over a restore, per restored message, and over a turn,
  per stored message (encryption is client-side: the server's CPU is unchanged).

The plain and the encrypted case of each pair are timed round-robin, so that load from elsewhere on
the machine hits them alike; the load average is recorded with the report.
"""

from __future__ import annotations

import os
import time
from typing import Any

from strands import Agent

from mongodb_session_manager import EncryptionOptions, MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

from ._common import Case, CommandCounter, Context, Row, interleave, relate, summarize
from ._data import conversation, lookup

NAME = "encryption"
GROUP = "encryption"
COLLECTION = "sessions"
RESTORED_MESSAGES = 100


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        _run(ctx, uri, database)


def _agent(manager: MongoDBSessionManager, messages: Any = None) -> Agent:
    return Agent(
        model=ScriptedModel(default_text="Your order has shipped and arrives on Tuesday."),
        agent_id="assistant",
        tools=[lookup],
        messages=messages,
        session_manager=manager,
        callback_handler=None,
    )


def _run(ctx: Context, uri: str, database: str) -> None:
    report = ctx.report
    repeats = 15 if ctx.quick else 60
    options = EncryptionOptions(
        kms_providers={"local": {"key": os.urandom(96)}}, key_vault_namespace=f"{database}.__keyVault"
    )
    commands = {"plain": CommandCounter(), "encrypted": CommandCounter()}
    factories = {
        "plain": MongoDBSessionManagerFactory(
            uri, database_name=database, collection_name=COLLECTION, event_listeners=[commands["plain"]]
        ),
        "encrypted": MongoDBSessionManagerFactory(
            uri,
            database_name=database,
            collection_name=COLLECTION + "_enc",
            encryption=options,
            event_listeners=[commands["encrypted"]],
        ),
    }
    try:
        # Seed one restorable session per variant, and one session per variant that the turns grow.
        agents = {}
        for variant, factory in factories.items():
            seed = factory.create_session_manager("restore-me")
            _agent(seed, conversation(RESTORED_MESSAGES))
            seed.close()
            agents[variant] = _agent(factory.create_session_manager("turns"))

        # Process CPU time (every thread: the client's loop thread does the encryption) and messages, per case.
        cpu: dict[str, list[float]] = {}

        def turn(variant: str) -> Any:
            def operation() -> None:
                before = time.process_time()
                agents[variant]("Where is my order 1234? My card ends in 4242.")
                totals = cpu.setdefault(f"stored message, {variant}", [0.0, 0])
                totals[0] += time.process_time() - before
                totals[1] += 2

            return operation

        def restore(variant: str) -> Any:
            def operation() -> None:
                before = time.process_time()
                manager = factories[variant].create_session_manager("restore-me")
                _agent(manager)
                manager.close()
                totals = cpu.setdefault(f"restored message, {variant}", [0.0, 0])
                totals[0] += time.process_time() - before
                totals[1] += RESTORED_MESSAGES

            return operation

        turns = [Case(f"turn, {variant}", turn(variant), commands[variant]) for variant in factories]
        restores = [Case(f"restore {RESTORED_MESSAGES} msgs, {v}", restore(v), commands[v]) for v in factories]
        interleave(turns, repeats=repeats)
        interleave(restores, repeats=repeats)
        rows = {}
        for case in [*turns, *restores]:
            rows[case.name] = report.add(
                Row(GROUP, case.name, time=summarize(case.samples), commands=case.commands_per_op())
            )
        relate(rows["turn, encrypted"], rows["turn, plain"], "plain")
        relate(
            rows[f"restore {RESTORED_MESSAGES} msgs, encrypted"],
            rows[f"restore {RESTORED_MESSAGES} msgs, plain"],
            "plain",
        )

        # A cold restore: a new factory (a new process, or the key cache expired) fetches the data key once.
        def cold_restore(variant: str, counter: CommandCounter) -> Any:
            def operation() -> None:
                with MongoDBSessionManagerFactory(
                    uri,
                    database_name=database,
                    collection_name=COLLECTION + ("_enc" if variant == "encrypted" else ""),
                    encryption=options if variant == "encrypted" else None,
                    event_listeners=[counter],
                ) as cold:
                    _agent(cold.create_session_manager("restore-me"))

            return operation

        cold_counters = {variant: CommandCounter() for variant in factories}
        colds = [
            Case(
                f"restore {RESTORED_MESSAGES} msgs, {variant}, new factory (cold key)",
                cold_restore(variant, cold_counters[variant]),
                cold_counters[variant],
            )
            for variant in factories
        ]
        interleave(colds, repeats=max(5, repeats // 4))
        cold_rows = [
            report.add(Row(GROUP, case.name, time=summarize(case.samples), commands=case.commands_per_op()))
            for case in colds
        ]
        relate(cold_rows[1], cold_rows[0], "plain")

        for name, (seconds, messages) in cpu.items():
            report.add(Row(GROUP, f"CPU per {name}", value=round(seconds / messages * 1e6, 1), unit="µs"))
    finally:
        for factory in factories.values():
            factory.close()
