"""What the token service publishes outside the event store: batched runtime facts."""
