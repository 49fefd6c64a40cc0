"""The ``security:`` section (spec/000), composed of the identity, rbac and audit sub-models."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from bastion.config.models_audit import AuditConfig, AuditLevel
from bastion.config.models_base import (
    Bool,
    Cidr,
    ConfigModel,
    HttpUrl,
    NestedValueError,
    NonEmptyStr,
    PositiveFloat,
    PositiveInt,
    StrongSecret,
)
from bastion.config.models_identity import (
    AgentAuthConfig,
    AuthenticationConfig,
    MtlsConfig,
    SsoConfig,
)
from bastion.config.models_rbac import PoliciesConfig, RbacConfig
from bastion.config.units import ByteSize, Duration
from bastion.core.names import canonical_name


class AtRestEncryptionConfig(ConfigModel):
    """Envelope encryption of stored secrets; ``keyId`` names the key-encryption key."""

    enabled: Bool = False
    provider: Literal["aws-kms", "local", "vault", "pkcs11"] = "local"
    key_id: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _key_named(self) -> AtRestEncryptionConfig:
        if self.enabled and self.provider != "local" and self.key_id is None:
            raise NestedValueError([(("keyId",), f"required when provider is {self.provider}")])
        return self


class InTransitEncryptionConfig(ConfigModel):
    """TLS on every connection bastion makes or accepts."""

    enabled: Bool = False


class EncryptionConfig(ConfigModel):
    """Encryption at rest and in transit."""

    at_rest: AtRestEncryptionConfig = AtRestEncryptionConfig()
    in_transit: InTransitEncryptionConfig = InTransitEncryptionConfig()


class MaskingConfig(ConfigModel):
    """Extra fields masked in logs and audit events (credentials are always masked)."""

    enabled: Bool = True
    fields: tuple[NonEmptyStr, ...] = ()
    method: Literal["redact", "hash", "partial"] = "redact"

    @field_validator("fields")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if any(not segment.strip() for segment in path.split(".")):
                raise ValueError("each field is a dotted path like input.password or output.*.key")
        return value


class DataProtectionConfig(ConfigModel):
    """Handling of sensitive data in logs and audit events."""

    masking: MaskingConfig = MaskingConfig()


class SanitizeConfig(ConfigModel):
    """Request body sanitisation."""

    html: Bool = False
    scripts: Bool = False


class InputValidationConfig(ConfigModel):
    """Limits on request bodies (paths are always checked for canonical form)."""

    enabled: Bool = True
    max_size: ByteSize = 10 * 1000 * 1000
    allowed_content_types: tuple[NonEmptyStr, ...] = ()
    max_json_depth: PositiveInt = 32
    max_json_size: ByteSize = 1000 * 1000
    sanitize: SanitizeConfig = SanitizeConfig()


class SecretKeyRefConfig(ConfigModel):
    """A key inside a named (Kubernetes) secret."""

    name: NonEmptyStr
    key: NonEmptyStr


class SecretReferenceConfig(ConfigModel):
    """``<name>: {secretRef: {name, key}}``: a named secret resolved through the provider."""

    secret_ref: SecretKeyRefConfig


class VaultAuthConfig(ConfigModel):
    """How bastion logs in to Vault."""

    method: NonEmptyStr = "kubernetes"
    role: NonEmptyStr | None = None


class VaultConfig(ConfigModel):
    """A HashiCorp Vault server."""

    address: HttpUrl
    auth: VaultAuthConfig = VaultAuthConfig()
    secret_path: NonEmptyStr | None = None


class AwsSecretsConfig(ConfigModel):
    """AWS Secrets Manager."""

    region: NonEmptyStr
    secret_prefix: str = ""


class SecretsConfig(ConfigModel):
    """Where secrets come from; other keys are named references ``{secretRef: {name, key}}``."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, SecretReferenceConfig] = Field(init=False)

    provider: Literal["kubernetes", "vault", "aws-secrets-manager", "env", "file"] = "env"
    vault: VaultConfig | None = None
    aws: AwsSecretsConfig | None = None

    @property
    def references(self) -> dict[str, SecretReferenceConfig]:
        """The named secret references, by name."""
        return dict(self.model_extra or {})


class IpAllowlistConfig(ConfigModel):
    """Only clients from these networks are served."""

    enabled: Bool = False
    ranges: tuple[Cidr, ...] = ()

    @model_validator(mode="after")
    def _ranges_present(self) -> IpAllowlistConfig:
        if self.enabled and not self.ranges:
            message = "must list at least one range when ipAllowlist is enabled"
            raise NestedValueError([(("ranges",), message)])
        return self


class NetworkConfig(ConfigModel):
    """Network-level controls."""

    ip_allowlist: IpAllowlistConfig = IpAllowlistConfig()


class RequestRateConfig(ConfigModel):
    """A token bucket: a sustained rate and the burst it allows."""

    requests_per_second: PositiveFloat
    burst_size: PositiveInt


class PerPatternRateConfig(ConfigModel):
    """A limit per pattern: per route and resource id, shared by every client."""

    requests_per_minute: PositiveInt
    burst_size: PositiveInt | None = None


class RateLimitConfig(ConfigModel):
    """Request rate limits; ``failClosed`` denies when the counter store is unreachable."""

    enabled: Bool = False
    fail_closed: Bool = True
    replicas: PositiveInt = 1
    global_: RequestRateConfig | None = Field(default=None, alias="global")
    per_client: RequestRateConfig | None = None
    per_tenant: RequestRateConfig | None = None
    per_pattern: PerPatternRateConfig | None = None


class SessionsConfig(ConfigModel):
    """Browser sessions of the console and SSO logins."""

    timeout: Duration = timedelta(minutes=30)
    max_concurrent: PositiveInt | None = None
    secret: StrongSecret | None = None
    secure: Bool = True
    same_site: Literal["lax", "strict", "none"] = "lax"

    @model_validator(mode="after")
    def _none_needs_secure(self) -> SessionsConfig:
        if self.same_site == "none" and not self.secure:
            raise NestedValueError([(("sameSite",), "none requires secure: true")])
        return self


class DataResidencyConfig(ConfigModel):
    """Where personal data is kept."""

    region: NonEmptyStr


class DataRetentionConfig(ConfigModel):
    """How long personal data is kept before erasure."""

    execution_data: Duration | None = None
    audit_logs: Duration | None = None


class ConsentConfig(ConfigModel):
    """Consent tracking."""

    required: Bool = False


class GdprConfig(ConfigModel):
    """GDPR controls: residency, retention and consent."""

    enabled: Bool = False
    data_residency: DataResidencyConfig | None = None
    data_retention: DataRetentionConfig = DataRetentionConfig()
    consent: ConsentConfig = ConsentConfig()


class PhiConfig(ConfigModel):
    """Protected health information safeguards."""

    encryption_required: Bool = True
    access_logging: Bool = True
    minimum_necessary: Bool = True


class HipaaAuditConfig(ConfigModel):
    """HIPAA's audit requirements."""

    level: AuditLevel = "verbose"
    retention: Duration | None = None


class HipaaConfig(ConfigModel):
    """HIPAA controls."""

    enabled: Bool = False
    phi: PhiConfig = PhiConfig()
    audit: HipaaAuditConfig = HipaaAuditConfig()


class SecurityConfig(ConfigModel):
    """Everything spec/000 calls ``security:``, plus the API-key pepper and default tenant."""

    pepper: StrongSecret | None = None
    default_tenant: NonEmptyStr = "default"
    mtls: MtlsConfig = MtlsConfig()
    authentication: AuthenticationConfig = AuthenticationConfig()
    sso: SsoConfig = SsoConfig()
    agent_auth: AgentAuthConfig = AgentAuthConfig()
    rbac: RbacConfig = RbacConfig()
    policies: PoliciesConfig = PoliciesConfig()
    audit: AuditConfig = AuditConfig()
    encryption: EncryptionConfig = EncryptionConfig()
    data_protection: DataProtectionConfig = DataProtectionConfig()
    input_validation: InputValidationConfig = InputValidationConfig()
    secrets: SecretsConfig = SecretsConfig()
    network: NetworkConfig = NetworkConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    sessions: SessionsConfig = SessionsConfig()
    gdpr: GdprConfig = GdprConfig()
    hipaa: HipaaConfig = HipaaConfig()

    @field_validator("default_tenant")
    @classmethod
    def _canonical_tenant(cls, value: str) -> str:
        """Tenants are named in canonical form (NFKC + case-fold), so ``Ops`` is ``ops``: the
        one form every comparison with a caller's tenant, a binding's or an event's expects."""
        return canonical_name(value)

    @model_validator(mode="after")
    def _agent_mtls_available(self) -> SecurityConfig:
        if self.agent_auth.method in ("mtls", "both") and not self.mtls.enabled:
            message = f"{self.agent_auth.method} needs security.mtls.enabled: true"
            raise NestedValueError([(("agentAuth", "method"), message)])
        return self
