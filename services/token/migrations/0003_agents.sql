-- Agents as the token endpoint needs them, learnt from the agent service's agent.* events by the
-- durable consumer token-agents (the token service's own AgentEntry: status, scopes and the
-- SHA-256 digests of secret verifiers, never a secret).
CREATE TABLE agents_view (
    id         text PRIMARY KEY,
    issuer_id  text NOT NULL,
    data       jsonb NOT NULL,
    version    integer NOT NULL
);
