"""Argon2id passwords: a hash verifies its password and nothing else, carries the deployment's
parameters, and is due for a rehash once the parameters change; the policy takes 8 characters
to 1024 bytes. Speed is measured by `make bench`, not here."""

from __future__ import annotations

import asyncio

from authpi.crypto.passwords import Passwords, policy_problem


def test_hash_at_default_parameters_verifies_only_its_password():
    passwords = Passwords()
    stored = asyncio.run(passwords.hash("correct horse battery"))
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert asyncio.run(passwords.verify(stored, "correct horse battery"))
    assert not asyncio.run(passwords.verify(stored, "correct horse battery!"))


def test_garbage_hash_never_verifies_and_needs_a_rehash():
    passwords = Passwords(memory_kib=64, time_cost=1)
    assert not passwords.verify_now("not-a-hash", "x")
    assert passwords.needs_rehash("not-a-hash")


def test_changed_parameters_ask_for_a_rehash_and_old_hashes_still_verify():
    old = Passwords(memory_kib=64, time_cost=1)
    new = Passwords(memory_kib=128, time_cost=2)
    stored = old.hash_now("pw-12345678")
    assert not old.needs_rehash(stored)
    assert new.needs_rehash(stored)
    assert new.verify_now(stored, "pw-12345678")


def test_decoy_verification_is_always_false():
    passwords = Passwords(memory_kib=64, time_cost=1)
    assert asyncio.run(passwords.verify_decoy("anything")) is False


def test_policy_takes_8_characters_to_1024_bytes():
    assert policy_problem("1234567") is not None
    assert policy_problem("12345678") is None
    assert policy_problem("é" * 512) is None  # 1024 bytes
    assert policy_problem("é" * 513) is not None  # 1026 bytes
