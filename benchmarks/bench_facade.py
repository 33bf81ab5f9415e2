"""The sync facade's cost: a blocking call vs the same call awaited, per call.

* The pure hop: a coroutine that does no I/O, run through ``runtime.run_blocking`` from the main thread
  (what every blocking method does), and awaited through ``runtime.run`` from another event loop
  (what every ``*_async`` method does when the caller's loop is not the client's), vs awaiting it
  directly.
* With I/O: ``manager.get_metadata()`` vs ``await manager.get_metadata_async()`` awaited on the
  client's own loop (no hop). Batches of ``BATCH`` sequential calls, timed as a whole (so that the
  loop's work after each call counts in both), alternating one batch of each so that noise hits both
    alike; the overhead is the median of the paired per-call differences. Also
  ``await manager.get_metadata_async()`` from another loop (asyncio.run in the main thread), which
  hops both ways.
* A diagnosis of the difference between the two: the same hop around a coroutine that sleeps
  0.5 ms (``asyncio.sleep``, no I/O), so that the client loop's thread blocks in between as it does
  while waiting for a reply.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from mongodb_session_manager import MongoDBSessionManagerFactory

from ._common import CommandCounter, Context, Row, per_op, relate, repeat, run_async, summarize

NAME = "facade"
GROUP = "sync facade"
BUDGET_US = 150.0
BATCH = 10


async def _noop() -> None:
    return None


SLEEP = 0.0005


async def _nap() -> None:
    await asyncio.sleep(SLEEP)


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        _run(ctx, uri, database)


def _run(ctx: Context, uri: str, database: str) -> None:
    report = ctx.report
    quick = ctx.quick
    commands = CommandCounter()
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name="sessions", event_listeners=[commands]
    )
    try:
        manager = factory.create_session_manager("facade")
        manager.update_metadata({"status": "active", "priority": "high"})
        runtime = manager.repository.runtime

        # -- the pure hop (no I/O) ---------------------------------------------------------------
        inner = 200
        repeats = 15 if quick else 60

        async def direct_batch() -> list[float]:
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(inner):
                    await _noop()
                samples.append((time.perf_counter() - t0) / inner)
            return samples

        direct = report.add(Row(GROUP, "await noop() directly (no hop)", time=summarize(run_async(direct_batch()))))
        sync_hop = report.add(
            Row(
                GROUP,
                "runtime.run_blocking(noop): blocking hop to the client loop",
                time=summarize(repeat(lambda: runtime.run_blocking(_noop), repeats=repeats, inner=inner, warmup=1)),
            )
        )

        async def async_hop_batch() -> list[float]:
            samples = []
            await runtime.run(_noop)
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(inner):
                    await runtime.run(_noop)
                samples.append((time.perf_counter() - t0) / inner)
            return samples

        async_hop = report.add(
            Row(
                GROUP,
                "await runtime.run(noop) from another loop: async hop",
                time=summarize(run_async(async_hop_batch())),
            )
        )

        # -- the hop around a coroutine during which the client loop's thread sleeps --------------
        async def naps_on_home_loop() -> float:
            t0 = time.perf_counter()
            for _ in range(BATCH):
                await _nap()
            return (time.perf_counter() - t0) / BATCH

        def blocking_naps() -> float:
            t0 = time.perf_counter()
            for _ in range(BATCH):
                runtime.run_blocking(_nap)
            return (time.perf_counter() - t0) / BATCH

        nap_pairs = 15 if quick else 60
        nap_home: list[float] = []
        nap_sync: list[float] = []
        for _ in range(nap_pairs):
            nap_sync.append(blocking_naps())
            nap_home.append(runtime.run_blocking(naps_on_home_loop))
        nap_home_row = report.add(Row(GROUP, "await sleep(0.5ms) on the client loop", time=summarize(nap_home)))
        nap_sync_row = report.add(
            Row(GROUP, "runtime.run_blocking(sleep(0.5ms)): blocking hop", time=summarize(nap_sync))
        )
        nap_sync_row.notes["overhead_paired_median"] = (
            f"{statistics.median(a - b for a, b in zip(nap_sync, nap_home, strict=True)) * 1e6:.0f}µs"
        )

        # -- with I/O: get_metadata ----------------------------------------------------------------
        pairs = 15 if quick else 80

        async def awaited_on_home_loop() -> float:
            t0 = time.perf_counter()
            for _ in range(BATCH):
                await manager.get_metadata_async()
            return (time.perf_counter() - t0) / BATCH

        def blocking() -> float:
            t0 = time.perf_counter()
            for _ in range(BATCH):
                manager.get_metadata()
            return (time.perf_counter() - t0) / BATCH

        sync_times: list[float] = []
        home_times: list[float] = []
        differences: list[float] = []
        blocking()
        runtime.run_blocking(awaited_on_home_loop)
        with commands.measure() as sent:
            for _ in range(pairs):
                sync_time = blocking()
                home_time = runtime.run_blocking(awaited_on_home_loop)
                sync_times.append(sync_time)
                home_times.append(home_time)
                differences.append(sync_time - home_time)
        per_call = per_op(sum(sent.values()), 2 * pairs * BATCH)
        home = report.add(
            Row(GROUP, "await get_metadata_async() on the client loop", time=summarize(home_times), commands=per_call)
        )
        sync = report.add(Row(GROUP, "get_metadata() (blocking)", time=summarize(sync_times), commands=per_call))

        async def foreign_loop() -> list[float]:
            async def once() -> Any:
                return await manager.get_metadata_async()

            samples = []
            await once()
            for _ in range(pairs * BATCH // 2):
                t0 = time.perf_counter()
                await once()
                samples.append(time.perf_counter() - t0)
            return samples

        with commands.measure() as sent:
            foreign_samples = run_async(foreign_loop())
        foreign = report.add(
            Row(
                GROUP,
                "await get_metadata_async() from another loop",
                time=summarize(foreign_samples),
                commands=per_op(sum(sent.values()), len(foreign_samples) + 1),
            )
        )
        manager.close()
    finally:
        factory.close()

    relate(sync_hop, direct, "direct await")
    relate(async_hop, direct, "direct await")
    relate(nap_sync_row, nap_home_row, "awaited on client loop")
    relate(sync, home, "awaited on client loop")
    relate(foreign, home, "awaited on client loop")
    paired = statistics.median(differences)
    sync.notes["overhead_paired_median"] = f"{paired * 1e6:.0f}µs"
    hop = (sync_hop.time.median if sync_hop.time else 0.0) - (direct.time.median if direct.time else 0.0)
    report.target(
        "sync-facade overhead",
        f"<= {BUDGET_US:.0f} µs per call",
        f"pure hop {hop * 1e6:.0f} µs; get_metadata() - awaited (paired median) {paired * 1e6:.0f} µs",
        hop * 1e6 <= BUDGET_US and paired * 1e6 <= BUDGET_US,
    )
