"""Rendering for the CLI: JSON for machines, rich tables for people, one-line errors.

JSON is the default whenever stdout is not a terminal, so scripts and the Pulumi command always get
a parseable document. Nothing here ever prints a token: callers pass only what may be shown.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

FORMATS = ("json", "table")


def choose_format(requested: str | None, *, isatty: bool | None = None) -> str:
    """``requested`` if given (validated), else ``table`` on a terminal and ``json`` otherwise."""
    if requested:
        value = requested.strip().lower()
        if value not in FORMATS:
            raise ValueError(
                f"--output: {requested!r} is not allowed; use one of {', '.join(FORMATS)}"
            )
        return value
    tty = sys.stdout.isatty() if isatty is None else isatty
    return "table" if tty else "json"


def jsonable(value: Any) -> Any:
    """Convert boto3 values (datetimes, nested dicts) to plain JSON types."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def to_json(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, sort_keys=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return "\n".join(_cell(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return json.dumps(jsonable(value), sort_keys=True)
    return str(jsonable(value))


def emit(
    value: Any, fmt: str, *, columns: Sequence[str] | None = None, title: str | None = None
) -> None:
    """Print ``value`` (a dict or a list of dicts) in ``fmt`` to stdout."""
    if fmt == "json":
        sys.stdout.write(to_json(value) + "\n")
        sys.stdout.flush()
        return
    from rich.console import Console  # lazy: rich costs ~0.3 s of start-up, JSON needs none of it

    console = Console()
    if isinstance(value, list):
        console.print(rows_table(value, columns, title=title))
    else:
        console.print(record_table(value, title=title))


def rows_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None, *, title: str | None = None
) -> Table:
    from rich.table import Table

    rows = list(rows)
    cols = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title, show_lines=False)
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in cols))
    return table


def record_table(record: Mapping[str, Any], *, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, val in jsonable(record).items():
        table.add_row(key, _cell(val))
    return table


def error_line(summary: str, detail: str | None = None) -> str:
    """One readable line: ``error: <summary>: <detail>`` (detail is usually the service message)."""
    text = f"error: {summary}"
    if detail:
        text += f": {detail}"
    return " ".join(text.split())  # never more than one line


def print_error(summary: str, detail: str | None = None) -> None:
    sys.stderr.write(error_line(summary, detail) + "\n")
    sys.stderr.flush()
