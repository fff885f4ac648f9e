"""The webhook service's Core API routes (platform.md 7, contract 4.10)."""
