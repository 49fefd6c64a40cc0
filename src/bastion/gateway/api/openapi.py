"""The admin API's OpenAPI document says how it fails: problem+json, never FastAPI's ``422``.

FastAPI documents a ``422`` ``HTTPValidationError`` for every operation that reads input, but
the API answers bad input with ``400`` problem+json (`bastion.gateway.problem_handlers`), and
documents none of the ``401``/``403``/``404``/``409`` it does answer. A client generated from
the document would look for a status that never comes and miss the ones that do.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem; `code` is stable and snake_case.",
    "type": "object",
    "required": ["type", "title", "status", "code", "requestId"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "requestId": {"type": "string"},
        "detail": {"type": "string"},
    },
}

_WHY = {
    "400": "The request breaks a rule (a field, a parameter, the path, the JSON)",
    "401": "No valid credential",
    "403": "Not allowed",
    "404": "No such object in the caller's tenant",
    "409": "A name is taken, or the object is in use",
    "default": "Any other failure (405, 413, 415, 429, 5xx), as a problem",
}
_WRITES = {"post", "put", "patch", "delete"}
_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


def document_problems(api: FastAPI) -> None:
    """Make ``api``'s OpenAPI document list the problem answers each operation can give."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            _rewrite(build())
        return api.openapi_schema  # type: ignore[return-value]  # set by build()

    api.openapi = openapi  # type: ignore[method-assign]


def _rewrite(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_ONLY:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            operation["responses"] = _responses(path, method, operation)


def _responses(path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    statuses = ["400", "401", "403"]
    if "{" in path or "requestBody" in operation:
        statuses.append("404")  # a path names an object, and a body may
    if method in _WRITES:
        statuses.append("409")
    responses = {k: v for k, v in operation.get("responses", {}).items() if k != "422"}
    for status in [*statuses, "default"]:
        responses[status] = {
            "description": _WHY[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return responses
