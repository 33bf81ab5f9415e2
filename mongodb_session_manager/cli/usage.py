"""``usage``: tokens, latency and turns of model calls, grouped and charted."""

from __future__ import annotations

from typing import Any

from ..analytics import USAGE_GROUPINGS, UsageReport, UsageRow
from ._charts import chart, compact
from ._common import EXIT_OK, Context, add_command, metadata_pair, positive_int, table, to_json, when
from ._time_range import add_range


def register(commands: Any) -> None:
    """Add the ``usage`` command to ``commands`` (the top-level subparsers action)."""
    parser = add_command(commands, "usage", _usage, "tokens, latency and turns of model calls (server-side totals)")
    parser.add_argument("--by", choices=USAGE_GROUPINGS, help="group by this (day and hour are UTC, with a chart)")
    add_range(parser)
    parser.add_argument("--session", help="only this session")
    parser.add_argument("--agent", help="only this agent")
    parser.add_argument("--model", help="only this model id")
    parser.add_argument(
        "--metadata", action="append", type=metadata_pair, default=[], metavar="KEY=VALUE", help="session metadata"
    )
    parser.add_argument("--limit", type=positive_int, default=50, help="at most this many rows (default 50)")


def _usage(context: Context) -> int:
    args = context.args
    report = context.catalog.usage(
        by=args.by,
        since=args.since,
        until=args.until,
        metadata=dict(args.metadata) or None,
        session_id=args.session,
        agent_id=args.agent,
        model=args.model,
        limit=args.limit,
    )
    if context.json:
        context.out(to_json(report.to_dict()))
        return EXIT_OK
    for line in render(report):
        context.out(line)
    return EXIT_OK


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _cells(row: UsageRow) -> list[str]:
    return [
        str(row.calls),
        str(row.turns),
        compact(row.input_tokens),
        compact(row.output_tokens),
        compact(row.total_tokens),
        _ms(row.latency_p50_ms),
        _ms(row.latency_p95_ms),
        str(row.tool_calls),
        str(row.tool_errors),
    ]


def render(report: UsageReport) -> list[str]:
    """The text output: a table, a total line, and for day/hour a bar chart of tokens and turns."""
    headers = [
        (report.by or "range").upper(),
        "CALLS",
        "TURNS",
        "IN",
        "OUT",
        "TOKENS",
        "P50 MS",
        "P95 MS",
        "TOOLS",
        "ERR",
    ]
    rows = [[row.key or "-", *_cells(row)] for row in report.rows]
    if report.by is None:
        rows = []
    lines = table(headers, [*rows, ["TOTAL", *_cells(report.total)]])
    if rows:
        lines.insert(-1, "")
    if report.truncated:
        lines.append(f"(first {len(report.rows)} rows; raise --limit for more)")
    lines.append(f"calls from {when(report.total.first_at)} to {when(report.total.last_at)}")
    if report.by in ("day", "hour") and report.rows:
        lines.append("")
        lines.extend(
            chart(
                [row.key or "-" for row in report.rows],
                [
                    ("tokens", [row.total_tokens for row in report.rows]),
                    ("turns", [row.turns for row in report.rows]),
                ],
            )
        )
    return lines
