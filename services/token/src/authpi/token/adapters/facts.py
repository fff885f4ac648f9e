"""The token endpoint's batched facts: the shared publisher (authpi.messaging.publisher)."""

from __future__ import annotations

from authpi.messaging.publisher import FactPublisher

__all__ = ["FactPublisher"]
