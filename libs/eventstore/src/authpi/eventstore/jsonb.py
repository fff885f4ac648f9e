"""How psycopg turns json/jsonb columns into Python: with msgspec, which decodes to the same
types as the standard library and several times faster. Every read model that returns lists
(users, keys, clients) decodes a few jsonb columns per row, so the stdlib decoder showed up in
their profiles."""

from __future__ import annotations

import msgspec
from psycopg.types.json import set_json_loads


def install() -> None:
    """Process-wide; call once before the first connection is opened."""
    set_json_loads(msgspec.json.decode)
