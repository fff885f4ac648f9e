"""Pure deciders of the directory's aggregates."""
