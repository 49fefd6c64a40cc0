"""Secret values never reach ``repr``, ``str`` or an error message (DESIGN.md section 7.8)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bastion.config import parse_config
from bastion.errors import ConfigError

SECRETS = {
    "PEPPER": "pepper-0123456789-0123456789-0123456789",
    "OIDC_CLIENT_SECRET": "oidc-client-secret-value",
    "ES_PASSWORD": "elasticsearch-password-value",
    "SPLUNK_HEC_TOKEN": "splunk-hec-token-value",
    "SESSION_SECRET": "session-secret-0123456789-0123456789",
    "DB_PASSWORD": "database-password-value",
    "REDIS_PASSWORD": "redis-password-value",
}

EVERY_SECRET = textwrap.dedent(
    """
    security:
      pepper: ${PEPPER}
      sso:
        enabled: true
        provider: oidc
        oidc:
          issuer: https://auth.example.com
          clientId: bastion
          clientSecret: ${OIDC_CLIENT_SECRET}
      audit:
        destination: elasticsearch
        elasticsearch:
          hosts: [https://es.example.com:9200]
          index: bastion-audit
          username: bastion
          password: ${ES_PASSWORD}
        splunk:
          host: splunk.example.com
          token: env:SPLUNK_HEC_TOKEN
      sessions:
        secret: ${SESSION_SECRET}
    storage:
      url: postgresql://bastion:${DB_PASSWORD}@db/bastion
      redisUrl: redis://:${REDIS_PASSWORD}@cache:6379/0
    """
)


def assert_no_secret_in(text: str) -> None:
    leaked = [name for name, value in SECRETS.items() if value in text]
    assert not leaked, f"secret values leaked: {leaked}"


def test_repr_and_str_of_a_config_hide_every_secret() -> None:
    config = parse_config(EVERY_SECRET, environ=SECRETS)
    assert config.security.sso.oidc is not None
    assert config.security.sso.oidc.client_secret is not None
    assert (
        config.security.sso.oidc.client_secret.get_secret_value() == SECRETS["OIDC_CLIENT_SECRET"]
    )
    assert SECRETS["DB_PASSWORD"] in config.storage.url
    assert_no_secret_in(repr(config))
    assert_no_secret_in(str(config))
    assert_no_secret_in(repr(config.storage))


def test_error_in_another_key_does_not_print_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(EVERY_SECRET + "gateway:\n  listen: nowhere\n", environ=SECRETS)
    assert_no_secret_in(str(caught.value))
    assert_no_secret_in(repr(caught.value.issues))


@pytest.mark.parametrize(
    "text",
    [
        "security:\n  pepper: ${PEPPER}\n",
        "security:\n  sessions:\n    secret: ${PEPPER}\n",
        "security:\n  pepper: [${PEPPER}]\n",
        "security:\n  sessions:\n    secret: {value: '${PEPPER}'}\n",
        "security:\n  audit:\n    splunk: {host: h, token: 42, unknown: '${PEPPER}'}\n",
        "storage:\n  url: mysql://root:${PEPPER}@db/x\n",
    ],
)
def test_invalid_secret_value_is_not_echoed(text: str) -> None:
    environ = {"PEPPER": "short-but-secret-pepper"}
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ=environ)
    assert "short-but-secret-pepper" not in str(caught.value)
    assert "short-but-secret-pepper" not in repr(caught.value.issues)


def test_secret_from_a_file_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-secret-token-value\n")
    text = "security:\n  audit:\n    splunk: {host: h, port: file:token, token: t}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={}, base_dir=tmp_path)
    assert str(caught.value) == "security.audit.splunk.port: must be an integer"


def test_yaml_error_does_not_quote_the_offending_line() -> None:
    text = 'security:\n  pepper: "pepper-0123456789-0123456789-0123456789\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    assert_no_secret_in(str(caught.value))
