"""What every command shares: the global options (``Globals``), the consoles, messages,
progress bars, JSON output, and the Typer group factory.

Only typer, rich and the standard library are imported here, as everywhere in ``imgfix.cli``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)
out = Console()


def group(help: str) -> typer.Typer:
    """A Typer app for a command group (and the root): no completion, plain tracebacks."""
    return typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # help texts are plain: "[runs/NAME]" is a default, not a style
        help=help,
    )


@dataclass
class Globals:
    """The options given before the command, shared by every command through ``ctx.obj``."""

    device: str = "auto"
    seed: int | None = None
    quiet: bool = False
    json: bool = False
    debug: bool = False
    zoo: Path | None = None
    runtime: str = "auto"
    threads: int | None = None

    @property
    def settings(self) -> Any:
        """The ``runtime.Settings`` that loading a model for inference takes."""
        from imgfix.runtime import Settings

        return Settings(self.device, self.runtime, self.threads, self.seed)

    @property
    def chatty(self) -> bool:
        """Progress bars and informational messages: not with --quiet, and not with --json."""
        return not (self.quiet or self.json)


_last = Globals()  # main() reads --debug after the command has failed and its context is gone


def remember(options: Globals) -> None:
    """Keep the global options of this invocation for ``main``'s error handling."""
    global _last
    _last = options


def last_options() -> Globals:
    return _last


def options_of(ctx: typer.Context) -> Globals:
    return ctx.obj if isinstance(ctx.obj, Globals) else _last


def say(g: Globals, text: str) -> None:
    if g.chatty:
        err.print(text, markup=False, highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    print(f"imgfix: warning: {text}", file=sys.stderr, flush=True)


def emit_json(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    # JSON is UTF-8 whatever the locale. A file name that is not UTF-8 (Linux names are bytes)
    # holds lone surrogates, which become \udcXX escapes: they decode back to the same string,
    # and os.fsencode gives the name's own bytes.
    payload = text.encode("utf-8", "backslashreplace")
    buffer = getattr(sys.stdout, "buffer", None)
    sys.stdout.flush()
    if buffer is None:
        sys.stdout.write(payload.decode("utf-8"))
    else:
        buffer.write(payload)
    sys.stdout.flush()


@contextlib.contextmanager
def progress_bar(g: Globals, description: str, total: int | None = None) -> Iterator[tuple]:
    """A progress bar on stderr, shown from its first update: errors found before any work
    is done then print alone. Yields the ``Progress`` and an ``update(**fields)`` function."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not g.chatty,
    )
    task = progress.add_task(description, total=total)

    def update(**fields: Any) -> None:
        progress.start()
        progress.update(task, **fields)

    try:
        yield progress, update
    finally:
        progress.stop()


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def print_mapping(mapping: dict, title: str | None = None) -> None:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    _add_rows(table, mapping, "")
    out.print(table)


def _add_rows(table: Table, mapping: dict, indent: str) -> None:
    """Nested mappings (a card's metrics, data, training) become indented rows."""
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            table.add_row(f"{indent}{key}", "")
            _add_rows(table, value, indent + "  ")
        else:
            table.add_row(f"{indent}{key}", format_value(value))
