"""RSA signing keys made ahead of need by a child process: each key is new, whole and signs; the
child ends when told to stop, and without it (stopped, or killed) keys are still made, here."""

from __future__ import annotations

import asyncio
import signal

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from authpi.token.signing.keygen import AHEAD, KeyMaker
from authpi.token.signing.keys import public_jwk, sign_jwt


def _signs(key: rsa.RSAPrivateKey) -> None:
    token = sign_jwt(key, "kid-1", "RS256", {"sub": "usr_1"})
    public = jwt.PyJWK(public_jwk(key, "kid-1", "RS256")).key
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"sub": "usr_1"}


async def _started(maker: KeyMaker) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(maker.run(stop))
    while maker._proc is None:  # up once the task has spawned it
        await asyncio.sleep(0.01)
    return stop, task


async def test_keys_made_ahead_by_the_child_are_new_whole_and_sign():
    maker = KeyMaker()
    stop, task = await _started(maker)
    proc = maker._proc
    assert proc is not None
    keys = [await maker.make("RS256") for _ in range(AHEAD + 2)]
    for key in keys:
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        key.private_numbers()  # the whole private key is there (p, q, d, CRT values)
        _signs(key)
    assert len({key.public_key().public_numbers().n for key in keys}) == len(keys)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert proc.returncode == 0  # it ended at the end of its input


async def test_without_the_child_keys_are_made_here():
    maker = KeyMaker()
    _signs(await maker.make("RS256"))  # never started
    stop, task = await _started(maker)
    proc = maker._proc
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    _signs(await maker.make("RS256"))  # the child is gone: made in a thread
    with pytest.raises(RuntimeError, match="exited"):  # the supervisor restarts the task
        await asyncio.wait_for(task, 10)
    stop.set()
