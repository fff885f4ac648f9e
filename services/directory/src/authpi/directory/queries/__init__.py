"""Read-side SQL over the directory's own tables, one module per area."""
