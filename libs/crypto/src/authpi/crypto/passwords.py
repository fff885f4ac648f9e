"""User passwords (DESIGN.md 6): Argon2id with per-deployment parameters (AUTHPI_ARGON2_*), the
OWASP minimum by default (19 MiB, 2 passes, 1 lane). Hashing and verification run in a worker
thread, never on the event loop, and at most a few at a time, so that a burst of sign-ins bounds
both the memory it takes and the latency it adds to everything else the process serves. A hash
made with other parameters still verifies; `needs_rehash` says when to store a new one."""

from __future__ import annotations

import asyncio
import os

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_CHARS = 8
MAX_BYTES = 1024


def policy_problem(password: str) -> str | None:
    """Why `password` is refused as a new password; None when it is acceptable."""
    if len(password) < MIN_CHARS:
        return f"Use at least {MIN_CHARS} characters."
    if len(password.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return f"Use at most {MAX_BYTES} bytes."
    return None


class Passwords:
    """Argon2id hashing with one deployment's parameters."""

    def __init__(
        self,
        *,
        memory_kib: int = 19_456,
        time_cost: int = 2,
        parallelism: int = 1,
        concurrency: int | None = None,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(concurrency or max(2, (os.cpu_count() or 1) * 2))
        self._decoy: str | None = None

    def hash_now(self, password: str) -> str:
        """Blocking; for tools and tests. Request paths use `hash`."""
        return self._hasher.hash(password)

    def verify_now(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self.verify_now, stored, password)

    async def verify_decoy(self, password: str) -> bool:
        """Spend what a verification spends, for a username that does not exist, so that the
        answer's timing does not tell which usernames do. Always False."""
        if self._decoy is None:
            self._decoy = await self.hash(os.urandom(16).hex())
        await self.verify(self._decoy, password)
        return False
