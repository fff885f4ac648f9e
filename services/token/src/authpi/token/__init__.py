"""The token service."""
