"""The grant-subset rule for acting on a credential (core-api.md 5.1, DESIGN.md 7): a caller may
create, change, rotate, block, unblock, revoke or delete only an API key or personal token whose
Core API scopes it holds itself. Otherwise a weak key could rotate a strong one and receive its
new secret. Checked inside the deciders, against the folded state, so that the check is atomic
with the append."""

from __future__ import annotations

from collections.abc import Iterable

from authpi.contracts.scopes import grants, is_known
from authpi.errors import InsufficientScope


def check_within(held: frozenset[str] | None, scopes: Iterable[str], what: str) -> None:
    """Refuse (403 `insufficient_scope`) a caller holding `held` acting on a credential with
    `scopes`. Only catalogue scopes count: an organization-level key's free-form scopes grant
    nothing on the Core API (core-api.md 3.4). `held` None is the platform itself (bootstrap,
    internal reactions), never a request's caller."""
    if held is None:
        return
    missing = sorted({s for s in scopes if is_known(s) and not grants(held, s)})
    if missing:
        raise InsufficientScope(
            f"the caller may act only on a {what} whose scopes it holds; missing {missing[0]}",
            reason=f"{what.replace(' ', '_')}.beyond_caller",
        )
