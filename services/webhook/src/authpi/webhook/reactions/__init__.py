"""Reactions of the webhook service."""
