"""``security.mtls`` read once for both its users: the server's TLS options and the start-up
check that its files load (so `bastion config validate` says what serve would refuse)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from bastion.config import BastionConfig
from bastion.errors import ConfigError, ConfigIssue

_CERT_REQS = {
    "require": ssl.CERT_REQUIRED,
    "request": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
}


def tls_options(config: BastionConfig, *, config_dir: Path) -> dict[str, Any]:
    """uvicorn's ssl_* options from ``security.mtls``; relative paths are from bastion.yaml."""
    mtls = config.security.mtls
    if not mtls.enabled:
        return {}
    if mtls.server_cert is None or mtls.server_key is None:
        raise ConfigError(
            [ConfigIssue("security.mtls.serverCert", "required to serve TLS from bastion itself")]
        )
    options: dict[str, Any] = {
        "ssl_certfile": str(config_dir / mtls.server_cert),
        "ssl_keyfile": str(config_dir / mtls.server_key),
        "ssl_cert_reqs": _CERT_REQS[mtls.client_auth],
    }
    if mtls.client_auth != "none":
        if mtls.client_ca is None:
            issue = ConfigIssue("security.mtls.clientCA", "required to verify client certificates")
            raise ConfigError([issue])
        options["ssl_ca_certs"] = str(config_dir / mtls.client_ca)
    return options


class _EncryptedKeyError(Exception):
    """The TLS key asks for a passphrase: only the server's start can check it."""


def _ask_passphrase() -> bytes:
    raise _EncryptedKeyError


def check_tls_files(config: BastionConfig) -> None:
    """``security.mtls`` files load as the server will load them (paths are absolute here)."""
    mtls = config.security.mtls
    if not mtls.enabled:
        return
    files = {"serverCert": mtls.server_cert, "serverKey": mtls.server_key}
    if mtls.client_auth != "none":
        files["clientCA"] = mtls.client_ca
    problems = {key: _unreadable(path) for key, path in files.items() if path is not None}
    issues = [ConfigIssue(f"security.mtls.{k}", p) for k, p in problems.items() if p is not None]
    readable = {key for key, problem in problems.items() if problem is None}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if mtls.server_cert and mtls.server_key and {"serverCert", "serverKey"} <= readable:
        try:
            context.load_cert_chain(mtls.server_cert, mtls.server_key, password=_ask_passphrase)
        except _EncryptedKeyError:
            pass  # the server asks for the passphrase when it starts
        except ssl.SSLError:
            invalid = "must be a PEM certificate, and serverKey its PEM private key"
            issues.append(ConfigIssue("security.mtls.serverCert", invalid))
    if mtls.client_ca and "clientCA" in readable:
        try:
            context.load_verify_locations(cafile=mtls.client_ca)
        except ssl.SSLError:
            issues.append(ConfigIssue("security.mtls.clientCA", "must hold PEM CA certificates"))
    if issues:
        raise ConfigError(issues)


def _unreadable(path: str) -> str | None:
    try:
        with open(path, "rb"):
            return None
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or 'unreadable'}"
