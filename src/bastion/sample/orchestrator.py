"""The sample upstream: an agent orchestrator with no security of its own.

It trusts the identity headers bastion sets and echoes them back as ``caller``, so a person
trying bastion can see who the upstream believes is calling. ``/api/whoami`` returns every
header it received, which the tests use to prove what bastion strips.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_SEED_PATTERNS = {
    "content-classifier": {"name": "content-classifier", "version": "1.0.0", "agents": 3},
    "sensitive-analysis": {"name": "sensitive-analysis", "version": "1.0.0", "agents": 2},
}
_SEED_AGENTS = {
    "agent-1": {"id": "agent-1", "capabilities": ["classification"]},
    "agent-2": {"id": "agent-2", "capabilities": ["analysis"]},
}


def _caller(request: Request) -> dict[str, Any]:
    return {
        "principal": request.headers.get("x-bastion-principal"),
        "tenant": request.headers.get("x-bastion-tenant"),
        "roles": request.headers.get("x-bastion-roles"),
        "requestId": request.headers.get("x-bastion-request-id"),
    }


def _pattern_body(raw: bytes) -> dict[str, Any] | str:
    """A pattern's fields from a JSON object body, or what is wrong with the body."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return "the body must be a JSON object"
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    agents = body.get("agents", 1)
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 0:
        return "agents must be a whole number"
    return body


def create_app() -> Starlette:
    patterns: dict[str, dict[str, Any]] = {k: dict(v) for k, v in _SEED_PATTERNS.items()}
    agents: dict[str, dict[str, Any]] = {k: dict(v) for k, v in _SEED_AGENTS.items()}
    executions: dict[str, dict[str, Any]] = {}
    counter = itertools.count(1)

    def reply(request: Request, payload: Any, status: int = 200) -> JSONResponse:
        return JSONResponse({"data": payload, "caller": _caller(request)}, status_code=status)

    async def list_patterns(request: Request) -> JSONResponse:
        return reply(request, sorted(patterns.values(), key=lambda p: p["name"]))

    async def get_pattern(request: Request) -> JSONResponse:
        pattern = patterns.get(request.path_params["id"])
        if pattern is None:
            return reply(request, {"error": "no such pattern"}, 404)
        return reply(request, pattern)

    async def put_pattern(request: Request) -> JSONResponse:
        body = _pattern_body(await request.body())
        if isinstance(body, str):
            return reply(request, {"error": body}, 400)
        name = request.path_params.get("id") or str(body.get("name", ""))
        if not name:
            return reply(request, {"error": "a pattern needs a name"}, 400)
        patterns[name] = {
            "name": name,
            "version": str(body.get("version", "1.0.0")),
            "agents": body.get("agents", 1),
        }
        return reply(request, patterns[name], 201 if request.method == "POST" else 200)

    async def delete_pattern(request: Request) -> JSONResponse:
        removed = patterns.pop(request.path_params["id"], None)
        return reply(request, {"deleted": removed is not None}, 200 if removed else 404)

    async def execute(request: Request) -> JSONResponse:
        name = request.path_params["id"]
        if name not in patterns:
            return reply(request, {"error": "no such pattern"}, 404)
        execution_id = f"exec_{next(counter):06d}"
        executions[execution_id] = {
            "id": execution_id,
            "pattern": name,
            "status": "completed",
            "startedBy": request.headers.get("x-bastion-principal"),
        }
        return reply(request, executions[execution_id], 201)

    async def list_executions(request: Request) -> JSONResponse:
        return reply(request, list(executions.values()))

    async def get_execution(request: Request) -> JSONResponse:
        execution = executions.get(request.path_params["id"])
        return reply(
            request, execution or {"error": "no such execution"}, 200 if execution else 404
        )

    async def list_agents(request: Request) -> JSONResponse:
        return reply(request, list(agents.values()))

    async def whoami(request: Request) -> JSONResponse:
        return reply(
            request,
            {"headers": [[k, v] for k, v in request.headers.items()], "path": request.url.path},
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/whoami", whoami),
            Route("/api/patterns", list_patterns, methods=["GET"]),
            Route("/api/patterns", put_pattern, methods=["POST"]),
            Route("/api/patterns/{id}", get_pattern, methods=["GET"]),
            Route("/api/patterns/{id}", put_pattern, methods=["PUT"]),
            Route("/api/patterns/{id}", delete_pattern, methods=["DELETE"]),
            Route("/api/patterns/{id}/execute", execute, methods=["POST"]),
            Route("/api/executions", list_executions, methods=["GET"]),
            Route("/api/executions/{id}", get_execution, methods=["GET"]),
            Route("/api/agents", list_agents, methods=["GET"]),
        ]
    )


SAMPLE_ROUTES: list[dict[str, str]] = [
    {"method": "GET", "path": "/api/patterns", "resource": "patterns", "action": "read"},
    {"method": "POST", "path": "/api/patterns", "resource": "patterns", "action": "create"},
    {
        "method": "GET",
        "path": "/api/patterns/{id}",
        "resource": "patterns",
        "action": "read",
        "id": "{id}",
    },
    {
        "method": "PUT",
        "path": "/api/patterns/{id}",
        "resource": "patterns",
        "action": "update",
        "id": "{id}",
    },
    {
        "method": "DELETE",
        "path": "/api/patterns/{id}",
        "resource": "patterns",
        "action": "delete",
        "id": "{id}",
    },
    {
        "method": "POST",
        "path": "/api/patterns/{id}/execute",
        "resource": "patterns",
        "action": "execute",
        "id": "{id}",
        "permission": "executions:create",
        "event": "pattern.execute",
    },
    {"method": "GET", "path": "/api/executions", "resource": "executions", "action": "read"},
    {
        "method": "GET",
        "path": "/api/executions/{id}",
        "resource": "executions",
        "action": "read",
        "id": "{id}",
    },
    {"method": "GET", "path": "/api/agents", "resource": "agents", "action": "read"},
    {"method": "GET", "path": "/api/whoami", "resource": "identity", "action": "read"},
]
"""The route table that protects the sample (written into bastion.yaml by quickstart)."""
