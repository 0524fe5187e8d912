"""`gateway ingest`: apply flat files by hand, each in one transaction, and report what each did (`--force`
applies content applied already once more, on purpose); or a bundle (`--bundle MANIFEST`): the files a manifest
lists, in one transaction, all or nothing."""

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
from gateway.service.bundles import BundleResult, Bundles
from gateway.service.ingest import IngestResult


@click.command()
@click.option("--partner", required=True)
@click.option("--kind", type=click.Choice([k.value for k in Kind]), help="The kind of the FILES.")
@click.option(
    "--bundle",
    "manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A manifest (kind,file): apply the files it lists together, in order, all or nothing.",
)
@click.option("--dry-run", is_flag=True, help="Show the ATS changes the file would make; change nothing.")
@click.option("--as-of", "as_of", help="The files' instant, for stock rows without an as_of column.")
@click.option("--json", "as_json", is_flag=True, help="Print each file's report as JSON.")
@click.option(
    "--force",
    is_flag=True,
    help="Apply a file even when its content was applied already: a new ledger entry naming the first.",
)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def ingest(
    state: State,
    partner: str,
    kind: str | None,
    manifest: Path | None,
    dry_run: bool,
    as_of: str | None,
    as_json: bool,
    force: bool,
    files: tuple[Path, ...],
) -> None:
    """Apply flat files (--kind K FILES...), each in one transaction, or a bundle (--bundle MANIFEST); a
    duplicate of an applied file or bundle is a no-op, unless --force (files only)."""
    if manifest is not None and (kind is not None or files):
        raise click.UsageError("give --bundle MANIFEST alone: the manifest names its files and their kinds")
    if manifest is not None and force:
        raise click.UsageError("--force applies files again, not bundles (--bundle): a bundle is applied once")
    if manifest is None and (kind is None or not files):
        raise click.UsageError("give --kind KIND and FILES..., or --bundle MANIFEST")
    file_as_of = parse_instant(as_of, partner, state)
    if manifest is not None:
        with state.app(partner) as app:
            progress = ProgressLine(sys.stderr, manifest.name, not state.quiet)
            try:
                bundle = Bundles(app.ingestor).ingest_manifest(
                    partner,
                    manifest,
                    as_of=file_as_of,
                    dry_run=dry_run,
                    progress=progress if progress.enabled else None,
                )
            finally:
                progress.close()
        raise click.exceptions.Exit(_report_bundle(bundle, as_json))
    assert kind is not None  # checked above
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
    level older than a confirmation, a duplicate of older content) goes to stderr and leaves the exit code 0."""
    if as_json:
        echo(json.dumps(views.ingest_report(result)))
    if result.outcome == Outcome.REJECTED:
        _print_rejected(result)
        return EXIT_REFUSED
    if not as_json:
        echo(result.summary())
        if result.dry_run:
            print_changes(result.changes)
    print_warnings(result.warnings)
    return _print_refused([result])


def _print_rejected(result: IngestResult | BundleResult) -> None:
    """Why an item (a file, a bundle) was refused whole: its summary, then every problem with its line."""
    echo(f"gateway: rejected: {result.summary()}", err=True)
    for problem in result.problems:
        echo(f"  {problem.describe()}", err=True)
    if result.unlisted:
        echo(f"  ... and {result.unlisted} more", err=True)


def _print_refused(results: list[IngestResult]) -> int:
    """The rows refused in each file (exit 1 when there are any; 0 otherwise)."""
    refused = [result for result in results if result.refusals]
    for result in refused:
        echo(f"gateway: refused {result.counts.refused} row(s) of {result.source}:", err=True)
        for problem in result.refusals:
            echo(f"  {problem.describe()}", err=True)
    return EXIT_REFUSED if refused else 0


def _report_bundle(result: BundleResult, as_json: bool) -> int:
    """Print what a bundle did, member by member; its exit code (1 when it was rejected or rows were refused)."""
    if as_json:
        echo(json.dumps(views.bundle_report(result)))
    if result.outcome == Outcome.REJECTED:
        _print_rejected(result)
        for member in result.members:
            if member.reason is None:  # a member refused whole for its own problems
                echo(f"  {member.source}:", err=True)
                for problem in member.problems:
                    echo(f"    {problem.describe()}", err=True)
                if member.unlisted:
                    echo(f"    ... and {member.unlisted} more", err=True)
        return EXIT_REFUSED
    if not as_json:
        echo(result.summary())
        for line in result.member_lines() if result.outcome == Outcome.APPLIED else []:
            echo(f"  {line}")
        if result.dry_run:
            print_changes(result.changes)
    print_warnings(result.warnings)  # its members' (a level older than a confirmation), said once for the bundle
    return _print_refused(list(result.members))
