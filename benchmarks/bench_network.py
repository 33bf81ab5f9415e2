"""The factory, restore, turn and HTTP figures against a "remote" MongoDB: TLS, SCRAM, added latency.

For each round-trip time (0 = loopback, 2 ms, 10 ms; ``benchmarks._latency_proxy``), a fresh local
test server serving TLS only (certificate from a throwaway CA made for the run) and requiring SCRAM
authentication (``benchmarks._network``). Every client, ours and the baselines, connects through the
proxy with the same URI. Per RTT:

* factory: ``create_session_manager`` + ``get_metadata()`` + ``close()`` vs a new
  ``MongoDBSessionManager(connection_string=...)`` per request (its own client: TLS handshake, SCRAM,
  server discovery) vs a raw warm ``MongoClient.find_one`` (the floor) and a raw warm
  ``AsyncMongoClient.find_one`` run on a loop thread the caller blocks on (the floor of any sync API
  over an async driver);
* restore 1,000 messages: an ``Agent`` restoring through the factory, the library's message read
  alone, a raw ``find`` of the same documents, and the same 1,000 messages stored in other layouts:
  one document with an array (the original v0.9 layout) and buckets of 100 messages per document;
* turns: a text turn (2 messages) and a tool turn (4 messages) through the sync API, with the
  factory's manager (pipelined writes, the default, and ``pipelined_writes=False``) vs no session
  manager, with a model that answers at once and one that takes 20 ms per call (any real model takes
  longer); the overhead is given in measured round trips;
* HTTP (64 sessions): ``examples/fastapi_app.py`` vs the per-request-client app, as in ``bench_http``.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

from . import bench_http
from ._common import AsyncClientThread, Case, CommandCounter, Context, Row, interleave, relate, summarize
from ._data import conversation, lookup
from ._network import RemoteMongoDB, remote_mongodb
from .bench_turns import _new_agent, _script_turn

NAME = "network"
COLLECTION = "sessions"
AGENT_ID = "assistant"
RTTS_MS = (0.0, 2.0, 10.0)
RESTORE_SIZE = 1_000
BUCKET_SIZE = 100
# Seconds per model call of the "slow model" turns: less than any real model, more than the round trip.
SLOW_MODEL = 0.020


def run(ctx: Context, rtts: tuple[float, ...] = RTTS_MS, *, http: bool = True) -> None:
    if ctx.external_uri is not None:
        print("network: skipped with MONGODB_URI (it needs the local test server)")
        return
    results: dict[float, dict[str, Any]] = {}
    for rtt in rtts:
        with remote_mongodb(ctx, rtt) as remote:
            results[rtt] = _run_rtt(ctx, remote, http=http)
    _targets(ctx, results)


def _group(remote: RemoteMongoDB, what: str) -> str:
    return f"{what}, TLS+auth, rtt {remote.rtt_ms:g}ms"


def _run_rtt(ctx: Context, remote: RemoteMongoDB, *, http: bool) -> dict[str, Any]:
    uri = remote.uri
    database = f"bench_network_{int(remote.rtt_ms)}"
    commands = CommandCounter()
    result: dict[str, Any] = {"measured_rtt_ms": remote.measured_rtt_ms}
    ctx.report.add(
        Row(
            _group(remote, "network"),
            "ping through a warm client (measured round trip)",
            value=round(remote.measured_rtt_ms, 2),
            unit="ms",
            commands=1,
        )
    )
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name=COLLECTION, event_listeners=[commands]
    )
    raw = MongoClient(uri)
    try:
        result.update(_factory(ctx, remote, factory, raw, database, commands))
        result.update(_restore(ctx, remote, factory, raw, database, commands))
        result.update(_turns(ctx, remote, factory, commands))
    finally:
        raw.close()
        factory.close()
    if http:
        result.update(_http(ctx, remote))
    return result


def _factory(
    ctx: Context,
    remote: RemoteMongoDB,
    factory: MongoDBSessionManagerFactory,
    raw: MongoClient[Any],
    database: str,
    commands: CommandCounter,
) -> dict[str, Any]:
    group = _group(remote, "factory")
    ids = itertools.count()
    sessions = raw[database][COLLECTION]
    client_commands = CommandCounter()

    def with_factory() -> None:
        manager = factory.create_session_manager(f"req-{next(ids)}")
        manager.get_metadata()
        manager.close()

    def floor() -> None:
        sessions.find_one({"_id": f"req-{next(ids)}"}, {"metadata": 1})

    async_client = AsyncClientThread(remote.uri)
    async_sessions = async_client.client[database][COLLECTION]

    def async_floor() -> None:
        async_client.run(async_sessions.find_one({"_id": f"req-{next(ids)}"}, {"metadata": 1}))

    def per_request() -> None:
        manager = MongoDBSessionManager(
            f"req-{next(ids)}",
            connection_string=remote.uri,
            database_name=database,
            collection_name=COLLECTION,
            event_listeners=[client_commands],
        )
        manager.get_metadata()
        manager.close()

    fast = [
        Case("factory: create + get_metadata + close", with_factory, commands),
        Case("floor: raw PyMongo find_one (warm client)", floor),
        Case("floor: raw AsyncMongoClient find_one on a loop thread, caller blocked (warm client)", async_floor),
    ]
    slow = Case("new client: construct + get_metadata + close", per_request, client_commands)
    try:
        interleave(fast, repeats=ctx.repeats(40, 150), budget=3 if ctx.quick else 8)
        interleave([slow], repeats=ctx.repeats(6, 25), budget=4 if ctx.quick else 12)
    finally:
        async_client.close()
    rows = {case.name: _row(ctx, group, case) for case in (*fast, slow)}
    factory_row, floor_row, async_floor_row, client_row = rows.values()
    relate(async_floor_row, floor_row, "raw find_one")
    factory_over_async = (
        factory_row.time.median / async_floor_row.time.median if factory_row.time and async_floor_row.time else None
    )
    relate(factory_row, floor_row, "raw find_one")
    if factory_over_async is not None:
        factory_row.notes["vs_async_floor"] = f"{factory_over_async:.2f}x"
    relate(client_row, factory_row, "factory")
    return {
        "per_request_over_factory": client_row.ratio,
        "factory_over_floor": factory_row.ratio,
        "async_floor_over_floor": async_floor_row.ratio,
        "factory_over_async_floor": factory_over_async,
        "factory_ms": factory_row.time.median * 1e3 if factory_row.time else None,
        "per_request_ms": client_row.time.median * 1e3 if client_row.time else None,
    }


def _restore(
    ctx: Context,
    remote: RemoteMongoDB,
    factory: MongoDBSessionManagerFactory,
    raw: MongoClient[Any],
    database: str,
    commands: CommandCounter,
) -> dict[str, Any]:
    group = _group(remote, f"restore {RESTORE_SIZE:,} msgs")
    session_id = f"restore-{RESTORE_SIZE}"
    seed = factory.create_session_manager(session_id)
    Agent(
        model=ScriptedModel(default_text="ok"),
        agent_id=AGENT_ID,
        tools=[lookup],
        messages=conversation(RESTORE_SIZE),
        session_manager=seed,
        callback_handler=None,
    )
    seed.close()
    messages = raw[database][COLLECTION + ".messages"]
    query = {"session_id": session_id, "agent_id": AGENT_ID}
    sort = [("session_id", 1), ("agent_id", 1), ("message_id", 1)]
    stored = list(messages.find(query, {"_id": 0}, sort=sort))
    # The same documents in the other layouts: one document with an array, and bounded buckets.
    embedded = raw[database]["layout_embedded"]
    embedded.insert_one({"_id": session_id, "agent_id": AGENT_ID, "messages": stored})
    buckets = raw[database]["layout_buckets"]
    buckets.create_index([("session_id", 1), ("agent_id", 1), ("bucket", 1)])
    buckets.insert_many(
        [
            {
                "session_id": session_id,
                "agent_id": AGENT_ID,
                "bucket": start // BUCKET_SIZE,
                "messages": stored[start : start + BUCKET_SIZE],
            }
            for start in range(0, len(stored), BUCKET_SIZE)
        ]
    )
    counts: list[int] = []

    def restore() -> None:
        manager = factory.create_session_manager(session_id)
        agent = Agent(
            model=ScriptedModel(default_text="ok"),
            agent_id=AGENT_ID,
            tools=[lookup],
            session_manager=manager,
            callback_handler=None,
        )
        counts.append(len(agent.messages))
        manager.close()

    repository = factory.create_session_manager(session_id).repository

    def library_read() -> None:
        counts.append(len(repository.runtime.run_blocking(repository.list_messages, session_id, AGENT_ID)))

    def floor() -> None:
        counts.append(len(list(messages.find(query, {"_id": 0}, sort=sort, batch_size=100_000))))

    def one_document() -> None:
        document = embedded.find_one({"_id": session_id})
        counts.append(len(document["messages"]) if document else 0)

    def bucketed() -> None:
        cursor = buckets.find(
            {"session_id": session_id, "agent_id": AGENT_ID},
            {"_id": 0, "messages": 1},
            sort=[("session_id", 1), ("agent_id", 1), ("bucket", 1)],
            batch_size=100_000,
        )
        counts.append(sum(len(document["messages"]) for document in cursor))

    cases = [
        Case("library restore (sync Agent init)", restore, commands),
        Case("part: repository.list_messages", library_read, commands),
        Case("floor: raw find, one document per message (our layout)", floor),
        Case("layout: one document with an array (v0.9), find_one", one_document),
        Case(f"layout: buckets of {BUCKET_SIZE} messages, find", bucketed),
    ]
    interleave(cases, repeats=ctx.repeats(6, 25), budget=5 if ctx.quick else 20)
    if set(counts) != {RESTORE_SIZE}:
        raise AssertionError(f"restore read {sorted(set(counts))} messages, expected {RESTORE_SIZE}")
    rows = [_row(ctx, group, case) for case in cases]
    restore_row, read_row, floor_row, embedded_row, bucket_row = rows
    for row in (restore_row, read_row, bucket_row, floor_row):
        relate(row, embedded_row, "one document")
    return {
        "restore_over_embedded": restore_row.ratio,
        "read_over_embedded": read_row.ratio,
        "floor_over_embedded": floor_row.ratio,
        "buckets_over_embedded": bucket_row.ratio,
        "restore_ms": restore_row.time.median * 1e3 if restore_row.time else None,
        "embedded_ms": embedded_row.time.median * 1e3 if embedded_row.time else None,
        "buckets_ms": bucket_row.time.median * 1e3 if bucket_row.time else None,
    }


def _turns(
    ctx: Context, remote: RemoteMongoDB, factory: MongoDBSessionManagerFactory, commands: CommandCounter
) -> dict[str, Any]:
    group = _group(remote, "turns")
    ids = itertools.count()
    cases: list[Case] = []
    managers: list[MongoDBSessionManager] = []
    variants: tuple[tuple[str, bool | None], ...] = (
        ("no session manager", None),
        ("factory manager, pipelined_writes=False", False),
        ("factory manager, pipelined_writes=True (default)", True),
    )
    models = (("model answering at once", 0.0), (f"model taking {SLOW_MODEL * 1e3:g} ms", SLOW_MODEL))
    for kind in ("text", "tool"):
        for model_label, delay in models:
            for label, pipelined in variants:
                manager = None
                if pipelined is not None:
                    manager = factory.create_session_manager(f"turns-{next(ids)}", pipelined_writes=pipelined)
                    managers.append(manager)
                agent, model, _ = _new_agent(manager, model_delay=delay)

                def turn(agent: Agent = agent, model: ScriptedModel = model, kind: str = kind) -> None:
                    _script_turn(model, kind)
                    agent("Where is my order?")

                name = f"{kind} turn, agent(...), {model_label}, {label}"
                cases.append(Case(name, turn, commands if manager else None))
    try:
        interleave(cases, repeats=ctx.repeats(20, 60), budget=8 if ctx.quick else 30)
    finally:
        for manager in managers:
            manager.close()
    rows = [_row(ctx, group, case) for case in cases]
    result: dict[str, Any] = {}
    for index, (kind, model_key) in enumerate(itertools.product(("text", "tool"), ("", "_slow"))):
        bare, awaited, pipelined = rows[3 * index : 3 * index + 3]
        for row, suffix in ((awaited, "_awaited"), (pipelined, "_pipelined")):
            relate(row, bare, "no session manager")
            if bare.time is None or row.time is None:
                continue
            overhead = row.time.median - bare.time.median
            rtts = overhead * 1e3 / remote.measured_rtt_ms
            row.notes["overhead"] = f"{overhead * 1e3:.2f}ms = {rtts:.2f} rtt"
            result[f"{kind}{model_key}_overhead_rtt{suffix}"] = rtts
            result[f"{kind}{model_key}_overhead_ms{suffix}"] = overhead * 1e3
            result[f"{kind}{model_key}_commands{suffix}"] = row.commands
    return result


def _http(ctx: Context, remote: RemoteMongoDB) -> dict[str, Any]:
    phases = 1 if ctx.quick else 2
    duration = 3.0 if ctx.quick else 5.0
    variants = bench_http.VARIANTS
    with contextlib.ExitStack() as stack:
        servers = {
            variant: stack.enter_context(
                bench_http._Server(ctx, variant, remote.uri, f"bench_http_{variant.replace('-', '_')}")
            )
            for variant in variants
        }
        for phase in range(phases):
            for variant in variants:
                servers[variant].drive(duration, warm=phase == 0)
        results = {variant: servers[variant].result() for variant in variants}
    group = _group(remote, "http, 64 sessions")
    rows = {}
    for variant, result in results.items():
        completed = result["requests"]
        latencies = result["latencies"]
        errors = sum(result["transport_errors"].values()) + sum(result["http_errors"].values())
        rows[variant] = ctx.report.add(
            Row(
                group,
                bench_http.LABELS[variant] + ": requests/s",
                value=round(result["rps"], 1),
                unit="req/s",
                commands=result["commands"] / completed if completed else None,
                notes={
                    "p50": f"{summarize(latencies).median * 1e3:.0f}ms" if latencies else "-",
                    "requests": completed,
                    "errors": errors,
                    "peak_mongo_conns": result["peak_connections"],
                    "new_pool_conns_per_req": round(result["connections_created"] / completed, 2)
                    if completed
                    else None,
                    "cpu_ms_per_req": result["cpu_ms_per_request"],
                },
            )
        )
    factory, per_request = results["factory"], results["per-request"]
    ratio = factory["rps"] / per_request["rps"] if per_request["rps"] else float("inf")
    rows["factory"].ratio = ratio
    rows["factory"].baseline = "per-request req/s"
    return {
        "http_ratio": ratio,
        "http_factory_rps": factory["rps"],
        "http_per_request_rps": per_request["rps"],
        "http_errors": sum(
            sum(result["transport_errors"].values()) + sum(result["http_errors"].values())
            for result in results.values()
        ),
    }


def _row(ctx: Context, group: str, case: Case) -> Row:
    notes: dict[str, Any] = {}
    if case.commands is not None:
        notes["commands"] = case.commands_by_name()
    return ctx.report.add(
        Row(group, case.name, time=summarize(case.samples), commands=case.commands_per_op(), notes=notes)
    )


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _targets(ctx: Context, results: dict[float, dict[str, Any]]) -> None:
    report = ctx.report
    if 2.0 in results:
        at2 = results[2.0]
        ratio = at2.get("per_request_over_factory")
        http = at2.get("http_ratio")
        report.target(
            "factory vs per-request client, 2 ms RTT, TLS+auth",
            ">= 10x (construct + get_metadata + close)",
            f"{_fmt(ratio)}x ({_fmt(at2.get('per_request_ms'), '.2f')} vs {_fmt(at2.get('factory_ms'), '.2f')} ms)",
            None if ratio is None else ratio >= 10,
        )
        if http is not None:
            report.target(
                "HTTP throughput, 2 ms RTT, TLS+auth",
                ">= 10x per-request client",
                f"{at2['http_factory_rps']:.0f} vs {at2['http_per_request_rps']:.0f} req/s = {http:.1f}x, "
                f"failed requests {at2['http_errors']}",
                http >= 10 and at2["http_errors"] == 0,
            )
    over_floor = {rtt: result.get("factory_over_floor") for rtt, result in results.items()}
    if over_floor:
        report.target(
            "factory request vs raw warm find_one, TLS+auth",
            "<= 1.3x at every RTT",
            ", ".join(
                f"{rtt:g} ms: {_fmt(value, '.2f')}x (raw async find_one behind a hop: "
                f"{_fmt(results[rtt].get('async_floor_over_floor'), '.2f')}x; ours over that: "
                f"{_fmt(results[rtt].get('factory_over_async_floor'), '.2f')}x)"
                for rtt, value in over_floor.items()
            ),
            all(value is not None and value <= 1.3 for value in over_floor.values()),
        )
    if 10.0 in results:
        at10 = results[10.0]
        for model_key, model_label in (
            ("_slow", f"a model taking {SLOW_MODEL * 1e3:g} ms"),
            ("", "a model answering at once"),
        ):
            overhead = at10.get(f"tool{model_key}_overhead_rtt_pipelined")
            report.target(
                f"tool turn overhead at 10 ms RTT, {model_label}",
                "<= 1.5 RTT over no session manager, round trips not above 4",
                f"default (pipelined): {_fmt(overhead, '.2f')} RTT "
                f"({_fmt(at10.get(f'tool{model_key}_overhead_ms_pipelined'), '.1f')} ms at a measured "
                f"{at10['measured_rtt_ms']:.1f} ms RTT), "
                f"{_fmt(at10.get(f'tool{model_key}_commands_pipelined'), '.2f')} cmds/turn; pipelined_writes=False: "
                f"{_fmt(at10.get(f'tool{model_key}_overhead_rtt_awaited'), '.2f')} RTT, "
                f"{_fmt(at10.get(f'tool{model_key}_commands_awaited'), '.2f')} cmds/turn",
                None if overhead is None else overhead <= 1.5,
            )
    embedded = {rtt: result.get("restore_over_embedded") for rtt, result in results.items()}
    if embedded:
        report.target(
            "restore 1,000 msgs vs one-document layout, TLS+auth",
            "ratio reported at each RTT (below 1: ours faster)",
            "; ".join(
                f"{rtt:g} ms: restore {_fmt(value, '.2f')}x, "
                f"read {_fmt(results[rtt].get('read_over_embedded'), '.2f')}x, "
                f"buckets of {BUCKET_SIZE} {_fmt(results[rtt].get('buckets_over_embedded'), '.2f')}x"
                for rtt, value in embedded.items()
            ),
            None,
        )


__all__ = ["run"]
