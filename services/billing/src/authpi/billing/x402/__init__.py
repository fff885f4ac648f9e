"""x402 top-ups (platform.md 5.6-5.9): the wire formats of both protocol versions, local
verification of `exact` EVM payments (EIP-3009 `TransferWithAuthorization`), the JSON-RPC chain
client that checks and settles them, the facilitator interface, and `Payments`, which turns a
paid request into a ledger top-up exactly once."""
