"""Read-side SQL over the agent service's own tables, one module per area."""
