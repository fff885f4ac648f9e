"""A deleted user's PII is nowhere on disk (DESIGN.md 7), checked the way an auditor would: a
platform on its own embedded PostgreSQL and NATS, a user created (with an Idempotency-Key),
replayed, updated and deleted, a CHECKPOINT and a clean stop, then every byte of the data folders
(heap files, pg_wal, the JetStream store, the platform's folder) and the captured logs is
searched for the clear values. A kept user's email is not on disk either, since every copy is
sealed; nor are organization invitations' addresses, inviters and messages, of one kept and one
revoked (sealed under the invitation's own key, which the revocation destroys). The positive
control, an issuer name (not PII, stored in clear), proves the scan finds clear text in
PostgreSQL's heap files and WAL and in the NATS store (and the logs are shown to be captured).
Rows stay far below PostgreSQL's TOAST threshold and WAL compression is off, so nothing the scan
looks for is compressed.

On the session's platform: invitations' personal data in no table and no JetStream message, and
an ended invitation's unreadable in the Core API, the Events API and a replay of the view."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx
import msgspec
import psycopg
import pytest

from authpi.contracts.subjects import events_stream, subject_for
from authpi.directory.projections.invitations import InvitationsView
from authpi.embedded.servers import EmbeddedNats, EmbeddedPostgres
from authpi.eventstore.replay import replay
from authpi.messaging.streams import connect
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.platform.testing.tenants import part, places_holding
from authpi.testing.infra import Infra
from authpi.testing.plugin import eventually


def _scan(files: Iterable[Path], needles: Iterable[str]) -> dict[str, list[str]]:
    """For each needle, the files whose raw bytes contain it, as UTF-8 or lower-cased."""
    forms = {n: {n.encode(), n.lower().encode()} for n in needles}
    found: dict[str, list[str]] = {n: [] for n in forms}
    for path in files:
        data = path.read_bytes()
        for needle, encodings in forms.items():
            if any(e in data for e in encodings):
                found[needle].append(str(path))
    return found


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in sorted(root.rglob("*")) if p.is_file()]


class Servers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg = EmbeddedPostgres(root / "pg")
        self.nats = EmbeddedNats(root / "nats")
        self.infra = Infra(self.pg.start(), self.nats.start())

    def stop(self) -> None:
        """A clean stop: PostgreSQL writes a shutdown checkpoint, NATS flushes its store."""
        self.nats.stop()
        self.pg.stop()


@pytest.fixture
def servers() -> Iterable[Servers]:
    # A short path: PostgreSQL's socket lives under it (107-byte limit).
    root = Path(tempfile.mkdtemp(prefix="authpi-pii-", dir="/tmp"))
    running = Servers(root)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)


def _api(platform: RunningPlatform) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{platform.api_url}/v1/accounts/{platform.account_id}",
        auth=(platform.api_key_id, platform.api_key_secret),
        timeout=30,
    )


async def _idempotent(http: httpx.AsyncClient, method: str, url: str, body: dict) -> dict:
    key = f"pii-{uuid.uuid4().hex}"
    response = await http.request(method, url, json=body, headers={"Idempotency-Key": key})
    assert response.status_code in (200, 201, 202), response.text
    # The same request again is answered from the stored replay, opened with the user's key.
    replayed = await http.request(method, url, json=body, headers={"Idempotency-Key": key})
    assert replayed.status_code == response.status_code
    assert replayed.json() == response.json()
    return response.json()["data"]


async def _replays_of(platform: RunningPlatform, user_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(platform.dsn) as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM {platform.namespace}_gateway.idempotency_keys"
            " WHERE resource_id = %s",
            [user_id],
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def test_deleted_users_pii_is_nowhere_on_disk(
    servers: Servers, capfd: pytest.CaptureFixture[str]
) -> None:
    tag = uuid.uuid4().hex[:12]
    issuer_name = f"Issuer Control {tag}"
    gone = {
        "email": f"Shred.Me.{tag}@Example.org",
        "first_name": f"Quilliam{tag}",
        "last_name": f"Vantablack{tag}",
        "nickname": f"Nick{tag}x",
        "updated": f"Renamed{tag}y",
    }
    kept_email = f"Kept.{tag}@Example.org"
    invited = {
        "kept": (f"Invited.{tag}@Example.org", f"Inviter{tag}k", f"Message{tag}k"),
        "revoked": (f"Revoked.{tag}@Example.org", f"Inviter{tag}r", f"Message{tag}r"),
    }

    async with running_platform(servers.infra, servers.root / "data") as platform:
        namespace = platform.namespace
        user_id = await _create_update_delete(platform, issuer_name, gone, kept_email)
        await _invite_and_revoke(platform, invited)

        # The gateway learns the deletion from `user.deleted` and drops the user's replays.
        async def purged() -> bool:
            return await _replays_of(platform, user_id) == 0

        await eventually(purged, timeout=20.0)
    async with await psycopg.AsyncConnection.connect(servers.infra.dsn, autocommit=True) as conn:
        await conn.execute("CHECKPOINT")
    servers.stop()

    logs = servers.root / "captured.log"
    out, err = capfd.readouterr()
    logs.write_text(out + err)
    pg_files = _files(servers.root / "pg")
    nats_files = _files(servers.root / "nats")
    everything = [*pg_files, *nats_files, *_files(servers.root / "data"), logs]
    assert any("pg_wal" in str(p) for p in pg_files) and nats_files

    needles = [*gone.values(), kept_email, *(v for values in invited.values() for v in values)]
    assert _scan(everything, needles) == {n: [] for n in needles}

    # Positive control: the scan does find clear text where it is, in PostgreSQL's heap files
    # and WAL, and in the JetStream store.
    control = _scan(everything, [issuer_name])[issuer_name]
    assert [p for p in control if "/pg/" in p and "/pg_wal/" in p]
    assert [p for p in control if "/pg/" in p and "/base/" in p]
    assert [p for p in control if "/nats/" in p]
    assert namespace in logs.read_text()  # the logs were captured (relay and consumer lines)


async def _create_update_delete(
    platform: RunningPlatform, issuer_name: str, gone: dict[str, str], kept_email: str
) -> str:
    """Through the Core API: an issuer named `issuer_name`, a user with `gone`'s PII created,
    replayed, updated and deleted, and a user `kept_email` that stays. The deleted user's id."""
    async with _api(platform) as http:
        created = await http.post("/issuers", json={"name": issuer_name})
        assert created.status_code == 201, created.text
        users = f"/issuers/{created.json()['data']['id']}/users"

        user = await _idempotent(
            http,
            "POST",
            users,
            {
                "username_type": "email",
                "username": gone["email"],
                "profile": {"first_name": gone["first_name"], "last_name": gone["last_name"]},
                "custom_fields": {"nickname": gone["nickname"]},
            },
        )
        assert user["username"] == gone["email"].lower()
        updated = await _idempotent(
            http, "PATCH", f"{users}/{user['id']}", {"profile": {"display_name": gone["updated"]}}
        )
        assert updated["profile"]["display_name"] == gone["updated"]
        kept = await _idempotent(http, "POST", users, {"email": kept_email})
        fetched = await http.get(f"{users}/{kept['id']}")
        assert fetched.json()["data"]["username"] == kept_email.lower()  # decrypted on read

        deleted = await http.delete(f"{users}/{user['id']}")
        assert deleted.status_code == 204
        assert (await http.get(f"{users}/{user['id']}")).status_code == 404
        return str(user["id"])


class Invited(msgspec.Struct, frozen=True):
    issuer_id: str
    org_id: str
    path: str  # the organization's invitations, under the account
    ids: dict[str, str]  # name -> invitation id


async def _invite(
    http: httpx.AsyncClient, invited: dict[str, tuple[str, str, str]], issuer_name: str
) -> Invited:
    """Through the Core API: an issuer, an organization, and an invitation (created with an
    Idempotency-Key and replayed) for each of `invited`'s (address, inviter, message), which
    the response shows opened."""
    issuer = (await http.post("/issuers", json={"name": issuer_name})).json()["data"]["id"]
    orgs = f"/issuers/{issuer}/organizations"
    org = await http.post(orgs, json={"name": "Org", "scopes": ["member"]})
    assert org.status_code == 201, org.text
    org_id = org.json()["data"]["id"]
    path = f"{orgs}/{org_id}/invitations"
    ids: dict[str, str] = {}
    for name, (address, inviter, message) in invited.items():
        body = {"email_invited": address, "scopes": ["member"], "inviter": {"name": inviter},
                "message": message}  # fmt: skip
        made = await _idempotent(http, "POST", path, body)
        opened = (made["email_invited"], made["inviter"]["name"], made["message"])
        assert opened == (address.lower(), inviter, message)
        ids[name] = made["id"]
    return Invited(issuer, org_id, path, ids)


async def _invite_and_revoke(
    platform: RunningPlatform, invited: dict[str, tuple[str, str, str]]
) -> None:
    """`_invite`, then the invitation named `revoked` is revoked."""
    async with _api(platform) as http:
        made = await _invite(http, invited, "invitations")
        revoked = await http.post(f"{made.path}/{made.ids['revoked']}/revoke")
        assert revoked.status_code == 200 and revoked.json()["data"]["email_invited"] == ""
        kept = (await http.get(f"{made.path}/{made.ids['kept']}")).json()["data"]
        assert kept["email_invited"] == invited["kept"][0].lower()


async def test_restored_copies_of_a_deleted_users_rows_reveal_nothing(platform, pool) -> None:
    """A backup of the users view and of the idempotency records, taken while the user existed
    and restored after its deletion, gives nothing back: every copy is sealed under a key that
    the deletion destroyed (only a copy of the key tables themselves could, see `pii.py`)."""
    email = f"restored-{uuid.uuid4().hex[:12]}@example.org"
    nickname = f"Nick{uuid.uuid4().hex[:12]}"
    directory, gateway = f"{platform.namespace}_directory", f"{platform.namespace}_gateway"
    key = f"pii-{uuid.uuid4().hex}"
    body = {"email": email, "custom_fields": {"nickname": nickname}}
    async with _api(platform) as http, pool.connection() as conn:
        await conn.set_autocommit(True)
        created = await http.post("/issuers", json={"name": f"restore-{uuid.uuid4().hex[:8]}"})
        users = f"/issuers/{created.json()['data']['id']}/users"
        first = await http.post(users, json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201 and email in first.text
        user_id = first.json()["data"]["id"]

        await conn.execute(
            f"CREATE TEMP TABLE users_copy AS SELECT * FROM {directory}.users_view WHERE id = %s",
            [user_id],
        )
        await conn.execute(
            f"CREATE TEMP TABLE replays_copy AS SELECT * FROM {gateway}.idempotency_keys"
            " WHERE resource_id = %s",
            [user_id],
        )
        assert (await http.delete(f"{users}/{user_id}")).status_code == 204

        async def purged() -> bool:
            return await _replays_of(platform, user_id) == 0

        await eventually(purged, timeout=20.0)
        # Restore the copies over what the deletion left.
        await conn.execute(f"DELETE FROM {directory}.users_view WHERE id = %s", [user_id])
        await conn.execute(f"INSERT INTO {directory}.users_view SELECT * FROM users_copy")
        await conn.execute(f"INSERT INTO {gateway}.idempotency_keys SELECT * FROM replays_copy")

        restored = await http.get(f"{users}/{user_id}")
        assert restored.status_code == 200  # the restored row says the user exists…
        assert email not in restored.text and nickname not in restored.text  # …but is empty
        assert restored.json()["data"]["username"] == ""
        replayed = await http.post(users, json=body, headers={"Idempotency-Key": key})
        assert replayed.status_code == 201  # the restored record is replayed, without its body
        assert email not in replayed.text and nickname not in replayed.text


async def _stream_payloads(platform: RunningPlatform, subject: str) -> list[bytes]:
    """The raw bytes of every message of the events stream on `subject`, as JetStream keeps
    them (an ephemeral consumer, read up to the count pending when it was made)."""
    nc = await connect(platform.nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, stream=events_stream(platform.namespace))
        pending = (await sub.consumer_info()).num_pending
        out: list[bytes] = []
        while len(out) < pending:
            out += [m.data for m in await sub.fetch(min(100, pending - len(out)), timeout=10)]
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def test_invitations_are_sealed_everywhere_and_an_ended_one_is_unreadable(
    platform, pool, mailbox
) -> None:
    """Three invitations (address, inviter, message), created with an Idempotency-Key: one
    kept, one revoked, one declined through its link. No clear value is in any table of the
    platform (the directory's events and invitations_view, the token service's copy, the audit
    log, the idempotency records), nor in the bytes JetStream holds; the Events API shows no
    address. The Core API opens the kept one; the ended ones read empty, their keys are gone
    (the sealed snapshot in their events no longer opens), and a rebuild of the view from the
    store (a replay) brings nothing back."""
    tag = uuid.uuid4().hex[:10]
    people = {
        name: (f"{name}.{tag}@Example.org", f"Inviter {name} {tag}", f"Note {name} {tag}")
        for name in ("Kept", "Revoked", "Declined")
    }
    invitations = part(platform, "invitations")
    async with _api(platform) as http:
        made = await _invite(http, people, f"inv-{tag}")
        issuer, org_id, path, ids = made.issuer_id, made.org_id, made.path, made.ids
        assert (await http.post(f"{path}/{ids['Revoked']}/revoke")).status_code == 200
        mail = await mailbox.wait_for(to=people["Declined"][0].lower(), subject_contains="invited")
        token = mail.link("token=").split("token=", 1)[1]
        await invitations.answer(issuer, token, accept=False)

        async def events_of_org() -> list[dict]:
            got = await http.get("/events", params={"org_id": org_id, "limit": 100})
            return got.json()["data"]

        async def all_recorded() -> list[dict] | None:
            events = await events_of_org()
            types = {e["type"] for e in events}
            ended = {"organization.invitation.deleted", "organization.invitation.declined"}
            return events if ended <= types else None

        public = await eventually(all_recorded, timeout=20.0)

        async def token_service_forgot() -> bool:  # token-invitations applied the endings
            async with pool.connection() as conn:
                cur = await conn.execute(
                    f"SELECT count(*) FROM {platform.namespace}_token.invitations_view"
                    " WHERE id = ANY(%s) AND status IN ('revoked', 'declined') AND pii IS NULL",
                    [[ids["Revoked"], ids["Declined"]]],
                )
                return (await cur.fetchone())[0] == 2

        await eventually(token_service_forgot, timeout=20.0)

        async def replays_purged() -> bool:  # gateway-directory dropped the ended replays
            return all([await _replays_of(platform, ids[n]) == 0 for n in ("Revoked", "Declined")])

        await eventually(replays_purged, timeout=20.0)

        needles = [value for values in people.values() for value in values]
        for needle in needles:
            assert await places_holding(platform, pool, needle, ignore_case=True) == [], needle
        stream = b"\n".join(
            await _stream_payloads(platform, subject_for(platform.account_id, "organization.>",
                                                         platform.namespace))
        ).lower()  # fmt: skip
        assert ids["Kept"].encode() in stream  # the invitations' events are there…
        assert [n for n in needles if n.lower().encode() in stream] == []  # …sealed
        created = [e for e in public if e["type"] == "organization.invitation.created"]
        assert len(created) == 3 and all("email_invited" not in e["data"] for e in created)
        assert [n for n in needles if n.lower() in str(public).lower()] == []

        async def shown() -> dict[str, tuple[str, object, object]]:
            out = {}
            for name, invitation_id in ids.items():
                got = (await http.get(f"{path}/{invitation_id}")).json()["data"]
                out[name] = (got["email_invited"], got["inviter"], got["message"])
            return out

        kept = people["Kept"]
        expected = {
            "Kept": (kept[0].lower(), {"id": None, "name": kept[1]}, kept[2]),
            "Revoked": ("", None, None),
            "Declined": ("", None, None),
        }
        assert await shown() == expected

        # The ended invitations' keys are gone: the sealed snapshot their events carry no
        # longer opens, while the kept one's does.
        vault = invitations.vault
        async with pool.connection() as conn:
            for name, invitation_id in ids.items():
                cur = await conn.execute(
                    f"SELECT data->>'pii' FROM {invitations.store.schema}.events"
                    " WHERE type = 'organization.invitation.created' AND data->>'id' = %s",
                    [invitation_id],
                )
                sealed = (await cur.fetchone())[0]
                opened = await vault.open_invitation_stored(conn, invitation_id, sealed)
                assert (opened and opened.email_invited) == (expected[name][0] or None), name

        # A replay of the view from the store brings back the kept address only.
        view = InvitationsView(invitations.store.schema, vault)
        assert await replay(platform.dsn, view, {"directory": invitations.store.schema}) > 0
        assert await shown() == expected
