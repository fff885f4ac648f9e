"""Render a composed query once, at construction, instead of on every execute."""

from __future__ import annotations

from typing import LiteralString, cast

from psycopg import sql


def render(query: sql.Composable) -> LiteralString:
    """The SQL text of `query`. psycopg quotes every Identifier and Literal in it, so the text is
    as safe as the Composed it came from; only the type checker loses track of that, hence the
    cast (the one place in the libs that needs it)."""
    return cast(LiteralString, query.as_string())
