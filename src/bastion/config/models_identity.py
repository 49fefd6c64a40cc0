"""How callers prove who they are: ``security.mtls``, ``authentication``, ``sso``, ``agentAuth``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bastion.config.models_base import (
    Bool,
    ConfigModel,
    HttpUrl,
    Int,
    KeyPath,
    NestedValueError,
    NonEmptyStr,
    Secret,
)
from bastion.config.units import Duration, NonNegativeDuration
from bastion.core.password_hashes import hash_problem

JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
SsoProvider = Literal["oidc", "okta", "azure", "google"]

MAX_JWT_LEEWAY = timedelta(seconds=60)


class CertManagerIssuerConfig(ConfigModel):
    """The cert-manager issuer the Helm chart uses (or creates)."""

    create: Bool = False
    name: NonEmptyStr | None = None


class CertManagerConfig(ConfigModel):
    """Certificates issued by cert-manager instead of files."""

    enabled: Bool = False
    issuer: CertManagerIssuerConfig = CertManagerIssuerConfig()


class MtlsConfig(ConfigModel):
    """Mutual TLS: bastion's server certificate and the CA that signs client certificates."""

    enabled: Bool = False
    server_cert: NonEmptyStr | None = None
    server_key: NonEmptyStr | None = None
    client_ca: NonEmptyStr | None = Field(default=None, alias="clientCA")
    client_auth: Literal["require", "request", "none"] = "require"
    server_cert_secret: NonEmptyStr | None = None
    client_ca_secret: NonEmptyStr | None = Field(default=None, alias="clientCASecret")
    cert_manager: CertManagerConfig = CertManagerConfig()

    @model_validator(mode="after")
    def _certificates_present(self) -> MtlsConfig:
        issues: list[tuple[KeyPath, str]] = []
        if (self.server_cert is None) != (self.server_key is None):
            missing = "serverKey" if self.server_key is None else "serverCert"
            issues.append(((missing,), "serverCert and serverKey must be set together"))
        elif self.enabled and self.server_cert is None and self.server_cert_secret is None:
            issues.append(((), "when enabled, set serverCert and serverKey (or serverCertSecret)"))
        no_ca = self.client_ca is None and self.client_ca_secret is None
        if self.enabled and self.client_auth != "none" and no_ca:
            issues.append(((), f"clientAuth {self.client_auth} needs clientCA (or clientCASecret)"))
        if issues:
            raise NestedValueError(issues)
        return self


class ApiKeysConfig(ConfigModel):
    """Bastion-issued API keys (``bk_live_…``)."""

    enabled: Bool = True


class JwtClaimsConfig(ConfigModel):
    """Which claims of an external JWT name the user, its groups and its tenant."""

    subject: NonEmptyStr = "sub"
    groups: NonEmptyStr | None = "groups"
    tenant: NonEmptyStr | None = None


class JwtConfig(ConfigModel):
    """Bearer JWTs from an external issuer, verified against its JWKS."""

    enabled: Bool = False
    issuer: NonEmptyStr | None = None
    audience: NonEmptyStr | None = None
    jwks_uri: HttpUrl | None = None
    algorithms: Annotated[tuple[JwtAlgorithm, ...], Field(min_length=1)] = ("RS256",)
    leeway: NonNegativeDuration = timedelta(seconds=30)
    claims: JwtClaimsConfig = JwtClaimsConfig()
    jwks_cache_ttl: Duration = timedelta(hours=1)
    jwks_refetch_cooldown: Duration = timedelta(seconds=60)
    auto_provision: Bool = True

    @field_validator("leeway")
    @classmethod
    def _leeway_is_small(cls, value: timedelta) -> timedelta:
        if value > MAX_JWT_LEEWAY:
            raise ValueError("must be at most 60s")
        return value

    @model_validator(mode="after")
    def _issuer_complete(self) -> JwtConfig:
        if self.enabled:
            fields = {"issuer": self.issuer, "audience": self.audience, "jwksUri": self.jwks_uri}
            missing = [
                ((key,), "required when jwt is enabled") for key, v in fields.items() if not v
            ]
            if missing:
                raise NestedValueError(missing)
        return self


class PasswordPolicyConfig(ConfigModel):
    """Rules for passwords people set (spec/004 "Password Policy")."""

    min_length: Annotated[Int, Field(ge=8, le=1024)] = 12
    require_uppercase: Bool = True
    require_lowercase: Bool = True
    require_digits: Bool = True
    require_symbols: Bool = True
    reject_common: Bool = True
    history: Annotated[Int, Field(ge=0, le=24)] = 5
    expiry: Duration | None = None


class ThrottleConfig(ConfigModel):
    """Failed logins allowed per window before a temporary lock, and how locks escalate."""

    max_failures: Annotated[Int, Field(ge=1, le=100)]
    window: Duration = timedelta(minutes=15)
    base_lockout: Duration = timedelta(minutes=1)
    max_lockout: Duration = timedelta(hours=1)


class LockoutConfig(ConfigModel):
    """Brute-force protection: one counter per account and one per client address."""

    account: ThrottleConfig = ThrottleConfig(max_failures=5)
    address: ThrottleConfig = ThrottleConfig(max_failures=50)


SigningAlgorithm = Literal["RS256", "ES256", "EdDSA"]


class TokensConfig(ConfigModel):
    """Tokens bastion issues at ``/_bastion/oauth/token`` and ``/_bastion/login``."""

    issuer: HttpUrl | None = None
    algorithm: SigningAlgorithm = "RS256"
    access_token_ttl: Duration = timedelta(minutes=15)
    refresh_token_ttl: Duration = timedelta(days=7)
    # How long a login's session lasts however often its refresh token rotates (ASVS 3.3.2:
    # re-authentication at least every 30 days; 12 hours at level 2).
    session_lifetime: Duration = timedelta(days=30)


class BasicAuthUserConfig(ConfigModel):
    """A user declared in the file with an imported hash (spec/001 basic auth)."""

    username: NonEmptyStr
    password_hash: Secret
    tenant: NonEmptyStr | None = None

    @field_validator("password_hash")
    @classmethod
    def _verifiable(cls, value: SecretStr) -> SecretStr:
        """A hash no login could ever verify is refused with its key path (never quoted)."""
        problem = hash_problem(value.get_secret_value())
        if problem is not None:
            raise PydanticCustomError("password_hash", problem)
        return value


class BasicAuthConfig(ConfigModel):
    """Users with bcrypt or Argon2id hashes, created at start when absent (spec/001)."""

    users: tuple[BasicAuthUserConfig, ...] = ()


class AuthenticationConfig(ConfigModel):
    """The credential types bastion accepts."""

    api_keys: ApiKeysConfig = ApiKeysConfig()
    jwt: JwtConfig = JwtConfig()
    passwords: PasswordPolicyConfig = PasswordPolicyConfig()
    lockout: LockoutConfig = LockoutConfig()
    tokens: TokensConfig = TokensConfig()
    basic_auth: BasicAuthConfig = BasicAuthConfig()


class OidcConfig(ConfigModel):
    """A generic OpenID Connect provider."""

    issuer: HttpUrl
    client_id: NonEmptyStr
    client_secret: Secret | None = None
    scopes: tuple[NonEmptyStr, ...] = ("openid", "profile", "email")
    redirect_uri: HttpUrl | None = None


class OktaConfig(ConfigModel):
    """Okta (an OIDC provider at ``https://<domain>/oauth2/<authorizationServerId>``)."""

    domain: NonEmptyStr
    client_id: NonEmptyStr
    client_secret: Secret | None = None
    authorization_server_id: NonEmptyStr | None = None


class AzureConfig(ConfigModel):
    """Microsoft Entra ID (Azure AD)."""

    tenant_id: NonEmptyStr
    client_id: NonEmptyStr
    client_secret: Secret | None = None


class GoogleConfig(ConfigModel):
    """Google accounts, optionally restricted to one Workspace domain."""

    client_id: NonEmptyStr
    client_secret: Secret | None = None
    hosted_domain: NonEmptyStr | None = None


class SsoConfig(ConfigModel):
    """Single sign-on for people, through one provider."""

    enabled: Bool = False
    provider: SsoProvider | None = None
    oidc: OidcConfig | None = None
    okta: OktaConfig | None = None
    azure: AzureConfig | None = None
    google: GoogleConfig | None = None

    @model_validator(mode="after")
    def _provider_configured(self) -> SsoConfig:
        if not self.enabled:
            return self
        if self.provider is None:
            raise NestedValueError([(("provider",), "required when sso is enabled")])
        if getattr(self, self.provider) is None:
            message = f"required when provider is {self.provider}"
            raise NestedValueError([((self.provider,), message)])
        return self


class AgentTokenConfig(ConfigModel):
    """Agent registration tokens (``bat_…``)."""

    registration_required: Bool = True
    ttl: Duration = timedelta(hours=1)


class AgentAuthConfig(ConfigModel):
    """How agents authenticate: client certificates, registration tokens, or both."""

    method: Literal["mtls", "token", "both"] = "token"
    token: AgentTokenConfig = AgentTokenConfig()
