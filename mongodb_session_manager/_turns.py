"""One conversation, one turn at a time: the turn marker stored on message documents.

A turn (one ``agent(...)`` / ``invoke_async`` call) claims the conversation with its first insert:
the prompt is stored at the id right after the tail this manager knows, carrying an open ``turn``
marker (holder, ``open_until``). The unique ``(session_id, agent_id, message_id)`` index makes that
insert a compare-and-swap: it fails if any other writer appended since. Every later message of the
turn renews the marker; the final answer (an assistant message without ``toolUse``) is stored
without one, which closes the turn for free. A turn that ends otherwise (an error, a cancellation,
an interrupt) removes the marker of its last message at ``AfterInvocationEvent``; a holder that died
leaves a marker that lapses at ``open_until``.

A writer that loses the compare-and-swap, or finds the tail held, waits (bounded) until the tail is
free, then continues from the stored conversation; an interrupted turn's leftovers (an unanswered
prompt, a ``toolUse`` without its result) are answered by stored repair messages marked
``turn.repair``, so roles alternate and nothing stored is deleted or renumbered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from strands.types.content import Message

from ._codec import utc_now
from ._types import Document
from .retention import as_utc

TURN_FIELD = "turn"
DEFAULT_TURN_WAIT = 30.0
"""Seconds a turn waits for another turn of the same session and agent before ``SessionBusyError``."""
DEFAULT_TURN_LEASE = 120.0
"""Seconds a turn's marker holds the conversation after its latest message (renewed by each message)."""

INTERRUPTED_TEXT = "[This turn was interrupted before an answer was stored.]"
INTERRUPTED_TOOL_TEXT = "[The tool call was interrupted; no result was stored.]"


def closes_turn(message: Mapping[str, Any]) -> bool:
    """Whether a conversation ending with ``message`` is complete: an assistant answer without ``toolUse``."""
    content = message.get("content") or []
    return message.get("role") == "assistant" and not any("toolUse" in block for block in content)


def open_marker(holder: str, lease: float) -> Document:
    return {TURN_FIELD: {"holder": holder, "open_until": utc_now() + timedelta(seconds=lease)}}


def held_by_another(extra: Mapping[str, Any] | None, holder: str | None, now: datetime | None = None) -> bool:
    """Whether a stored message's ``turn`` marker still holds the conversation for another turn."""
    marker = (extra or {}).get(TURN_FIELD)
    if not isinstance(marker, Mapping) or marker.get("holder") == holder:
        return False
    until = marker.get("open_until")
    return isinstance(until, datetime) and as_utc(until) > (now or utc_now())


def repairs_after(tail: Mapping[str, Any]) -> list[Message]:
    """Messages that answer what an interrupted turn left at the end of the conversation, so that a
    new prompt can follow: an assistant note after an unanswered user message; an error
    ``toolResult`` for each unanswered ``toolUse``, then the note."""
    if closes_turn(tail):
        return []
    note: Message = {"role": "assistant", "content": [{"text": INTERRUPTED_TEXT}]}
    if tail.get("role") == "user":
        return [note]
    tool_uses = [block["toolUse"] for block in tail.get("content") or [] if "toolUse" in block]
    results: Message = {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": tool_use["toolUseId"],
                    "status": "error",
                    "content": [{"text": INTERRUPTED_TOOL_TEXT}],
                }
            }
            for tool_use in tool_uses
        ],
    }
    return [results, note]


def repair_fields(kind: str) -> Document:
    return {TURN_FIELD: {"repair": kind}}


def _tool_use_ids(message: Mapping[str, Any]) -> set[str]:
    return {block["toolUse"]["toolUseId"] for block in message.get("content") or [] if "toolUse" in block}


def only_tool_results(message: Mapping[str, Any]) -> bool:
    """A user message made of ``toolResult`` blocks only (as Strands appends to answer an interrupted
    ``toolUse`` before an invocation starts)."""
    content = message.get("content") or []
    return message.get("role") == "user" and bool(content) and all("toolResult" in block for block in content)


def answers(tail: Mapping[str, Any], message: Mapping[str, Any]) -> bool:
    """Whether ``message`` holds the results of every ``toolUse`` of ``tail``."""
    uses = _tool_use_ids(tail)
    results = {block["toolResult"]["toolUseId"] for block in message.get("content") or [] if "toolResult" in block}
    return bool(uses) and uses <= results
