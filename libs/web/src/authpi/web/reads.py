"""Direct reads: a Core API GET route that declares `opt={DIRECT_READ: DirectRead(...)}` may be
answered by the gateway before litestar's router (authpi.gateway.edge.direct_reads), after the
same layers (storable path, rate limit, authentication and the `{account_id}` path check, the
route's scope guards), when the request has no query string. Anything else (HEAD, a query
string, a path litestar routes elsewhere) goes through litestar and the route's handler.

The handler and its `DirectRead` share one function that makes the answer, so both give the same
body:

    async def user_answer(principal, params, users: Users) -> Answer: ...

    @get(USER, ..., opt={DIRECT_READ: DirectRead(user_answer, needs=("users",))})
    async def get_user(..., principal: InjectedPrincipal, users: NamedDependency[Users]):
        return await user_answer(principal, {...}, users).response()

`needs` names the route's dependencies that the function takes after `params`, each a constant
provided with `authpi.web.core.provide` (resolved once, when the gateway builds the port)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

from litestar import Response

from authpi.web.principal import Principal

# (principal, path parameters, *the needed dependencies) -> the answer
AnswerOf = Callable[..., Awaitable["Answer"]]


class Answer(NamedTuple):
    """A 200 answer: `content` is encoded as litestar would encode the handler's return value;
    `etag` becomes the ETag header (authpi.web.envelopes.one)."""

    content: Any
    etag: str | None = None

    def response(self) -> Response[Any]:
        """The same answer, returned by the route's litestar handler."""
        return Response(self.content, headers={"ETag": self.etag} if self.etag else None)


class DirectRead:
    def __init__(self, answer: AnswerOf, *, needs: tuple[str, ...] = ()) -> None:
        self.answer = answer
        self.needs = needs

    async def __call__(self, principal: Principal, params: Mapping[str, str], *deps: Any) -> Answer:
        return await self.answer(principal, params, *deps)
