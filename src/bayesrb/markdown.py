"""Markdown output shared by the reports (the per-rule benchmark table, the metrics summary)."""

from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a header and rows of cells (already formatted) as a Markdown table, without a trailing newline."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
