"""AuthPI contracts."""
