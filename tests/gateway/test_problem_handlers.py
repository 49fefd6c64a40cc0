"""`install_problem_handlers` on a bare Starlette app: whatever fails answers problem+json with
the request's id, from the one status table; an unexpected exception is a 500 that shows
nothing of itself."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bastion.errors import ConflictError, RequestRejectedError
from bastion.gateway.problem_handlers import install_problem_handlers
from bastion.gateway.problems import InternalError, MethodNotAllowedError, status_for
from tests.gateway.problem_checks import problem


async def explode(request: Request) -> Response:
    raise RuntimeError("secret internals: /etc/bastion/pepper")


async def refuse(request: Request) -> Response:
    raise RequestRejectedError("name: must not be empty")


async def clash(request: Request) -> Response:
    raise ConflictError("create group: a value that must be unique is already taken")


def client() -> TestClient:
    app = Starlette(
        routes=[
            Route("/explode", explode),
            Route("/refuse", refuse, methods=["POST"]),
            Route("/refuse", refuse, methods=["PUT"]),
            Route("/clash", clash),
        ]
    )
    install_problem_handlers(app)
    return TestClient(app, raise_server_exceptions=False)


def test_http_failures_have_their_own_statuses_in_the_table() -> None:
    assert status_for(MethodNotAllowedError("GET", ["POST"])) == (405, "Method not allowed")
    assert status_for(InternalError("")) == (500, "Internal server error")


def test_unexpected_exception_is_a_500_problem_without_the_exception() -> None:
    response = client().get("/explode")
    body = problem(response, 500, "internal_error")
    assert "detail" not in body
    assert "secret" not in response.text and "RuntimeError" not in response.text


def test_allow_lists_every_method_of_the_path() -> None:
    response = client().delete("/refuse")
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST, PUT"


def test_only_detailed_classes_show_their_message() -> None:
    with client() as test_client:
        shown = problem(test_client.post("/refuse"), 400, "bad_request")
        hidden = problem(test_client.get("/clash"), 409, "conflict")
    assert shown["detail"] == "name: must not be empty"
    assert "detail" not in hidden


def test_unknown_path_is_a_404_problem() -> None:
    assert problem(client().get("/nowhere"), 404, "not_found")["detail"]


def test_a_request_without_the_edge_still_gets_one_id() -> None:
    response = client().post("/refuse")
    assert response.json()["requestId"] == response.headers["x-bastion-request-id"]
