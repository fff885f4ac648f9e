"""Notes over real HTTP (core-api.md 3.20, contract 4.9) through the official admin SDK's
`admin.notes` accessors, and httpx for what the SDK cannot send: CRUD with mentions and
references, pinned-first ordering across pages, filters, count, backlinks, ETags and 412, the
error classes, subjects checked inside the caller's account, and the scopes."""

from __future__ import annotations

import uuid

import httpx
import pytest
from authpi_admin.errors import (
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)

from authpi.contracts.scopes import ALL_SCOPES
from authpi.platform.testing.tenants import ADMIN, part

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


@pytest.fixture
async def org(admin, issuer):
    return (await admin.issuer(issuer).organizations.create({"name": "Acme"})).id


def http(platform, key: tuple[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{platform.api_url}/v1/accounts/{platform.account_id}/notes",
        auth=key or (platform.api_key_id, platform.api_key_secret), timeout=30,
    )  # fmt: skip


async def test_create_get_update_delete_with_mentions_and_references(
    platform, pool, kit, admin, issuer, org
):
    user_id = await kit.new_user(admin, issuer)
    client = await admin.issuer(issuer).clients.create({"name": "crm", "type": "m2m"})
    content = (f"Renewal call with @[Dana]({user_id}); see [[client:{client.id}|CRM]] and"
               " [[webhook:wh_abc123xyz|CRM hook]].")  # fmt: skip
    note = await admin.notes.create(
        {"subject_type": "org", "subject_id": org, "issuer_id": issuer, "content": content,
         "pinned": True}
    )  # fmt: skip
    assert note.id.startswith("note_") and note.account_id == platform.account_id
    assert (note.issuer_id, note.subject_type, note.subject_id) == (issuer, "org", org)
    assert note.pinned and note.content == content
    assert note.created_by == platform.api_key_id and note.updated_by is None
    assert note.updated_at is None and note._etag == f'"{int(note.created_at)}"'
    assert [(m.mentioned_user_id, m.created_at) for m in note.mentions or []] == [
        (user_id, note.created_at)
    ]
    refs = [(r.ref_type, r.ref_id, r.ref_issuer_id) for r in note.references or []]
    assert refs == [("client", client.id, issuer), ("webhook", "wh_abc123xyz", None)]

    got = await admin.notes.get(note.id)
    assert got == note and got._etag == note._etag

    updated = await admin.notes.update(note.id, {"content": "No more links."},
                                       if_match=note._etag)  # fmt: skip
    assert updated.content == "No more links." and updated.pinned
    assert updated.mentions == [] and updated.references == []
    assert updated.updated_by == platform.api_key_id and updated.updated_at is not None
    assert updated._etag == f'"{int(updated.updated_at)}"' != note._etag

    with pytest.raises(PreconditionFailedError) as stale:
        await admin.notes.update(note.id, {"pinned": False}, if_match=note._etag)
    assert stale.value.current_etag == updated._etag
    with pytest.raises(PreconditionFailedError):
        await admin.notes.delete(note.id, if_match=note._etag)

    await admin.notes.delete(note.id, if_match=updated._etag)
    with pytest.raises(NotFoundError):
        await admin.notes.get(note.id)
    with pytest.raises(NotFoundError):
        await admin.notes.delete(note.id)
    assert await kit.events_of(platform, pool, note.id) == [
        "note.created", "note.updated", "note.deleted"
    ]  # fmt: skip


async def test_subjects_of_every_type_and_their_issuer(admin, issuer, org, kit):
    user_id = await kit.new_user(admin, issuer)
    client = await admin.issuer(issuer).clients.create({"name": "crm", "type": "m2m"})
    agent = await admin.issuer(issuer).agents.create(
        {"name": "triage", "model": "claude-sonnet-4-5", "provider": "anthropic"}
    )
    cases = [("user", user_id, issuer), ("org", org, issuer), ("issuer", issuer, None),
             ("client", client.id, None), ("agent", agent.id, None)]  # fmt: skip
    for subject_type, subject_id, given in cases:
        body = {"subject_type": subject_type, "subject_id": subject_id, "content": "hello"}
        note = await admin.notes.create({**body, **({"issuer_id": given} if given else {})})
        assert note.issuer_id == issuer, subject_type


async def test_list_is_pinned_first_then_newest_across_pages(admin, issuer, org):
    made = []
    for i in range(7):
        made.append(await admin.notes.create(
            {"subject_type": "org", "subject_id": org, "issuer_id": issuer,
             "content": f"note {i}", "pinned": i in (1, 4)}))  # fmt: skip
    expected = [made[4].id, made[1].id] + [n.id for n in reversed(made) if not n.pinned]

    first = await admin.notes.list(limit=3, subject_type="org", subject_id=org, issuer_id=issuer)
    assert [n.id for n in first.data] == expected[:3] and first.has_more
    assert first.next_cursor is not None and first.next_cursor.startswith("0:")
    seen = [n.id async for n in admin.notes.list_all(
        limit=2, subject_type="org", subject_id=org, issuer_id=issuer)]  # fmt: skip
    assert seen == expected
    last = await admin.notes.list(limit=7, subject_type="org", subject_id=org, issuer_id=issuer)
    assert not last.has_more and last.next_cursor is None

    pinned = await admin.notes.list(subject_type="org", subject_id=org, issuer_id=issuer,
                                    pinned=True)  # fmt: skip
    assert [n.id for n in pinned.data] == expected[:2]
    unpinned = await admin.notes.list(subject_type="org", subject_id=org, issuer_id=issuer,
                                      pinned=False)  # fmt: skip
    assert [n.id for n in unpinned.data] == expected[2:]


async def test_filters_by_author_and_mention(platform, kit, admin, issuer, org):
    user_id = await kit.new_user(admin, issuer)
    base = {"subject_type": "issuer", "subject_id": issuer}
    mentioning = await admin.notes.create({**base, "content": f"ask @[Dana]({user_id})"})
    await admin.notes.create({**base, "content": "plain"})
    other_key = await kit.key_with(platform, list(ALL_SCOPES))
    other = kit.admin_for(platform, other_key.key_id, other_key.secret)
    by_other = await other.notes.create({**base, "content": "from another key"})
    await other.close()

    page = await admin.notes.list(mentions_user_id=user_id)
    assert [n.id for n in page.data] == [mentioning.id]
    page = await admin.notes.list(created_by=other_key.key_id)
    assert [n.id for n in page.data] == [by_other.id]
    page = await admin.notes.list(subject_type="issuer", subject_id=issuer)
    assert len(page.data) == 3


async def test_count_and_backlinks(admin, issuer, org, kit):
    user_id = await kit.new_user(admin, issuer)
    assert (await admin.notes.count("org", org)).count == 0
    on_org = {"subject_type": "org", "subject_id": org, "issuer_id": issuer}
    linking = await admin.notes.create({**on_org, "content": f"owner is [[user:{user_id}]]"})
    await admin.notes.create({**on_org, "content": "no links"})
    elsewhere = await admin.notes.create(
        {"subject_type": "issuer", "subject_id": issuer,
         "content": f"[[user:{user_id}|Dana]] again, [[api_key:key_1]]"}
    )  # fmt: skip
    assert (await admin.notes.count("org", org)).count == 2
    assert (await admin.notes.count("issuer", issuer)).count == 1

    back = await admin.notes.backlinks("user", user_id)
    assert [n.id for n in back] == [elsewhere.id, linking.id]
    assert [n.id for n in await admin.notes.backlinks("user", user_id, limit=1)] == [elsewhere.id]
    assert [n.id for n in await admin.notes.backlinks("api_key", "key_1")] == [elsewhere.id]
    await admin.notes.update(linking.id, {"content": "links removed"})
    assert [n.id for n in await admin.notes.backlinks("user", user_id)] == [elsewhere.id]
    await admin.notes.delete(elsewhere.id)
    assert await admin.notes.backlinks("user", user_id) == []
    assert (await admin.notes.count("org", org)).count == 2


async def test_invalid_input_is_refused_with_fields(platform, pool, kit, admin, issuer, org):
    before = await kit.count_events(platform, pool)
    on_org = {"subject_type": "org", "subject_id": org, "issuer_id": issuer}
    bad_bodies = [
        {"subject_type": "org", "subject_id": org, "content": "no issuer"},
        {**on_org, "content": ""},
        {**on_org, "content": "   "},
        {**on_org, "content": "x" * 20_001},
        {**on_org, "content": "nul \x00 inside"},
        {"subject_type": "webhook", "subject_id": "wh_1", "content": "not a subject type"},
        {"subject_id": org, "content": "no type"},
    ]
    for body in bad_bodies:
        with pytest.raises(ValidationError):
            await admin.notes.create(body)  # type: ignore[arg-type]
    for query in [
        {"subject_id": org},
        {"subject_type": "org", "subject_id": org},
        {"subject_type": "nope"},
        {"pinned": "yes"},
        {"cursor": "garbage"},
        {"cursor": "2:1:note_x"},
        {"limit": 0},
    ]:
        with pytest.raises(ValidationError):
            await admin.notes.list(**query)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await admin.notes.backlinks("agent", "agt_1")
    with pytest.raises(ValidationError):
        await admin.notes.count("webhook", "wh_1")
    async with http(platform) as client:
        assert (await client.get("/count", params={"subject_type": "org"})).status_code == 400
        response = await client.get("/backlinks", params={"ref_id": "x"})
        assert response.status_code == 400 and response.json()["fields"][0]["field"] == "ref_type"
    assert await kit.count_events(platform, pool) == before


async def test_subjects_are_checked_in_the_callers_account(platform, pool, kit, admin, issuer, org):
    directory = part(platform, "directory")
    other_account = await directory.create_account("Other Inc", actor=ADMIN)
    other_key = await kit.key_with(platform, list(ALL_SCOPES), other_account)
    other = kit.admin_for(platform, other_key.key_id, other_key.secret, other_account)
    before = await kit.count_events(platform, pool)
    try:
        for body in [
            {"subject_type": "org", "subject_id": org, "issuer_id": issuer},
            {"subject_type": "issuer", "subject_id": issuer},
        ]:
            with pytest.raises(NotFoundError):
                await other.notes.create({**body, "content": "prying"})  # type: ignore[typeddict-item]
        assert await kit.count_events(platform, pool) == before

        mine = await admin.notes.create(
            {"subject_type": "org", "subject_id": org, "issuer_id": issuer, "content": "ours"}
        )
        with pytest.raises(NotFoundError):
            await other.notes.get(mine.id)
        with pytest.raises(NotFoundError):
            await other.notes.update(mine.id, {"pinned": True})
        with pytest.raises(NotFoundError):
            await other.notes.delete(mine.id)
        assert (await other.notes.list()).data == []
        assert (await other.notes.count("org", org)).count == 0
        async with http(platform, (other_key.key_id, other_key.secret)) as client:
            assert (await client.get(f"/{mine.id}")).status_code == 403
    finally:
        await other.close()

    # A subject of another issuer of the same account, or a missing one, is a 404 too.
    second_issuer = await kit.new_issuer(admin)
    for body in [
        {"subject_type": "org", "subject_id": org, "issuer_id": second_issuer},
        {"subject_type": "user", "subject_id": "usr_missing", "issuer_id": issuer},
        {"subject_type": "client", "subject_id": f"c_{uuid.uuid4().hex}"},
    ]:
        with pytest.raises(NotFoundError):
            await admin.notes.create({**body, "content": "x"})  # type: ignore[typeddict-item]


async def test_scopes(platform, kit, issuer):
    reader_key = await kit.key_with(platform, ["notes:read"])
    writer_key = await kit.key_with(platform, ["notes:write"])
    none_key = await kit.all_scopes_but(platform, "notes:read", "notes:write", "notes:delete")
    reader = kit.admin_for(platform, reader_key.key_id, reader_key.secret)
    writer = kit.admin_for(platform, writer_key.key_id, writer_key.secret)
    nobody = kit.admin_for(platform, none_key.key_id, none_key.secret)
    try:
        body = {"subject_type": "issuer", "subject_id": issuer, "content": "scoped"}
        with pytest.raises(ForbiddenError):
            await reader.notes.create(body)  # type: ignore[arg-type]
        note = await writer.notes.create(body)  # type: ignore[arg-type]
        assert (await reader.notes.get(note.id)).id == note.id
        assert (await writer.notes.count("issuer", issuer)).count == 1
        with pytest.raises(ForbiddenError):
            await writer.notes.delete(note.id)
        with pytest.raises(ForbiddenError):
            await nobody.notes.list()
        with pytest.raises(ForbiddenError):
            await nobody.notes.backlinks("issuer", issuer)
    finally:
        for client in (reader, writer, nobody):
            await client.close()
