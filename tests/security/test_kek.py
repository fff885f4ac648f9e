"""The key-encryption key lives apart from the data it protects, comes in versions, and
rotates: `authpi kek rotate` re-wraps every stored data key under the newest one, old wrapped
keys still open, and a wrong KEK fails closed with a clear error."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import psycopg
import pytest

from authpi.config import Settings
from authpi.crypto.envelope import Kek, WrongKek, b64e, kek_id, new_key, seal
from authpi.crypto.pii import region_store
from authpi.gateway.edge.replay_keys import ReplaySeal
from authpi.platform.bootstrap import ensure_bootstrap
from authpi.platform.host import Platform
from authpi.testing.infra import Infra, new_namespace
from authpi.token.signing.keys import unwrap_private


def _settings(infra: Infra, data_dir: Path, namespace: str, kek_file: Path) -> Settings:
    return Settings(
        data_dir=data_dir, database_url=infra.dsn, nats_url=infra.nats_url,
        api_url="http://127.0.0.1:0", idp_url="http://127.0.0.1:0", namespace=namespace,
        kek_file=kek_file, rate_limit_multiplier=1000.0,
    )  # fmt: skip


async def _wrapped(dsn: str, namespace: str) -> dict[str, list[tuple[str, str, str]]]:
    """Every stored wrapped key: PII keys (in the region's PII key store) and signing keys' data
    keys (and their ciphertext), and the gateway's replay keys."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            f"SELECT subject_id, wrapped_key, '' FROM {region_store(namespace)}.pii_keys"
        )
        pii = [tuple(r) for r in await cur.fetchall()]
        cur = await conn.execute(
            f"SELECT kid, wrapped_dek, ciphertext FROM {namespace}_token.signing_key_secrets"
        )
        signing = [tuple(r) for r in await cur.fetchall()]
        cur = await conn.execute(
            f"SELECT resource_id, wrapped_key, '' FROM {namespace}_gateway.replay_keys"
        )
        replay = [tuple(r) for r in await cur.fetchall()]
    return {"pii": pii, "signing": signing, "replay": replay}


async def _rotate(infra: Infra, data_dir: Path, namespace: str, kek_file: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data_dir), AUTHPI_DATABASE_URL=infra.dsn,
        AUTHPI_NATS_URL=infra.nats_url, AUTHPI_NAMESPACE=namespace,
        AUTHPI_KEK_FILE=str(kek_file), AUTHPI_LOG_FORMAT="json",
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "authpi.platform.cli", "kek", "rotate", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def deployment(infra, tmp_path):
    """A bootstrapped platform whose KEK file sits outside its data folder; stopped again."""
    old = b64e(new_key())
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    kek_file = secrets / "kek"
    kek_file.write_text(f"# the first KEK\n{old}\n")
    data_dir, namespace = tmp_path / "data", new_namespace()
    platform = Platform(_settings(infra, data_dir, namespace, kek_file))
    await platform.start()
    try:
        directory = next(p.exports["directory"] for p in platform.parts if "directory" in p.exports)
        await ensure_bootstrap(directory, platform.settings, platform.api_url, platform.idp_url)
    finally:
        await platform.stop()
    return data_dir, namespace, kek_file, old


async def test_kek_file_outside_data_dir_wraps_every_stored_key(infra, deployment):
    data_dir, namespace, _, old = deployment
    wrapped = await _wrapped(infra.dsn, namespace)

    assert not (data_dir / "kek").exists()
    rows = wrapped["pii"] + wrapped["signing"]
    assert wrapped["pii"] and wrapped["signing"]
    assert all(r[1].startswith(Kek.from_text(old).current_id + ":") for r in rows)


async def test_rotation_rewraps_under_the_newest_kek_and_old_keys_still_open(infra, deployment):
    data_dir, namespace, kek_file, old = deployment
    replay = f"{namespace}_gateway"
    async with await psycopg.AsyncConnection.connect(infra.dsn, autocommit=True) as conn:
        body = await ReplaySeal(replay, Kek.from_text(old)).seal(conn, b"body", b"aad", "usr_1")
    before = await _wrapped(infra.dsn, namespace)
    new = b64e(new_key())
    kek_file.write_text(f"{old}\n{new}\n")  # oldest first: the last one wraps
    ring = Kek.from_text(kek_file.read_text())

    code, out, err = await _rotate(infra, data_dir, namespace, kek_file)

    assert code == 0, err
    assert ring.current_id in out
    after = await _wrapped(infra.dsn, namespace)
    rows = after["pii"] + after["signing"] + after["replay"]
    assert after["replay"] and all(r[1].startswith(ring.current_id + ":") for r in rows)
    # The data keys themselves did not change, and the pre-rotation wrapping still opens.
    for (subject, old_wrapped, _), (_, new_wrapped, _) in zip(
        sorted(before["pii"]), sorted(after["pii"]), strict=True
    ):
        context = f"pii:{subject}"
        assert ring.unwrap(old_wrapped, context) == ring.unwrap(new_wrapped, context)
    newest_only = Kek.from_text(new)
    for kid, wrapped, ciphertext in after["signing"]:
        unwrap_private(newest_only, kid, wrapped, ciphertext)  # the old KEK is not needed
    async with await psycopg.AsyncConnection.connect(infra.dsn) as conn:
        assert await ReplaySeal(replay, newest_only).unseal(conn, body, b"aad", "usr_1") == b"body"
    # A second rotation finds nothing left to do.
    code, out, _ = await _rotate(infra, data_dir, namespace, kek_file)
    assert code == 0 and '"rewrapped": 0' in out


async def test_wrong_kek_fails_closed_with_a_clear_error(infra, deployment):
    data_dir, namespace, kek_file, _ = deployment
    before = await _wrapped(infra.dsn, namespace)
    kek_file.write_text(b64e(new_key()))  # not the key that wrapped them

    code, _, err = await _rotate(infra, data_dir, namespace, kek_file)

    assert code == 1, err
    assert "Traceback" not in err
    assert "is not configured" in err and "AUTHPI_KEK" in err
    assert await _wrapped(infra.dsn, namespace) == before
    subject, wrapped, _ = before["pii"][0]
    with pytest.raises(WrongKek, match="is not configured"):
        Kek.from_text(kek_file.read_text()).unwrap(wrapped, f"pii:{subject}")


def test_unversioned_legacy_wrapping_opens_with_any_listed_kek_and_new_wraps_carry_an_id():
    old, new, dek = new_key(), new_key(), new_key()
    legacy = seal(old, dek, b"pii:usr_1")  # what the single, unversioned KEK wrote
    ring = Kek(new, old)

    assert ring.unwrap(legacy, "pii:usr_1") == dek
    assert ring.wrap(dek, "pii:usr_1").startswith(kek_id(new) + ":")
    assert ring.derive("x") == Kek(old).derive("x")  # derived secrets survive the rotation
    with pytest.raises(WrongKek, match="no configured key-encryption key"):
        Kek(new).unwrap(legacy, "pii:usr_1")


async def test_platform_with_a_wrong_kek_refuses_to_start(infra, deployment):
    data_dir, namespace, kek_file, _ = deployment
    kek_file.write_text(b64e(new_key()))

    with pytest.raises(WrongKek, match="is not configured"):
        await Platform(_settings(infra, data_dir, namespace, kek_file)).start()
