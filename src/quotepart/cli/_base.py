"""What every command shares: the error handler, the workspace options, rendering.

Kept light (click and the error tree): the root group imports it for `quotepart --help`,
which must not load the workspace or rich.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from quotepart.errors import (
    InputError,
    QuotepartError,
    QuotepartWarning,
    ReadOnlyWorkspaceError,
    StorageError,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from quotepart.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


def stderr_console() -> Console:
    """Diagnostics and progress go to stderr; stdout carries only data."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


class QuotepartGroup(click.Group):
    """Turns any QuotepartError into `Error:` / `Hint:` lines and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QuotepartError as exc:
            click.echo(f"Error: {_lines(exc.message)}", err=True)  # it may quote a name
            if exc.hint:
                click.echo(f"Hint: {_lines(exc.hint)}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                click.echo(
                    f"Error: the disk is full: cannot write {exc.filename or 'a file'}", err=True
                )
                click.echo(
                    "Hint: free some space on the disk holding the workspace (or the output "
                    "folder), then run the command again; nothing half-written was kept",
                    err=True,
                )
                ctx.exit(StorageError.exit_code)
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            click.echo(f"Error: cannot write {exc.filename or 'a file'}: {exc.strerror}", err=True)
            click.echo(
                "Hint: the workspace (or the output folder) is read-only; reading commands "
                "work as they are, writing ones need writable storage",
                err=True,
            )
            ctx.exit(ReadOnlyWorkspaceError.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing half-written was kept.", err=True)
            ctx.exit(130)


def _lines(text: str) -> str:
    """`printable`, line by line: a message's own line breaks stay."""
    from quotepart.text import printable  # here, not at the top: `--help` stays light

    return "\n".join(printable(line) for line in text.split("\n"))


def workspace_options(func: F) -> F:
    """`--workspace DIR` (or QUOTEPART_HOME) and `--database-url` (or QUOTEPART_DATABASE_URL)."""
    func = click.option(
        "--database-url",
        envvar="QUOTEPART_DATABASE_URL",
        default=None,
        help="PostgreSQL URL to use instead of the workspace's own database.",
    )(func)
    func = click.option(
        "--workspace",
        "workspace_dir",
        envvar="QUOTEPART_HOME",
        default=".",
        show_default="current folder, or QUOTEPART_HOME",
        type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
        help="The workspace folder.",
    )(func)
    return func


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(func)


_collector_paused = False


def pause_collector() -> None:
    """Pause the cyclic garbage collector while the command starts up.

    Start-up creates a few hundred thousand long-lived objects (modules, classes, the
    SQL schema) and no garbage; the collector would scan them over and over, about a
    sixth of a short command's time (`bench/cli.py`). `resume_collector` turns it back on.
    """
    global _collector_paused
    if gc.isenabled():
        gc.disable()
        _collector_paused = True


def resume_collector() -> None:
    """End of start-up: set what exists aside for good (`gc.freeze`) and collect as usual."""
    global _collector_paused
    if _collector_paused:
        gc.freeze()
        gc.enable()
        _collector_paused = False


def load_workspace(workspace_dir: Path, database_url: str | None) -> Workspace:
    from quotepart.workspace import open_workspace

    workspace = open_workspace(workspace_dir, database_url=database_url)
    resume_collector()
    return workspace


def shown(text: str) -> Text:
    """A string someone typed (a name, a reason, a note) as rich text: never read as markup,
    its control and bidirectional characters spelled out (`quotepart.text.printable`)."""
    from rich.text import Text

    from quotepart.text import printable

    return Text(printable(text))


def echo_text(line: str, *, err: bool = False) -> None:
    """`click.echo` for a line holding what someone typed: control characters spelled out,
    so a name cannot move the cursor, retitle the terminal or add a line."""
    from quotepart.text import printable

    click.echo(printable(line), err=err)


def emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def emit_rows(
    rows: Sequence[Mapping[str, Any]], line: Callable[[Mapping[str, Any]], str], *, as_json: bool
) -> None:
    """A listing: the rows as one JSON array, or one `line(row)` of text per row."""
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        echo_text(line(row))


def read_json(read_text: Callable[[], str], *, unreadable: str, hint: str) -> Any:
    """The JSON document `read_text()` returns; InputError `<unreadable>: <reason>` if there is none.

    ValueError covers malformed JSON and bytes that are not UTF-8 alike.
    """
    try:
        return json.loads(read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{unreadable}: {exc}", hint=hint) from exc


def read_json_object(
    read_text: Callable[[], str], *, unreadable: str, not_object: str, hint: str
) -> dict[str, Any]:
    """`read_json`, and InputError `not_object` unless the document is a JSON object."""
    document = read_json(read_text, unreadable=unreadable, hint=hint)
    if not isinstance(document, dict):
        raise InputError(not_object, hint=hint)
    return document


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Show quotepart's warnings as one `Warning:` line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuotepartWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, QuotepartWarning):
            click.echo(f"Warning: {warning.message}", err=True)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
