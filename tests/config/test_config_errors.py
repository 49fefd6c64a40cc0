"""Every kind of config mistake is reported at its exact key path with a short message."""

from __future__ import annotations

import textwrap

import pytest

from bastion.config import BindingConfig, RbacConfig, RoleConfig, SubjectConfig, parse_config
from bastion.errors import ConfigError


def issues_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), source="bastion.yaml", environ={})
    return [str(issue) for issue in caught.value.issues]


ONE_ERROR_CASES = [
    pytest.param(
        """
        security:
          rateLimit:
            global: {requestsPerSecond: 0, burstSize: 10}
        """,
        "security.rateLimit.global.requestsPerSecond: must be greater than 0",
        id="greater-than",
    ),
    pytest.param("bogus: 1\n", "bogus: unknown key", id="unknown-key-top-level"),
    pytest.param(
        """
        security:
          mtls:
            serverCrt: /etc/server.crt
        """,
        "security.mtls.serverCrt: unknown key",
        id="unknown-key-nested",
    ),
    pytest.param(
        """
        gateway:
          prefix: /auth?x
        """,
        "gateway.prefix: must be a URL path of letters, digits and -._~!$&'()+,;=:@"
        " (no space or ?)",
        id="prefix-not-a-url-path",
    ),
    pytest.param(
        """
        gateway:
          allowedHosts: [app.example.com, "app.example.com:443"]
        """,
        "gateway.allowedHosts[1]: must be a host name or an IP address, without a port",
        id="allowed-host-with-port",
    ),
    pytest.param(
        """
        gateway:
          allowedHosts: ["*"]
        """,
        "gateway.allowedHosts[0]: leave gateway.allowedHosts empty to answer every host",
        id="allowed-host-star",
    ),
    pytest.param(
        """
        gateway:
          public_paths: [/docs/*]
        """,
        "gateway.public_paths: unknown key (keys are camelCase: publicPaths)",
        id="snake-case-key",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: /a, resource: a, action: read, public: true}
        """,
        "gateway.routes[0].public: unknown key",
        id="unknown-key-in-list-item",
    ),
    pytest.param(
        """
        security:
          rateLimit:
            perClient: {requestsPerSecond: 5, burstSize: many}
        """,
        "security.rateLimit.perClient.burstSize: must be an integer",
        id="wrong-type-integer",
    ),
    pytest.param(
        """
        security:
          sessions:
            maxConcurrent: true
        """,
        "security.sessions.maxConcurrent: must be an integer",
        id="boolean-is-not-an-integer",
    ),
    pytest.param(
        """
        security:
          mtls:
            enabled: maybe
        """,
        "security.mtls.enabled: must be true or false",
        id="wrong-type-boolean",
    ),
    pytest.param(
        """
        security:
          defaultTenant: [a, b]
        """,
        "security.defaultTenant: must be a string",
        id="wrong-type-string",
    ),
    pytest.param(
        """
        gateway:
          routes: /patterns
        """,
        "gateway.routes: must be a list",
        id="wrong-type-list",
    ),
    pytest.param(
        "security:\n  mtls: 5\n", "security.mtls: must be a mapping", id="wrong-type-mapping"
    ),
    pytest.param(
        """
        security:
          mtls:
            clientAuth: maybe
        """,
        "security.mtls.clientAuth: must be one of: require, request, none",
        id="bad-enum",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: FETCH, path: /a, resource: a, action: read}
        """,
        "gateway.routes[0].method: must be one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, *",
        id="bad-http-method",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: /a, action: read}
        """,
        "gateway.routes[0].resource: required key is missing",
        id="missing-required-key",
    ),
    pytest.param(
        """
        gateway:
          timeouts:
            connect: 5 minutes
        """,
        "gateway.timeouts.connect: must be a duration like 30s, 15m, 1h, 7d",
        id="bad-duration",
    ),
    pytest.param(
        """
        gateway:
          timeouts:
            read: 0s
        """,
        "gateway.timeouts.read: must be greater than 0",
        id="zero-duration",
    ),
    pytest.param(
        """
        security:
          inputValidation:
            maxSize: 10XB
        """,
        "security.inputValidation.maxSize: must be a size like 512KB, 10MB, 1GiB",
        id="bad-size",
    ),
    pytest.param(
        """
        gateway:
          trustedProxies: [10.0.0.0/8, 10.0.0.300/8]
        """,
        "gateway.trustedProxies[1]: must be a CIDR range like 10.0.0.0/8 or fd00::/8",
        id="bad-cidr",
    ),
    pytest.param(
        """
        security:
          network:
            ipAllowlist: {enabled: true, ranges: [not-a-network]}
        """,
        "security.network.ipAllowlist.ranges[0]: must be a CIDR range like 10.0.0.0/8 or fd00::/8",
        id="bad-cidr-in-allowlist",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: "/files/**/meta", resource: files, action: read}
        """,
        "gateway.routes[0].path: ** may only be the last segment",
        id="route-template-double-star-not-last",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: patterns, resource: patterns, action: read}
        """,
        "gateway.routes[0].path: must start with /",
        id="route-template-relative",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: "/a/../b", resource: a, action: read}
        """,
        "gateway.routes[0].path: must not contain empty or dot segments",
        id="route-template-dot-segment",
    ),
    pytest.param(
        """
        gateway:
          publicPaths: ["/a/{x}/{x}"]
        """,
        "gateway.publicPaths[0]: uses the same {name} twice",
        id="public-path-duplicate-param",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: "/patterns/{name}", resource: patterns, action: read, id: "{id}"}
        """,
        "gateway.routes[0].id: references {id}, which is not a parameter of path",
        id="route-id-unknown-param",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: /a, resource: a, action: read, permission: a-read}
        """,
        "gateway.routes[0].permission: must be resource:action",
        id="route-permission-format",
    ),
    pytest.param(
        """
        security:
          rbac:
            roles:
              - {name: a, inherits: [b]}
              - {name: b, inherits: [a]}
        """,
        "security.rbac.roles[1].inherits: inheritance cycle a -> b -> a",
        id="inheritance-cycle",
    ),
    pytest.param(
        """
        security:
          rbac:
            roles:
              - {name: loner, inherits: [loner]}
        """,
        "security.rbac.roles[0].inherits: inheritance cycle loner -> loner",
        id="self-inheritance",
    ),
    pytest.param(
        """
        security:
          rbac:
            roles:
              - {name: a, inherits: [ghost]}
        """,
        "security.rbac.roles[0].inherits[0]: unknown role ghost",
        id="inherits-unknown-role",
    ),
    pytest.param(
        """
        security:
          rbac:
            bindings:
              - subject: {type: user, name: alice@example.com}
                role: ghost
        """,
        "security.rbac.bindings[0].role: unknown role ghost",
        id="binding-to-unknown-role",
    ),
    pytest.param(
        """
        security:
          rbac:
            defaultRole: ghost
        """,
        "security.rbac.defaultRole: unknown role ghost",
        id="default-role-unknown",
    ),
    pytest.param(
        """
        security:
          rbac:
            roles:
              - {name: admin}
        """,
        "security.rbac.roles[0].name: admin is a built-in role; give the custom role another name",
        id="custom-role-named-like-built-in",
    ),
    pytest.param(
        """
        security:
          rbac:
            roles:
              - {name: auditors}
              - {name: auditors}
        """,
        "security.rbac.roles[1].name: role auditors is defined twice",
        id="duplicate-role-name",
    ),
    pytest.param(
        """
        security:
          rbac:
            bindings:
              - subject: {type: robot, name: r2}
                role: viewer
        """,
        "security.rbac.bindings[0].subject.type: must be one of: "
        "user, group, serviceAccount, agent",
        id="binding-subject-type",
    ),
    pytest.param(
        """
        gateway:
          listen: "127.0.0.1:70000"
        """,
        "gateway.listen: must be host:port (or [ipv6]:port) with a port from 1 to 65535",
        id="listen-port-out-of-range",
    ),
    pytest.param(
        """
        gateway:
          listen: "::1:8080"
        """,
        "gateway.listen: must be host:port (or [ipv6]:port) with a port from 1 to 65535",
        id="listen-unbracketed-ipv6",
    ),
    pytest.param(
        """
        gateway:
          upstream: ftp://files.example.com
        """,
        "gateway.upstream: must be an http:// or https:// URL",
        id="upstream-scheme",
    ),
    pytest.param(
        """
        gateway:
          upstream: http://app:0
        """,
        "gateway.upstream: must have a port from 1 to 65535",
        id="upstream-port-zero",
    ),
    pytest.param(
        """
        gateway:
          upstream: http://app:3000/api/../admin
        """,
        "gateway.upstream: path must not contain empty or dot segments",
        id="upstream-path-dot-segment",
    ),
    pytest.param(
        """
        gateway:
          routes:
            - {method: GET, path: /a, resource: "pat terns", action: read}
        """,
        "gateway.routes[0].resource: must be a name of letters, digits, _ . and - (or *)",
        id="route-resource-name",
    ),
    pytest.param(
        """
        gateway:
          prefix: /_bastion/
        """,
        "gateway.prefix: must start with / and not end with / (like /_bastion)",
        id="prefix-trailing-slash",
    ),
    pytest.param(
        """
        storage:
          url: mysql://db/bastion
        """,
        "storage.url: must start with sqlite:///, postgresql+psycopg:// or postgresql://",
        id="storage-url-scheme",
    ),
    pytest.param(
        """
        security:
          sso:
            enabled: true
            provider: okta
        """,
        "security.sso.okta: required when provider is okta",
        id="sso-provider-block-missing",
    ),
    pytest.param(
        """
        security:
          audit:
            destination: splunk
        """,
        "security.audit.splunk: required when destination is splunk",
        id="audit-destination-block-missing",
    ),
    pytest.param(
        """
        security:
          authentication:
            jwt: {leeway: 5m}
        """,
        "security.authentication.jwt.leeway: must be at most 60s",
        id="jwt-leeway-too-large",
    ),
    pytest.param(
        """
        security:
          authentication:
            jwt: {algorithms: [none]}
        """,
        "security.authentication.jwt.algorithms[0]: must be one of: "
        "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA",
        id="jwt-alg-none-rejected",
    ),
    pytest.param(
        """
        security:
          pepper: too-short
        """,
        "security.pepper: must be at least 32 characters",
        id="pepper-too-short",
    ),
    pytest.param(
        """
        security:
          agentAuth:
            method: mtls
        """,
        "security.agentAuth.method: mtls needs security.mtls.enabled: true",
        id="agent-mtls-without-mtls",
    ),
    pytest.param(
        """
        security:
          network:
            ipAllowlist: {enabled: true}
        """,
        "security.network.ipAllowlist.ranges: must list at least one range when ipAllowlist is "
        "enabled",
        id="allowlist-enabled-without-ranges",
    ),
    pytest.param(
        """
        security:
          rbac:
            roles:
              - name: r
                permissions: [{resource: patterns, actions: []}]
        """,
        "security.rbac.roles[0].permissions[0].actions: must not be empty",
        id="empty-actions",
    ),
    pytest.param(
        """
        security:
          secrets:
            apiKey:
              secretRef: {name: parallax-secrets}
        """,
        "security.secrets.apiKey.secretRef.key: required key is missing",
        id="secret-reference-incomplete",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ONE_ERROR_CASES)
def test_error_is_reported_at_its_key_path(text: str, expected: str) -> None:
    assert issues_of(text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'gateway:\n  listen: "127.0.0.1:8080\n',
            "bastion.yaml:3:1: found unexpected end of stream",
            id="unterminated-quote",
        ),
        pytest.param(
            "security:\n  mtls:\n    enabled: true\n   clientAuth: none\n",
            "bastion.yaml:4:4: did not find expected key",
            id="bad-indentation",
        ),
    ],
)
def test_yaml_syntax_error_names_file_line_and_column(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bastion.yaml", environ={})
    assert [(issue.path, issue.message) for issue in caught.value.issues] == [("", expected)]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bastion.yaml", environ={})
    assert str(caught.value) == (
        "bastion.yaml: the top level must be a mapping (security:, gateway:, storage:)"
    )


def test_every_error_is_reported_at_once_in_file_order() -> None:
    issues = issues_of(
        """
        storage:
          url: mysql://db
        gateway:
          listen: nowhere
          routes:
            - {method: GET, path: /a, resource: a}
            - {method: BREW, path: /b, resource: b, action: read}
        security:
          rateLimit:
            global: {requestsPerSecond: -1, burstSize: 0}
          mtls: {clientAuth: maybe}
        extra: true
        """
    )
    assert issues == [
        "storage.url: must start with sqlite:///, postgresql+psycopg:// or postgresql://",
        "gateway.listen: must be host:port (or [ipv6]:port) with a port from 1 to 65535",
        "gateway.routes[0].action: required key is missing",
        "gateway.routes[1].method: must be one of: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, *",
        "security.rateLimit.global.requestsPerSecond: must be greater than 0",
        "security.rateLimit.global.burstSize: must be greater than 0",
        "security.mtls.clientAuth: must be one of: require, request, none",
        "extra: unknown key",
    ]


def test_several_rbac_problems_are_reported_together() -> None:
    issues = issues_of(
        """
        security:
          rbac:
            defaultRole: ghost
            roles:
              - {name: a, inherits: [b]}
              - {name: b, inherits: [a, nobody]}
              - {name: viewer}
            bindings:
              - subject: {type: group, name: eng}
                role: missing
        """
    )
    assert issues == [
        "security.rbac.defaultRole: unknown role ghost",
        "security.rbac.roles[1].inherits: inheritance cycle a -> b -> a",
        "security.rbac.roles[1].inherits[1]: unknown role nobody",
        "security.rbac.roles[2].name: viewer is a built-in role; give the custom role another name",
        "security.rbac.bindings[0].role: unknown role missing",
    ]


def test_config_error_message_joins_every_issue() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("a: 1\nb: 2\n", environ={})
    assert str(caught.value) == "a: unknown key; b: unknown key"
    assert caught.value.code == "config_invalid"


def test_messages_never_echo_the_value_written() -> None:
    text = """
    gateway:
      listen: "value-that-must-not-be-echoed"
      timeouts: {connect: value-that-must-not-be-echoed}
      trustedProxies: [value-that-must-not-be-echoed]
    security:
      rateLimit:
        global: {requestsPerSecond: value-that-must-not-be-echoed, burstSize: 1}
      mtls: {clientAuth: value-that-must-not-be-echoed}
    """
    issues = issues_of(text)
    assert len(issues) == 5
    assert not any("value-that-must-not-be-echoed" in issue for issue in issues)


def test_yaml_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(ConfigError) as caught:
        parse_config("\n".join(lines), environ={})
    assert str(caught.value) == "the file has more than 100000 values"


def test_unknown_role_is_reported_with_the_other_errors_of_its_binding() -> None:
    issues = issues_of(
        """
        security:
          rbac:
            bindings:
              - {subject: {type: robot, name: x}, role: nosuch, expires: notadate}
        """
    )
    assert issues == [
        "security.rbac.bindings[0].subject.type: must be one of: user, group, serviceAccount, "
        "agent",
        "security.rbac.bindings[0].role: unknown role nosuch",
        "security.rbac.bindings[0].expires: must be a date and time like 2025-01-31T00:00:00Z",
    ]


def test_unknown_role_is_reported_with_empty_target_tenants() -> None:
    issues = issues_of(
        """
        security:
          rbac:
            platformBindings:
              - {subject: {type: user, name: x}, role: nosuch, targetTenants: []}
        """
    )
    assert issues == [
        "security.rbac.platformBindings[0].role: unknown role nosuch",
        "security.rbac.platformBindings[0].targetTenants: must not be empty",
    ]


def test_role_problems_are_reported_with_errors_elsewhere_in_rbac() -> None:
    issues = issues_of(
        """
        security:
          rbac:
            enabled: maybe
            defaultRole: ghost
            roles:
              - {name: a, inherits: [a], permissions: [{resource: x, actions: []}]}
        """
    )
    assert issues == [
        "security.rbac.enabled: must be true or false",
        "security.rbac.defaultRole: unknown role ghost",
        "security.rbac.roles[0].inherits: inheritance cycle a -> a",
        "security.rbac.roles[0].permissions[0].actions: must not be empty",
    ]


def test_references_are_not_judged_when_a_role_is_unreadable() -> None:
    # roles[0] has no name that can be read: "custom" might be it, so only its own error shows.
    issues = issues_of(
        """
        security:
          rbac:
            roles:
              - {name: [custom]}
            bindings:
              - {subject: {type: user, name: x}, role: custom}
        """
    )
    assert issues == ["security.rbac.roles[0].name: must be a string"]


def test_rbac_built_in_code_keeps_its_custom_roles() -> None:
    rbac = RbacConfig(
        roles=(RoleConfig(name="ops"),),
        bindings=(BindingConfig(subject=SubjectConfig(type="user", name="x"), role="ops"),),
    )
    assert rbac.bindings[0].role == "ops"


ROLE_NAME_RULE = (
    "a role name must not contain a comma or white space: the upstream gets a principal's roles "
    "as one comma-separated list (X-Bastion-Roles), which would read such a name as two roles"
)


@pytest.mark.parametrize("name", ["reader,admin", "reader admin", "reader, admin"])
def test_a_role_named_like_two_roles_is_refused_at_its_key_path(name: str) -> None:
    """``reader,admin`` reached the upstream as ``X-Bastion-Roles: reader,admin``."""
    issues = issues_of(
        f"""
        security:
          rbac:
            roles:
              - {{name: "{name}", permissions: [{{resource: patterns, actions: [read]}}]}}
            bindings:
              - subject: {{type: user, name: alice}}
                role: "{name}"
        """
    )
    assert issues == [
        f"security.rbac.roles[0].name: {ROLE_NAME_RULE}",
        f"security.rbac.bindings[0].role: {ROLE_NAME_RULE}",
    ]
