"""Who may have published an event: the bus is a trust boundary (DESIGN.md 3).

Every consumer checks each envelope before it applies it: the event type must belong to the
service the envelope names as its source (the catalogue says which service owns which type), and
the message must have arrived on exactly the subject the relay builds for that type and account.
An envelope failing the check is rejected (dead-lettered by projection consumers) and never
touches a cache, a projection or a checkpoint.

Why no signature on the envelope: the NATS server already authenticates every connection, and
each service's relay identity may publish only the subjects of its own event types (see
`authpi.messaging.auth`). The subject carries the event type, so a message on a domain-event
subject was published by the relay that owns that type; checking that the envelope agrees with
its subject closes the loop. An HMAC would add nothing against that: every consumer would need
the key to verify, so any consumer could forge. A public-key signature per relay would survive a
broken NATS permission set, at the cost of one signature per event on the relay and one
verification per event in every consumer and every cache; we rely on the server's
authorization instead, and test it (tests/security/test_nats_auth.py)."""

from __future__ import annotations

from typing import get_args

from authpi.contracts.agent import AgentEvent
from authpi.contracts.base import Envelope
from authpi.contracts.billing import BillingEvent
from authpi.contracts.directory import DirectoryEvent
from authpi.contracts.subjects import subject_for
from authpi.contracts.token import TokenEvent
from authpi.contracts.webhook import WebhookServiceEvent


def _owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for service, union in (
        ("directory", DirectoryEvent),
        ("token", TokenEvent),
        ("agent", AgentEvent),
        ("webhook", WebhookServiceEvent),
        ("billing", BillingEvent),
    ):
        for cls in get_args(union):
            owners[cls.__struct_config__.tag] = service
    return owners


# event type -> the one service whose relay publishes it
OWNERS: dict[str, str] = _owners()


def owned_types(service: str) -> list[str]:
    return sorted(t for t, owner in OWNERS.items() if owner == service)


def forgery(subject: str, env: Envelope, namespace: str) -> str | None:
    """Why `env`, received on `subject`, cannot be trusted; None when it can."""
    owner = OWNERS.get(env.type)
    if owner is None:
        return f"unknown event type {env.type!r}"
    if env.source != owner:
        return f"{env.type} is published by {owner}, not {env.source!r}"
    try:
        expected = subject_for(env.meta.account_id, env.type, namespace)
    except ValueError as exc:
        return str(exc)
    if subject != expected:
        return f"received on {subject}, expected {expected}"
    return None
