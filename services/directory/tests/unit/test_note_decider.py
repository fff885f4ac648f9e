"""The Note decider and the content syntaxes: mentions and references parsed on create and on a
content change (keeping the time each first appeared), no-op patches, If-Match, account
isolation and the final delete."""

from __future__ import annotations

import pytest

from authpi.contracts.directory import NoteMention, NoteReference
from authpi.directory.domain import note
from authpi.directory.domain.note_markup import mentioned_users, referenced
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    T0,
    create_note,
    delete_note,
    note_created,
    note_deleted,
    note_updated,
    update_note,
)


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(note)


def test_create_parses_mentions_and_references(spec):
    spec.given().when(create_note()).then(note_created())


def test_references_the_account_does_not_hold_have_no_issuer(spec):
    refs = [
        NoteReference(ref_type="client", ref_id="c_1", ref_issuer_id=None, created_at=T0),
        NoteReference(ref_type="webhook", ref_id="wh_1", created_at=T0),
    ]
    spec.given().when(create_note(ref_issuers={})).then(note_created(references=refs))


def test_create_twice_conflicts(spec):
    spec.given(note_created()).when(create_note()).raises(Conflict)


def test_pin_changes_only_pinned(spec):
    spec.given(note_created()).when(update_note(pinned=True)).then(note_updated())


def test_patch_that_changes_nothing_appends_nothing(spec):
    spec.given(note_created()).when(
        update_note(pinned=False, content=note_created().content)
    ).then()


def test_content_change_keeps_first_seen_times_and_adds_new_ones(spec):
    content = "@[Dana](usr_d) and @[Lee](usr_l) on [[user:usr_x]]; [[webhook:wh_1|hook]]"
    at = T0 + 1000
    spec.given(note_created()).when(
        update_note(content=content, ref_issuers={"user:usr_x": "i_2"})
    ).then(
        note_updated(
            changed=["content"],
            content=content,
            pinned=False,
            mentions=[
                NoteMention(mentioned_user_id="usr_d", created_at=T0),
                NoteMention(mentioned_user_id="usr_l", created_at=at),
            ],
            references=[
                NoteReference(ref_type="user", ref_id="usr_x", ref_issuer_id="i_2", created_at=at),
                NoteReference(ref_type="webhook", ref_id="wh_1", created_at=T0),
            ],
        )
    )


def test_update_time_strictly_increases(spec):
    # Two writes in the same millisecond must not share an ETag (core-api.md 2.3).
    spec.given(note_created()).when(update_note(pinned=True, now=T0)).then(
        note_updated(updated_at=T0 + 1)
    )


def test_stale_if_match_is_refused(spec):
    error = (
        spec.given(note_created(), note_updated())
        .when(update_note(content="new", if_match=f'"{T0}"'))
        .raises(PreconditionFailed)
    )
    assert error.current_etag == f'"{T0 + 1000}"'  # type: ignore[attr-defined]


def test_current_if_match_passes(spec):
    spec.given(note_created()).when(delete_note(if_match=f'"{T0}"')).then(note_deleted())


def test_note_of_another_account_is_not_found(spec):
    spec.given(note_created()).when(update_note(account_id="acc_2", pinned=True)).raises(NotFound)
    spec.given(note_created()).when(delete_note(account_id="acc_2")).raises(NotFound)


def test_missing_note_is_not_found_before_any_precondition(spec):
    spec.given().when(update_note(pinned=True, if_match='"1"')).raises(NotFound)


def test_deleted_note_is_gone(spec):
    spec.given(note_created(), note_deleted()).when(update_note(pinned=True)).raises(NotFound)
    spec.given(note_created(), note_deleted()).when(delete_note()).raises(NotFound)


def test_syntaxes_are_parsed_once_each_and_unknown_types_ignored():
    text = (
        "@[A](usr_1) @[A again](usr_1) @[](usr_2) @[B](usr_3 x) [[agent:agt_1]] [[org:org_1]]"
        " [[org:org_1|again]] [[api_key:key_1|prod key]] [[issuer:]] [[client:c 1]]"
    )
    assert mentioned_users(text) == ["usr_1"]
    assert referenced(text) == [("org", "org_1"), ("api_key", "key_1")]
