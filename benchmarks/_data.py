"""Synthetic conversations and the tool used by the benchmarks."""

from __future__ import annotations

from strands import tool
from strands.types.content import Message


@tool
def lookup(order_id: str) -> str:
    """Look up the status of an order.

    Args:
        order_id: The order number.
    """
    return f"order {order_id}: shipped"


def _text(role: str, value: str) -> Message:
    return {"role": role, "content": [{"text": value}]}


def conversation(count: int) -> list[Message]:
    """``count`` messages (about 250 bytes each): question/answer pairs, every eighth exchange a tool call."""
    messages: list[Message] = []
    exchange = 0
    while len(messages) < count:
        left = count - len(messages)
        if exchange % 8 == 7 and left >= 4:
            use_id = f"tooluse_{exchange}"
            messages.append(_text("user", f"#{exchange} Where is my order {exchange}?"))
            messages.append(
                {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": use_id, "name": "lookup", "input": {"order_id": str(exchange)}}}
                    ],
                }
            )
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"toolResult": {"toolUseId": use_id, "status": "success", "content": [{"text": "shipped"}]}}
                    ],
                }
            )
            messages.append(_text("assistant", f"Order {exchange} has shipped and should arrive soon."))
        elif left >= 2:
            messages.append(_text("user", f"#{exchange} " + "Could you tell me more about that? " * 5))
            messages.append(_text("assistant", f"#{exchange} " + "Here is a longer explanation. " * 6))
        else:
            messages.append(_text("user", f"#{exchange} One more question."))
        exchange += 1
    return messages
