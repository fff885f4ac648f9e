"""Pure deciders of the agent service's aggregates."""
