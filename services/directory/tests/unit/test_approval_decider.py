"""The signup approval decisions of the User decider (core-api.md 3.10): a held signup starts
`pending_approval` with `user.approval.requested`; approving emits `user.approval.approved` with
`user.unblocked`, rejecting `user.approval.rejected` with `user.blocked` (status `blocked`); a
user that no longer waits, another issuer's user and an unknown user are refused."""

from __future__ import annotations

from typing import Any

from authpi.contracts.directory import (
    UserApprovalApproved,
    UserApprovalRejected,
    UserApprovalRequested,
    UserBlocked,
    UserUnblocked,
)
from authpi.directory.domain import user
from authpi.directory.domain.commands.user import DecideApproval
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    ETAG0,
    T0,
    create_user,
    update_user,
    user_blocked,
    user_created,
)

PENDING = {"status": "pending", "requested_at": T0}


def requested() -> UserApprovalRequested:
    return UserApprovalRequested(id="usr_1", issuer_id="i_a", approval=PENDING, requested_at=T0)


def held() -> list[Any]:
    return [user_created(status="pending_approval"), requested()]


def decide(decision: str, **o: Any) -> DecideApproval:
    base: dict[str, Any] = {"user_id": "usr_1", "issuer_id": "i_a", "now": T0 + 10,
                            "decision": decision, "decided_by": "key_1"}  # fmt: skip
    return DecideApproval(**{**base, **o})


def record(status: str, reason: str | None = None) -> dict[str, Any]:
    return {"status": status, "requested_at": T0, "decided_at": T0 + 10, "decided_by": "key_1",
            "reason": reason}  # fmt: skip


def test_a_held_signup_starts_pending_and_requests_approval():
    DeciderSpec(user).when(create_user(held=True, method="signup")).then(
        user_created(status="pending_approval", method="signup"), requested()
    )


def test_an_unheld_signup_is_active_and_requests_nothing():
    DeciderSpec(user).when(create_user(method="signup")).then(user_created(method="signup"))


def test_approving_activates_the_user():
    common = {"id": "usr_1", "issuer_id": "i_a", "status_by": "key_1", "status_at": T0 + 10}
    DeciderSpec(user).given(*held()).when(decide("approve")).then(
        UserApprovalApproved(approval=record("approved"), **common),
        UserUnblocked(**common),
    )


def test_rejecting_blocks_the_user_with_the_reason():
    common = {"id": "usr_1", "issuer_id": "i_a", "status_by": "key_1", "status_at": T0 + 10,
              "status_reason": "unknown person"}  # fmt: skip
    DeciderSpec(user).given(*held()).when(decide("reject", reason="unknown person")).then(
        UserApprovalRejected(approval=record("rejected", "unknown person"), **common),
        UserBlocked(status="blocked", **common),
    )


def test_deciding_twice_conflicts():
    approved = [*held(), *user.decide(decide("approve"), _state(held()))]
    DeciderSpec(user).given(*approved).when(decide("reject", now=T0 + 20)).raises(Conflict)
    rejected = [*held(), *user.decide(decide("reject"), _state(held()))]
    DeciderSpec(user).given(*rejected).when(decide("approve", now=T0 + 20)).raises(Conflict)


def test_a_user_that_never_waited_cannot_be_decided():
    DeciderSpec(user).given(user_created()).when(decide("approve")).raises(Conflict)


def test_an_unknown_decision_conflicts():
    DeciderSpec(user).given(*held()).when(decide("maybe")).raises(Conflict)


def test_another_issuers_or_an_unknown_user_is_not_found():
    DeciderSpec(user).given(*held()).when(decide("approve", issuer_id="i_b")).raises(NotFound)
    DeciderSpec(user).when(decide("approve")).raises(NotFound)


def test_a_stale_if_match_is_refused():
    stale = decide("approve", if_match='"0"')
    DeciderSpec(user).given(*held()).when(stale).raises(PreconditionFailed)
    DeciderSpec(user).given(*held()).when(decide("approve", if_match=ETAG0)).then(
        *user.decide(decide("approve"), _state(held()))
    )


def test_a_waiting_user_changes_status_only_through_a_decision():
    activate = update_user(status="active")
    DeciderSpec(user).given(*held()).when(activate).raises(Conflict)


def test_a_rejected_user_can_later_be_activated_by_an_administrator():
    rejected = [*held(), user_blocked(status="blocked", status_at=T0 + 5)]
    cmd = update_user(status="active", now=T0 + 20, based_on=f'"{T0 + 5}"')
    DeciderSpec(user).given(*rejected).when(cmd).then(
        UserUnblocked(id="usr_1", issuer_id="i_a", status_at=T0 + 20)
    )


def _state(events: list[Any]) -> user.User:
    state = user.INITIAL
    for event in events:
        state = user.evolve(state, event)
    return state
