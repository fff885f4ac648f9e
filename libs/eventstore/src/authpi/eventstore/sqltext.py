"""The one way SQL text is made: a constant template with named fields, rendered once at
construction (never on every execute), with schema and table names quoted by psycopg.

    render("SELECT id FROM {schema}.agents_view WHERE id = %s", schema=schema)

Values stay bound parameters (`%s`, `%(name)s`); only names go into the text."""

from __future__ import annotations

from typing import LiteralString, cast

from psycopg import sql


def render(
    query: LiteralString | sql.Composable, /, **names: str | sql.Composable
) -> LiteralString:
    """The SQL text of `query`. In a template, each `{name}` field is filled from `names`: a str
    is quoted as an identifier (a schema, a table, a channel), a Composable (a column list built
    at run time) goes in as it is. A query already composed is rendered as it stands.

    psycopg quotes every Identifier and Literal, so the text is as safe as the template; only the
    type checker loses track of that, hence the cast (the one place that needs it)."""
    if isinstance(query, sql.Composable):
        if names:
            raise TypeError("a composed query takes no names; fill them in when composing it")
        return cast(LiteralString, query.as_string())
    fields = {k: sql.Identifier(v) if isinstance(v, str) else v for k, v in names.items()}
    return cast(LiteralString, sql.SQL(query).format(**fields).as_string())
