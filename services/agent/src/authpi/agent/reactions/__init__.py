"""Consumers of other services' messages: the directory's issuer and organization events, and
the token service's `machine.token.issued` facts."""
