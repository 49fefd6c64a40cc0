"""The route table: method + path template → (resource type, resource id, action).

Templates are split into segments: a literal, ``{name}`` (one non-empty segment, captured),
``*`` (one non-empty segment) or a final ``**`` (one or more further segments, the first
non-empty). Matching is on the canonical path only and is exact and case-sensitive. The first
route that matches wins; no match is a deny. A route may carry its own IP allowlist, checked
with the decision (`AccessService.check`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bastion.core.netrules import Allowlist

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def default_event(resource: str, action: str) -> str:
    """The audit action of a route or endpoint that names none: the singular resource, a dot
    and the action (``patterns`` + ``read`` → ``pattern.read``, ``policies`` → ``policy.…``)."""
    noun = resource[:-3] + "y" if resource.endswith("ies") else resource.removesuffix("s")
    return f"{noun}.{action}"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    resource: str
    action: str
    permission: str
    event: str
    resource_id: str | None = None
    allowlist: Allowlist = field(default_factory=Allowlist)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: RouteSpec
    params: dict[str, str]

    @property
    def resource_id(self) -> str | None:
        template = self.route.resource_id
        if template is None:
            return None
        return _PARAM.sub(lambda m: self.params.get(m[1], ""), template)


class TemplateError(ValueError):
    """A path template that is not well formed."""


def template_segments(template: str) -> tuple[str, ...]:
    """Split and check a template; TemplateError explains what is wrong."""
    if not template.startswith("/"):
        raise TemplateError("must start with /")
    segments = tuple(template.split("/")[1:])
    for index, segment in enumerate(segments):
        if segment == "**" and index != len(segments) - 1:
            raise TemplateError("** may only be the last segment")
        if segment in ("", ".", "..") and not (segment == "" and len(segments) == 1):
            raise TemplateError("must not contain empty or dot segments")
        if ("{" in segment or "}" in segment) and not _PARAM.fullmatch(segment):
            raise TemplateError(f"segment {segment!r} must be a literal or a whole {{name}}")
    return segments


def template_params(template: str) -> set[str]:
    return set(_PARAM.findall(template))


def match_segments(pattern: Sequence[str], segments: Sequence[str]) -> dict[str, str] | None:
    """Captured parameters if ``segments`` fit ``pattern``, else None."""
    params: dict[str, str] = {}
    for index, part in enumerate(pattern):
        if part == "**":
            return params if len(segments) > index and segments[index] else None
        if index >= len(segments):
            return None
        value = segments[index]
        if part == "*" or part.startswith("{"):
            # A wildcard stands for a segment, never for nothing: `/files/*` must not make
            # `/files/` (the listing) match, nor a public path `/x/*` make `/x/` public.
            if not value:
                return None
            if part != "*":
                params[part[1:-1]] = value
        elif part != value:
            return None
    return params if len(segments) == len(pattern) else None


class RouteTable:
    """Ordered routes, matched first-wins; `match` returns None for a deny."""

    def __init__(self, routes: Sequence[RouteSpec]) -> None:
        self._routes = [(route, template_segments(route.path)) for route in routes]

    def match(self, method: str, path: str) -> RouteMatch | None:
        segments = path.split("/")[1:]
        for route, pattern in self._routes:
            if route.method not in ("*", method) and not (
                method == "HEAD" and route.method == "GET"
            ):
                continue
            params = match_segments(pattern, segments)
            if params is not None:
                return RouteMatch(route, params)
        return None


class PathSet:
    """Templates without routing data (for public paths): answers "does any match?"."""

    def __init__(self, templates: Sequence[str]) -> None:
        self._patterns = [template_segments(t) for t in templates]

    def matches(self, path: str) -> bool:
        segments = path.split("/")[1:]
        return any(match_segments(p, segments) is not None for p in self._patterns)
