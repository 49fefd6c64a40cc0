"""``${VAR}`` expansion and ``env:`` / ``file:`` / ``vault:`` references in config values."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bastion.config import BastionConfig, load_config, parse_config
from bastion.config.paths import anchor_paths
from bastion.errors import ConfigError, SecretReferenceError

OIDC = """
security:
  sso:
    enabled: true
    provider: oidc
    oidc:
      issuer: https://auth.example.com
      clientId: {client_id}
"""


def oidc_client_id(value: str, environ: dict[str, str]) -> str:
    config = parse_config(OIDC.format(client_id=value), environ=environ)
    assert config.security.sso.oidc is not None
    return config.security.sso.oidc.client_id


def reference_issues(text: str, environ: dict[str, str], base_dir: Path | None = None) -> list[str]:
    with pytest.raises(SecretReferenceError) as caught:
        parse_config(textwrap.dedent(text), environ=environ, base_dir=base_dir)
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${OIDC_CLIENT_ID}", {"OIDC_CLIENT_ID": "bastion-app"}, "bastion-app"),
        ("prefix-${A}-${B}", {"A": "one", "B": "two"}, "prefix-one-two"),
        ("${OIDC_CLIENT_ID:-fallback}", {}, "fallback"),
        ("${OIDC_CLIENT_ID:-fallback}", {"OIDC_CLIENT_ID": ""}, "fallback"),
        ("${OIDC_CLIENT_ID:-fallback}", {"OIDC_CLIENT_ID": "set"}, "set"),
        ("'x$${NOT_EXPANDED}'", {}, "x${NOT_EXPANDED}"),
        ("${A}", {"A": "env:NOT_A_REFERENCE_AGAIN"}, "env:NOT_A_REFERENCE_AGAIN"),
        ("${A}", {"A": "${B}"}, "${B}"),
    ],
)
def test_variables_expand_from_environ(value: str, environ: dict[str, str], expected: str) -> None:
    assert oidc_client_id(value, environ) == expected


def test_expanded_values_are_validated_as_their_field_type() -> None:
    config = parse_config(
        "gateway:\n  listen: 0.0.0.0:${PORT}\nsecurity:\n  sessions:\n    maxConcurrent: ${MAX}\n",
        environ={"PORT": "9000", "MAX": "3"},
    )
    assert config.gateway.port == 9000
    assert config.security.sessions.max_concurrent == 3


def test_missing_variable_is_reported_at_its_key_path() -> None:
    issues = reference_issues(OIDC.format(client_id="${OIDC_CLIENT_ID}"), environ={})
    assert issues == ["security.sso.oidc.clientId: environment variable OIDC_CLIENT_ID is not set"]


def test_missing_variable_raises_a_config_error_subclass() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("storage:\n  redisUrl: ${REDIS_URL}\n", environ={})
    assert isinstance(caught.value, SecretReferenceError)
    assert caught.value.code == "secret_reference_unresolved"


@pytest.mark.parametrize("value", ["${1BAD}", "${A:=b}", "'${UNCLOSED'", "${}"])
def test_malformed_expansion_is_an_error(value: str) -> None:
    issues = reference_issues(OIDC.format(client_id=value), environ={"A": "a"})
    assert issues == [
        "security.sso.oidc.clientId: has a malformed ${...} (write ${NAME} or ${NAME:-default}, "
        "or $${ for a literal ${)"
    ]


def test_unresolved_value_hides_its_own_validation_error_but_not_others() -> None:
    issues = reference_issues(
        """
        gateway:
          listen: ${LISTEN}
          prefix: no-slash
        """,
        environ={},
    )
    assert issues == [
        "gateway.listen: environment variable LISTEN is not set",
        "gateway.prefix: must start with / and not end with / (like /_bastion)",
    ]


def test_env_reference_replaces_the_whole_value() -> None:
    assert oidc_client_id("env:CLIENT", {"CLIENT": "from-env"}) == "from-env"


def test_env_prefix_inside_a_value_is_not_a_reference() -> None:
    assert oidc_client_id("xenv:CLIENT", {"CLIENT": "from-env"}) == "xenv:CLIENT"


def test_missing_env_reference_is_reported() -> None:
    issues = reference_issues(OIDC.format(client_id="env:CLIENT"), environ={})
    assert issues == ["security.sso.oidc.clientId: environment variable CLIENT is not set"]


def test_env_reference_needs_a_name() -> None:
    issues = reference_issues(OIDC.format(client_id="'env:'"), environ={})
    assert issues == [
        "security.sso.oidc.clientId: env: needs a variable name, like env:OIDC_CLIENT_SECRET"
    ]


def test_file_reference_is_relative_to_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pepper").write_text("p" * 40 + "\n\n")
    (tmp_path / "bastion.yaml").write_text("security:\n  pepper: file:secrets/pepper\n")
    config = load_config(tmp_path / "bastion.yaml", environ={})
    assert config.security.pepper is not None
    # Exactly one trailing newline is removed.
    assert config.security.pepper.get_secret_value() == "p" * 40 + "\n"


def test_file_reference_accepts_an_absolute_path_and_crlf(tmp_path: Path) -> None:
    secret = tmp_path / "client-id"
    secret.write_bytes(b"bastion-app\r\n")
    assert oidc_client_id(f"file:{secret}", {}) == "bastion-app"


def test_file_reference_path_may_use_variables(tmp_path: Path) -> None:
    (tmp_path / "client-id").write_text("from-file")
    assert oidc_client_id("file:${SECRETS}/client-id", {"SECRETS": str(tmp_path)}) == "from-file"


def test_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    issues = reference_issues(
        "security:\n  pepper: file:missing-pepper\n", environ={}, base_dir=tmp_path
    )
    assert issues == [
        f"security.pepper: cannot read file {tmp_path / 'missing-pepper'}: "
        "No such file or directory"
    ]


def test_binary_file_is_reported_without_its_content(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(b"\xff\xfesecret-bytes")
    issues = reference_issues("security:\n  pepper: file:blob\n", environ={}, base_dir=tmp_path)
    assert issues == [f"security.pepper: file {tmp_path / 'blob'} is not UTF-8 text"]


def test_invalid_file_content_is_reported_without_the_content(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("short-secret-content")
    (tmp_path / "bastion.yaml").write_text("security:\n  pepper: file:pepper\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "bastion.yaml", environ={})
    assert str(caught.value) == "security.pepper: must be at least 32 characters"


def test_vault_reference_is_not_supported_yet() -> None:
    issues = reference_issues(
        OIDC.format(client_id="vault:secret/data/api-keys#external-api"), environ={}
    )
    assert issues == [
        "security.sso.oidc.clientId: vault: references need the vault secrets provider, "
        "which is not yet supported"
    ]


def test_references_resolve_inside_lists() -> None:
    config = parse_config(
        "gateway:\n  trustedProxies: [env:PROXY, '${OTHER}']\n",
        environ={"PROXY": "10.0.0.0/8", "OTHER": "fd00::/8"},
    )
    assert [str(net) for net in config.gateway.trusted_proxies] == ["10.0.0.0/8", "fd00::/8"]


def test_reference_issue_in_a_list_item_names_the_index() -> None:
    issues = reference_issues("gateway:\n  trustedProxies: [10.0.0.0/8, env:PROXY]\n", environ={})
    assert issues == ["gateway.trustedProxies[1]: environment variable PROXY is not set"]


def test_no_path_gives_the_defaults() -> None:
    assert load_config(None) == BastionConfig()


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "bastion.yaml").write_text("# nothing configured yet\n")
    loaded = load_config(tmp_path / "bastion.yaml", environ={})
    # The defaults, with their relative paths next to the file (see test_config_paths.py).
    assert loaded == anchor_paths(BastionConfig(), tmp_path)
    assert loaded.storage.url == f"sqlite:///{tmp_path}/bastion.db"


def test_unreadable_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.yaml")
    assert (
        str(caught.value) == f"{tmp_path / 'absent.yaml'}: cannot read: No such file or directory"
    )


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_TEST_CLIENT_ID", "from-process")
    config = parse_config(OIDC.format(client_id="${BASTION_TEST_CLIENT_ID}"))
    assert config.security.sso.oidc is not None
    assert config.security.sso.oidc.client_id == "from-process"
