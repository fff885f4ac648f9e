"""NATS JetStream: connection, stream declarations (from deploy/nats/), consumer loop."""
