"""Event store: append-only events per service schema, the relay, checkpoints and replay."""
