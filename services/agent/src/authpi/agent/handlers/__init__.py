"""The agent service's write path: commands to agent streams, through the event store."""
