"""``bastion audit export`` and ``bastion audit verify``: streamed, with progress on stderr."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bastion.cli.context import state
from bastion.config.units import moment_before, parse_duration
from bastion.core.audit_verify import SealWait, VerifyReport
from bastion.errors import AuditIntegrityError, BastionError
from bastion.services.audit.export import FORMATS, ExportFormat, export, plan_export
from bastion.services.audit.verify import read_export_checkpoints, verify_export, verify_storage
from bastion.wiring_audit import checkpoint_signer_from, checkpoint_verifier_from


def parse_since(since: str | None, option: str = "--since") -> timedelta | None:
    try:
        return parse_duration(since) if since is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def register(app: typer.Typer) -> None:
    app.command("export")(export_events)
    app.command("verify")(verify)


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; a no-op otherwise."""
    console = Console(stderr=True)
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    if path.exists() and not path.is_file():  # /dev/stdout, a FIFO: written in place
        with _cannot_write(path):
            device = path.open("w", encoding="utf-8", newline="\n")
        with device:
            yield device
        return
    with _cannot_write(path):
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with (
        _replacing(path, Path(temporary)),
        os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle,
    ):
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def _replacing(path: Path, temporary: Path) -> Iterator[None]:
    """``temporary`` (created 0600) takes ``path``'s place once written whole, so the file is
    0600 even where one existed with another mode, and an export that fails (a trail that
    does not verify) leaves nothing behind, not even a truncated old file."""
    try:
        yield
        with _cannot_write(path):
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _cannot_write(path: Path) -> Iterator[None]:
    """An OS error as one line naming the file, not ``unexpected FileNotFoundError``."""
    try:
        yield
    except OSError as exc:
        raise BastionError(f"cannot write {path}: {exc.strerror or exc}") from None


def export_events(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help="e.g. 7d (default: all).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="json | ndjson | csv | syslog | cef")
    ] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (0600) instead of stdout.")
    ] = None,
) -> None:
    """Stream events from --since to now. json and ndjson exports carry signed checkpoints and
    verify offline with `bastion audit verify --export`."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    window = parse_since(since)
    cli = state(ctx)
    services = cli.services()
    now = services.clock.now()
    try:
        start = moment_before(now, window) if window is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    signer = checkpoint_signer_from(services.config)
    chosen = _format(fmt)
    plan = plan_export(services.storage, since=start)
    with (
        progress_bar("exporting", plan.steps(chosen) if plan else 0) as advance,
        _output(output) as out,
    ):
        result = export(
            services.storage,
            out,
            fmt=chosen,
            since=start,
            signer=signer,
            signature_valid=signer.verifier().valid,
            now=now,
            max_unsigned=services.config.security.audit.checkpoints.every,
            seal_interval=services.config.security.audit.checkpoints.interval,
            progress=advance,
        )
    sealed = f", sealed by key {signer.key_id}" if result.sealed else ""
    span = f" (seq {result.first_seq}-{result.last_seq})" if result.events else ""
    # An empty export is not signed, so `audit verify --export` refuses it: say so now.
    empty = not result.events and fmt in ("json", "ndjson")
    unsealed = "; nothing to seal, so it will not verify" if empty else ""
    typer.echo(f"exported {result.events} events{span}{sealed}{unsealed}", err=True)


def _format(value: str) -> ExportFormat:
    for known in FORMATS:
        if known == value:
            return known
    raise typer.BadParameter(value, param_hint="--format")


def verify(
    ctx: typer.Context,
    exports: Annotated[
        list[Path] | None,
        typer.Option("--export", help="Export file(s) to check offline, in order (.gz too)."),
    ] = None,
    public_keys: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="PEM public key(s) (`bastion audit public-key`)."),
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoints", help="Checkpoints kept elsewhere (e.g. the file destination)."
        ),
    ] = None,
) -> None:
    """Check the hash chain and the signed checkpoints; report the first broken seq."""
    keys = list(public_keys or [])
    if exports:
        if not keys:
            raise typer.BadParameter(
                "an offline check needs the public key", param_hint="--public-key"
            )
        verifier = checkpoint_verifier_from(None, keys)
        with progress_bar("verifying", None) as advance:
            report = verify_export(list(exports), signature_valid=verifier.valid, progress=advance)
    else:
        services = state(ctx).services()
        verifier = checkpoint_verifier_from(services.config, keys)
        extra = read_export_checkpoints(list(checkpoints or []))
        sealing = services.config.security.audit.checkpoints
        # Taken before the trail is read: a checkpoint sealed meanwhile is not held against it.
        wait = SealWait(sealing.interval, services.clock.now())
        with services.storage.transaction() as tx:
            bounds = tx.audit.bounds()
        total = bounds[1] - bounds[0] + 1 if bounds else 0
        with progress_bar("verifying", total) as advance:
            report = verify_storage(
                services.storage,
                signature_valid=verifier.valid,
                max_unsigned=sealing.every,
                wait=wait,
                extra_checkpoints=extra,
                progress=advance,
            )
    _conclude(report)


def _conclude(report: VerifyReport) -> None:
    if not report.ok:
        assert report.first_broken_seq is not None
        raise AuditIntegrityError(report.first_broken_seq, report.reason)
    if not report.events:
        typer.echo("ok: the trail is empty")
        return
    signed = (
        f"signed through seq {report.signed_through} ({counted(report.checkpoints, 'checkpoint')})"
        if report.signed_through is not None
        else "no checkpoint yet"
    )
    tail = f"; {report.unsigned_tail} newest not yet sealed" if report.unsigned_tail else ""
    typer.echo(
        f"ok: {counted(report.events, 'event')} (seq {report.first_seq}-{report.last_seq})"
        f" verify; {signed}{tail}"
    )


def counted(n: int, noun: str) -> str:
    """``1 event``, ``2 events``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
