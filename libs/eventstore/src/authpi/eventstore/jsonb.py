"""JSON in and out of PostgreSQL json/jsonb columns, with msgspec (one shared encoder).

Out: psycopg decodes json/jsonb columns with msgspec (`install`), which gives the same types as
the standard library several times faster; every read model that returns lists decodes a few
jsonb columns per row, so the stdlib decoder showed up in their profiles. In: a value bound to a
`%s::jsonb` placeholder is passed as its JSON text (`dumps`)."""

from __future__ import annotations

import msgspec
from psycopg.types.json import set_json_loads

_encoder = msgspec.json.Encoder()


def install() -> None:
    """Process-wide; call once before the first connection is opened."""
    set_json_loads(msgspec.json.decode)


def dumps(value: object) -> str:
    """`value` (builtins or Structs) as JSON text, the parameter of a `%s::jsonb` placeholder."""
    return _encoder.encode(value).decode()


def raw(value: object) -> bytes:
    """A json/jsonb column's value as JSON bytes, for a typed decoder: psycopg hands the column
    over decoded (`install`), so it is encoded again; bytes pass through."""
    return value if isinstance(value, bytes) else _encoder.encode(value)
