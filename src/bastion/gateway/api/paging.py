"""Pages of the admin API's lists of named things (users, service accounts, agents, groups,
API keys): at most `MAX_PAGE` items, by name.

A list answers a JSON array of at most ``limit`` items (default and most: 1,000), ordered by
name in code-point order. When there are more, a ``Link: <?after=NAME&limit=N>; rel="next"``
header (RFC 8288; a reference relative to the request's own URL) names the next page: the
items named after the last one of this page. A client that wants everything follows it, or
asks again with ``after`` set to the last name it got, until an answer comes without one.
A name cursor stays correct while the list changes: nothing is skipped or repeated that was
there throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Query, Response

T = TypeVar("T")

MAX_PAGE = 1000
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"items a page (1 to {MAX_PAGE})")]
PageAfter = Annotated[
    str | None,
    Query(
        min_length=1,
        description="only items named after this one: the last name of the previous page",
    ),
]
PAGED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'the next page, `<?after=NAME&limit=N>; rel="next"`, when there '
                "are more items",
                "schema": {"type": "string"},
            }
        }
    }
}


def next_link(last_name: str, limit: int) -> str:
    """The ``Link`` header value that names the page after ``last_name``."""
    return f'<?{urlencode({"after": last_name, "limit": limit})}>; rel="next"'


def one_page(
    found: Sequence[T], limit: int, response: Response, name: Callable[[T], str]
) -> list[T]:
    """The first ``limit`` of ``found`` (read with ``limit + 1``, so that one more says there
    are more), with the ``Link`` header naming the next page when there are."""
    page = list(found[:limit])
    if len(found) > limit:
        response.headers["Link"] = next_link(name(page[-1]), limit)
    return page
