"""Cedar policies (``security.policies``) through cedarpy: load, validate, evaluate, reload.

A policy set is validated against bastion's generated schema (or the configured one) before it
is used. A reload that fails (a file that does not parse or validate, is missing, or holds no
policy) keeps the last good set in force, and is logged and audited. Evaluation sends Cedar
only the request's slice of entities (principal, its groups and roles, its tenant, the
resource), so its cost does not grow with the number of principals. Any evaluation error is
a deny (`bastion.core.engine.combine`).

Reloads are serialized, so whichever reload reads the files last leaves its set in force. The
engine also answers which loaded policies name a group, role or principal (`naming`): Cedar
ids carry no tenant, so the admin API's escalation guard reserves those names
(`bastion.services.holdings`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cedarpy

from bastion.core.cedar_names import NO_NAMES, NameReferences, name_references
from bastion.core.cedar_schema import cedar_type, principal_entities, resource_entity
from bastion.core.decision import Check
from bastion.core.engine import CedarOutcome
from bastion.core.model import AuditEvent
from bastion.core.netrules import parse_address
from bastion.errors import PolicyError
from bastion.services.audit import build_event
from bastion.services.authz import AuthzRequest, Subject

log = logging.getLogger("bastion.policies")

COLLECTION_ID = "*"  # the resource id of a request that names no instance


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    name: str  # the @id annotation, else file#index
    effect: str
    file: str
    references: NameReferences = NO_NAMES


@dataclass(frozen=True)
class PolicySetState:
    """One validated policy set; immutable, swapped whole on reload."""

    policies: cedarpy.PolicySet
    names: dict[str, LoadedPolicy]  # Cedar's positional id → what we call it
    digest: str
    loaded_at: datetime


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: is not UTF-8") from None


def read_policy_files(files: Sequence[Path]) -> tuple[tuple[Path, str], ...]:
    """Every file's text; `PolicyError` naming the first that cannot be read."""
    return tuple((path, _read(path)) for path in files)


def digest_of(texts: Sequence[tuple[Path, str]]) -> str:
    """The digest of a set as read (`PolicySetState.digest` of the set they make)."""
    return hashlib.sha256("\n".join(text for _, text in texts).encode()).hexdigest()


def parse_policy_files(files: Sequence[Path], schema: str, *, now: datetime) -> PolicySetState:
    """Read, parse and validate every file into one set; `PolicyError` naming the first problem."""
    return parse_policy_texts(read_policy_files(files), schema, now=now)


def parse_policy_texts(
    texts: Sequence[tuple[Path, str]], schema: str, *, now: datetime
) -> PolicySetState:
    """Parse and validate the files' texts into one set; `PolicyError` naming the first problem."""
    names: dict[str, LoadedPolicy] = {}
    offset = 0
    for path, text in texts:
        try:
            est = json.loads(cedarpy.policies_to_json_str(text))
        except ValueError as exc:
            raise PolicyError(f"{path}: does not parse: {exc}") from None
        static, templates = est.get("staticPolicies", {}), est.get("templates", {})
        if not static:
            raise PolicyError(f"{path}: holds no policy (an empty file never means allow-all)")
        # Cedar numbers templates and static policies together, in the order of the text.
        for index, key in enumerate(sorted(static, key=_position)):
            body = static[key]
            name = body.get("annotations", {}).get("id") or f"{path.name}#{index}"
            loaded = LoadedPolicy(name, body["effect"], str(path), name_references(body))
            names[f"policy{offset + _position(key)}"] = loaded
        offset += len(static) + len(templates)
    combined = "\n".join(text for _, text in texts)
    result = cedarpy.validate_policies(combined, schema)
    if not result.validation_passed:
        problems = "; ".join(
            f"{names[e.policy_id].name if e.policy_id in names else e.policy_id}: {e.error}"
            for e in result.errors
        )
        raise PolicyError(f"policies do not validate against the schema: {problems}")
    return PolicySetState(cedarpy.PolicySet.from_str(combined), names, digest_of(texts), now)


def _position(key: str) -> int:
    """A policy's place in its file, from the id Cedar gives it there (``policy3`` → 3)."""
    return int(key.removeprefix("policy"))


class PolicyEngine:
    """The policy set in force, its reloads, and evaluation on sliced entities."""

    def __init__(
        self,
        *,
        files: Sequence[Path],
        schema: str,
        clock: Callable[[], datetime],
        record: Callable[[AuditEvent], None] | None = None,
        tenant: str = "default",
    ) -> None:
        self.files = tuple(files)
        self.schema = schema
        self._clock = clock
        self._record = record
        self._tenant = tenant
        self.state: PolicySetState | None = None
        self.last_error: str | None = None
        # The digest of the files as the last load or reload read them, whether their set went
        # into force or was rejected ("" when they could not be read).
        self.last_read: str | None = None
        self._lock = threading.Lock()
        self._slices: dict[tuple[Any, ...], str] = {}
        self._resources: dict[tuple[str, str, str], str] = {}

    def load(self) -> PolicySetState:
        """The first load; `PolicyError` (bastion refuses to start) if it fails."""
        with self._lock:
            self.state = parse_policy_files(self.files, self.schema, now=self._clock())
            self.last_read = self.state.digest
            return self.state

    def reload(self, *, trigger: str, expect: str | None = None) -> bool:
        """Re-read the files; on failure keep the last good set. True if a new set is in force.

        One reload at a time, each reading the files under the lock, so a reload that read
        them earlier never replaces the set of one that read them later. With ``expect`` (the
        watcher's digest of files it read alike twice), files that now read otherwise are
        left alone: they changed again, and the watcher waits for them to settle.
        """
        with self._lock:
            try:
                texts = read_policy_files(self.files)
            except PolicyError as exc:
                if expect:  # readable when the watcher read them: they changed again
                    return False
                self.last_read = ""
                return self._reject(trigger, exc)
            digest = digest_of(texts)
            if expect is not None and digest != expect:
                return False
            self.last_read = digest
            try:
                state = parse_policy_texts(texts, self.schema, now=self._clock())
            except PolicyError as exc:
                return self._reject(trigger, exc)
            if self.state is not None and state.digest == self.state.digest:
                self.last_error = None  # the files hold the set in force again
                return False
            self.state, self.last_error = state, None
            self._slices, self._resources = {}, {}
            log.info("policy reload (%s): %d policies in force", trigger, len(state.names))
            self._audit("success", trigger, policies=[p.name for p in state.names.values()])
            return True

    def _reject(self, trigger: str, error: PolicyError) -> bool:
        self.last_error = str(error)
        log.error("policy reload (%s) rejected, last good set stays: %s", trigger, error)
        self._audit("failure", trigger, error=str(error))
        return False

    def _audit(self, outcome: str, trigger: str, **details: Any) -> None:
        if self._record is None:
            return
        event = build_event(
            action="policy.reload",
            outcome=outcome,
            tenant=self._tenant,
            now=self._clock(),
            actor={"type": "system", "id": "bastion", "via": trigger},
            resource={"type": "policies", "id": ",".join(p.name for p in self.files)},
            details=details,
        )
        try:
            self._record(event)
        except Exception:  # the reload's outcome stands; the log already has it
            log.exception("policy reload could not be audited")

    def digests(self) -> str:
        """The digest of the files as they are on disk now ("" when one cannot be read)."""
        try:
            return digest_of(read_policy_files(self.files))
        except PolicyError:
            return ""

    def naming(self, kind: str, name: str) -> tuple[str, ...]:
        """The policies in force that name ``kind::"name"`` (``Group``, ``Role``, ``User``,
        ``ServiceAccount``, ``Agent``), permits and forbids alike: joining or leaving it, or
        taking its name, changes what they decide."""
        state = self.state
        if state is None:
            return ()
        return tuple(p.name for p in state.names.values() if p.references.include(kind, name))

    def evaluate(
        self, subject: Subject, request: AuthzRequest, *, tenant: str, roles: frozenset[str]
    ) -> Check | None:
        state = self.state
        if state is None:
            return None
        query, entities = self.inputs(subject, request, tenant=tenant, roles=roles)
        return decide(state, query, entities).check()

    def inputs(
        self, subject: Subject, request: AuthzRequest, *, tenant: str, roles: frozenset[str]
    ) -> tuple[dict[str, Any], str]:
        """The Cedar request and the sliced entities (JSON) for one decision."""
        principal = subject.principal
        kind = str(principal.kind)
        key = (subject.tenant.tenant.name, kind, principal.name, subject.groups, roles)
        fragment = self._slices.get(key)
        if fragment is None:
            definitions = subject.tenant.catalog.definitions
            fragment = principal_entities(
                kind=kind,
                name=principal.name,
                tenant=subject.tenant.tenant.name,
                groups=subject.groups,
                roles=roles,
                inherits={r: definitions[r].inherits for r in roles if r in definitions},
            )
            if len(self._slices) > 50_000:
                self._slices = {}
            self._slices[key] = fragment
        resource_id = request.resource_id or COLLECTION_ID
        resource_key = (request.resource, resource_id, tenant)
        resource_json = self._resources.get(resource_key)
        if resource_json is None:
            if len(self._resources) > 50_000:
                self._resources = {}
            resource_json = self._resources[resource_key] = resource_entity(*resource_key)
        entities = f"[{fragment},{resource_json}]"
        context = request.context
        cedar_context: dict[str, Any] = {
            "time": int(context.time.timestamp()),
            "mfa": context.mfa,
            "authMethod": context.auth_method,
            "tenant": tenant,
            "route": {"method": "", "path": "", **context.route},
        }
        client_ip = _cedar_ip(context.client_ip)
        if client_ip is not None:
            # Only a real address: policies test ``context has clientIp`` otherwise.
            cedar_context["clientIp"] = {"__extn": {"fn": "ip", "arg": client_ip}}
        query = {
            "principal": {"type": _PRINCIPAL[kind], "id": principal.name},
            "action": {"type": "Action", "id": request.action},
            "resource": {"type": cedar_type(request.resource), "id": resource_id},
            "context": cedar_context,
        }
        return query, entities


def decide(state: PolicySetState, query: dict[str, Any], entities: str) -> CedarOutcome:
    """Evaluate one request; any failure of the engine is a deny, never an allow."""
    try:
        result = cedarpy.is_authorized(query, state.policies, entities)
    except Exception as exc:
        return CedarOutcome(errors=(f"{type(exc).__name__}: {exc}",))
    diagnostics = result.diagnostics
    if diagnostics.errors:
        return CedarOutcome(errors=tuple(diagnostics.errors))
    matched = tuple(state.names[p].name if p in state.names else p for p in diagnostics.reasons)
    if result.allowed:
        return CedarOutcome(permits=matched)
    return CedarOutcome(forbids=matched)


_PRINCIPAL = {"user": "User", "serviceAccount": "ServiceAccount", "agent": "Agent"}


@functools.lru_cache(maxsize=4096)
def _cedar_ip(value: str | None) -> str | None:
    """The client address as Cedar's ``ip()`` is given it, or None when it is not one. An
    IPv4-mapped address (``::ffff:203.0.113.5``, how a listener on ``::`` sees an IPv4 client)
    is given as its IPv4 address: Cedar holds the two families apart, so a
    ``forbid … isInRange(ip("203.0.113.0/24"))`` would otherwise miss that client."""
    address = parse_address(value)
    return None if address is None else str(address)
