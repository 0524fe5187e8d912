"""`gateway ingest`: apply flat files by hand, each in one transaction, and report what each did (`--force`
applies content applied already once more, on purpose)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gateway import views
from gateway.cli.errors import EXIT_REFUSED
from gateway.cli.render import ProgressLine, print_changes, print_warnings
from gateway.cli.state import State, parse_instant
from gateway.cli.terminal import echo
from gateway.domain.outcomes import Outcome
from gateway.formats.rows import Kind
from gateway.service.ingest import IngestResult


@click.command()
@click.option("--partner", required=True)
@click.option("--kind", required=True, type=click.Choice([k.value for k in Kind]))
@click.option("--dry-run", is_flag=True, help="Show the ATS changes the file would make; change nothing.")
@click.option("--as-of", "as_of", help="The files' instant, for stock rows without an as_of column.")
@click.option("--json", "as_json", is_flag=True, help="Print each file's report as JSON.")
@click.option(
    "--force",
    is_flag=True,
    help="Apply a file even when its content was applied already: a new ledger entry naming the first.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def ingest(
    state: State,
    partner: str,
    kind: str,
    dry_run: bool,
    as_of: str | None,
    as_json: bool,
    force: bool,
    files: tuple[Path, ...],
) -> None:
    """Apply flat files, each in one transaction (a duplicate of an applied file is a no-op, unless --force)."""
    file_as_of = parse_instant(as_of, partner, state)
    worst = 0
    with state.app(partner) as app:
        for path in files:
            progress = ProgressLine(sys.stderr, path.name, not state.quiet)
            try:
                result = app.ingestor.ingest(
                    partner,
                    Kind(kind),
                    path,
                    as_of=file_as_of,
                    dry_run=dry_run,
                    progress=progress if progress.enabled else None,
                    force=force,
                )
            finally:
                progress.close()
            worst = max(worst, report_ingest(result, as_json))
    raise click.exceptions.Exit(worst)


def report_ingest(result: IngestResult, as_json: bool) -> int:
    """Print what one file did; its exit code (1 when it was rejected or rows of it were refused). A warning (a
    duplicate of older content) goes to stderr and leaves the exit code 0."""
    if as_json:
        echo(json.dumps(views.ingest_report(result)))
    if result.outcome == Outcome.REJECTED:
        echo(f"gateway: rejected: {result.summary()}", err=True)
        for problem in result.problems:
            echo(f"  {problem.describe()}", err=True)
        if result.unlisted:
            echo(f"  ... and {result.unlisted} more", err=True)
        return EXIT_REFUSED
    if not as_json:
        echo(result.summary())
        if result.dry_run:
            print_changes(result.changes)
    print_warnings(result.warnings)
    if result.refusals:
        echo(f"gateway: refused {result.counts.refused} row(s) of {result.source}:", err=True)
        for problem in result.refusals:
            echo(f"  {problem.describe()}", err=True)
        return EXIT_REFUSED
    return 0
