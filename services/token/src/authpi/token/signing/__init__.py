"""Signing-key material, signing and verification of the tokens this service issues."""
