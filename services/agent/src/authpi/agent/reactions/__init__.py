"""Consumers of other services' messages that are not projections of events."""
