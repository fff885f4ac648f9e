"""Typed handler parameters shared by Core API routes, in litestar's explicit marker style
(`FromPath[str]`, `JSONBody[T]`, ...; the inferred style is deprecated).

    async def block_key(
        account_id: FromPath[str], key_id: FromPath[str], principal: InjectedPrincipal,
        if_match: IfMatch = None, data: JSONBody[StatusBody] = StatusBody(),
    ) -> Response[One[ApiKeyOut]]: ...
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.params import HeaderParameter

# The optional precondition of PATCH, DELETE and action POSTs (core-api.md 2.3); pass it into
# the command and compare in the decider (authpi.web.etag).
IfMatch: TypeAlias = Annotated[str | None, HeaderParameter(name="If-Match")]
