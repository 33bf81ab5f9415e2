"""``guardrails``: guardrail interventions by policy, session, agent, action or over time."""

from __future__ import annotations

from typing import Any

from ..analytics import GUARDRAIL_GROUPINGS, GuardrailReport
from ._charts import chart
from ._common import EXIT_OK, Context, add_command, metadata_pair, positive_int, table, to_json, when
from ._time_range import add_range


def register(commands: Any) -> None:
    """Add the ``guardrails`` command to ``commands`` (the top-level subparsers action)."""
    parser = add_command(commands, "guardrails", _guardrails, "guardrail interventions (redactions) and their policies")
    parser.add_argument("--by", choices=GUARDRAIL_GROUPINGS, default="policy", help="group by this (default policy)")
    add_range(parser)
    parser.add_argument("--session", help="only this session")
    parser.add_argument("--agent", help="only this agent")
    parser.add_argument(
        "--metadata", action="append", type=metadata_pair, default=[], metavar="KEY=VALUE", help="session metadata"
    )
    parser.add_argument("--limit", type=positive_int, default=50, help="at most this many rows (default 50)")


def _guardrails(context: Context) -> int:
    args = context.args
    report = context.catalog.guardrail_interventions(
        by=args.by,
        since=args.since,
        until=args.until,
        metadata=dict(args.metadata) or None,
        session_id=args.session,
        agent_id=args.agent,
        limit=args.limit,
    )
    if context.json:
        context.out(to_json(report.to_dict()))
        return EXIT_OK
    for line in render(report):
        context.out(line)
    return EXIT_OK


def render(report: GuardrailReport) -> list[str]:
    """A table of interventions (with per-policy counts unless grouped by policy) and, over time, a chart."""
    rows = [
        [
            row.key or "(none)",
            str(row.interventions),
            ", ".join(f"{name}={count}" for name, count in row.policies.items()) or "-",
            when(row.last_at),
        ]
        for row in report.rows
    ]
    headers = [report.by.upper(), "INTERVENTIONS", "POLICIES", "LAST"]
    if report.by == "policy":
        rows = [row[:2] + row[3:] for row in rows]
        headers = [headers[0], headers[1], headers[3]]
    lines = table(headers, rows)
    lines.append(f"total interventions: {report.total}")
    if report.by in ("day", "hour") and report.rows:
        lines.append("")
        lines.extend(chart([row.key or "-" for row in report.rows], [("", [row.interventions for row in report.rows])]))
    return lines
