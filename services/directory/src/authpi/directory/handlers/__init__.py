"""The directory's write path: one module per aggregate, each mapping commands to streams and
running them through the service's one event store."""
