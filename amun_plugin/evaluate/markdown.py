"""Result tables as Markdown (numbers formatted once, here)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["markdown_table", "format_value"]


def format_value(value: Any, digits: int = 2) -> str:
    """Floats with ``digits`` decimals, everything else as ``str``; None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], digits: int = 2) -> str:
    """A GitHub-flavoured Markdown table with one line per row, columns in the given order."""
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"
