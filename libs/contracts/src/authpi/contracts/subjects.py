"""Subject and stream names. Subjects are only ever built here (STYLE.md 3)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")
NO_ACCOUNT = "_"


def subject_for(account_id: str | None, event_type: str, namespace: str = "authpi") -> str:
    """`<ns>.evt.<account_id>.<event type with dots as tokens>` (DESIGN.md 3)."""
    account = account_id or NO_ACCOUNT
    if not _TOKEN.match(account):
        raise ValueError(f"account id {account!r} is not a subject token")
    return f"{namespace}.evt.{account}.{event_type}"


def fact_subject(fact_type: str, namespace: str = "authpi") -> str:
    return f"{namespace}.fact.{fact_type}"


def events_stream(namespace: str = "authpi") -> str:
    return f"{namespace.upper().replace('.', '_').replace('-', '_')}_EVENTS"


def facts_stream(namespace: str = "authpi") -> str:
    return f"{namespace.upper().replace('.', '_').replace('-', '_')}_FACTS"


def all_events(namespace: str = "authpi") -> str:
    return f"{namespace}.evt.>"


def events_of_type(event_type: str, namespace: str = "authpi") -> str:
    return f"{namespace}.evt.*.{event_type}"


def public_subject(account_id: str, event_type: str, namespace: str = "authpi") -> str:
    """`<ns>.public.<account_id>.<event type>`: the integrators' stream (platform.md 6.1 shape)."""
    if not _TOKEN.match(account_id):
        raise ValueError(f"account id {account_id!r} is not a subject token")
    return f"{namespace}.public.{account_id}.{event_type}"


def public_stream(namespace: str = "authpi") -> str:
    return f"{namespace.upper().replace('.', '_').replace('-', '_')}_PUBLIC"
