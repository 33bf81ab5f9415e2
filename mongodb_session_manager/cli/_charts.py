"""Terminal output of the usage commands: number formatting and a small bar chart (plain text)."""

from __future__ import annotations

from collections.abc import Sequence

# Eighths of a block, for bars with sub-character resolution.
_BLOCKS = " ▏▎▍▌▋▊▉█"
BAR_WIDTH = 24


def bar(value: float, largest: float, width: int = BAR_WIDTH) -> str:
    """``value`` as a bar of at most ``width`` characters, ``largest`` filling it."""
    if largest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / largest * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[rest] if rest else "")


def compact(value: float | None) -> str:
    """1234 -> ``1.2k``, 2500000 -> ``2.5M``; None -> ``-``."""
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]) -> list[str]:
    """One line per label with a bar per series, each series scaled to its own largest value::

    2026-11-01  tokens ████████████▌            12.5k  turns ██████▏                  31
    """
    label_width = max((len(label) for label in labels), default=0)
    largest = [max(values, default=0) for _, values in series]
    lines = []
    for index, label in enumerate(labels):
        cells = []
        for (name, values), top in zip(series, largest, strict=True):
            value = values[index]
            cells.append(f"{name} {bar(value, top).ljust(BAR_WIDTH)} {compact(value):>6}")
        lines.append(f"{label.ljust(label_width)}  " + "  ".join(cells))
    return lines
