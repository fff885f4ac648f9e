"""Directory commands (internal; never published), one module per aggregate."""
