"""The CLI's remote mode: one small HTTP client for a bastion's admin API (``<prefix>/api``).

It authenticates with an access token obtained from the stored refresh token (`bastion login`)
and keeps that access token in memory only. Refresh tokens rotate on every use, so the successor
is stored back at once (atomically, 0600) under a lock shared by concurrent commands. Errors
become one line: a problem+json answer its title and detail, a network failure what failed.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote, urlencode, urlsplit

import typer

from bastion.cli.credentials import credentials_locked, load_credentials, save_credentials
from bastion.config.models_gateway import prefix_problem
from bastion.core.names import canonical_name
from bastion.errors import BastionError
from bastion.gateway.api.paging import MAX_PAGE

TIMEOUT_SECONDS = 30
RELOGIN = "run `bastion login` again"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a bastion answers: its base URL, ``gateway.prefix`` and the CA that signs its TLS
    certificate when that is a private one (None: the system's trust store)."""

    server: str
    prefix: str = "/_bastion"
    ca_file: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BastionError(f"--server must be an http:// or https:// URL, not {self.server}")
        if parts.username is not None or parts.query or parts.fragment:
            raise BastionError("--server takes no user, query or fragment: only scheme://host")
        if self.ca_file is not None and parts.scheme != "https":
            raise BastionError("--ca-file applies to an https:// server only")
        if prefix_problem(self.prefix) is not None:  # the rule gateway.prefix is held to
            raise BastionError(f"--prefix must be a URL path like /_bastion, not {self.prefix}")

    @property
    def in_clear(self) -> bool:
        """Plain http to another machine: passwords and tokens cross the network readable."""
        parts = urlsplit(self.server)
        if parts.scheme == "https" or parts.hostname == "localhost":
            return False
        try:
            return not ipaddress.ip_address(parts.hostname or "").is_loopback
        except ValueError:
            return True

    def url(self, path: str) -> str:
        return self.server + self.prefix + path


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


def send(
    endpoint: Endpoint,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    token: str | None = None,
) -> Answer:
    """One HTTP exchange; a `BastionError` with one clear line when no answer comes back."""
    headers = {"Accept": "application/json", "User-Agent": "bastion-cli"}
    data: bytes | None = None
    if form is not None:
        data = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    url = endpoint.url(path)
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    handlers: list[urllib.request.BaseHandler] = [_RefuseRedirects()]
    context = _tls(endpoint)
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    try:
        with urllib.request.build_opener(*handlers).open(
            request, timeout=TIMEOUT_SECONDS
        ) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise BastionError(_redirected(endpoint, exc)) from None
        raw, status = exc.read(), exc.code
    except urllib.error.URLError as exc:
        raise BastionError(f"cannot reach {endpoint.server}: {_why(exc.reason)}") from None
    except (OSError, ValueError) as exc:
        raise BastionError(f"cannot reach {endpoint.server}: {_why(exc)}") from None
    try:
        return Answer(status, json.loads(raw) if raw else None)
    except ValueError:
        return Answer(status, None)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is never followed: urllib would resend the bearer token to wherever it
    points, another host or plain http included. The 3xx surfaces as an `HTTPError`."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _redirected(endpoint: Endpoint, exc: urllib.error.HTTPError) -> str:
    location = exc.headers.get("Location", "nowhere")
    return (
        f"{endpoint.server} answered {exc.code} redirecting to {location}; the CLI follows no"
        " redirect, so passwords and tokens go only to the server given: give the final address"
        " as --server"
    )


def _tls(endpoint: Endpoint) -> ssl.SSLContext | None:
    if not endpoint.server.startswith("https://"):
        return None
    try:
        return ssl.create_default_context(cafile=endpoint.ca_file)
    except (OSError, ssl.SSLError):
        raise BastionError(f"cannot read the CA file {endpoint.ca_file}") from None


def _why(reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({reason.verify_message}); see --ca-file"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror)
    return type(reason).__name__ if not isinstance(reason, str) else reason


def problem_line(answer: Answer) -> str:
    """A problem+json (or OAuth error) answer as one line."""
    body = answer.body if isinstance(answer.body, dict) else {}
    title = body.get("title") or body.get("error") or f"HTTP {answer.status}"
    detail = body.get("detail") or body.get("error_description")
    return f"{title}: {detail}" if detail and detail != title else str(title)


def unsupported(what: str) -> NoReturn:
    """Remote mode has no counterpart for ``what``: say so, exit 2, never use a local database."""
    typer.echo(
        f"error: {what} has no remote form (the admin API offers none); run it on the server"
        " with --config, or `bastion logout` to work locally",
        err=True,
    )
    raise typer.Exit(2)


class RemoteClient:
    """The admin API of the bastion this terminal logged in to."""

    def __init__(self, endpoint: Endpoint, *, tenant: str, username: str) -> None:
        self.endpoint = endpoint
        self.tenant = tenant
        self.username = username
        self._access: str | None = None

    def _access_token(self) -> str:
        if self._access is None:
            self._access = refresh_access_token(self.endpoint)
        return self._access

    def call(self, method: str, path: str, *, body: Any = None, **query: object) -> Any:
        """``method`` ``<prefix>/api/v1<path>``; the JSON answer, or one-line `BastionError`."""
        pairs = {k: str(v) for k, v in query.items() if v is not None}
        target = "/api/v1" + path + (f"?{urlencode(pairs)}" if pairs else "")
        answer = send(self.endpoint, method, target, json_body=body, token=self._access_token())
        if answer.status >= 400:
            raise BastionError(problem_line(answer))
        return answer.body

    def get(self, path: str, **query: object) -> Any:
        return self.call("GET", path, **query)

    def get_all(
        self, path: str, cursor: Callable[[Any], str] = lambda item: str(item["name"])
    ) -> list[Any]:
        """Every item of a list the API answers in pages (`bastion.gateway.api.paging`):
        pages after the last item's ``cursor`` (its name) until one comes back short."""
        items: list[Any] = []
        after = None
        while True:
            page = self.get(path, limit=MAX_PAGE, after=after)
            items += page
            if len(page) < MAX_PAGE:
                return items
            after = cursor(page[-1])

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def in_tenant(self, tenant: str | None) -> None:
        """Remote commands act in the tenant of the login; another one has no remote form."""
        if tenant is not None and canonical_name(tenant) != self.tenant:
            unsupported(f"--tenant {tenant} (you are logged in to tenant {self.tenant})")


def segment(value: str) -> str:
    """``value`` as one URL path segment."""
    return quote(value, safe="")


def refresh_access_token(endpoint: Endpoint) -> str:
    """Trade the stored refresh token for an access token; store its successor at once."""
    with credentials_locked():
        saved = load_credentials()
        answer = send(
            endpoint,
            "POST",
            "/oauth/token",
            form={"grant_type": "refresh_token", "refresh_token": saved["refreshToken"]},
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 400 and body.get("error") == "invalid_grant":
            raise BastionError(
                "the stored login is no longer valid (expired, logged out or revoked after a"
                f" refresh token was reused); {RELOGIN}"
            )
        if answer.status != 200 or not all(
            isinstance(body.get(field), str) for field in ("access_token", "refresh_token")
        ):
            raise BastionError(f"refreshing the login failed: {problem_line(answer)}")
        save_credentials({**saved, "refreshToken": body["refresh_token"]})
    return str(body["access_token"])


def client_from_credentials(server: str | None, ca_file: str | None) -> RemoteClient:
    """The client for the stored login (to ``server``, when given, which must match it)."""
    saved = load_credentials()
    stored = str(saved.get("server", ""))
    if server is not None and server.rstrip("/") != stored:
        raise BastionError(
            f"not logged in to {server.rstrip('/')} (the stored login is for {stored});"
            f" run `bastion login --server {server.rstrip('/')}` first"
        )
    endpoint = Endpoint(
        stored, str(saved.get("prefix", "/_bastion")), ca_file or saved.get("caFile")
    )
    return RemoteClient(
        endpoint, tenant=str(saved.get("tenant") or ""), username=str(saved.get("username"))
    )
