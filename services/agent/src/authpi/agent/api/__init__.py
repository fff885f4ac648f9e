"""The agent service's Core API routes (platform.md 3.2, 3.3, 4.4)."""
