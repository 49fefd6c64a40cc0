"""Relative paths in bastion.yaml resolve against the file's directory, whatever the CWD is."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from bastion.backends.audit_sinks import build_destinations, spools_of
from bastion.backends.audit_sinks.file import FileDestination
from bastion.config import config_key_paths, load_config, parse_config
from bastion.config.paths import PATH_KEYS

PEPPER = "p" * 40


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config directory, with the process running somewhere else entirely."""
    directory = tmp_path / "etc" / "bastion"
    directory.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return directory


def _load(directory: Path, text: str) -> Path:
    path = directory / "bastion.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_policy_files_and_schema_resolve_against_the_config_directory(etc: Path) -> None:
    config = load_config(
        _load(
            etc,
            """
            security:
              policies:
                files: [policies/main.cedar, /srv/shared/extra.cedar]
                schema: schema/bastion.cedarschema.json
            """,
        )
    )
    assert config.security.policies.files == (
        str(etc / "policies" / "main.cedar"),
        "/srv/shared/extra.cedar",
    )
    assert config.security.policies.schema_file == str(etc / "schema/bastion.cedarschema.json")


def test_tls_certificate_key_and_ca_resolve_against_the_config_directory(etc: Path) -> None:
    config = load_config(
        _load(
            etc,
            """
            security:
              mtls:
                serverCert: tls/server.crt
                serverKey: ./tls/server.key
                clientCA: /etc/ssl/clients.pem
            """,
        )
    )
    mtls = config.security.mtls
    assert mtls.server_cert == str(etc / "tls/server.crt")
    assert mtls.server_key == str(etc / "tls/server.key")
    assert mtls.client_ca == "/etc/ssl/clients.pem"


def test_audit_file_spool_socket_and_ca_files_resolve_against_the_config_directory(
    etc: Path,
) -> None:
    config = load_config(
        _load(
            etc,
            """
            security:
              audit:
                destination: [file, syslog, splunk, elasticsearch]
                file: {path: logs/audit.ndjson}
                syslog: {protocol: unix, socket: run/syslog.sock}
                splunk: {host: splunk.example.com, token: t0ken, caFile: ca/splunk.pem}
                elasticsearch:
                  hosts: [https://es.example.com:9200]
                  index: audit
                  caFile: ca/es.pem
            """,
        )
    )
    audit = config.security.audit
    assert audit.file is not None and audit.syslog is not None
    assert audit.splunk is not None and audit.elasticsearch is not None
    assert audit.file.path == str(etc / "logs/audit.ndjson")
    assert audit.syslog.socket == str(etc / "run/syslog.sock")
    assert audit.splunk.ca_file == str(etc / "ca/splunk.pem")
    assert audit.elasticsearch.ca_file == str(etc / "ca/es.pem")
    # The default spool directory lands next to the file too.
    assert audit.spool.path == str(etc / "audit-spool")
    # What the audit wiring builds from it (joining with the CWD) points there as well.
    file_only = audit.model_copy(update={"destination": ("database", "file")})
    [file_destination] = build_destinations(file_only, base_dir=Path.cwd())
    assert isinstance(file_destination, FileDestination)
    assert file_destination.path == etc / "logs/audit.ndjson"
    [spool] = spools_of(file_only, base_dir=Path.cwd()).values()
    assert spool.directory == etc / "audit-spool" / "file"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("sqlite:///./bastion.db", "sqlite:///{etc}/bastion.db"),
        ("sqlite:///data/b.db?timeout=5", "sqlite:///{etc}/data/b.db?timeout=5"),
        ("sqlite:////var/lib/bastion/b.db", "sqlite:////var/lib/bastion/b.db"),
        ("postgresql+psycopg://u@db:5432/x", "postgresql+psycopg://u@db:5432/x"),
    ],
)
def test_a_relative_sqlite_database_resolves_against_the_config_directory(
    etc: Path, written: str, expected: str
) -> None:
    config = load_config(_load(etc, f"storage:\n  url: {written}\n"))
    assert config.storage.url == expected.format(etc=etc)


def test_the_default_database_lands_next_to_the_config_file(etc: Path) -> None:
    config = load_config(_load(etc, "gateway: {}\n"))
    assert config.storage.url == f"sqlite:///{etc}/bastion.db"


def test_file_references_resolve_against_the_config_directory(etc: Path) -> None:
    (etc / "secrets").mkdir()
    (etc / "secrets" / "pepper").write_text(PEPPER + "\n")
    config = load_config(_load(etc, "security:\n  pepper: file:secrets/pepper\n"))
    assert config.security.pepper is not None
    assert config.security.pepper.get_secret_value() == PEPPER


def test_text_without_a_file_keeps_paths_as_written() -> None:
    config = parse_config("security:\n  policies:\n    files: [p.cedar]\n", environ={})
    assert config.security.policies.files == ("p.cedar",)
    assert config.storage.url == "sqlite:///./bastion.db"


# Keys whose names look like paths but are not local files.
NOT_FILES = {
    "security.mtls.serverCertSecret",  # Kubernetes secret names
    "security.mtls.clientCASecret",
    "security.mtls.certManager",
    "security.authentication.apiKeys",
    "security.sso.oidc.redirectUri",
    "security.audit.file",  # the section; its path is below
    "security.audit.cloudwatch.endpointUrl",
    "security.audit.signingKey",  # a secret value (file: references resolve in the loader)
    "security.encryption.atRest.keyId",
    "security.secrets.vault.secretPath",  # a path inside Vault
    "security.secrets.<name>.secretRef.key",
    "gateway.routes[].path",  # URL paths
    "gateway.publicPaths",
    "storage.url",  # anchored separately (SQLite only)
    "storage.redisUrl",
}


def _alias(attribute_path: tuple[str, ...]) -> str:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.capitalize() for part in rest)

    aliases = {"client_ca": "clientCA", "schema_file": "schema"}
    return ".".join(aliases.get(part, camel(part)) for part in attribute_path)


def test_every_path_like_key_is_anchored_or_known_not_to_be_a_file() -> None:
    path_words = {"path", "file", "cert", "key", "ca", "socket", "schema", "dir", "url"}

    def last_word(key: str) -> str:
        words = re.findall(r"[a-z]+|[A-Z]+(?![a-z])|[A-Z][a-z]*", key.rsplit(".", 1)[-1])
        return words[-1].lower().removesuffix("s") if words else ""

    looks_like_a_path = {key for key in config_key_paths() if last_word(key) in path_words}
    anchored = {_alias(key) for key in PATH_KEYS}
    assert anchored <= set(config_key_paths())
    assert looks_like_a_path - NOT_FILES == anchored
