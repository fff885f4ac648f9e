"""Queries of the webhook service."""
