"""RSA signing keys made ahead of need in a child process (`python -m authpi.token.signing.keys`,
which imports little more than the cryptography library).

Generating a 2048-bit RSA key costs tens of milliseconds of CPU (now and then several times
that) and holds the interpreter lock throughout, so even in a thread it stalls every request and
consumer of the process. The child keeps `AHEAD` keys made before anyone asks: a new issuer
takes one at once, and the child makes the next on another core. A key crosses only the pipe
between this process and its own child. The child ends when its input closes: when the task
stops, or when this process dies, however it dies. Without the child (not started yet, or gone)
`make` generates in a thread, as before."""

from __future__ import annotations

import asyncio
import contextlib
import sys

from authpi.messaging.stopping import unless_stopped
from authpi.observability import get_logger
from authpi.token.signing.keys import LENGTH_BYTES, PrivateKey, generate, load_private_der

log = get_logger("authpi.token.keygen")

AHEAD = 2  # keys the child holds ready


class KeyMaker:
    """The token service's key maker: `run` (a singleton task) keeps the child going; `make`
    returns a new private key of an algorithm, an RSA one made ahead by the child."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()  # one reader of the child's output at a time

    async def make(self, alg: str) -> PrivateKey:
        if alg == "RS256":
            key = await self._take()
            if key is not None:
                return key
        return await asyncio.to_thread(generate, alg)

    async def run(self, stop: asyncio.Event) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.token.signing.keys",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(b"\n" * AHEAD)
        self._proc = proc
        try:
            await unless_stopped(proc.wait(), stop)
        finally:
            self._proc = None
            proc.stdin.close()  # the child ends at the end of its input
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
        if not stop.is_set():
            raise RuntimeError(f"the key child exited with {proc.returncode}")

    async def _take(self) -> PrivateKey | None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            return None
        async with self._lock:
            try:
                proc.stdin.write(b"\n")  # the key that replaces the one taken now
                size = int.from_bytes(await proc.stdout.readexactly(LENGTH_BYTES), "big")
                der = await proc.stdout.readexactly(size)
            except BaseException as exc:
                # A read cut short leaves the stream mid-key: end this child (`run` fails and
                # is restarted with a new one) and make this key here.
                if self._proc is proc:
                    self._proc = None
                    proc.stdin.close()
                log.warning("keygen.unavailable", error=repr(exc))
                if not isinstance(exc, Exception):
                    raise
                return None
        return load_private_der(der)
