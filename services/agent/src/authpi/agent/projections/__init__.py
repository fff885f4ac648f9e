"""The agent service's read models: inline (agent streams) and consumer-fed (directory events)."""
