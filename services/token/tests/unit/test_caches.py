"""The folds behind the token service's client and agent caches: what each event does, and that
a redelivered or out-of-date event changes nothing (ordered consumers restart, the durable
projection and a worker's follower may both see an event)."""

from __future__ import annotations

from authpi.contracts.agent import (
    AgentCreated,
    AgentDeleted,
    AgentUpdated,
    AgentVerifierAdded,
    AgentVerifierRemoved,
)
from authpi.contracts.directory import (
    ClientBlocked,
    ClientConfig,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
)
from authpi.token.reactions import agents, clients
from services.token.tests.factories import client_created

ACC = "acc_1"


def test_client_fold_follows_the_lifecycle():
    entry = clients.evolve(None, client_created(), 1, ACC)
    assert entry is not None and entry.account_id == ACC and entry.alg == "EdDSA"
    assert entry.grant_types == frozenset({"client_credentials"}) and entry.access_token_ttl == 900
    rotated = clients.evolve(
        entry,
        ClientSecretRotated(id="c_1", issuer_id="i_1", secret_sha256="d2", secret_hint="wxyz",
                            previous_secret_sha256="d1", previous_valid_until=99,
                            secret_rotated_at=9),
        2, ACC,
    )  # fmt: skip
    assert rotated is not None and rotated.secret_sha256 == "d2"
    assert rotated.previous_sha256 == "d1" and rotated.previous_valid_until == 99
    updated = clients.evolve(
        rotated,
        ClientUpdated(id="c_1", issuer_id="i_1", changed=["settings"], name="svc",
                      config=ClientConfig(grant_types=[], scopes=["b:read"]), updated_at=3),
        3, ACC,
    )  # fmt: skip
    assert (
        updated is not None and updated.grant_types == frozenset() and updated.scopes == ("b:read",)
    )
    assert updated.secret_sha256 == "d2"  # an update never touches the secret
    blocked = clients.evolve(updated, ClientBlocked(id="c_1", issuer_id="i_1", status_at=4), 4, ACC)
    assert blocked is not None and blocked.status == "disabled"
    back = clients.evolve(blocked, ClientUnblocked(id="c_1", issuer_id="i_1", status_at=5), 5, ACC)
    assert back is not None and back.status == "active"
    gone = clients.evolve(back, ClientDeleted(id="c_1", issuer_id="i_1", deleted_at=6), 6, ACC)
    assert gone is not None and gone.status == "deleted" and gone.secret_sha256 is None


def test_client_replays_and_stale_events_change_nothing():
    entry = clients.evolve(None, client_created(), 1, ACC)
    gone = clients.evolve(entry, ClientDeleted(id="c_1", issuer_id="i_1", deleted_at=6), 2, ACC)
    assert clients.evolve(gone, client_created(), 1, ACC) is gone  # a late replay
    assert clients.evolve(
        gone, ClientUnblocked(id="c_1", issuer_id="i_1", status_at=5), 2, ACC
    ) is gone  # fmt: skip
    # Nothing but a creation starts an entry.
    assert (
        clients.evolve(None, ClientBlocked(id="c_9", issuer_id="i_1", status_at=1), 3, ACC) is None
    )


def test_agent_fold_tracks_status_scopes_and_secret_verifiers():
    created = AgentCreated(id="agt_1", issuer_id="i_1", name="bot", scopes=["t:read"], created_at=1)
    entry = agents.evolve(None, created, 1, ACC)
    assert entry is not None and entry.status == "active" and entry.secrets == {}
    entry = agents.evolve(
        entry,
        AgentVerifierAdded(agent_id="agt_1", issuer_id="i_1", verifier_id="avf_1",
                           verifier_type="secret", secret_sha256="d1", created_at=2),
        2, ACC,
    )  # fmt: skip
    entry = agents.evolve(
        entry,
        AgentVerifierAdded(agent_id="agt_1", issuer_id="i_1", verifier_id="avf_2",
                           verifier_type="wallet", network="eip155:1", lookup_address="0xab",
                           created_at=3),
        3, ACC,
    )  # fmt: skip
    assert entry is not None and entry.secrets == {"avf_1": "d1"}  # wallets mint no tokens
    suspended = agents.evolve(
        entry,
        AgentUpdated(id="agt_1", issuer_id="i_1", name="bot", status="suspended",
                     scopes=["t:read", "t:write"], changed=["status", "scopes"], updated_at=4),
        4, ACC,
    )  # fmt: skip
    assert suspended is not None and suspended.status == "suspended"
    assert suspended.scopes == ("t:read", "t:write") and suspended.secrets == {"avf_1": "d1"}
    removed = agents.evolve(
        suspended,
        AgentVerifierRemoved(agent_id="agt_1", issuer_id="i_1", verifier_id="avf_1",
                             verifier_type="secret", removed_at=5),
        5, ACC,
    )  # fmt: skip
    assert removed is not None and removed.secrets == {}
    assert agents.evolve(removed, created, 1, ACC) is removed  # a replay of the creation
    deleted = agents.evolve(
        removed, AgentDeleted(id="agt_1", issuer_id="i_1", name="bot", deleted_at=6), 6, ACC
    )
    assert deleted is not None and deleted.status == "deleted"
