"""``bastion config validate`` says ok only when ``bastion serve`` would start as far as
configuration goes: both run `bastion.wiring.check_startup`, and report the same lines."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.cli.quickstart import write_minimal_config
from bastion.config import BastionConfig, load_config
from bastion.errors import ConfigError
from bastion.wiring import check_startup
from tests.e2e.procs import bastion

PEPPER = "p" * 43
POLICY = '@id("no-deletes")\nforbid(principal, action == Action::"delete", resource is roles);\n'


def startup_issues(directory: Path, text: str) -> list[str]:
    path = directory / "bastion.yaml"
    path.write_text(text)
    try:
        check_startup(load_config(path), config_dir=directory)
    except ConfigError as exc:
        return [str(issue) for issue in exc.issues]
    return []


def with_pepper(text: str) -> str:
    return f"security:\n  pepper: {PEPPER}\n" + text


def test_config_written_by_init_passes(tmp_path: Path) -> None:
    write_minimal_config(tmp_path / "bastion.yaml")
    check_startup(load_config(tmp_path / "bastion.yaml"), config_dir=tmp_path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "gateway: {listen: '127.0.0.1:9'}\n"])
def test_missing_pepper_is_refused(tmp_path: Path, text: str) -> None:
    assert startup_issues(tmp_path, text) == [
        "security.pepper: required to store credentials; `bastion init` writes one"
        " (file:bastion.pepper)"
    ]


def test_rbac_switched_off_is_refused(tmp_path: Path) -> None:
    [issue] = startup_issues(tmp_path, with_pepper("  rbac: {enabled: false}\n"))
    assert issue.startswith("security.rbac.enabled: bastion always authorizes")


def test_unreadable_policy_file_is_refused_at_its_key(tmp_path: Path) -> None:
    issues = startup_issues(tmp_path, with_pepper("  policies: {files: [nosuch.cedar]}\n"))
    assert issues == [
        f"security.policies.files: {tmp_path}/nosuch.cedar: cannot read (No such file or directory)"
    ]


def test_policy_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.cedar").write_text("permit(principal,\n")
    [issue] = startup_issues(tmp_path, with_pepper("  policies: {files: [bad.cedar]}\n"))
    assert issue.startswith(f"security.policies.files: {tmp_path}/bad.cedar: does not parse")


def test_unreadable_policy_schema_is_refused_at_its_key(tmp_path: Path) -> None:
    (tmp_path / "main.cedar").write_text(POLICY)
    text = with_pepper("  policies: {files: [main.cedar], schema: none.json}\n")
    assert startup_issues(tmp_path, text) == [
        f"security.policies.schema: {tmp_path}/none.json: cannot read (No such file or directory)"
    ]


def test_valid_policy_passes(tmp_path: Path) -> None:
    (tmp_path / "main.cedar").write_text(POLICY)
    assert startup_issues(tmp_path, with_pepper("  policies: {files: [main.cedar]}\n")) == []


def test_signing_key_that_is_not_a_pem_is_refused(tmp_path: Path) -> None:
    text = with_pepper("  audit: {signingKey: not a pem}\n")
    assert startup_issues(tmp_path, text) == [
        "security.audit.signingKey: the audit signing key is not an unencrypted PEM private key"
    ]


def test_every_problem_is_reported_once_in_one_run(tmp_path: Path) -> None:
    text = "security:\n  rbac: {enabled: false}\n  audit: {signingKey: x}\n"
    text += "  dataProtection: {masking: {enabled: true, method: hash, fields: [ssn]}}\n"
    issues = startup_issues(tmp_path, text)
    assert [issue.split(":", 1)[0] for issue in issues] == [
        "security.pepper",
        "security.rbac.enabled",
        "security.audit.signingKey",
    ]


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bastion.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = {"cert": tmp_path / "server.crt", "key": tmp_path / "server.key"}
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files["encrypted"] = tmp_path / "encrypted.key"
    files["encrypted"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return files


def mtls(cert: str, key: str, ca: str) -> str:
    return with_pepper(
        f"  mtls: {{enabled: true, serverCert: {cert}, serverKey: {key}, clientCA: {ca}}}\n"
    )


def test_tls_files_that_load_pass(tmp_path: Path, tls_files: dict[str, Path]) -> None:
    assert startup_issues(tmp_path, mtls("server.crt", "server.key", "server.crt")) == []


def test_encrypted_tls_key_is_left_to_the_server(
    tmp_path: Path, tls_files: dict[str, Path]
) -> None:
    assert startup_issues(tmp_path, mtls("server.crt", "encrypted.key", "server.crt")) == []


def test_missing_tls_files_are_refused_at_their_keys(
    tmp_path: Path, tls_files: dict[str, Path]
) -> None:
    assert startup_issues(tmp_path, mtls("server.crt", "none.key", "none.crt")) == [
        f"security.mtls.serverKey: cannot read {tmp_path}/none.key: No such file or directory",
        f"security.mtls.clientCA: cannot read {tmp_path}/none.crt: No such file or directory",
    ]


def test_tls_files_that_are_not_pem_are_refused(tmp_path: Path, tls_files: dict[str, Path]) -> None:
    (tmp_path / "junk.pem").write_text("junk\n")
    assert startup_issues(tmp_path, mtls("junk.pem", "server.key", "junk.pem")) == [
        "security.mtls.serverCert: must be a PEM certificate, and serverKey its PEM private key",
        "security.mtls.clientCA: must hold PEM CA certificates",
    ]


def test_server_certificate_only_as_a_kubernetes_secret_is_refused(tmp_path: Path) -> None:
    text = with_pepper("  mtls: {enabled: true, serverCertSecret: tls, clientAuth: none}\n")
    assert startup_issues(tmp_path, text) == [
        "security.mtls.serverCert: required to serve TLS from bastion itself"
    ]


def test_defaults_without_a_file_fail_only_for_the_pepper() -> None:
    with pytest.raises(ConfigError) as caught:
        check_startup(BastionConfig(), config_dir=Path.cwd())
    assert [issue.path for issue in caught.value.issues] == ["security.pepper"]


# The configurations the walkthrough found that validate passed and serve refused.
REFUSED_BY_SERVE = [
    pytest.param(with_pepper("  rbac: {enabled: false}\n"), id="rbac-off"),
    pytest.param(with_pepper("  policies: {files: [nosuch.cedar]}\n"), id="missing-policy"),
    pytest.param(with_pepper('  audit: {signingKey: "not a pem"}\n'), id="bad-signing-key"),
    pytest.param("", id="empty-file"),
]


@pytest.mark.parametrize("text", REFUSED_BY_SERVE)
def test_validate_and_serve_refuse_alike_and_serve_changes_nothing(
    tmp_path: Path, text: str
) -> None:
    (tmp_path / "bastion.yaml").write_text(text)
    validate = bastion(["config", "validate"], cwd=tmp_path, check=False)
    serve = bastion(["serve", "--port", "1"], cwd=tmp_path, check=False)
    assert validate.returncode == 1
    assert validate.stdout.strip() != "ok"
    assert serve.returncode == 1
    assert serve.stderr.splitlines() == [f"error: {line}" for line in validate.stdout.splitlines()]
    assert "Traceback" not in validate.stderr + serve.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bastion.yaml"]


def test_validate_is_ok_for_the_config_init_writes(tmp_path: Path) -> None:
    write_minimal_config(tmp_path / "bastion.yaml")
    result = bastion(["config", "validate"], cwd=tmp_path, check=False)
    assert (result.returncode, result.stdout) == (0, "ok\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("? [a, b]\n: 1\n", "bastion.yaml:1:3: keys must be strings"),
        ("a: " + "[" * 60 + "]" * 60 + "\n", "bastion.yaml:1:53: nested deeper than 50 levels"),
        (
            "a: " + "[" * 2000 + "]" * 2000 + "\n",
            "bastion.yaml:1:1003: nested deeper than 50 levels",
        ),
        (
            "gateway:\n  listen: a:1\n  listen: b:2\n",
            "gateway.listen: duplicate key (bastion.yaml:3:3)",
        ),
    ],
    ids=["list-as-key", "deep-nesting", "runaway-nesting", "duplicate-key"],
)
def test_validate_reports_yaml_problems_in_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "bastion.yaml").write_text(text)
    result = bastion(["config", "validate", "bastion.yaml"], cwd=tmp_path, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (1, expected + "\n", "")
