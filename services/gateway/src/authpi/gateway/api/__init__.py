"""The gateway's own routes."""
