"""Commands that set bastion up and run it: ``init``, ``migrate``, ``serve``, ``quickstart``."""

from __future__ import annotations

import ipaddress
import re
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli import quickstart as qs
from bastion.cli.context import operator_actor, state
from bastion.config import BastionConfig, describe_not_yet_enforced
from bastion.services.bootstrap import initialise
from bastion.wiring import Services, build_services, check_startup
from bastion.wiring_identity import seed_basic_auth_users

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("migrate")(migrate)
    app.command("serve")(serve)
    app.command("quickstart")(quickstart)


def warn_not_enforced(config: BastionConfig) -> None:
    for line in describe_not_yet_enforced(config):
        typer.echo(f"warning: {line}", err=True)


def init(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Tenant to create (default: security.defaultTenant)."),
    ] = None,
    admin: Annotated[str, typer.Option("--admin", help="The admin user's login.")] = (
        "admin@example.com"
    ),
) -> None:
    """Create the tenant and its admin user, and print an admin API key once.

    Writes bastion.yaml, a fresh pepper file and an audit signing key first if no
    configuration exists yet.
    """
    cli = state(ctx)
    if not cli.config_path.exists():
        qs.write_minimal_config(cli.config_path)
        typer.echo(f"wrote {cli.config_path}, its pepper file and audit signing key", err=True)
    services = cli.local_services(one_shot=True)
    services.storage.migrate()
    done = initialise(
        storage=services.storage,
        api_keys=services.api_keys,
        clock=services.clock,
        tenant_name=tenant or services.config.security.default_tenant,
        admin_name=admin,
        actor=operator_actor(),
    )
    typer.echo(done.admin_key.secret)
    typer.echo(
        f"initialised tenant {done.tenant.name!r} with admin {done.admin.name!r}; the line above "
        "is its admin API key — store it now: it cannot be shown again",
        err=True,
    )


def migrate(ctx: typer.Context) -> None:
    """Bring the database schema up to date."""
    services = state(ctx).local_services()
    services.storage.migrate()
    typer.echo("database is up to date")


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Override gateway.listen.")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Override gateway.listen.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (one event loop each).")
    ] = 1,
) -> None:
    """Run the gateway (reverse proxy and forward-auth) on gateway.listen; migrates first."""
    cli = state(ctx)
    log_level = log_level.lower()
    if log_level not in LOG_LEVELS:
        choices = ", ".join(LOG_LEVELS)
        raise typer.BadParameter(f"must be one of {choices}", param_hint="--log-level")
    if host is not None and not is_host(host):
        raise typer.BadParameter("must be an IP address or a host name", param_hint="--host")
    config = cli.load()
    # The checks `bastion config validate` runs, all reported at once, before any change.
    check_startup(config, config_dir=cli.config_path.resolve().parent)
    # A port another program holds is one line now, not uvicorn's log after start-up.
    qs.ensure_port_free(host or config.gateway.host, port or config.gateway.port)
    services = build_services(config)
    warn_not_enforced(services.config)
    services.storage.migrate()
    seed_basic_auth_users(services)
    run_gateway(
        services,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
        config_path=cli.config_path,
    )


def is_host(value: str) -> bool:
    """An IP address, or a host name of letters, digits and hyphens (RFC 1123)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        labels = value.removesuffix(".").split(".")
        return len(value) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)
    return True


def run_gateway(
    services: Services,
    *,
    host: str | None,
    port: int | None,
    log_level: str,
    workers: int = 1,
    config_path: Path = Path("bastion.yaml"),
) -> None:
    from bastion.gateway.app import build_app
    from bastion.gateway.serving import raise_open_file_limit, run

    short = raise_open_file_limit(services.config.gateway.connections.max)
    if short is not None:
        typer.echo(f"warning: {short}", err=True)
    app = build_app(services.config, services=services, serving=True) if workers == 1 else None
    if workers > 1:
        services.storage.close()  # each worker opens its own
    run(
        services.config,
        app=app,
        config_path=config_path,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
    )


def quickstart(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Where bastion listens [default: 8080]."),
    ] = None,
    upstream_port: Annotated[
        int | None,
        typer.Option(
            "--upstream-port",
            min=1,
            max=65535,
            help="Where the sample upstream listens [default: 9000].",
        ),
    ] = None,
) -> None:
    """Try bastion in one command: config, database, a sample upstream and bastion in front."""
    cli = state(ctx)
    path = cli.config_path
    if not path.exists():
        qs.write_quickstart_config(path, port=port or 8080, upstream_port=upstream_port or 9000)
    services = cli.local_services()
    qs.check_ports(services.config, port=port, upstream_port=upstream_port, config_path=path)
    warn_not_enforced(services.config)
    services.storage.migrate()
    keys = qs.ensure_keys(services, actor=operator_actor())
    upstream = qs.start_sample_upstream(services.config)
    # uvicorn re-raises the signal that stopped it once it has shut down: SIGTERM's default
    # action would end the process here and leave the sample upstream running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        qs.print_welcome(services.config, keys, config_path=Path(path))
        sys.stdout.flush()
        run_gateway(services, host=None, port=None, log_level="warning", config_path=path)
    finally:
        qs.stop_process(upstream)
        typer.echo("bastion and the sample upstream stopped", err=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Stop like Ctrl-C does, through the cleanup, with the exit status of a SIGTERM."""
    raise SystemExit(128 + signum)
