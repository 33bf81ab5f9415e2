"""CI smoke run of the benchmarks' network group: round-trip counts only, never times.

One short pass of ``benchmarks.bench_network`` at loopback RTT through the latency proxy, against a
server serving TLS (throwaway CA) and requiring SCRAM auth: it checks that the benchmark plumbing
works end to end and that the library's round trips per operation are what docs/benchmarks.md says.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("cryptography", reason="the bench extra (installed by the dev extra) provides it")

from benchmarks import bench_network
from benchmarks._common import Context, Report, Row

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("MONGODB_URI")), reason="the network benchmark starts its own TLS+auth test server"
)


def _rows(report: Report, group_prefix: str) -> dict[str, Row]:
    return {row.case: row for row in report.rows if row.group.startswith(group_prefix)}


def _commands(row: Row) -> dict[str, float]:
    """Commands per operation, without SCRAM's ``saslContinue`` of pool connections the factory's client
    opens in the background (minPoolSize) while a case runs: not on the request's path."""
    return {name: count for name, count in row.notes["commands"].items() if name != "saslContinue"}


@pytest.mark.timeout(180)
def test_network_group_round_trips() -> None:
    report = Report()
    ctx = Context(quick=True, report=report, smoke=True)
    try:
        bench_network.run(ctx, rtts=(0.0,), http=False)
    finally:
        ctx.stop_all()
    assert not report.errors

    factory = _rows(report, "factory, TLS+auth")
    assert _commands(factory["factory: create + get_metadata + close"]) == {"find": 1.0}
    # A new client per request: SCRAM's saslContinue, the find, and endSessions at close.
    assert factory["new client: construct + get_metadata + close"].notes["commands"] == {
        "endSessions": 1.0,
        "find": 1.0,
        "saslContinue": 1.0,
    }

    restore = _rows(report, "restore 1,000 msgs, TLS+auth")
    assert _commands(restore["library restore (sync Agent init)"]) == {"find": 1.0, "findAndModify": 1.0}
    assert _commands(restore["part: repository.list_messages"]) == {"find": 1.0}

    turns = _rows(report, "turns, TLS+auth")
    for model in ("model answering at once", f"model taking {bench_network.SLOW_MODEL * 1e3:g} ms"):
        awaited = "factory manager, pipelined_writes=False"
        pipelined = "factory manager, pipelined_writes=True (default)"
        assert _commands(turns[f"text turn, agent(...), {model}, {awaited}"]) == {"insert": 2.0}
        assert _commands(turns[f"tool turn, agent(...), {model}, {awaited}"]) == {"insert": 4.0}
        # Pipelined writes group what waits behind the write in flight: never more commands than
        # awaited, and a tool turn makes at least two (its claim, then the rest: tools run once the
        # claim is stored).
        pipelined_text = _commands(turns[f"text turn, agent(...), {model}, {pipelined}"])
        pipelined_tool = _commands(turns[f"tool turn, agent(...), {model}, {pipelined}"])
        assert set(pipelined_text) == set(pipelined_tool) == {"insert"}
        assert 1.0 <= pipelined_text["insert"] <= 2.0
        assert 2.0 <= pipelined_tool["insert"] <= 4.0

    assert {target.name for target in report.targets} >= {
        "factory request vs raw warm find_one, TLS+auth",
        "restore 1,000 msgs vs one-document layout, TLS+auth",
    }
