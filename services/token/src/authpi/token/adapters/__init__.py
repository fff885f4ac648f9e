"""What the token service talks to outside its own store: the batched runtime facts it publishes
to NATS."""
