"""Route matching: first match wins, exact and case-sensitive, no match is None (deny)."""

from __future__ import annotations

import pytest

from bastion.core.routes import PathSet, RouteSpec, RouteTable, TemplateError, template_segments


def route(
    method: str,
    path: str,
    resource: str = "patterns",
    action: str = "read",
    resource_id: str | None = None,
) -> RouteSpec:
    return RouteSpec(
        method,
        path,
        resource,
        action,
        f"{resource}:{action}",
        f"{resource[:-1]}.{action}",
        resource_id,
    )


TABLE = RouteTable(
    [
        route("GET", "/api/patterns"),
        route("GET", "/api/patterns/{id}", resource_id="{id}"),
        route("POST", "/api/patterns/{id}/execute", action="execute", resource_id="{id}"),
        route("GET", "/files/**", resource="files"),
        route("*", "/any/*/thing", resource="things"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "expected_path", "resource_id"),
    [
        ("GET", "/api/patterns", "/api/patterns", None),
        ("HEAD", "/api/patterns", "/api/patterns", None),
        ("GET", "/api/patterns/x", "/api/patterns/{id}", "x"),
        ("POST", "/api/patterns/x/execute", "/api/patterns/{id}/execute", "x"),
        ("GET", "/files/a/b/c", "/files/**", None),
        ("DELETE", "/any/1/thing", "/any/*/thing", None),
    ],
)
def test_match(method: str, path: str, expected_path: str, resource_id: str | None) -> None:
    match = TABLE.match(method, path)
    assert match is not None
    assert match.route.path == expected_path
    assert match.resource_id == resource_id


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/patterns"),
        ("GET", "/api/patterns/x/execute"),
        ("GET", "/API/patterns"),
        ("GET", "/api/patterns/"),
        ("GET", "/api/patterns/x/"),
        ("GET", "/files"),
        ("GET", "/files/"),
        ("GET", "/any/1/2/thing"),
        ("GET", "/unknown"),
    ],
)
def test_no_match_is_none(method: str, path: str) -> None:
    assert TABLE.match(method, path) is None


@pytest.mark.parametrize("template", ["api", "/a/**/b", "/a//b", "/a/../b", "/a/x{id}"])
def test_bad_templates_rejected(template: str) -> None:
    with pytest.raises(TemplateError):
        template_segments(template)


def test_public_paths() -> None:
    public = PathSet(["/health", "/docs/**"])
    assert public.matches("/health")
    assert public.matches("/docs/a/b")
    assert not public.matches("/health/x")
    assert not public.matches("/docs")


@pytest.mark.parametrize("path", ["/files/", "/any//thing"])
def test_wildcard_segment_never_matches_an_empty_segment(path: str) -> None:
    table = RouteTable([route("GET", "/files/*", resource="files"), route("GET", "/any/*/thing")])
    assert table.match("GET", path) is None
    assert table.match("GET", "/files/a") is not None


def test_public_path_wildcard_does_not_make_the_empty_segment_public() -> None:
    public = PathSet(["/x/*"])
    assert public.matches("/x/a")
    assert not public.matches("/x/")
    assert not public.matches("/x")
