"""HTML primitives of the report: escaping, tables, and figures embedded as PNG data URIs."""

from __future__ import annotations

import base64
import html
import io


def _png(figure) -> str:
    """A figure as an ``<img>`` with a base64 data URI: the report stays one file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _table(header: list[str], rows: list[list], numeric=None) -> str:
    """An HTML table; every cell is escaped (labels and texts come from the user).

    ``numeric``: the columns aligned right as numbers (default: all but the first)."""
    numeric = set(range(1, len(header))) if numeric is None else set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{"num" if j in numeric else "txt"}">{_e(cell)}</td>' for j, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
